//! Chains made here with rcgen under a test root, in place of Yubico's: the same
//! shapes a YubiKey produces (root ← f9 without basicConstraints ← slot
//! attestation with the `41482.3.*` extensions).

use super::*;
use chrono::TimeZone;
use rampart_api::ErrorCode;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    IsCa, KeyPair, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
};
use ssh_key::public::KeyData;
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    p
}

struct Issuer {
    key: KeyPair,
    cert: Certificate,
}

fn root(cn: &str) -> Issuer {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = ca_params(cn, Some(1)).self_signed(&key).unwrap();
    Issuer { key, cert }
}

/// A factory-style f9 certificate: no basicConstraints at all, like YubiKey 5.2.4.
fn f9(root: &Issuer) -> Issuer {
    f9_with(root, |p| {
        p.is_ca = IsCa::NoCa;
        p.key_usages = vec![];
    })
}

fn f9_with(root: &Issuer, tweak: impl FnOnce(&mut CertificateParams)) -> Issuer {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = ca_params("Yubico PIV Attestation", None);
    tweak(&mut p);
    let cert = p.signed_by(&key, &root.cert, &root.key).unwrap();
    Issuer { key, cert }
}

const YK: [u64; 8] = [1, 3, 6, 1, 4, 1, 41482, 3];

fn yk_ext(last: u64, content: Vec<u8>) -> CustomExtension {
    let mut oid = YK.to_vec();
    oid.push(last);
    CustomExtension::from_oid_content(&oid, content)
}

/// The extensions a YubiKey 5 puts on a slot attestation: firmware 5.4.3,
/// serial 12345678 (DER INTEGER), PIN `policy[0]`, touch `policy[1]`, USB-A keychain.
fn slot_exts(policy: [u8; 2]) -> Vec<CustomExtension> {
    vec![
        yk_ext(3, vec![5, 4, 3]),
        yk_ext(7, vec![0x02, 0x04, 0x00, 0xbc, 0x61, 0x4e]),
        yk_ext(8, policy.to_vec()),
        yk_ext(9, vec![0x01]),
    ]
}

fn slot_cert(
    issuer: &Issuer,
    subject: &impl PublicKeyData,
    exts: Vec<CustomExtension>,
) -> Certificate {
    let mut p = CertificateParams::default();
    p.distinguished_name = name("YubiKey PIV Attestation 9a");
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    p.custom_extensions = exts;
    p.signed_by(subject, &issuer.cert, &issuer.key).unwrap()
}

fn ssh_key_of(kp: &KeyPair) -> PublicKey {
    let raw = kp.public_key_raw();
    let data = if kp.algorithm() == &PKCS_ED25519 {
        KeyData::Ed25519(Ed25519PublicKey(raw.try_into().unwrap()))
    } else {
        KeyData::Ecdsa(EcdsaPublicKey::from_sec1_bytes(raw).unwrap())
    };
    PublicKey::new(data, "piv")
}

fn verifier(roots: &[&Issuer]) -> PivVerifier {
    PivVerifier::new(
        roots.iter().map(|r| r.cert.der().to_vec()).collect(),
        DEFAULT_TOUCH.to_vec(),
        DEFAULT_PIN.to_vec(),
    )
    .unwrap()
}

/// A YubiKey-shaped world: root, f9, a P-256 key in slot 9a with PIN once, touch always.
struct World {
    root: Issuer,
    f9: Issuer,
    key: KeyPair,
    slot: Certificate,
}

fn world() -> World {
    world_with(&PKCS_ECDSA_P256_SHA256, [2, 2])
}

