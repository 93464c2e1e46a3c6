//! YubiKey PIV attestation through the real CA process: a role that demands
//! `min_factor = "hardware-bound"` is refused for a plain key and granted for the
//! same user when the request carries a PIV attestation of the key; the
//! certificate says so (`mfa-key@rampart=piv-attested`, serial, policies) and a
//! real sshd accepts it. Refusals (a chain under another root, touch policy
//! `never`, an attestation of another key) are audited and issue nothing.
//!
//! No emulated PIV card exists (see PEERS.md), so the chain is made here with
//! rcgen the way a YubiKey makes it — a root standing in for Yubico's PIV root,
//! an `f9` device certificate without basicConstraints, a slot attestation
//! carrying the `1.3.6.1.4.1.41482.3.*` extensions — for a key `ssh-keygen` made.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use base64::Engine as _;
use rampart_api::{paths, AttestedCertRequest, CertResponse, ClientError, PivAttestation};
use rampart_e2e::audit_db::AuditDb;
use rampart_e2e::{api_admin, api_onboard, ssh_login, Ca, KeyPair, Sshd, TEST_ACCOUNT};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    IsCa, KeyPair as RcKey, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};

const POLICY: &str = r#"
version = 1
[defaults]
min_factor = "otp"
[roles.dev]
principals = ["{user}"]
extensions = ["permit-pty"]
[roles.prod]
principals = ["prod-root"]
min_factor = "hardware-bound"
extensions = ["permit-pty"]
[groups]
prod = ["prod"]
"#;

/// An ssh-keygen ECDSA P-256 public key, as rcgen needs it for a subject.
struct SshP256(Vec<u8>);

impl SshP256 {
    /// Q from an `ecdsa-sha2-nistp256` line: string type, string curve, string Q.
    fn from_line(line: &str) -> SshP256 {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(line.split_whitespace().nth(1).unwrap())
            .unwrap();
        let mut rest = blob.as_slice();
        let mut fields = Vec::new();
        for _ in 0..3 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            fields.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        assert_eq!(fields[0], b"ecdsa-sha2-nistp256");
        assert_eq!(fields[2].len(), 65);
        SshP256(fields.pop().unwrap())
    }
}

impl PublicKeyData for SshP256 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

struct Issuer {
    key: RcKey,
    cert: Certificate,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

fn test_root(cn: &str) -> Issuer {
    let key = RcKey::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    let cert = p.self_signed(&key).unwrap();
    Issuer { key, cert }
}

/// Like a factory f9 certificate: no basicConstraints.
fn f9(root: &Issuer) -> Issuer {
    let key = RcKey::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("Yubico PIV Attestation");
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    let cert = p.signed_by(&key, &root.cert, &root.key).unwrap();
    Issuer { key, cert }
}

fn yk(last: u64, v: Vec<u8>) -> CustomExtension {
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 41482, 3, last], v)
}

/// The slot 9a attestation of `subject`: firmware 5.4.3, serial 12345678, PIN
/// policy `pin`, touch policy `touch` (Yubico encodings).
fn attest(f9: &Issuer, subject: &SshP256, pin: u8, touch: u8) -> Certificate {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("YubiKey PIV Attestation 9a");
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    p.custom_extensions = vec![
        yk(3, vec![5, 4, 3]),
        yk(7, vec![0x02, 0x04, 0x00, 0xbc, 0x61, 0x4e]),
        yk(8, vec![pin, touch]),
        yk(9, vec![0x01]),
    ];
    p.signed_by(subject, &f9.cert, &f9.key).unwrap()
}

fn issue(
    client: &rampart_api::Client,
    key: &KeyPair,
    att: Option<PivAttestation>,
) -> Result<CertResponse, ClientError> {
    client.post_json(
        paths::CERTS,
        &AttestedCertRequest {
            public_key: key.public_line(),
            ttl_seconds: Some(600),
            piv_attestation: att,
        },
    )
}

fn refused_with(r: Result<CertResponse, ClientError>, code: &str) {
    match r {
        Ok(c) => panic!("expected {code}, got a certificate {}", c.key_id),
        Err(e) => assert_eq!(e.api_code(), Some(code), "{e}"),
    }
}

