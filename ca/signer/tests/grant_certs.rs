//! Certificates built from real policy grants, read back by OpenSSH's
//! `ssh-keygen -L` (which also verifies the CA signature while parsing) and
//! checked against KRLs with `ssh-keygen -Q`.

// Test helpers outside #[test] fns are not covered by clippy.toml's
// allow-*-in-tests; a panic here is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rampart_policy::{approve_host, evaluate, CertRequest, Decision, Factor, Grant, Policy};
use rampart_signer::{
    build_krl, key_sha256, sign_host_cert, sign_user_cert, CaSigner, FileCaKey, HostCertSpec,
    KrlSpec, MfaEvidence, SignerError, UserCertSpec, BACKDATE,
};
use ssh_key::public::{Ed25519PublicKey, KeyData, SkEd25519};
use ssh_key::{Certificate, HashAlg, PublicKey};

const POLICY: &str = r#"
version = 1

[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "otp"

[roles.dev]
principals = ["{user}", "dev"]
extensions = ["permit-pty", "permit-agent-forwarding"]
source_address = ["10.0.0.0/8", "2001:db8::/32"]

[roles.open]
principals = ["{user}"]

[groups]
eng = ["dev"]
open = ["open"]

[hosts]
max_ttl = "30d"
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
}

fn mfa_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 5, 5, 30).unwrap()
}

fn grant(group: &str) -> Grant {
    let policy = Policy::from_toml(POLICY).unwrap();
    let groups = vec![group.to_owned()];
    let req = CertRequest {
        user: "alice",
        groups: &groups,
        factor: Factor::Totp,
        mfa_time: mfa_time(),
        requested_ttl: Some(Duration::from_secs(2 * 3600)),
        login: None,
    };
    match evaluate(&req, &policy, now()) {
        Decision::Allow(g) => g,
        Decision::Deny(d) => panic!("test policy denied: {d}"),
    }
}

fn evidence() -> MfaEvidence {
    MfaEvidence {
        method: "totp".into(),
        time: mfa_time(),
        event_id: "01JNQ7T3EVENT".into(),
    }
}

fn ssh_keygen(args: &[&str]) -> Output {
    Command::new("ssh-keygen")
        .args(args)
        // -L prints validity in local time; pin it so the assertions are exact.
        .env("TZ", "UTC")
        .output()
        .expect("ssh-keygen must be installed (apt-get install openssh-client)")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn new_key(dir: &Path, name: &str, args: &[&str]) -> PublicKey {
    let path = dir.join(name);
    let mut all = vec!["-q", "-N", "", "-f", path.to_str().unwrap()];
    all.extend_from_slice(args);
    ok(&ssh_keygen(&all));
    PublicKey::read_openssh_file(dir.join(format!("{name}.pub"))).unwrap()
}

fn write_cert(dir: &Path, name: &str, cert: &Certificate) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", cert.to_openssh().unwrap())).unwrap();
    path
}

/// How ssh-keygen 9.2 prints an extension it does not know: the hex of the
/// extension data, which for a string value is itself an SSH string (uint32
/// length + bytes). `ssh-keygen -O extension:mfa-method@rampart=totp` produces
/// exactly this line too, so the encoding matches OpenSSH's own.
fn unknown_ext(name: &str, value: &str) -> String {
    let mut data = u32::try_from(value.len()).unwrap().to_be_bytes().to_vec();
    data.extend_from_slice(value.as_bytes());
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name} UNKNOWN OPTION: {hex} (len {})\n", data.len())
}

fn list(path: &Path) -> String {
    ok(&ssh_keygen(&["-L", "-f", path.to_str().unwrap()]))
}

#[test]
fn user_cert_as_ssh_keygen_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = FileCaKey::generate("user-ca").unwrap();
    let subject = new_key(dir.path(), "id_ed25519", &["-t", "ed25519"]);
    let spec = UserCertSpec::from_grant(&grant("eng"), subject, 4242, evidence(), now()).unwrap();
    assert_eq!(spec.key_id(), "user=alice serial=4242 mfa=totp");
    assert_eq!(spec.principals(), ["alice", "dev"]);
    let cert = sign_user_cert(&ca, &spec).unwrap();
    let out = list(&write_cert(dir.path(), "id_ed25519-cert.pub", &cert));

    for want in [
        "Type: ssh-ed25519-cert-v01@openssh.com user certificate",
        &format!(
            "Signing CA: ED25519 {} (using ssh-ed25519)",
            ca.fingerprint()
        ),
        "Key ID: \"user=alice serial=4242 mfa=totp\"",
        "Serial: 4242",
        // now - 5 min .. now + 2 h (the requested TTL).
        "Valid: from 2025-03-04T05:01:07 to 2025-03-04T07:06:07",
        "Principals: \n                alice\n                dev\n",
        "Critical Options: \n                source-address 10.0.0.0/8,2001:db8::/32\n",
        &unknown_ext("mfa-event@rampart", "01JNQ7T3EVENT"),
        &unknown_ext("mfa-method@rampart", "totp"),
        &unknown_ext("mfa-time@rampart", "2025-03-04T05:05:30Z"),
        "permit-agent-forwarding\n",
        "permit-pty\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Only what the policy granted: no port or X11 forwarding, no user rc.
    for absent in [
        "permit-port-forwarding",
        "permit-X11-forwarding",
        "permit-user-rc",
    ] {
        assert!(!out.contains(absent), "{absent} in:\n{out}");
    }
}