fn world_with(alg: &'static SignatureAlgorithm, policy: [u8; 2]) -> World {
    let root = root("Test PIV Root CA");
    let f9 = f9(&root);
    let key = KeyPair::generate_for(alg).unwrap();
    let slot = slot_cert(&f9, &key, slot_exts(policy));
    World {
        root,
        f9,
        key,
        slot,
    }
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn check(w: &World, v: &PivVerifier) -> Result<Attested, PivError> {
    v.verify(&w.slot.pem(), &w.f9.cert.pem(), &ssh_key_of(&w.key), now())
}

#[test]
fn a_yubikey_shaped_chain_is_accepted_and_read() {
    let w = world();
    let a = check(&w, &verifier(&[&w.root])).unwrap();
    assert_eq!(a.serial, Some(12_345_678));
    assert_eq!(a.firmware.as_deref(), Some("5.4.3"));
    assert_eq!(a.pin_policy, PinPolicy::Once);
    assert_eq!(a.touch_policy, TouchPolicy::Always);
    assert_eq!(a.form_factor, Some(1));
    assert!(a.root.contains("Test PIV Root CA"), "{}", a.root);
    let ext = a.extensions();
    assert!(ext.contains(&(EXT_KEY.into(), "piv-attested".into())));
    assert!(ext.contains(&(EXT_PIV_SERIAL.into(), "12345678".into())));
    assert!(ext.contains(&(EXT_PIV_POLICY.into(), "pin=once,touch=always".into())));
}

#[test]
fn p384_and_ed25519_keys_match_their_ssh_form() {
    for alg in [&PKCS_ECDSA_P384_SHA384, &PKCS_ED25519] {
        let w = world_with(alg, [3, 2]);
        let a = check(&w, &verifier(&[&w.root])).unwrap();
        assert_eq!(a.pin_policy, PinPolicy::Always);
    }
}

#[test]
fn the_root_may_be_appended_and_other_roots_may_be_configured() {
    let w = world();
    let other = root("Another Root");
    let v = verifier(&[&other, &w.root]);
    let bundle = format!("{}{}", w.f9.cert.pem(), w.root.cert.pem());
    v.verify(&w.slot.pem(), &bundle, &ssh_key_of(&w.key), now())
        .unwrap();
}

#[test]
fn a_chain_under_another_root_is_refused() {
    let w = world();
    let err = check(&w, &verifier(&[&root("Some Other Root")])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationUntrustedRoot, "{err}");
    // Same name, different key: the name alone earns no trust.
    let err = check(&w, &verifier(&[&root("Test PIV Root CA")])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationUntrustedRoot, "{err}");
}

#[test]
fn touch_and_pin_policies_outside_the_lists_are_refused() {
    // touch never
    let w = world_with(&PKCS_ECDSA_P256_SHA256, [2, 1]);
    let err = check(&w, &verifier(&[&w.root])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationTouchPolicy, "{err}");
    assert!(err.to_string().contains("never"), "{err}");
    // touch cached is refused by default…
    let w = world_with(&PKCS_ECDSA_P256_SHA256, [2, 3]);
    let err = check(&w, &verifier(&[&w.root])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationTouchPolicy, "{err}");
    // …and accepted when configured.
    let v = PivVerifier::new(
        vec![w.root.cert.der().to_vec()],
        vec![TouchPolicy::Always, TouchPolicy::Cached],
        DEFAULT_PIN.to_vec(),
    )
    .unwrap();
    assert_eq!(check(&w, &v).unwrap().touch_policy, TouchPolicy::Cached);
    // PIN never
    let w = world_with(&PKCS_ECDSA_P256_SHA256, [1, 2]);
    let err = check(&w, &verifier(&[&w.root])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationPinPolicy, "{err}");
}

#[test]
fn an_altered_policy_extension_breaks_the_signature() {
    let w = world_with(&PKCS_ECDSA_P256_SHA256, [2, 1]);
    // Find the 41482.3.8 extension's value (OCTET STRING 04 02 <pin> <touch>) and
    // turn touch "never" into "always" without re-signing.
    let mut der = w.slot.der().to_vec();
    let oid = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xc4, 0x0a, 0x03, 0x08];
    let at = der.windows(oid.len()).position(|win| win == oid).unwrap() + oid.len();
    assert_eq!(&der[at..at + 4], &[0x04, 0x02, 0x02, 0x01]);
    der[at + 3] = 0x02;
    let err = verifier(&[&w.root])
        .verify(&pem_of(&der), &w.f9.cert.pem(), &ssh_key_of(&w.key), now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationBadSignature, "{err}");
}

#[test]
fn an_attested_key_that_is_not_the_submitted_key_is_refused() {
    let w = world();
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let err = verifier(&[&w.root])
        .verify(&w.slot.pem(), &w.f9.cert.pem(), &ssh_key_of(&other), now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationKeyMismatch, "{err}");
    // A different curve is a mismatch too, not a crash.
    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let err = verifier(&[&w.root])
        .verify(&w.slot.pem(), &w.f9.cert.pem(), &ssh_key_of(&p384), now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationKeyMismatch, "{err}");
}

