//! The operator guide, start to end, on this machine: a CA (step 3) with
//! users (4) and a bastion policy (5); a bastion joined with the exact command
//! `rampart admin bastion-token` prints (6); a production host set up by the
//! `rampart host install --write … --join-token=…` line `rampart admin
//! host-token` prints, host certificate included (7), whose sshd reads the
//! `TrustedUserCAKeys` and `RevokedKeys`
//! files install placed, kept by `rampart host krl-sync` run exactly as its
//! installed systemd unit would run it; an engineer through the bastion and
//! straight to the host; a user CA key rotation ("Rotating a CA key"); and a
//! backup restored in the middle of that rotation (9).
//!
//! Where the guide says `/var/lib/…`, `/etc/…`, `runuser` or `systemctl`, the
//! test uses temporary directories, `--root` and the processes it starts; the
//! sshd keeps its own `AuthorizedPrincipalsFile` (the principals command is
//! tested in `host_helpers`). Real `rampart-ca`, `rampart`, `rampart-bastion`,
//! `sshd`, `ssh`.

#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rampart_e2e::bastion::{ssh, Bastion, TargetSpec};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::{bastion_policy, ENGINEERS};
use rampart_e2e::process::{run_timeout, CmdOutput, DEFAULT_TIMEOUT};
use rampart_e2e::{
    bin, bootstrap_admin, onboard, ssh_login_trusting, tempdir, Ca, KeyPair, Sshd, SshdOptions,
    TEST_ACCOUNT,
};

const BASTION: &str = "bastion-1";

fn command(program: &str, args: &[&str]) -> CmdOutput {
    let mut c = Command::new(bin(program));
    c.env_remove("RAMPART_HOME").args(args);
    run_timeout(c, None, DEFAULT_TIMEOUT)
}

fn rotate(ca: &Ca, step: &str, extra: &[&str]) -> CmdOutput {
    let config = ca.config_path();
    let mut args = vec![
        "rotate-key",
        "--config",
        config.to_str().unwrap(),
        "user",
        step,
    ];
    args.extend_from_slice(extra);
    command("rampart-ca", &args)
}

