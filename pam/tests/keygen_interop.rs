//! Interop with the real OpenSSH `ssh-keygen`: KRLs it writes (`-k`) are read by
//! the module's KRL reader with the same verdict as `ssh-keygen -Q`, and the
//! certificates it signs (`-s … -O extension:…`) pass or fail the module's
//! checks as they should.
// A test drives real binaries, which read the real clock: so does the test.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{SecondsFormat, Utc};
use pam_rampart::check::{check_certificate, Origin, Policy};
use pam_rampart::{CertProblem, Krl};
use rampart_policy::FactorStrength;
use ssh_key::Certificate;

fn keygen() -> Command {
    let mut c = Command::new("ssh-keygen");
    c.env("TZ", "UTC");
    c
}

fn run(mut c: Command) -> std::process::Output {
    c.output()
        .expect("ssh-keygen must be installed (scripts/test installs openssh-client)")
}

fn ok(c: Command, what: &str) {
    let out = run(c);
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let mut c = keygen();
    c.args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&p);
    ok(c, "ssh-keygen -t");
    p
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `ssh-keygen -s ca -I id -n principals -z serial [-O …] key.pub` → the certificate.
fn sign(
    ca: &Path,
    key: &Path,
    id: &str,
    principals: &str,
    serial: u64,
    opts: &[String],
) -> PathBuf {
    let mut c = keygen();
    c.arg("-q").arg("-s").arg(ca).args([
        "-I",
        id,
        "-n",
        principals,
        "-z",
        &serial.to_string(),
        "-V",
        "-5m:+1h",
    ]);
    for o in opts {
        c.args(["-O", o]);
    }
    c.arg(key.with_extension("pub"));
    ok(c, "ssh-keygen -s");
    PathBuf::from(format!("{}-cert.pub", key.display()))
}

fn mfa_opts(method: &str, ago_secs: i64) -> Vec<String> {
    let t = (Utc::now() - chrono::Duration::seconds(ago_secs))
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    vec![
        format!("extension:mfa-time@rampart={t}"),
        format!("extension:mfa-method@rampart={method}"),
    ]
}

fn revoked_by_keygen(krl: &Path, cert: &Path) -> bool {
    let mut c = keygen();
    c.arg("-Q").arg("-f").arg(krl).arg(cert);
    let out = run(c);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let revoked = stdout.contains("REVOKED");
    assert_eq!(!revoked, out.status.success(), "ssh-keygen -Q: {stdout}");
    revoked
}

#[test]
fn krl_reader_agrees_with_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = key(d, "ca");
    let other_ca = key(d, "other-ca");
    // (name, serial, key id, CA, expected revocation reason fragment or None)
    let cases: &[(&str, u64, &str, &Path, Option<&str>)] = &[
        ("low", 5, "k-low", &ca, Some("serial 5 is in")),
        (
            "far",
            5_000_000,
            "k-far",
            &ca,
            Some("serial 5000000 is in a serial list"),
        ),
        ("small-range", 15, "k-small", &ca, Some("serial 15 is in")),
        (
            "ranged",
            2_500_000,
            "k-ranged",
            &ca,
            Some("range 2000000-2999999"),
        ),
        (
            "range-edge",
            2_999_999,
            "k-edge",
            &ca,
            Some("range 2000000-2999999"),
        ),
        ("past-range", 3_000_000, "k-past", &ca, None),
        (
            "bitmap",
            1040,
            "k-bitmap",
            &ca,
            Some("serial 1040 is in a serial bitmap"),
        ),
        ("bitmap-gap", 1041, "k-gap", &ca, None),
        ("by-id", 77, "revoke-me", &ca, Some("key ID \"revoke-me\"")),
        ("by-key", 78, "k-by-key", &ca, Some("certificate's key")),
        ("clean", 79, "k-clean", &ca, None),
        // Same serial as a revoked one, but another CA: the section does not apply.
        ("by-other-ca", 5, "k-other", &other_ca, None),
    ];
    let mut certs = Vec::new();
    for (name, serial, id, signer, _) in cases {
        let k = key(d, name);
        certs.push(sign(signer, &k, id, "alice", *serial, &[]));
    }
    let by_key_pub = std::fs::read_to_string(d.join("by-key.pub")).unwrap();
    let mut spec =
        String::from("serial: 5\nserial: 10-20\nserial: 5000000\nserial: 2000000-2999999\n");
    for s in (1000..=1100).step_by(2) {
        spec.push_str(&format!("serial: {s}\n"));
    }
    spec.push_str("id: revoke-me\n");
    spec.push_str(&format!("key: {by_key_pub}"));
    std::fs::write(d.join("spec"), spec).unwrap();
    let krl_path = d.join("krl");
    let mut c = keygen();
    c.args(["-q", "-k", "-f"])
        .arg(&krl_path)
        .arg("-s")
        .arg(ca.with_extension("pub"))
        .arg(d.join("spec"));
    ok(c, "ssh-keygen -k");

    let krl = Krl::parse(&std::fs::read(&krl_path).unwrap()).unwrap();
    assert!(
        krl.generated_date.abs_diff(now()) < 120,
        "generated_date is now"
    );
    for ((name, _, _, _, want), cert_path) in cases.iter().zip(&certs) {
        let cert = Certificate::read_file(cert_path).unwrap();
        let ours = krl.revocation(&cert);
        let theirs = revoked_by_keygen(&krl_path, cert_path);
        assert_eq!(
            ours.is_some(),
            theirs,
            "{name}: ours {ours:?}, ssh-keygen -Q revoked={theirs}"
        );
        match (want, &ours) {
            (Some(frag), Some(msg)) => {
                assert!(msg.contains(frag), "{name}: {msg:?} lacks {frag:?}")
            }
            (None, None) => {}
            _ => panic!("{name}: expected {want:?}, got {ours:?}"),
        }
    }

    // Revoking the CA key itself revokes every certificate it signed.
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    std::fs::write(d.join("spec-ca"), format!("key: {ca_pub}")).unwrap();
    let ca_krl = d.join("krl-ca");
    let mut c = keygen();
    c.args(["-q", "-k", "-f"])
        .arg(&ca_krl)
        .arg(d.join("spec-ca"));
    ok(c, "ssh-keygen -k (CA key)");
    let krl = Krl::parse(&std::fs::read(&ca_krl).unwrap()).unwrap();
    let cert = Certificate::read_file(&certs[10]).unwrap();
    assert!(revoked_by_keygen(&ca_krl, &certs[10]));
    let why = krl.revocation(&cert).expect("revoked through its CA key");
    assert!(why.contains("signing CA key"), "{why}");
}