#[test]
fn unrestricted_grant_has_no_source_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = FileCaKey::generate("user-ca").unwrap();
    let subject = new_key(dir.path(), "k", &["-t", "ecdsa", "-b", "384"]);
    let spec = UserCertSpec::from_grant(&grant("open"), subject, 9, evidence(), now()).unwrap();
    let cert = sign_user_cert(&ca, &spec).unwrap();
    let out = list(&write_cert(dir.path(), "k-cert.pub", &cert));
    assert!(
        out.contains("ecdsa-sha2-nistp384-cert-v01@openssh.com user certificate"),
        "{out}"
    );
    assert!(out.contains("Critical Options: (none)"), "{out}");
    // Default extensions of the policy still apply.
    assert!(out.contains("permit-pty"), "{out}");
}

#[test]
fn user_cert_validates_only_against_its_ca_and_window() {
    let ca = FileCaKey::generate("user-ca").unwrap();
    let other = FileCaKey::generate("other-ca").unwrap();
    let subject = FileCaKey::generate("subject").unwrap().public_key().clone();
    let spec = UserCertSpec::from_grant(&grant("eng"), subject, 1, evidence(), now()).unwrap();
    let cert = sign_user_cert(&ca, &spec).unwrap();

    let t = u64::try_from(now().timestamp()).unwrap();
    assert_eq!(spec.valid_after(), t - BACKDATE.as_secs());
    assert_eq!(spec.valid_before(), t + 7200);
    let ca_fp = ca.public_key().fingerprint(HashAlg::Sha256);
    let other_fp = other.public_key().fingerprint(HashAlg::Sha256);
    cert.validate_at(t, [&ca_fp]).unwrap();
    // A host whose clock is 4 minutes behind still accepts it.
    cert.validate_at(t - 240, [&ca_fp]).unwrap();
    assert!(cert.validate_at(t, [&other_fp]).is_err());
    assert!(cert.validate_at(t + 7200, [&ca_fp]).is_err());
    assert!(cert.validate_at(t - 301, [&ca_fp]).is_err());
}

#[test]
fn tampered_cert_rejected_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let ca = FileCaKey::generate("user-ca").unwrap();
    let subject = FileCaKey::generate("subject").unwrap().public_key().clone();
    let spec = UserCertSpec::from_grant(&grant("eng"), subject, 77, evidence(), now()).unwrap();
    let cert = sign_user_cert(&ca, &spec).unwrap();
    let mut blob = cert.to_bytes().unwrap();
    // The last byte belongs to the Ed25519 signature.
    let last = blob.len() - 1;
    blob[last] ^= 1;
    let tampered = Certificate::from_bytes(&blob).unwrap();
    let path = write_cert(dir.path(), "bad-cert.pub", &tampered);
    let out = ssh_keygen(&["-L", "-f", path.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "ssh-keygen accepted a tampered certificate"
    );
}