fn cert_extensions(cert_file: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(cert_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen -L");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_hardware_bound_role_needs_a_piv_attested_key_and_sshd_accepts_the_result() {
    let mut ca = Ca::init_with(None, "");
    let root = test_root("Test PIV Root CA");
    let root_pem = ca.dir().join("piv-root.pem");
    std::fs::write(&root_pem, root.cert.pem()).unwrap();
    ca.merge_config(&format!(
        "[piv]\nattestation_roots = [{:?}]\n",
        root_pem.display().to_string()
    ));
    ca.write_policy(POLICY);
    ca.start();
    let (_admin, admin) = api_admin(&ca);
    let mut alice = api_onboard(&ca, &admin.client, "alice", &["prod"]);
    let session = alice.login(&ca);
    let api = &session.client;

    let f9 = f9(&root);
    let key = KeyPair::generate(ca.root(), "piv_9a", "ecdsa", Some(256));
    let subject = SshP256::from_line(&key.public_line());
    let good = PivAttestation {
        slot_cert_pem: attest(&f9, &subject, 2, 2).pem(),
        intermediate_pem: f9.cert.pem(),
    };

    // 1. The same key without attestation: the hardware-bound role refuses (TOTP only).
    refused_with(issue(api, &key, None), "factor_too_weak");

    // 2. Refusals of bad attestations: nothing issued, each audited with its code.
    let other_root = test_root("Test PIV Root CA");
    let other_f9 = self::f9(&other_root);
    let cases = [
        (
            PivAttestation {
                slot_cert_pem: attest(&other_f9, &subject, 2, 2).pem(),
                intermediate_pem: other_f9.cert.pem(),
            },
            "piv_attestation_untrusted_root",
        ),
        (
            PivAttestation {
                slot_cert_pem: attest(&f9, &subject, 2, 1).pem(),
                intermediate_pem: f9.cert.pem(),
            },
            "piv_attestation_touch_policy",
        ),
        (
            PivAttestation {
                slot_cert_pem: attest(
                    &f9,
                    &SshP256::from_line(
                        &KeyPair::generate(ca.root(), "elsewhere", "ecdsa", Some(256))
                            .public_line(),
                    ),
                    2,
                    2,
                )
                .pem(),
                intermediate_pem: f9.cert.pem(),
            },
            "piv_attestation_key_mismatch",
        ),
    ];
    for (att, code) in &cases {
        refused_with(issue(api, &key, Some(att.clone())), code);
    }

    // 3. With the attestation: granted, marked, and a real sshd accepts it.
    let cert = issue(api, &key, Some(good)).expect("attested key gets the prod role");
    assert_eq!(cert.principals, ["prod-root"]);
    let cert_file = ca.root().join("piv_9a-cert.pub");
    std::fs::write(&cert_file, format!("{}\n", cert.certificate)).unwrap();
    let listing = cert_extensions(&cert_file);
    // ssh-keygen -L names every extension (values of non-OpenSSH ones are not
    // printed by every release); the values are checked in the audit event below.
    for name in [
        "mfa-key@rampart",
        "mfa-piv-serial@rampart",
        "mfa-piv-policy@rampart",
    ] {
        assert!(listing.contains(name), "{name} missing:\n{listing}");
    }
    let sshd = Sshd::start(&ca.user_ca_pub());
    sshd.set_principals(TEST_ACCOUNT, &["prod-root"]);
    ssh_login(&sshd, TEST_ACCOUNT, &key.private, Some(&cert_file))
        .assert_success("sshd accepts the PIV-attested certificate");

    // 4. The audit log: three refusals with their codes, one issuance with the
    //    attestation's details, and the chain still verifies.
    let audit = AuditDb::new(ca.audit_db());
    let denied: Vec<String> = audit
        .events_of_kind("cert_denied")
        .iter()
        .map(|e| serde_json::Value::Object(e.clone()).to_string())
        .collect();
    for (_, code) in &cases {
        assert!(
            denied.iter().any(|e| e.contains(code)),
            "no cert_denied event with {code}: {denied:#?}"
        );
    }
    let issued: Vec<String> = audit
        .events_of_kind("cert_issued")
        .iter()
        .map(|e| serde_json::Value::Object(e.clone()).to_string())
        .filter(|e| e.contains("piv_attestation"))
        .collect();
    assert_eq!(issued.len(), 1, "{issued:#?}");
    assert!(issued[0].contains("12345678") && issued[0].contains("always"));
    ca.verify_audit().assert_success("audit chain verifies");
}

#[test]
fn without_configured_roots_an_attestation_is_refused_clearly() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let (_admin, admin) = api_admin(&ca);
    let root = test_root("Test PIV Root CA");
    let f9 = f9(&root);
    let key = KeyPair::generate(ca.root(), "piv_9a", "ecdsa", Some(256));
    let subject = SshP256::from_line(&key.public_line());
    let att = PivAttestation {
        slot_cert_pem: attest(&f9, &subject, 2, 2).pem(),
        intermediate_pem: f9.cert.pem(),
    };
    refused_with(
        issue(&admin.client, &key, Some(att)),
        "piv_attestation_not_configured",
    );
    // The plain request still works: the field is additive.
    issue(&admin.client, &key, None).expect("plain issuance is unchanged");
}
