//! Rotating the user CA key the way the operator guide says, against a real
//! sshd whose `TrustedUserCAKeys` and `RevokedKeys` files are kept by
//! `rampart host krl-sync`: prepare (both keys published, hosts learn the next
//! one), activate (new certificates from the new key, old ones still work),
//! retire (refused while the old key's certificates are valid, forced for a
//! compromised key: the old certificate stops working at the host). A host
//! that slept through the rotation is refused, not silently re-keyed. The host
//! CA key's next key reaches the engineer's `known_hosts` at login. A bastion
//! takes the new keys on reload and refuses the retired key's certificates.
//! Real `rampart-ca`, `rampart`, `rampart-bastion`, `sshd`, `ssh`.

#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rampart_e2e::bastion::{host_ca_target, ssh, Bastion, TargetSpec};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::process::{run_timeout, CmdOutput, DEFAULT_TIMEOUT};
use rampart_e2e::{
    bin, bootstrap_admin, eventually, onboard, rampart_on_host, ssh_login, tempdir, AuditDb, Ca,
    Sshd, TEST_ACCOUNT,
};

fn rotate(ca: &Ca, which: &str, step: &str, extra: &[&str]) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.arg("rotate-key")
        .arg("--config")
        .arg(ca.config_path())
        .args([which, step])
        .args(extra);
    run_timeout(c, None, DEFAULT_TIMEOUT)
}

fn krl_sync(ca: &Ca, ca_keys: &Path, krl: &Path) -> CmdOutput {
    rampart_on_host(&[
        "host".as_ref(),
        "krl-sync".as_ref(),
        "--ca".as_ref(),
        ca.url().as_ref(),
        "--ca-fingerprint".as_ref(),
        ca.fingerprint().as_ref(),
        "--ca-key".as_ref(),
        ca_keys.as_os_str(),
        "--out".as_ref(),
        krl.as_os_str(),
    ])
}

