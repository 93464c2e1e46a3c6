//! CA keys in a PKCS#11 token, end to end: `rampart-ca init --pkcs11-*` makes
//! the user and host CA keys inside a real SoftHSM2 token (no key files), the
//! daemon signs certificates and audit checkpoints through the token, a real
//! sshd accepts the certificate, `rampart audit verify` accepts the
//! checkpoints, a restart finds the keys again by label, and a wrong PIN keeps
//! the CA from starting with a message that says so.

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
use rampart_e2e::process::run_timeout;
use rampart_e2e::softhsm::SoftHsm;
use rampart_e2e::{bin, bootstrap_admin, onboard, ssh_login, Ca, CmdOutput, Sshd, TEST_ACCOUNT};

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

/// `SHA256:…` of a public key line, as `ssh-keygen -L` prints the signing CA.
fn fingerprint(line: &str) -> String {
    let key = ssh_key::PublicKey::from_openssh(line).unwrap();
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}