#[test]
fn from_grant_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let g = grant("eng");
    let good = FileCaKey::generate("s").unwrap().public_key().clone();

    let wrong = MfaEvidence {
        method: "webauthn".into(),
        ..evidence()
    };
    let err = UserCertSpec::from_grant(&g, good.clone(), 1, wrong, now()).unwrap_err();
    assert!(matches!(err, SignerError::MfaMismatch { .. }), "{err}");

    let weak = new_key(dir.path(), "weak", &["-t", "rsa", "-b", "2048"]);
    let err = UserCertSpec::from_grant(&g, weak, 1, evidence(), now()).unwrap_err();
    assert!(
        matches!(err, SignerError::SubjectKeyRefused { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("2048"), "{err}");

    let no_event = MfaEvidence {
        event_id: String::new(),
        ..evidence()
    };
    let err = UserCertSpec::from_grant(&g, good, 1, no_event, now()).unwrap_err();
    assert!(matches!(err, SignerError::InvalidSpec(_)), "{err}");
}

#[test]
fn security_key_subject_is_certified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = FileCaKey::generate("user-ca").unwrap();
    let sk = PublicKey::new(
        KeyData::SkEd25519(SkEd25519::new(Ed25519PublicKey([9; 32]), "ssh:")),
        "yubikey",
    );
    let spec = UserCertSpec::from_grant(&grant("eng"), sk, 3, evidence(), now()).unwrap();
    let cert = sign_user_cert(&ca, &spec).unwrap();
    let out = list(&write_cert(dir.path(), "sk-cert.pub", &cert));
    assert!(
        out.contains("sk-ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{out}"
    );
}

#[test]
fn host_cert_as_ssh_keygen_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::from_toml(POLICY).unwrap();
    let extra = vec!["db-1.prod.internal".to_owned(), "10.1.2.3".to_owned()];
    let hg = approve_host(&policy, "db-1", &extra, Some(Duration::from_secs(86_400))).unwrap();
    let host_ca = FileCaKey::generate("host-ca").unwrap();
    let host_key = new_key(dir.path(), "ssh_host_ed25519_key", &["-t", "ed25519"]);
    let spec = HostCertSpec::from_grant(&hg, host_key, 11, now()).unwrap();
    assert_eq!(spec.key_id(), "db-1");
    let cert = sign_host_cert(&host_ca, &spec).unwrap();
    let out = list(&write_cert(
        dir.path(),
        "ssh_host_ed25519_key-cert.pub",
        &cert,
    ));
    for want in [
        "Type: ssh-ed25519-cert-v01@openssh.com host certificate",
        "Key ID: \"db-1\"",
        "Serial: 11",
        "Valid: from 2025-03-04T05:01:07 to 2025-03-05T05:06:07",
        "Principals: \n                db-1\n                db-1.prod.internal\n                10.1.2.3\n",
        "Critical Options: (none)",
        "Extensions: (none)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn krl_revokes_our_own_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = FileCaKey::generate("user-ca").unwrap();
    let g = grant("eng");
    let issue = |serial: u64, key: PublicKey| {
        let spec = UserCertSpec::from_grant(&g, key, serial, evidence(), now()).unwrap();
        write_cert(
            d,
            &format!("c{serial}-cert.pub"),
            &sign_user_cert(&ca, &spec).unwrap(),
        )
    };
    let fresh = || FileCaKey::generate("k").unwrap().public_key().clone();
    let revoked_key = fresh();
    let certs = [
        (5, issue(5, fresh())),
        (6, issue(6, fresh())),
        (8, issue(8, fresh())),
    ];
    let by_key = issue(900, revoked_key.clone());

    let krl = build_krl(&KrlSpec {
        version: 1,
        generated_at: u64::try_from(now().timestamp()).unwrap(),
        comment: String::new(),
        ca_key: ca.public_key().clone(),
        also_ca_keys: Vec::new(),
        revoked_serials: vec![5, 6, 7, 42],
        revoked_key_sha256: vec![key_sha256(&revoked_key).unwrap()],
        revoked_keys: vec![],
    })
    .unwrap();
    let krl_path = d.join("krl");
    std::fs::write(&krl_path, krl).unwrap();
    let query = |p: &Path| {
        ssh_keygen(&["-Q", "-f", krl_path.to_str().unwrap(), p.to_str().unwrap()])
            .status
            .code()
    };
    for (serial, path) in &certs {
        let want = if *serial == 8 { Some(0) } else { Some(1) };
        assert_eq!(query(path), want, "serial {serial}");
    }
    assert_eq!(query(&by_key), Some(1));
}

/// Backs the claim in [`unknown_ext`]: OpenSSH encodes a custom extension the
/// same way, so its own listing matches our expected line.
#[test]
fn custom_extension_encoding_matches_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    new_key(d, "ca", &["-t", "ed25519"]);
    new_key(d, "u", &["-t", "ed25519"]);
    ok(&ssh_keygen(&[
        "-q",
        "-s",
        d.join("ca").to_str().unwrap(),
        "-I",
        "x",
        "-n",
        "alice",
        "-O",
        "extension:mfa-method@rampart=totp",
        d.join("u.pub").to_str().unwrap(),
    ]));
    let cert_path = d.join("u-cert.pub");
    assert!(list(&cert_path).contains(&unknown_ext("mfa-method@rampart", "totp")));
    let theirs = Certificate::read_file(&cert_path).unwrap();
    assert_eq!(
        theirs
            .extensions()
            .get("mfa-method@rampart")
            .map(String::as_str),
        Some("totp")
    );
}
