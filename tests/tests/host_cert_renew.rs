//! `rampart host renew-cert` against a real `rampart-ca`: a host certified once
//! by an admin renews its own certificate (nothing before the renewal window,
//! a new serial for the same names inside it), a real sshd serves the renewed
//! certificate and a real ssh accepts it through the host CA line `rampart
//! login` wrote; and what a hostile caller would try is refused and audited: a
//! proof signed by another key, an old proof replayed, a user certificate, a
//! host certificate from another CA, a garbled certificate, a revoked host key.

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

use rampart_api::{paths, CertResponse, ClientError, HostRenewRequest, HOST_RENEW_NAMESPACE};
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::process::{run, CmdOutput};
use rampart_e2e::{
    bootstrap_admin, onboard, rampart_on_host, require_peer, ssh_login_trusting, tempdir, AuditDb,
    Ca, KeyPair, Sshd, SshdOptions, TEST_ACCOUNT,
};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

fn renew(ca: &Ca, key: &Path, renew_before: &str) -> CmdOutput {
    rampart_on_host(&[
        "host".as_ref(),
        "renew-cert".as_ref(),
        "--ca".as_ref(),
        ca.url().as_ref(),
        "--ca-fingerprint".as_ref(),
        ca.fingerprint().as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--renew-before".as_ref(),
        renew_before.as_ref(),
    ])
}

/// A renewal request for `cert_line` signed by the key in `signer` at `at`.
fn request(cert_line: &str, signer: &Path, at: i64) -> HostRenewRequest {
    let key = PrivateKey::read_openssh_file(signer).unwrap();
    let signature = key
        .sign(
            HOST_RENEW_NAMESPACE,
            HashAlg::Sha512,
            &HostRenewRequest::signed_message(cert_line, at),
        )
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
    HostRenewRequest {
        certificate: cert_line.trim().to_owned(),
        signed_at: at,
        signature,
    }
}

fn refused(ca: &Ca, req: &HostRenewRequest) -> String {
    match ca
        .api()
        .post_json::<_, CertResponse>(paths::HOST_RENEW, req)
    {
        Err(ClientError::Api { status, code, .. }) => {
            assert_eq!(status, 401, "{code}");
            code
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_host_renews_its_own_certificate_and_forged_or_stale_proofs_are_refused() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let dir = tempdir("host-renew");
    let d = dir.path();
    let host = KeyPair::ed25519(d, "ssh_host_ed25519_key");
    let cert_path = d.join("ssh_host_ed25519_key-cert.pub");
    admin
        .cli
        .admin(&[
            "host-cert",
            "--name",
            "127.0.0.1",
            "--pubkey",
            host.public.to_str().unwrap(),
            "--ttl",
            "1h",
            "-o",
            cert_path.to_str().unwrap(),
        ])
        .assert_success("rampart admin host-cert");
    let first = fs::read_to_string(&cert_path).unwrap();
    let first_info = inspect_cert(&cert_path);

    // More than the window left: nothing changes.
    let out = renew(&ca, &host.private, "10m");
    out.assert_success("renew-cert before the window");
    assert!(out.stdout.contains("nothing to do"), "{out}");
    assert_eq!(fs::read_to_string(&cert_path).unwrap(), first);

    // Inside the window: a new certificate for the same key and names.
    let out = renew(&ca, &host.private, "2h");
    out.assert_success("renew-cert inside the window");
    assert!(out.stdout.contains("renewed"), "{out}");
    let renewed = inspect_cert(&cert_path);
    assert_ne!(renewed.serial, first_info.serial);
    assert_eq!(renewed.principals, first_info.principals);
    assert_eq!(renewed.key_id, first_info.key_id);
    assert_eq!(renewed.signing_ca, first_info.signing_ca);

    // sshd serves the renewed certificate; ssh trusts it through the host CA
    // line `rampart login` wrote, with no pinned host key.
    let sshd = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![ca.user_ca_pub()],
        host_key: Some(host.clone()),
        host_cert: Some(cert_path.clone()),
        host_ca_line: Some(ca.host_ca_pub()),
        ..SshdOptions::default()
    });
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    ssh_login_trusting(
        &sshd,
        &alice.cli.known_hosts(),
        None,
        TEST_ACCOUNT,
        &alice.cli.identity(),
        Some(&alice.cli.cert()),
    )
    .assert_success("ssh to the host with the renewed certificate");

    // What a hostile caller would try.
    let now = chrono::Utc::now().timestamp();
    let current = fs::read_to_string(&cert_path).unwrap();
    let other = KeyPair::ed25519(d, "other");
    assert_eq!(
        refused(&ca, &request(&current, &other.private, now)),
        "renewal_proof_invalid",
        "a proof by a key that is not the certificate's"
    );
    assert_eq!(
        refused(&ca, &request(&current, &host.private, now - 3600)),
        "renewal_proof_invalid",
        "an hour-old proof replayed"
    );
    let mut tampered = request(&current, &host.private, now);
    tampered.signed_at += 1;
    assert_eq!(
        refused(&ca, &tampered),
        "renewal_proof_invalid",
        "a changed time"
    );
    let user_cert = fs::read_to_string(alice.cli.cert()).unwrap();
    assert_eq!(
        refused(&ca, &request(&user_cert, &alice.cli.identity(), now)),
        "certificate_not_host"
    );
    let foreign_ca = KeyPair::ed25519(d, "foreign_ca");
    let copy = d.join("host-copy.pub");
    fs::copy(&host.public, &copy).unwrap();
    let mut keygen = Command::new(require_peer("ssh-keygen"));
    keygen
        .args(["-q", "-s"])
        .arg(&foreign_ca.private)
        .args(["-h", "-I", "127.0.0.1", "-n", "127.0.0.1", "-V", "-5m:+1h"])
        .arg(&copy);
    run(keygen).assert_success("ssh-keygen -s -h (another CA)");
    let foreign = fs::read_to_string(d.join("host-copy-cert.pub")).unwrap();
    assert_eq!(
        refused(&ca, &request(&foreign, &host.private, now)),
        "certificate_foreign"
    );
    assert_eq!(
        refused(
            &ca,
            &request(
                "ssh-ed25519-cert-v01@openssh.com AAAA garbage",
                &host.private,
                now
            )
        ),
        "certificate_malformed"
    );
    admin
        .cli
        .admin(&["revoke", "--key", &host.fingerprint(), "--reason", "e2e"])
        .assert_success("revoke the host key");
    let before = fs::read_to_string(&cert_path).unwrap();
    let out = renew(&ca, &host.private, "2h");
    out.assert_failure("renewal with a revoked host key");
    assert!(out.stderr.contains("revoked"), "{out}");
    assert_eq!(
        fs::read_to_string(&cert_path).unwrap(),
        before,
        "the file is untouched"
    );

    // Every refusal is in the audit chain with its reason; the renewal names
    // the certificate it renewed.
    let db = AuditDb::new(ca.audit_db());
    let issued = db.bodies("host_cert_issued");
    let reasons: Vec<&str> = issued
        .iter()
        .filter(|b| b["outcome"] == "failure")
        .filter_map(|b| b["reason"].as_str())
        .collect();
    for r in [
        "renewal_proof_invalid",
        "certificate_not_host",
        "certificate_foreign",
        "certificate_malformed",
        "key_revoked",
    ] {
        assert!(reasons.contains(&r), "{r} not audited: {reasons:?}");
    }
    assert!(
        issued
            .iter()
            .any(|b| b["details"]["renews_serial"] == first_info.serial),
        "{issued:?}"
    );
    ca.stop();
    ca.verify_audit().assert_success("the chain verifies");
}