/// The key part (`type base64`) of each line of an OpenSSH key file.
fn keys_in(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn fingerprint_of(line: &str) -> String {
    ssh_key::PublicKey::from_openssh(line.trim())
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string()
}

#[test]
fn the_user_ca_key_rotates_without_locking_anyone_out_and_a_forced_retire_cuts_the_old_key_off() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let old_key = ca.user_ca_pub();
    let old_fp = fingerprint_of(&old_key);
    let dir = tempdir("ca-rotation");
    let old_cert = dir.path().join("alice-old-cert.pub");
    fs::copy(alice.cli.cert(), &old_cert).unwrap();
    let identity = alice.cli.identity();

    // A host as `rampart host install` leaves it: trusts the CA's key, and
    // krl-sync keeps that file and the KRL current.
    let sshd = Sshd::start(&old_key);
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    let trusted = sshd.dir().join("trusted_user_ca_keys");
    let krl = sshd.revoked_keys_path().to_path_buf();
    let asleep = dir.path().join("host-that-slept.pub");
    fs::copy(&trusted, &asleep).unwrap();
    krl_sync(&ca, &trusted, &krl).assert_success("krl-sync before the rotation");
    assert_eq!(
        keys_in(&fs::read_to_string(&trusted).unwrap()),
        keys_in(&old_key)
    );
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&old_cert)).assert_success("before");

    // Nothing to activate or retire yet.
    rotate(&ca, "user", "activate", &[]).assert_failure("activate before prepare");
    rotate(&ca, "user", "retire", &[]).assert_failure("retire with no old key");

    // 1. prepare: the next key is published beside the signing one.
    let prepared = rotate(&ca, "user", "prepare", &[]);
    prepared.assert_success("rotate-key user prepare");
    let new_fp = prepared.stdout.trim().to_owned();
    assert!(
        new_fp.starts_with("SHA256:") && new_fp != old_fp,
        "{prepared}"
    );
    rotate(&ca, "user", "prepare", &[]).assert_failure("a second prepare");
    ca.restart();
    let published = ca.api().user_ca().unwrap();
    let published_fps: Vec<String> = published.lines().map(fingerprint_of).collect();
    assert_eq!(
        published_fps,
        [old_fp.clone(), new_fp.clone()],
        "{published}"
    );
    let check = {
        let mut c = Command::new(bin("rampart-ca"));
        c.arg("check").arg("--config").arg(ca.config_path());
        run_timeout(c, None, DEFAULT_TIMEOUT)
    };
    check.assert_success("rampart-ca check during a rotation");
    assert!(
        check.stdout.contains(&format!("next key {new_fp}")),
        "{check}"
    );
    let synced = krl_sync(&ca, &trusted, &krl);
    synced.assert_success("krl-sync after prepare");
    assert!(
        synced.stdout.contains("installed the CA's user CA keys"),
        "{synced}"
    );
    assert_eq!(
        keys_in(&fs::read_to_string(&trusted).unwrap()),
        keys_in(&published)
    );
    // Still signed by the old key.
    alice.login();
    let to_revoke = dir.path().join("alice-revoked-cert.pub");
    fs::copy(alice.cli.cert(), &to_revoke).unwrap();
    let revoked_info = inspect_cert(&to_revoke);
    assert!(revoked_info.signing_ca.contains(&old_fp));

    // 2. activate: the new key signs; the old one stays trusted.
    rotate(&ca, "user", "activate", &[]).assert_success("rotate-key user activate");
    ca.restart();
    alice.login();
    let new_cert = alice.cli.cert();
    let info = inspect_cert(&new_cert);
    assert!(info.signing_ca.contains(&new_fp), "{}", info.text);
    krl_sync(&ca, &trusted, &krl)
        .assert_success("krl-sync after activate (KRL signed by the new key)");
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&new_cert)).assert_success("new certificate");
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&old_cert))
        .assert_success("old certificate during the rotation");
    // A serial the old key signed is still revoked at the host once the new
    // key signs the KRL (one certificate section per trusted key).
    admin
        .cli
        .admin(&["revoke", "--serial", &revoked_info.serial.to_string()])
        .assert_success("revoke an old-key certificate during the rotation");
    krl_sync(&ca, &trusted, &krl).assert_success("krl-sync after the revocation");
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&to_revoke))
        .assert_failure("a revoked old-key certificate");
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&old_cert))
        .assert_success("an old-key certificate not revoked");

    // 3. retire: refused while the old key's certificates are valid, then
    // forced, as for a compromised key.
    let early = rotate(&ca, "user", "retire", &[]);
    early.assert_failure("retire while old certificates are valid");
    assert!(early.stderr.contains("stay valid until"), "{early}");
    rotate(&ca, "user", "retire", &["--force"]).assert_success("rotate-key user retire --force");
    ca.restart();
    assert_eq!(
        ca.api()
            .user_ca()
            .unwrap()
            .lines()
            .map(fingerprint_of)
            .collect::<Vec<_>>(),
        std::slice::from_ref(&new_fp)
    );
    krl_sync(&ca, &trusted, &krl).assert_success("krl-sync after retire");
    assert_eq!(
        keys_in(&fs::read_to_string(&trusted).unwrap()).len(),
        1,
        "the host trusts the new key alone"
    );
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&old_cert))
        .assert_failure("old certificate after retire");
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&new_cert))
        .assert_success("new certificate after retire");

    // A host that never synced during the rotation trusts the old key only:
    // the new KRL and key set are refused and its files stay as they were.
    let asleep_krl = dir.path().join("asleep.krl");
    let before = fs::read(&asleep).unwrap();
    let refused = krl_sync(&ca, &asleep, &asleep_krl);
    refused.assert_failure("a host that slept through the rotation");
    assert_eq!(fs::read(&asleep).unwrap(), before);
    assert!(!asleep_krl.exists());

    // Every step is in the audit chain, the forced retire marked so.
    let steps: Vec<(String, bool)> = AuditDb::new(ca.audit_db())
        .bodies("ca_key_rotated")
        .iter()
        .map(|b| {
            let d = &b["details"];
            assert_eq!(d["ca"], "user");
            (d["step"].as_str().unwrap().to_owned(), d["forced"] == true)
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("prepare".to_owned(), false),
            ("activate".to_owned(), false),
            ("retire".to_owned(), true)
        ]
    );
    ca.stop();
    ca.verify_audit()
        .assert_success("the chain verifies after the rotation");
}

