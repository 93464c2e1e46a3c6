//! CA keys in a PKCS#11 token, end to end: `rampart-ca init --pkcs11-*` makes
//! the user and host CA keys inside a real SoftHSM2 token (no key files), the
//! daemon signs certificates and audit checkpoints through the token, a real
//! sshd accepts the certificate, `rampart audit verify` accepts the
//! checkpoints, a restart finds the keys again by label, and a wrong PIN keeps
//! the CA from starting with a message that says so. The user CA key rotates
//! inside the token (`rampart-ca rotate-key`, labels `.next` and `.previous`)
//! while sshd keeps accepting the certificates of both keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::Duration;

use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::{standard_policy, ENGINEERS};
use rampart_e2e::process::{run_timeout, DEFAULT_TIMEOUT};
use rampart_e2e::softhsm::SoftHsm;
use rampart_e2e::{
    bin, bootstrap_admin, onboard, ssh_login, AuditDb, Ca, CmdOutput, Sshd, TEST_ACCOUNT,
};

fn check(ca: &Ca) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.arg("check").arg("--config").arg(ca.config_path());
    run_timeout(c, None, Duration::from_secs(60))
}

#[test]
fn a_ca_whose_keys_live_in_a_token_issues_certificates_sshd_accepts() {
    let hsm = SoftHsm::new("rampart-ca");
    let args = hsm.init_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ca = Ca::init_with_args(None, "", &args);
    ca.write_policy(&standard_policy(&ca.info().admin_user));

    // No private key file anywhere: the config names the token and the labels;
    // only the audit key's public half is written, for the verifying tools.
    for f in ["keys/user_ca", "keys/host_ca", "keys/audit"] {
        assert!(!ca.dir().join(f).exists(), "{f} written beside a token");
    }
    assert!(ca.audit_pubkey().is_file());
    let config = std::fs::read_to_string(ca.config_path()).unwrap();
    assert!(
        config.contains("pkcs11 = {") && config.contains("token = \"rampart-ca\""),
        "{config}"
    );
    let user_ca = ca.user_ca_pub();
    assert!(user_ca.starts_with("ssh-ed25519 "), "{user_ca}");
    assert_ne!(user_ca, ca.host_ca_pub(), "two keys, not one");
    check(&ca).assert_success("rampart-ca check with the keys in the token");

    ca.start();
    assert_eq!(
        ca.api().user_ca().unwrap(),
        user_ca,
        "the API serves the token's key"
    );
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let info = inspect_cert(&alice.cli.cert());
    assert!(
        info.signing_ca.contains(&fingerprint(&user_ca)),
        "signed by the token's user CA key:\n{}",
        info.text
    );
    let sshd = Sshd::start(&user_ca);
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    ssh_login(
        &sshd,
        TEST_ACCOUNT,
        &alice.cli.identity(),
        Some(&alice.cli.cert()),
    )
    .assert_success("sshd accepts a certificate signed inside the token");

    // A restart opens the token again and finds the same keys by label.
    ca.restart();
    alice.login();
    ssh_login(
        &sshd,
        TEST_ACCOUNT,
        &alice.cli.identity(),
        Some(&alice.cli.cert()),
    )
    .assert_success("after a restart");
    ca.stop();
    // The audit chain's checkpoints were signed inside the token: stock
    // verification with keys/audit.pub accepts them (and there are some).
    let verified = ca.verify_audit();
    verified.assert_success("rampart audit verify with the token's audit key");
    assert!(
        verified.stdout.starts_with("OK: ") && !verified.stdout.contains(" 0 checkpoints"),
        "checkpoints were signed: {}",
        verified.stdout
    );

    // A wrong PIN: the CA does not start, and says which step failed.
    std::fs::write(hsm.pin_file(), "not-the-pin").unwrap();
    let out = check(&ca);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("[keys] pkcs11") && out.stderr.contains("log in to token"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("e2e-user-pin"), "no PIN in messages");
}

#[test]
fn init_refuses_a_token_that_already_holds_rampart_keys() {
    let hsm = SoftHsm::new("shared");
    let args = hsm.init_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = Ca::init_with_args(None, "", &args);
    assert!(first.user_ca_pub().starts_with("ssh-ed25519 "));
    // A second init against the same token must not replace the keys the
    // first CA's users and hosts trust.
    let dir = rampart_e2e::tempdir("ca-second");
    let mut c = Command::new(bin("rampart-ca"));
    c.arg("init")
        .arg("--dir")
        .arg(dir.path().join("ca"))
        .arg("--insecure-passphrase-beside-keys")
        .args(&args);
    let out = run_timeout(c, None, Duration::from_secs(60));
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr.contains("never replaced in place"),
        "{}",
        out.stderr
    );
}

fn rotate(ca: &Ca, step: &str, extra: &[&str]) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.arg("rotate-key")
        .arg("--config")
        .arg(ca.config_path())
        .args(["user", step])
        .args(extra);
    run_timeout(c, None, DEFAULT_TIMEOUT)
}