#[test]
fn an_expired_intermediate_is_refused() {
    let root = root("Test PIV Root CA");
    let f9 = f9_with(&root, |p| {
        p.is_ca = IsCa::NoCa;
        p.key_usages = vec![];
        p.not_before = rcgen::date_time_ymd(2016, 3, 14);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let slot = slot_cert(&f9, &key, slot_exts([2, 2]));
    let w = World {
        root,
        f9,
        key,
        slot,
    };
    let err = check(&w, &verifier(&[&w.root])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationNotValidNow, "{err}");
    assert!(err.to_string().contains("intermediate"), "{err}");
}

#[test]
fn an_intermediate_that_says_it_is_no_ca_is_refused() {
    let root = root("Test PIV Root CA");
    let f9 = f9_with(&root, |p| {
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![];
    });
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let slot = slot_cert(&f9, &key, slot_exts([2, 2]));
    let w = World {
        root,
        f9,
        key,
        slot,
    };
    let err = check(&w, &verifier(&[&w.root])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationNotCa, "{err}");
}

/// The attack the f9 leniency must not open: a genuine slot key (here: a slot
/// attestation for key K1) signs a forged "attestation" for a software key.
#[test]
fn a_slot_key_cannot_vouch_for_another_key() {
    let w = world();
    let software = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    // A genuine attestation of slot key K1, whose private key the attacker can
    // use (it is their YubiKey) to sign anything, including a certificate.
    let k1 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let fake_issuer = Issuer {
        cert: slot_cert(&w.f9, &k1, slot_exts([2, 2])),
        key: k1,
    };
    let forged = slot_cert(&fake_issuer, &software, slot_exts([2, 2]));
    let bundle = format!("{}{}", fake_issuer.cert.pem(), w.f9.cert.pem());
    let err = verifier(&[&w.root])
        .verify(&forged.pem(), &bundle, &ssh_key_of(&software), now())
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            ErrorCode::PivAttestationNotCa | ErrorCode::PivAttestationPathTooLong
        ),
        "{err}"
    );
    // And with only the slot cert as "f9", the chain does not reach the root.
    let err = verifier(&[&w.root])
        .verify(
            &forged.pem(),
            &fake_issuer.cert.pem(),
            &ssh_key_of(&software),
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationUntrustedRoot, "{err}");
}

#[test]
fn missing_or_malformed_policy_extensions_are_refused() {
    let root = root("Test PIV Root CA");
    let f9 = f9(&root);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let v = verifier(&[&root]);
    let cases: Vec<(Vec<CustomExtension>, &str)> = vec![
        (
            vec![yk_ext(3, vec![5, 4, 3])],
            "piv_attestation_policy_missing",
        ),
        (vec![yk_ext(8, vec![2])], "piv_attestation_malformed"),
        (vec![yk_ext(8, vec![9, 2])], "piv_attestation_malformed"),
        (
            vec![yk_ext(8, vec![2, 2]), yk_ext(3, vec![5])],
            "piv_attestation_malformed",
        ),
        (
            vec![yk_ext(8, vec![2, 2]), yk_ext(7, vec![0xff])],
            "piv_attestation_malformed",
        ),
    ];
    for (exts, code) in cases {
        let slot = slot_cert(&f9, &key, exts);
        let err = v
            .verify(&slot.pem(), &f9.cert.pem(), &ssh_key_of(&key), now())
            .unwrap_err();
        assert_eq!(err.code().as_str(), code, "{err}");
    }
}

#[test]
fn garbage_input_is_refused_without_panicking() {
    let w = world();
    let v = verifier(&[&w.root]);
    let key = ssh_key_of(&w.key);
    let f9 = w.f9.cert.pem();
    let slot = w.slot.pem();
    let cases = [
        ("", f9.as_str()),
        ("not pem", f9.as_str()),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            f9.as_str(),
        ),
        (slot.as_str(), ""),
        (
            slot.as_str(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
    ];
    for (s, i) in cases {
        let err = v.verify(s, i, &key, now()).unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::PivAttestationMalformed,
            "{s:?} {i:?}: {err}"
        );
    }
    // Two slot certificates, or a huge input.
    let two = format!("{slot}{slot}");
    assert_eq!(
        v.verify(&two, &f9, &key, now()).unwrap_err().code(),
        ErrorCode::PivAttestationMalformed
    );
    let huge = "A".repeat(MAX_PEM_BYTES * 10);
    assert_eq!(
        v.verify(&slot, &huge, &key, now()).unwrap_err().code(),
        ErrorCode::PivAttestationMalformed
    );
    // Out of order: the slot certificate where the intermediate belongs.
    assert_eq!(
        v.verify(&f9, &slot, &key, now()).unwrap_err().code(),
        ErrorCode::PivAttestationChainBroken
    );
}