#[test]
fn a_prepared_host_ca_key_reaches_known_hosts_at_login() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    rotate(&ca, "host", "prepare", &[]).assert_success("rotate-key host prepare");
    ca.restart();
    alice.login();
    let known = fs::read_to_string(alice.cli.known_hosts()).unwrap();
    let authorities: Vec<&str> = known
        .lines()
        .filter(|l| l.starts_with("@cert-authority * "))
        .collect();
    assert_eq!(authorities.len(), 2, "{known}");
    assert!(authorities[0].contains(ca.host_ca_pub().split_whitespace().nth(1).unwrap()));
}

#[test]
fn a_bastion_follows_the_user_ca_rotation_when_reloaded() {
    const BASTION: &str = "bastion-1";
    let mut ca = Ca::init_e2e("");
    ca.write_policy(&rampart_e2e::policy::bastion_policy(
        &ca.info().admin_user.clone(),
        BASTION,
    ));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let dir = tempdir("ca-rotation-bastion");
    let old_cert = dir.path().join("alice-old-cert.pub");
    fs::copy(alice.cli.cert(), &old_cert).unwrap();
    let sshd = host_ca_target(&ca, &admin, Vec::new());
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        BASTION,
        &[TargetSpec::host_ca("db-1", sshd.port())],
    );
    bastion.start();
    let config = bastion.ssh_config(&alice, dir.path(), &["db-1"]);
    let old_config = dir.path().join("ssh_config-old");
    fs::write(
        &old_config,
        fs::read_to_string(&config).unwrap().replace(
            &alice.cli.cert().display().to_string(),
            &old_cert.display().to_string(),
        ),
    )
    .unwrap();
    let target = format!("{TEST_ACCOUNT}@db-1");
    let through = |config: &Path| ssh(config, &[&target, "true"], None, Duration::from_secs(60));
    through(&config).assert_success("through the bastion before the rotation");

    rotate(&ca, "user", "prepare", &[]).assert_success("prepare");
    ca.restart();
    let reloaded = bastion.reload();
    assert!(reloaded.contains("the CA's keys changed"), "{reloaded}");
    rotate(&ca, "user", "activate", &[]).assert_success("activate");
    ca.restart();
    bastion.reload();
    // The target trusts both keys, as krl-sync would have left it: the
    // bastion's per-session certificates now come from the new key.
    let published = ca.api().user_ca().unwrap();
    sshd.set_user_ca_keys(&published.lines().collect::<Vec<_>>());
    alice.login();
    through(&config).assert_success("a certificate from the new key");
    through(&old_config).assert_success("a certificate from the old key, during the rotation");

    rotate(&ca, "user", "retire", &["--force"]).assert_success("retire --force");
    ca.restart();
    bastion.reload();
    let refused = through(&old_config);
    refused.assert_failure("a certificate from the retired key at the bastion");
    through(&config).assert_success("a certificate from the new key after retire");
    // The refusal is in the audit chain with its reason.
    eventually("the bastion's refusal reaches the audit log", || {
        AuditDb::new(ca.audit_db())
            .bodies("bastion_connection_refused")
            .iter()
            .any(|b| {
                b["reason"]
                    .as_str()
                    .or(b["details"]["reason"].as_str())
                    .is_some_and(|r| r.contains("not issued by"))
            })
    });
}