#[test]
fn keygen_certificates_pass_and_fail_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = key(d, "ca");
    let krl = Krl::default();
    let krl_path = PathBuf::from("/nonexistent.krl");
    let policy = |min| Policy {
        user: "alice",
        origin: Origin::Local,
        now: now(),
        max_mfa_age: 900,
        min_factor: min,
        krl: (&krl, &krl_path),
    };
    let make = |name: &str, principals: &str, opts: Vec<String>| {
        let k = key(d, name);
        Certificate::read_file(&sign(&ca, &k, name, principals, 9, &opts)).unwrap()
    };

    let good = make("good", "alice,ops", mfa_opts("totp", 30));
    let a = check_certificate(&good, &policy(FactorStrength::Otp)).unwrap();
    assert_eq!(a.mfa_method, "totp");
    assert!(a.mfa_age >= 30 && a.mfa_age < 120, "{a:?}");
    assert!(matches!(
        check_certificate(&good, &policy(FactorStrength::PhishingResistant)),
        Err(CertProblem::WeakFactor { .. })
    ));

    let stale = make("stale", "alice", mfa_opts("totp", 3600));
    assert!(matches!(
        check_certificate(&stale, &policy(FactorStrength::Otp)),
        Err(CertProblem::StaleMfa { .. })
    ));

    let bob = make("bob", "bob", mfa_opts("totp", 30));
    assert!(matches!(
        check_certificate(&bob, &policy(FactorStrength::Otp)),
        Err(CertProblem::Principal { .. })
    ));

    let mut opts = mfa_opts("totp", 30);
    opts.push("source-address=192.0.2.0/24".into());
    let pinned = make("pinned", "alice", opts);
    assert!(matches!(
        check_certificate(&pinned, &policy(FactorStrength::Otp)),
        Err(CertProblem::SourceAddress { .. })
    ));
    let mut p = policy(FactorStrength::Otp);
    p.origin = Origin::from_rhost(Some("192.0.2.9"));
    assert!(check_certificate(&pinned, &p).is_ok());

    let mut opts = mfa_opts("totp", 30);
    opts.push("force-command=/bin/true".into());
    let forced = make("forced", "alice", opts);
    assert!(matches!(
        check_certificate(&forced, &policy(FactorStrength::Otp)),
        Err(CertProblem::ForceCommand(_))
    ));

    let mut opts = mfa_opts("totp", 30);
    opts.push("critical:unknown@example.com=x".into());
    let unknown = make("unknown", "alice", opts);
    assert!(matches!(
        check_certificate(&unknown, &policy(FactorStrength::Otp)),
        Err(CertProblem::UnknownCriticalOption(_))
    ));
}