/// The labels of the token's private keys, as OpenSC's `pkcs11-tool` (an
/// independent PKCS#11 client) lists them.
fn private_key_labels(hsm: &SoftHsm) -> Vec<String> {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module")
        .arg(hsm.module())
        .args(["--token-label", &hsm.label, "--login", "--pin"])
        .arg(std::fs::read_to_string(hsm.pin_file()).unwrap())
        .args(["--list-objects", "--type", "privkey"]);
    let out = run_timeout(c, None, DEFAULT_TIMEOUT);
    out.assert_success("pkcs11-tool --list-objects");
    let mut labels: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label:"))
        .map(|l| l.trim().to_owned())
        .collect();
    labels.sort();
    labels
}

#[test]
fn the_user_ca_key_rotates_inside_the_token_while_sshd_keeps_accepting_both() {
    let hsm = SoftHsm::new("rampart-ca");
    let args = hsm.init_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ca = Ca::init_with_args(None, "", &args);
    ca.write_policy(&standard_policy(&ca.info().admin_user));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let old_key = ca.user_ca_pub();
    let old_fp = fingerprint(&old_key);
    let identity = alice.cli.identity();
    let dir = rampart_e2e::tempdir("pkcs11-rotation");
    let old_cert = dir.path().join("alice-old-cert.pub");
    std::fs::copy(alice.cli.cert(), &old_cert).unwrap();
    let sshd = Sshd::start(&old_key);
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    let trusted = sshd.dir().join("trusted_user_ca_keys");
    let labels_before = private_key_labels(&hsm);

    // 1. prepare: a key generated inside the token under `.next`, published
    // beside the signing one after a restart.
    let prepared = rotate(&ca, "prepare", &[]);
    prepared.assert_success("rotate-key user prepare, keys in a token");
    let new_fp = prepared.stdout.trim().to_owned();
    assert!(
        new_fp.starts_with("SHA256:") && new_fp != old_fp,
        "{prepared}"
    );
    let user_label = labels_before
        .iter()
        .find(|l| l.contains("user"))
        .unwrap_or_else(|| panic!("no user CA label in {labels_before:?}"))
        .clone();
    assert!(
        private_key_labels(&hsm).contains(&format!("{user_label}.next")),
        "{:?}",
        private_key_labels(&hsm)
    );
    rotate(&ca, "prepare", &[]).assert_failure("a second prepare");
    ca.restart();
    let published = ca.api().user_ca().unwrap();
    assert_eq!(
        published.lines().map(fingerprint).collect::<Vec<_>>(),
        [old_fp.clone(), new_fp.clone()],
        "{published}"
    );
    let checked = check(&ca);
    checked.assert_success("rampart-ca check during a token rotation");
    assert!(
        checked.stdout.contains(&format!("next key {new_fp}")),
        "{checked}"
    );
    // The host learns both keys (krl-sync does this in production).
    std::fs::write(&trusted, &published).unwrap();

    // 2. activate: the next key takes the signing label; the replaced one
    // stays published, dated by its CKA_END_DATE.
    rotate(&ca, "activate", &[]).assert_success("rotate-key user activate, keys in a token");
    let labels = private_key_labels(&hsm);
    assert!(
        labels.contains(&user_label)
            && labels.contains(&format!("{user_label}.previous"))
            && !labels.contains(&format!("{user_label}.next")),
        "{labels:?}"
    );
    ca.restart();
    alice.login();
    let new_cert = alice.cli.cert();
    let info = inspect_cert(&new_cert);
    assert!(info.signing_ca.contains(&new_fp), "{}", info.text);
    assert_eq!(
        ca.api()
            .user_ca()
            .unwrap()
            .lines()
            .map(fingerprint)
            .collect::<Vec<_>>(),
        [new_fp.clone(), old_fp.clone()]
    );
    let checked = check(&ca);
    assert!(
        checked
            .stdout
            .contains(&format!("replaced key {old_fp} still trusted")),
        "{checked}"
    );
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&new_cert))
        .assert_success("a certificate signed by the token's new key");
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&old_cert))
        .assert_success("a certificate of the replaced key, during the rotation");

    // 3. retire: refused while the old key's certificates are valid; forced,
    // the old key is destroyed in the token and no longer published.
    let early = rotate(&ca, "retire", &[]);
    early.assert_failure("retire while old certificates are valid");
    assert!(early.stderr.contains("stay valid until"), "{early}");
    rotate(&ca, "retire", &["--force"]).assert_success("rotate-key user retire --force");
    assert_eq!(
        private_key_labels(&hsm),
        labels_before,
        "back to three keys"
    );
    ca.restart();
    let published = ca.api().user_ca().unwrap();
    assert_eq!(
        published.lines().map(fingerprint).collect::<Vec<_>>(),
        std::slice::from_ref(&new_fp)
    );
    std::fs::write(&trusted, &published).unwrap();
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&old_cert))
        .assert_failure("the retired key's certificate");
    alice.login();
    ssh_login(&sshd, TEST_ACCOUNT, &identity, Some(&alice.cli.cert()))
        .assert_success("after retire");

    let steps: Vec<String> = AuditDb::new(ca.audit_db())
        .bodies("ca_key_rotated")
        .iter()
        .map(|b| b["details"]["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["prepare", "activate", "retire"]);
    ca.stop();
    ca.verify_audit()
        .assert_success("the chain verifies after a token rotation");
}

/// `SHA256:…` of a public key line, as `ssh-keygen -L` prints the signing CA.
fn fingerprint(line: &str) -> String {
    let key = ssh_key::PublicKey::from_openssh(line).unwrap();
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}
