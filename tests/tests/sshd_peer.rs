//! Proves the harness against real OpenSSH alone (no Rampart): a private sshd that
//! trusts a CA made by `ssh-keygen` accepts exactly the certificates it should.
//! If these fail, the Rampart tests that use the same harness prove nothing.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rampart_e2e::keys::krl_revokes;
use rampart_e2e::{ssh_login, tempdir, KeyPair, KeygenCa, Sshd, TEST_ACCOUNT};

#[test]
fn sshd_enforces_principals_validity_ca_and_krl() {
    let dir = tempdir("sshd-peer");
    let d = dir.path();
    let ca = KeygenCa::new(d, "user_ca");
    let other_ca = KeygenCa::new(d, "other_ca");
    let user = KeyPair::ed25519(d, "alice");

    let sshd = Sshd::start(&ca.public_line());
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);

    // 1. A current certificate for a granted principal: accepted.
    let good = ca.sign_user(&user, "alice-good", &["alice"], "-5m:+1h", 100);
    let mark = sshd.log_len();
    let out = ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&good));
    out.assert_success("valid certificate for a granted principal");
    let log = sshd.log_since(mark);
    assert!(
        log.contains("Accepted publickey")
            && log.contains("ID alice-good")
            && log.contains("serial 100"),
        "sshd should log the accepted certificate with its ID and serial:\n{log}"
    );

    // 2. Same CA, principal not in the account's principals file: refused.
    let wrong = ca.sign_user(&user, "alice-bob", &["bob"], "-5m:+1h", 101);
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&wrong))
        .assert_failure("certificate for a principal the account does not list");
    let log = sshd.log_since(mark);
    assert!(!log.contains("Accepted publickey"), "{log}");

    // 3. Expired (validity entirely in the past): refused.
    let expired = ca.sign_user(&user, "alice-old", &["alice"], "20200101:20200102", 102);
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&expired))
        .assert_failure("expired certificate");
    let log = sshd.log_since(mark);
    assert!(!log.contains("Accepted publickey"), "{log}");

    // 4. Right principal, but signed by a CA sshd does not trust: refused.
    let foreign = other_ca.sign_user(&user, "alice-foreign", &["alice"], "-5m:+1h", 103);
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&foreign))
        .assert_failure("certificate from an untrusted CA");

    // 5. Plain key without a certificate: refused (AuthorizedKeysFile none).
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, None).assert_failure("bare key");

    // 6. Revocation: a KRL naming serial 100 makes sshd refuse the certificate it
    //    accepted in step 1, without a restart (sshd reads RevokedKeys per
    //    connection); serial 104 is unaffected.
    let krl = d.join("krl");
    ca.krl(&krl, &[100]);
    assert!(
        krl_revokes(&krl, &good),
        "ssh-keygen -Q must report serial 100 revoked"
    );
    let other_serial = ca.sign_user(&user, "alice-104", &["alice"], "-5m:+1h", 104);
    assert!(!krl_revokes(&krl, &other_serial));
    sshd.set_krl_file(&krl);
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&good)).assert_failure("revoked serial");
    let log = sshd.log_since(mark);
    assert!(
        log.to_ascii_lowercase().contains("revoked"),
        "sshd should say the certificate is revoked:\n{log}"
    );
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&other_serial))
        .assert_success("a serial the KRL does not name");

    // 7. Emptying the revocation list again restores access: the file is re-read.
    sshd.set_revoked_keys(b"");
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&good))
        .assert_success("after the KRL is emptied");
}

#[test]
fn sshd_principals_file_is_read_per_connection() {
    let dir = tempdir("sshd-principals");
    let d = dir.path();
    let ca = KeygenCa::new(d, "user_ca");
    let user = KeyPair::ed25519(d, "carol");
    let cert = ca.sign_user(&user, "carol", &["carol"], "-5m:+1h", 7);
    let sshd = Sshd::start(&ca.public_line());

    // No principals file for the account at all: refused.
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&cert)).assert_failure("no principals file");
    sshd.set_principals(TEST_ACCOUNT, &["dave", "carol"]);
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&cert)).assert_success("carol listed");
    sshd.set_principals(TEST_ACCOUNT, &["dave"]);
    ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&cert)).assert_failure("carol removed");
}