/// Run `rampart-krl-sync.service` as systemd would on the host under `root`:
/// its `ExecStart` from the installed unit, `${VAR}` from the installed
/// `EnvironmentFile`, every absolute `/etc` path moved under `root`, and the
/// binary this build made for `/usr/bin/rampart`.
fn krl_sync_as_the_unit(root: &Path) -> CmdOutput {
    let unit =
        fs::read_to_string(root.join("etc/systemd/system/rampart-krl-sync.service")).unwrap();
    let env: HashMap<String, String> =
        fs::read_to_string(root.join("etc/default/rampart-krl-sync"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    let mut words = exec.split_whitespace().map(|w| {
        let mut w = w.to_owned();
        for (k, v) in &env {
            w = w.replace(&format!("${{{k}}}"), v);
        }
        match w.strip_prefix('/') {
            Some(rest) if rest.starts_with("etc/") => root.join(rest).display().to_string(),
            _ => w,
        }
    });
    assert_eq!(words.next().as_deref(), Some("/usr/bin/rampart"), "{exec}");
    let mut c = Command::new(bin("rampart"));
    c.env_remove("RAMPART_HOME").env_remove("HOME").args(words);
    run_timeout(c, None, DEFAULT_TIMEOUT)
}

#[test]
fn the_operator_guide_from_init_to_a_rotated_key_and_a_restored_ca() {
    // 3-5. The CA, its users, a policy with a bastion.
    let mut ca = Ca::init_with(None, "");
    let admin_name = ca.info().admin_user.clone();
    ca.write_policy(&bastion_policy(&admin_name, BASTION));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);

    // 7. A production host, joined with the one command `rampart admin
    // host-token` prints: trust, KRL, timers and its host certificate.
    let host = tempdir("operator-host");
    let root = host.path();
    let root_s = root.to_str().unwrap();
    let etc_ssh = root.join("etc/ssh");
    fs::create_dir_all(&etc_ssh).unwrap();
    let host_key = KeyPair::ed25519(&etc_ssh, "ssh_host_ed25519_key");
    let host_cert = etc_ssh.join("ssh_host_ed25519_key-cert.pub");
    let made = admin.cli.admin(&[
        "host-token",
        "--name",
        "db-1",
        "--principal",
        "db-1.example.com",
    ]);
    made.assert_success("rampart admin host-token");
    let printed: Vec<String> = made
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("rampart host install "))
        .unwrap_or_else(|| panic!("no `rampart host install` line\n{made}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let install = |root: &str| {
        let mut args = vec!["host", "install", "--root", root];
        args.extend(printed.iter().map(String::as_str));
        command("rampart", &args)
    };
    let plan: Vec<&str> = ["host", "install", "--root", root_s]
        .into_iter()
        .chain(
            printed
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "--write"),
        )
        .collect();
    command("rampart", &plan).assert_success("rampart host install (shows the plan)");
    assert!(!host_cert.exists(), "the plan writes nothing");
    install(root_s).assert_success("rampart host install --write --join-token=…");
    let cert = inspect_cert(&host_cert);
    assert!(
        cert.cert_type.ends_with("host certificate"),
        "{}",
        cert.text
    );
    assert_eq!(
        cert.principals,
        ["db-1", "db-1.example.com"],
        "{}",
        cert.text
    );
    let dropin = fs::read_to_string(etc_ssh.join("sshd_config.d/rampart.conf")).unwrap();
    assert!(
        dropin.contains("HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n"),
        "{dropin}"
    );
    let listed = admin.cli.admin(&["host-tokens"]);
    listed.assert_success("rampart admin host-tokens");
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains("db-1"))
        .unwrap_or_else(|| panic!("db-1's token is listed\n{listed}"));
    assert!(row.contains("used "), "{row}");
    // Run again: nothing changes, and the spent token is not needed.
    let again = install(root_s);
    again.assert_success("rampart host install, a second time");
    assert!(again.stdout.contains("nothing changed"), "{again}");
    // The token on another host: refused, and that host gets no certificate.
    let other = tempdir("operator-other-host");
    fs::create_dir_all(other.path().join("etc/ssh")).unwrap();
    KeyPair::ed25519(&other.path().join("etc/ssh"), "ssh_host_ed25519_key");
    let reused = install(other.path().to_str().unwrap());
    assert!(!reused.status.success(), "{reused}");
    assert!(reused.stderr.contains("already been used"), "{reused}");
    assert!(!other
        .path()
        .join("etc/ssh/ssh_host_ed25519_key-cert.pub")
        .exists());
    assert!(!other
        .path()
        .join("etc/ssh/sshd_config.d/rampart.conf")
        .exists());
    let trusted = etc_ssh.join("rampart_user_ca.pub");
    let sshd = Sshd::start_with(SshdOptions {
        host_key: Some(host_key),
        host_cert: Some(host_cert),
        host_ca_line: Some(ca.host_ca_pub()),
        trust_files: Some((trusted.clone(), etc_ssh.join("rampart.krl"))),
        ..SshdOptions::default()
    });
    sshd.set_principals(TEST_ACCOUNT, &["alice", TEST_ACCOUNT]);

    // 6. A bastion, from the printed join command, serving the host.
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        BASTION,
        &[TargetSpec::host_ca("db-1", sshd.port())],
    );
    bastion.start();

    // The engineer: through the bastion, and straight to the host.
    alice.login();
    let work = tempdir("operator-alice");
    let config = bastion.ssh_config(&alice, work.path(), &["db-1"]);
    let target = format!("{TEST_ACCOUNT}@db-1");
    let through = |what: &str| {
        let out = ssh(
            &config,
            &[&target, "echo through"],
            None,
            Duration::from_secs(60),
        );
        out.assert_success(what);
        assert_eq!(out.stdout.trim(), "through");
    };
    let identity = alice.cli.identity();
    let cert = alice.cli.cert();
    let known_hosts = alice.cli.known_hosts();
    // Straight to the host by its name, trusting it through the host CA line
    // `rampart login` wrote (the host certificate names db-1).
    let direct = |cert: &Path| {
        ssh_login_trusting(
            &sshd,
            &known_hosts,
            Some("db-1"),
            TEST_ACCOUNT,
            &identity,
            Some(cert),
        )
    };
    through("ssh -J through the bastion");
    direct(&cert).assert_success("straight to the host");
    let old_cert = work.path().join("alice-before-rotation-cert.pub");
    fs::copy(&cert, &old_cert).unwrap();

    // Rotating the user CA key: prepare, let hosts and bastions learn it.
    rotate(&ca, "prepare", &[]).assert_success("rotate-key user prepare");
    ca.restart();
    krl_sync_as_the_unit(root).assert_success("rampart-krl-sync.service after prepare");
    assert_eq!(fs::read_to_string(&trusted).unwrap().lines().count(), 2);
    bastion.reload();
    // activate: new certificates from the new key work everywhere.
    rotate(&ca, "activate", &[]).assert_success("rotate-key user activate");
    ca.restart();
    alice.login();
    let new_signer = inspect_cert(&alice.cli.cert()).signing_ca;
    assert_ne!(new_signer, inspect_cert(&old_cert).signing_ca);
    krl_sync_as_the_unit(root).assert_success("rampart-krl-sync.service after activate");
    through("through the bastion with a certificate from the new key");
    direct(&cert).assert_success("straight to the host with the new key");
    direct(&old_cert).assert_success("the old certificate during the rotation");

    // 9. A backup in the middle of the rotation, restored on a "new host".
    let saved = ca.root().join("backup");
    let config_path = ca.config_path();
    command(
        "rampart-ca",
        &[
            "backup",
            "--config",
            config_path.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ],
    )
    .assert_success("rampart-ca backup");
    for f in [
        "keys/user_ca",
        "keys/user_ca.pub",
        "keys/user_ca.previous",
        "keys/user_ca.previous.pub",
    ] {
        assert!(saved.join(f).is_file(), "{f} is in the backup");
    }
    ca.stop();
    let passphrase = fs::read(ca.dir().join("secrets/passphrase")).unwrap();
    fs::remove_dir_all(ca.dir()).unwrap();
    let mut cp = Command::new("cp");
    cp.arg("-a").arg(&saved).arg(ca.dir());
    run_timeout(cp, None, DEFAULT_TIMEOUT).assert_success("cp -a the backup");
    fs::create_dir_all(ca.dir().join("secrets")).unwrap();
    let pass_file = ca.dir().join("secrets/passphrase");
    fs::write(&pass_file, passphrase).unwrap();
    fs::set_permissions(&pass_file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(ca.dir().join("MANIFEST.sha256")).unwrap();
    let check = command(
        "rampart-ca",
        &["check", "--config", config_path.to_str().unwrap()],
    );
    check.assert_success("rampart-ca check on the restored CA");
    assert!(
        check.stdout.contains("replaced key"),
        "the rotation is still in progress\n{check}"
    );
    ca.start();
    assert_eq!(
        ca.api().user_ca().unwrap().lines().count(),
        2,
        "both keys published after the restore"
    );
    alice.login();
    assert_eq!(
        inspect_cert(&alice.cli.cert()).signing_ca,
        new_signer,
        "the restored CA signs with the key activated before the backup"
    );

    // Retire the old key (forced: its certificates are still valid).
    rotate(&ca, "retire", &["--force"]).assert_success("rotate-key user retire --force");
    ca.restart();
    krl_sync_as_the_unit(root).assert_success("rampart-krl-sync.service after retire");
    assert_eq!(fs::read_to_string(&trusted).unwrap().lines().count(), 1);
    bastion.reload();
    direct(&old_cert).assert_failure("the retired key's certificate at the host");
    direct(&cert).assert_success("the new key's certificate at the host");
    through("through the bastion after the rotation");
    ca.stop();
    ca.verify_audit()
        .assert_success("the chain verifies at the end");
}