#[test]
fn config_defaults_and_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let raw: RawPiv = toml::from_str("").unwrap();
    assert!(validate(&raw, dir.path()).unwrap().is_none());
    let w = world();
    std::fs::write(dir.path().join("root.pem"), w.root.cert.pem()).unwrap();
    let raw: RawPiv = toml::from_str(
        "attestation_roots = [\"root.pem\"]\ntouch_policies = [\"always\", \"cached\"]\n",
    )
    .unwrap();
    let v = validate(&raw, dir.path()).unwrap().unwrap();
    assert_eq!(v.touch, vec![TouchPolicy::Always, TouchPolicy::Cached]);
    assert_eq!(v.pin, DEFAULT_PIN.to_vec());
    assert!(format!("{v:?}").contains("Test PIV Root CA"));
    let raw: RawPiv = toml::from_str("touch_policies = [\"sometimes\"]\n").unwrap();
    assert!(validate(&raw, dir.path()).is_err());
    let raw: RawPiv = toml::from_str("attestation_roots = [\"missing.pem\"]\n").unwrap();
    let err = validate(&raw, dir.path()).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    assert!(toml::from_str::<RawPiv>("roots = []\n").is_err());
}

#[test]
fn every_single_bit_flip_is_refused_or_changes_nothing() {
    // The verifier takes its input from the network: no mutation may panic it, and
    // a mutated chain may pass only if what it proves is unchanged (e.g. an
    // ignored unused-bits count), never with different content.
    let w = world();
    let v = verifier(&[&w.root]);
    let key = ssh_key_of(&w.key);
    let good = check(&w, &v).unwrap();
    let f9 = w.f9.cert.pem();
    for (which, der) in [
        ("slot", w.slot.der().to_vec()),
        ("f9", w.f9.cert.der().to_vec()),
    ] {
        for i in 0..der.len() {
            for bit in 0..8 {
                let mut m = der.clone();
                m[i] ^= 1 << bit;
                let out = if which == "slot" {
                    v.verify(&pem_of(&m), &f9, &key, now())
                } else {
                    v.verify(&w.slot.pem(), &pem_of(&m), &key, now())
                };
                if let Ok(a) = out {
                    assert_eq!(a, good, "{which} byte {i} bit {bit} changed the result");
                }
            }
        }
        // Truncations.
        for n in 0..der.len() {
            let out = if which == "slot" {
                v.verify(&pem_of(&der[..n]), &f9, &key, now())
            } else {
                v.verify(&w.slot.pem(), &pem_of(&der[..n]), &key, now())
            };
            assert!(out.is_err(), "{which} truncated to {n} bytes was accepted");
        }
    }
}

/// An RSA public key as a SubjectPublicKeyInfo wants it (RFC 8017 A.1.1
/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`).
struct RsaSpki(Vec<u8>);

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(b: &[u8]) -> Vec<u8> {
    let mut c = Vec::new();
    if b.first().is_some_and(|x| x & 0x80 != 0) {
        c.push(0);
    }
    c.extend_from_slice(b);
    der_tlv(0x02, &c)
}

impl RsaSpki {
    fn of(k: &ssh_key::public::RsaPublicKey) -> RsaSpki {
        let n = k.n().as_positive_bytes().unwrap();
        let e = k.e().as_positive_bytes().unwrap();
        RsaSpki(der_tlv(0x30, &[der_uint(n), der_uint(e)].concat()))
    }
}

impl PublicKeyData for RsaSpki {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

#[test]
fn an_rsa_slot_key_matches_its_ssh_form_and_only_that() {
    let rsa = |bits| {
        let kp = ssh_key::private::RsaKeypair::random(
            &mut ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng),
            bits,
        )
        .unwrap();
        ssh_key::public::RsaPublicKey::from(&kp)
    };
    let mine = rsa(2048);
    let other = rsa(2048);
    let root = root("Test PIV Root CA");
    let f9 = f9(&root);
    let slot = slot_cert(&f9, &RsaSpki::of(&mine), slot_exts([2, 2]));
    let v = verifier(&[&root]);
    let as_ssh = |k: &ssh_key::public::RsaPublicKey| PublicKey::new(KeyData::Rsa(k.clone()), "");
    v.verify(&slot.pem(), &f9.cert.pem(), &as_ssh(&mine), now())
        .unwrap();
    let err = v
        .verify(&slot.pem(), &f9.cert.pem(), &as_ssh(&other), now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PivAttestationKeyMismatch, "{err}");
}
