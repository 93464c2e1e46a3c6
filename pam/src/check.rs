//! The pure certificate checks: trusted CA, user type, validity window, CA
//! signature, principal, critical options, KRL, MFA freshness and factor strength.
//! No I/O and no clock: `now` is a parameter, so every rule is testable.

use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rampart_policy::{Factor, FactorStrength, KeyAssurance, EXT_MFA_KEY};
use ssh_key::certificate::CertType;
use ssh_key::public::KeyData;
use ssh_key::{Certificate, HashAlg};

use crate::args::format_secs;
use crate::error::CertProblem;
use crate::krl::Krl;

/// Extension naming the MFA method (`totp`, `recovery`, `webauthn`, `oidc`, …).
pub const EXT_MFA_METHOD: &str = "mfa-method@rampart";
/// Extension with the MFA time, RFC 3339 (`2025-01-02T03:04:05Z`).
pub const EXT_MFA_TIME: &str = "mfa-time@rampart";
/// Extension marking a WebAuthn assertion made with user verification (`yes`).
pub const EXT_MFA_UV: &str = "mfa-uv@rampart";
/// Extension marking a WebAuthn key whose model the CA trusts (`yes`): its
/// attestation verified against the CA's roots, or its AAGUID is allow-listed.
pub const EXT_MFA_ATTESTED: &str = "mfa-key-attested@rampart";
/// How far in the future an MFA time may lie (clock skew between CA and host).
pub const MFA_FUTURE_SKEW: u64 = 5 * 60;

/// Where the PAM request comes from, for `source-address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `PAM_RHOST` is set to an IP address.
    Remote(IpAddr),
    /// `PAM_RHOST` is set but is not an IP address (a host name): it cannot be
    /// checked without a DNS lookup, which the module never does.
    Unresolved(String),
    /// No `PAM_RHOST` (a local `sudo`): the request originates on this host, so
    /// it is checked as the loopback addresses 127.0.0.1 and ::1.
    Local,
}

impl Origin {
    /// From the value of `PAM_RHOST`.
    pub fn from_rhost(rhost: Option<&str>) -> Origin {
        match rhost.map(str::trim).filter(|s| !s.is_empty()) {
            None => Origin::Local,
            Some(h) => match h.parse::<IpAddr>() {
                Ok(ip) => Origin::Remote(ip),
                Err(_) => Origin::Unresolved(h.to_owned()),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Origin::Remote(ip) => format!("remote host {ip}"),
            Origin::Unresolved(h) => format!("remote host {h:?} (not an IP address)"),
            Origin::Local => "a local request (checked as 127.0.0.1 and ::1)".to_owned(),
        }
    }

    fn addresses(&self) -> Vec<IpAddr> {
        match self {
            Origin::Remote(ip) => vec![*ip],
            Origin::Unresolved(_) => Vec::new(),
            Origin::Local => vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ],
        }
    }
}

/// What a certificate must satisfy, besides being signed by a trusted CA.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    /// The PAM user; must be a principal.
    pub user: &'a str,
    /// Where the request comes from.
    pub origin: Origin,
    /// Seconds since the epoch.
    pub now: u64,
    /// Maximum MFA age in seconds.
    pub max_mfa_age: u64,
    /// Minimum factor strength.
    pub min_factor: FactorStrength,
    /// The KRL and its path (for messages).
    pub krl: (&'a Krl, &'a Path),
}

/// A certificate that passed every check but proof of possession.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Serial.
    pub serial: u64,
    /// Key ID.
    pub key_id: String,
    /// SHA-256 fingerprint of the signing CA.
    pub ca_fingerprint: String,
    /// MFA method.
    pub mfa_method: String,
    /// MFA age in seconds.
    pub mfa_age: u64,
    /// `verify-required` is set: a security-key signature must carry UV.
    pub verify_required: bool,
}

/// Whether `cert` was signed by one of `ca_keys` (compared as key data).
pub fn signed_by_trusted_ca(cert: &Certificate, ca_keys: &[KeyData]) -> bool {
    ca_keys.iter().any(|k| k == cert.signature_key())
}

/// Run every check on a certificate already known to be from a trusted CA.
pub fn check_certificate(cert: &Certificate, p: &Policy<'_>) -> Result<Accepted, CertProblem> {
    // PROTOCOL.certkeys: type is SSH2_CERT_TYPE_USER (1) or _HOST (2).
    if cert.cert_type() != CertType::User {
        return Err(CertProblem::NotUserCert);
    }
    // "A certificate is considered valid if: valid after <= current time < valid before".
    if p.now < cert.valid_after() {
        return Err(CertProblem::NotYetValid(rfc3339(cert.valid_after())));
    }
    if p.now >= cert.valid_before() {
        return Err(CertProblem::Expired(rfc3339(cert.valid_before())));
    }
    let ca_fp = cert.signature_key().fingerprint(HashAlg::Sha256);
    if cert.validate_at(p.now, [&ca_fp]).is_err() {
        return Err(CertProblem::BadSignature);
    }
    // An empty principals list means "any principal" in PROTOCOL.certkeys; a
    // step-up certificate must name the user, so empty is refused too.
    if !cert.valid_principals().iter().any(|n| n == p.user) {
        return Err(CertProblem::Principal {
            principals: cert.valid_principals().to_vec(),
            user: p.user.to_owned(),
        });
    }
    let verify_required = check_critical_options(cert, &p.origin)?;
    if let Some(what) = p.krl.0.revocation(cert) {
        return Err(CertProblem::Revoked {
            what,
            krl: p.krl.1.to_path_buf(),
        });
    }
    let (mfa_method, mfa_age) = check_mfa(cert, p)?;
    Ok(Accepted {
        serial: cert.serial(),
        key_id: cert.key_id().to_owned(),
        ca_fingerprint: ca_fp.to_string(),
        mfa_method,
        mfa_age,
        verify_required,
    })
}

/// Critical options (PROTOCOL.certkeys): `source-address` is enforced against the
/// origin; `verify-required` is returned for the proof-of-possession step;
/// `force-command` limits the certificate to one command and is refused for a
/// step-up; anything else is unknown and refused.
fn check_critical_options(cert: &Certificate, origin: &Origin) -> Result<bool, CertProblem> {
    let mut verify_required = false;
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "source-address" => check_source_address(value, origin)?,
            "verify-required" => verify_required = true,
            "force-command" => return Err(CertProblem::ForceCommand(value.clone())),
            other => return Err(CertProblem::UnknownCriticalOption(other.to_owned())),
        }
    }
    Ok(verify_required)
}

/// "Comma-separated list of source addresses from which this certificate is
/// accepted for authentication. Addresses are specified in CIDR format
/// (nn.nn.nn.nn/nn or hhhh::hhhh/nn)." A bare address counts as a /32 or /128,
/// as in OpenSSH's `addr_match_cidr_list`. A malformed list refuses.
fn check_source_address(list: &str, origin: &Origin) -> Result<(), CertProblem> {
    let refuse = || CertProblem::SourceAddress {
        allowed: list.to_owned(),
        from: origin.describe(),
    };
    let mut nets = Vec::new();
    for entry in list.split(',') {
        let entry = entry.trim();
        let net = match entry.parse::<ipnet::IpNet>() {
            Ok(n) => n,
            Err(_) => match entry.parse::<IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => return Err(refuse()),
            },
        };
        nets.push(net);
    }
    if origin
        .addresses()
        .iter()
        .any(|ip| nets.iter().any(|n| n.contains(ip)))
    {
        Ok(())
    } else {
        Err(refuse())
    }
}

fn check_mfa(cert: &Certificate, p: &Policy<'_>) -> Result<(String, u64), CertProblem> {
    let exts = cert.extensions();
    let method = exts
        .get(EXT_MFA_METHOD)
        .ok_or_else(|| CertProblem::Mfa(format!("no {EXT_MFA_METHOD} extension")))?;
    let time = exts
        .get(EXT_MFA_TIME)
        .ok_or_else(|| CertProblem::Mfa(format!("no {EXT_MFA_TIME} extension")))?;
    let at = DateTime::parse_from_rfc3339(time)
        .map_err(|_| CertProblem::Mfa(format!("{EXT_MFA_TIME} {time:?} is not an RFC 3339 time")))?
        .with_timezone(&Utc);
    let at_secs = u64::try_from(at.timestamp())
        .map_err(|_| CertProblem::Mfa(format!("{EXT_MFA_TIME} {time:?} is before 1970")))?;
    if at_secs > p.now.saturating_add(MFA_FUTURE_SKEW) {
        return Err(CertProblem::Mfa(format!(
            "{EXT_MFA_TIME} {time} is in the future"
        )));
    }
    let age = p.now.saturating_sub(at_secs);
    if age > p.max_mfa_age {
        return Err(CertProblem::StaleMfa {
            method: method.clone(),
            at: time.clone(),
            age: format_secs(age),
            max: format_secs(p.max_mfa_age),
        });
    }
    let uv = exts
        .get(EXT_MFA_UV)
        .is_some_and(|v| v == "yes" || v == "true");
    let attested = exts.get(EXT_MFA_ATTESTED).is_some_and(|v| v == "yes");
    let factor = factor_strength(method, uv, attested)
        .ok_or_else(|| CertProblem::Mfa(format!("unknown {EXT_MFA_METHOD} {method:?}")))?;
    // The CA writes `mfa-key@rampart=piv-attested` only after verifying that the
    // key was generated in, and cannot leave, a hardware token; the CA's
    // signature makes the extension trustworthy, and the agent's signature over
    // the nonce (later) proves this request holds that key. The policy's rule
    // applies: an attested key lifts the factor to hardware-bound, so
    // `min_factor=hardware-bound` accepts exactly the certificates a
    // hardware-bound role could have produced.
    let key = KeyAssurance::from_extension(exts.get(EXT_MFA_KEY).map(String::as_str));
    let strength = key.lift(factor);
    if strength < p.min_factor {
        return Err(CertProblem::WeakFactor {
            method: method.clone(),
            strength: strength.to_string(),
            min: p.min_factor.to_string(),
        });
    }
    Ok((method.clone(), age))
}

/// The strength of an MFA method as the CA records it, with the same rules as the
/// policy (`rampart_policy::Factor::strength`): `totp`/`oidc` → otp, `recovery` →
/// recovery, `webauthn` → otp; with `mfa-uv@rampart=yes` (or spelled
/// `webauthn-uv`) unattested-key, and phishing-resistant only when
/// `mfa-key-attested@rampart=yes` says the CA trusts the key's model (a certificate
/// without it, e.g. from an older CA, counts as unattested). Unknown methods yield
/// `None` (refused).
pub fn factor_strength(
    method: &str,
    user_verified: bool,
    attested: bool,
) -> Option<FactorStrength> {
    let factor = match method.parse::<Factor>().ok()? {
        Factor::Webauthn {
            user_verified: spelled_uv,
            ..
        } => Factor::Webauthn {
            user_verified: user_verified || spelled_uv,
            attested,
            // How the assertion arrived never changes its strength.
            via_link: false,
        },
        f => f,
    };
    Some(factor.strength())
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{secs} (seconds since the epoch)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::certificate::Builder;
    use ssh_key::rand_core::UnwrapErr;
    use ssh_key::{Algorithm, PrivateKey};
    use std::path::PathBuf;

    const NOW: u64 = 1_800_000_000;

    fn key() -> PrivateKey {
        let mut rng = UnwrapErr(ssh_key::getrandom::SysRng);
        PrivateKey::random(&mut rng, Algorithm::Ed25519).unwrap()
    }

    struct Spec {
        principals: Vec<&'static str>,
        valid: (u64, u64),
        cert_type: CertType,
        critical: Vec<(&'static str, &'static str)>,
        exts: Vec<(&'static str, String)>,
        serial: u64,
        key_id: &'static str,
    }

    fn mfa_time(ago: u64) -> String {
        rfc3339(NOW - ago)
    }

    fn spec() -> Spec {
        Spec {
            principals: vec!["alice"],
            valid: (NOW - 60, NOW + 3600),
            cert_type: CertType::User,
            critical: vec![],
            exts: vec![
                (EXT_MFA_METHOD, "totp".to_owned()),
                (EXT_MFA_TIME, mfa_time(60)),
                ("permit-pty", String::new()),
            ],
            serial: 42,
            key_id: "user=alice serial=42",
        }
    }

    fn make(ca: &PrivateKey, s: &Spec) -> Certificate {
        let subject = key();
        let mut b = Builder::new(
            [7u8; 32],
            subject.public_key().key_data().clone(),
            s.valid.0,
            s.valid.1,
        )
        .unwrap();
        b.serial(s.serial).unwrap();
        b.key_id(s.key_id).unwrap();
        b.cert_type(s.cert_type).unwrap();
        for p in &s.principals {
            b.valid_principal(*p).unwrap();
        }
        if s.principals.is_empty() {
            b.all_principals_valid().unwrap();
        }
        for (k, v) in &s.critical {
            b.critical_option(*k, *v).unwrap();
        }
        for (k, v) in &s.exts {
            b.extension(*k, v.clone()).unwrap();
        }
        b.sign(ca).unwrap()
    }

    fn check_with(
        cert: &Certificate,
        krl: &Krl,
        origin: Origin,
        min: FactorStrength,
    ) -> Result<Accepted, CertProblem> {
        let path = PathBuf::from("/etc/ssh/rampart.krl");
        let p = Policy {
            user: "alice",
            origin,
            now: NOW,
            max_mfa_age: 900,
            min_factor: min,
            krl: (krl, &path),
        };
        check_certificate(cert, &p)
    }

    fn check(s: &Spec) -> Result<Accepted, CertProblem> {
        let ca = key();
        let cert = make(&ca, s);
        check_with(&cert, &Krl::default(), Origin::Local, FactorStrength::Otp)
    }

    #[test]
    fn a_good_certificate_passes() {
        let a = check(&spec()).unwrap();
        assert_eq!(a.serial, 42);
        assert_eq!(a.mfa_method, "totp");
        assert_eq!(a.mfa_age, 60);
        assert!(!a.verify_required);
    }

    #[test]
    fn trusted_ca_is_by_key() {
        let ca = key();
        let other = key();
        let cert = make(&ca, &spec());
        assert!(signed_by_trusted_ca(
            &cert,
            &[ca.public_key().key_data().clone()]
        ));
        assert!(!signed_by_trusted_ca(
            &cert,
            &[other.public_key().key_data().clone()]
        ));
        assert!(!signed_by_trusted_ca(&cert, &[]));
    }

    #[test]
    fn each_rule_refuses() {
        let mut s = spec();
        s.cert_type = CertType::Host;
        assert_eq!(check(&s), Err(CertProblem::NotUserCert));

        let mut s = spec();
        s.valid = (NOW + 10, NOW + 3600);
        assert!(matches!(check(&s), Err(CertProblem::NotYetValid(_))));

        let mut s = spec();
        s.valid = (NOW - 3600, NOW);
        assert!(
            matches!(check(&s), Err(CertProblem::Expired(_))),
            "valid_before is exclusive"
        );

        let mut s = spec();
        s.principals = vec!["bob", "root"];
        assert!(matches!(check(&s), Err(CertProblem::Principal { .. })));

        let mut s = spec();
        s.principals = vec![];
        assert!(
            matches!(check(&s), Err(CertProblem::Principal { .. })),
            "empty principals"
        );

        let mut s = spec();
        s.critical = vec![("no-such-option@example.com", "")];
        assert!(matches!(
            check(&s),
            Err(CertProblem::UnknownCriticalOption(_))
        ));

        let mut s = spec();
        s.critical = vec![("force-command", "/bin/true")];
        assert!(matches!(check(&s), Err(CertProblem::ForceCommand(_))));

        let mut s = spec();
        s.exts.retain(|(k, _)| *k != EXT_MFA_TIME);
        assert!(matches!(check(&s), Err(CertProblem::Mfa(_))));

        let mut s = spec();
        s.exts.retain(|(k, _)| *k != EXT_MFA_METHOD);
        assert!(matches!(check(&s), Err(CertProblem::Mfa(_))));

        let mut s = spec();
        s.exts = vec![(EXT_MFA_METHOD, "sms".into()), (EXT_MFA_TIME, mfa_time(1))];
        assert!(matches!(check(&s), Err(CertProblem::Mfa(_))));

        let mut s = spec();
        s.exts = vec![
            (EXT_MFA_METHOD, "totp".into()),
            (EXT_MFA_TIME, "yesterday".into()),
        ];
        assert!(matches!(check(&s), Err(CertProblem::Mfa(_))));

        let mut s = spec();
        s.exts = vec![
            (EXT_MFA_METHOD, "totp".into()),
            (EXT_MFA_TIME, rfc3339(NOW + 3600)),
        ];
        assert!(
            matches!(check(&s), Err(CertProblem::Mfa(_))),
            "MFA in the future"
        );

        let mut s = spec();
        s.exts = vec![
            (EXT_MFA_METHOD, "totp".into()),
            (EXT_MFA_TIME, mfa_time(901)),
        ];
        assert!(matches!(check(&s), Err(CertProblem::StaleMfa { .. })));
        let mut s = spec();
        s.exts = vec![
            (EXT_MFA_METHOD, "totp".into()),
            (EXT_MFA_TIME, mfa_time(900)),
        ];
        assert!(check(&s).is_ok(), "exactly max_mfa_age is still fresh");
    }

    #[test]
    fn tampered_signature_refuses() {
        let ca = key();
        let cert = make(&ca, &spec());
        let mut bytes = cert.to_bytes().unwrap();
        // Flip a byte of the key ID ("user=alice…"), which the CA signed.
        let pos = bytes.windows(10).position(|w| w == b"user=alice").unwrap();
        bytes[pos] = b'U';
        let forged = Certificate::from_bytes(&bytes).unwrap();
        assert_eq!(
            check_with(&forged, &Krl::default(), Origin::Local, FactorStrength::Otp),
            Err(CertProblem::BadSignature)
        );
    }

    #[test]
    fn factor_strengths_follow_policy() {
        assert_eq!(
            factor_strength("totp", false, false),
            Some(FactorStrength::Otp)
        );
        assert_eq!(
            factor_strength("oidc", false, false),
            Some(FactorStrength::Otp)
        );
        assert_eq!(
            factor_strength("recovery", false, false),
            Some(FactorStrength::Recovery)
        );
        assert_eq!(
            factor_strength("webauthn", false, true),
            Some(FactorStrength::Otp)
        );
        assert_eq!(
            factor_strength("webauthn", true, false),
            Some(FactorStrength::UnattestedKey)
        );
        assert_eq!(
            factor_strength("webauthn", true, true),
            Some(FactorStrength::PhishingResistant)
        );
        assert_eq!(
            factor_strength("webauthn-uv", false, false),
            Some(FactorStrength::UnattestedKey)
        );
        assert_eq!(
            factor_strength("webauthn-uv", false, true),
            Some(FactorStrength::PhishingResistant)
        );
        assert_eq!(factor_strength("sms", false, false), None);

        let ca = key();
        let cert = make(&ca, &spec());
        let krl = Krl::default();
        assert!(matches!(
            check_with(
                &cert,
                &krl,
                Origin::Local,
                FactorStrength::PhishingResistant
            ),
            Err(CertProblem::WeakFactor { .. })
        ));
        let mut s = spec();
        s.exts = vec![
            (EXT_MFA_METHOD, "webauthn".into()),
            (EXT_MFA_TIME, mfa_time(5)),
            (EXT_MFA_UV, "yes".into()),
        ];
        // UV without the CA vouching for the key's model: below phishing-resistant.
        let unattested = make(&ca, &s);
        assert!(matches!(
            check_with(
                &unattested,
                &krl,
                Origin::Local,
                FactorStrength::PhishingResistant
            ),
            Err(CertProblem::WeakFactor { .. })
        ));
        assert!(check_with(
            &unattested,
            &krl,
            Origin::Local,
            FactorStrength::UnattestedKey
        )
        .is_ok());
        s.exts.push((EXT_MFA_ATTESTED, "yes".into()));
        let cert = make(&ca, &s);
        assert!(check_with(
            &cert,
            &krl,
            Origin::Local,
            FactorStrength::PhishingResistant
        )
        .is_ok());
        assert!(matches!(
            check_with(&cert, &krl, Origin::Local, FactorStrength::HardwareBound),
            Err(CertProblem::WeakFactor { .. })
        ));
        let mut s = spec();
        s.exts = vec![
            (EXT_MFA_METHOD, "recovery".into()),
            (EXT_MFA_TIME, mfa_time(5)),
        ];
        let cert = make(&ca, &s);
        assert!(matches!(
            check_with(&cert, &krl, Origin::Local, FactorStrength::Otp),
            Err(CertProblem::WeakFactor { .. })
        ));
        assert!(check_with(&cert, &krl, Origin::Local, FactorStrength::Recovery).is_ok());
    }

    /// A certificate as the CA issues it: a grant from `evaluate_with_key` for a
    /// role with `min_factor = min_factor`, signed by the CA's signer with the
    /// PIV evidence extensions the CA adds for an attested key (`piv`), one
    /// minute after a TOTP login.
    fn ca_issued(
        ca: &rampart_signer::FileCaKey,
        min_factor: &str,
        key: KeyAssurance,
        piv: &[(&str, &str)],
    ) -> Certificate {
        let policy = rampart_policy::Policy::from_toml(&format!(
            "version = 1\n[roles.step-up]\nprincipals = [\"{{user}}\"]\n\
             min_factor = \"{min_factor}\"\n[groups]\nops = [\"step-up\"]\n"
        ))
        .unwrap();
        let now = DateTime::<Utc>::from_timestamp(i64::try_from(NOW).unwrap(), 0).unwrap();
        let mfa_time = now - chrono::Duration::seconds(60);
        let grant = rampart_policy::evaluate_with_key(
            &rampart_policy::CertRequest {
                user: "alice",
                groups: &["ops".to_owned()],
                factor: Factor::Totp,
                mfa_time,
                requested_ttl: None,
                login: None,
            },
            key,
            &policy,
            now,
        )
        .into_result()
        .unwrap();
        let evidence: Vec<(String, String)> = piv
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let spec = rampart_signer::UserCertSpec::from_grant(
            &grant,
            key_for_subject(),
            42,
            rampart_signer::MfaEvidence {
                method: "totp".into(),
                time: mfa_time,
                event_id: "01JEVENT".into(),
            },
            now,
        )
        .unwrap()
        .with_idp_evidence(&evidence)
        .unwrap();
        rampart_signer::sign_user_cert(ca, &spec).unwrap()
    }

    fn key_for_subject() -> ssh_key::PublicKey {
        key().public_key().clone()
    }

    #[test]
    fn hardware_bound_accepts_the_cas_piv_attested_certificate_only() {
        let ca = rampart_signer::FileCaKey::generate("user-ca").unwrap();
        let krl = Krl::default();
        let hw = FactorStrength::HardwareBound;
        // What the CA writes for a YubiKey-attested key (ca/src/piv/).
        let attested = ca_issued(
            &ca,
            "hardware-bound",
            KeyAssurance::HardwareAttested,
            &[
                (EXT_MFA_KEY, rampart_policy::EXT_MFA_KEY_PIV),
                ("mfa-piv-serial@rampart", "12345678"),
                ("mfa-piv-policy@rampart", "pin=once,touch=always"),
            ],
        );
        assert_eq!(
            attested.extensions().get(EXT_MFA_KEY).map(String::as_str),
            Some("piv-attested")
        );
        let ok = check_with(&attested, &krl, Origin::Local, hw)
            .unwrap_or_else(|e| panic!("an attested certificate is hardware-bound: {e}"));
        assert_eq!(ok.mfa_method, "totp");
        // The same TOTP login with an ordinary key is only otp-strength.
        let plain = ca_issued(&ca, "otp", KeyAssurance::Unattested, &[]);
        assert!(check_with(&plain, &krl, Origin::Local, FactorStrength::Otp).is_ok());
        assert!(matches!(
            check_with(&plain, &krl, Origin::Local, hw),
            Err(CertProblem::WeakFactor { .. })
        ));
        // Only the exact value counts.
        let other = ca_issued(
            &ca,
            "otp",
            KeyAssurance::Unattested,
            &[(EXT_MFA_KEY, "software")],
        );
        assert!(matches!(
            check_with(&other, &krl, Origin::Local, hw),
            Err(CertProblem::WeakFactor { .. })
        ));
    }

    #[test]
    fn source_address_is_honoured() {
        let ca = key();
        let krl = Krl::default();
        let cert_for = |list: &'static str| {
            let mut s = spec();
            s.critical = vec![("source-address", list)];
            make(&ca, &s)
        };
        let remote = |ip: &str| Origin::from_rhost(Some(ip));
        let ok = |c: &Certificate, o: Origin| check_with(c, &krl, o, FactorStrength::Otp).is_ok();

        let c = cert_for("10.0.0.0/8,192.0.2.7");
        assert!(ok(&c, remote("10.1.2.3")));
        assert!(ok(&c, remote("192.0.2.7")));
        assert!(!ok(&c, remote("192.0.2.8")));
        assert!(!ok(&c, Origin::Local), "a local sudo is 127.0.0.1/::1");
        assert!(!ok(&c, remote("bastion.example.com")), "no DNS lookups");

        let c = cert_for("127.0.0.1/32,2001:db8::/32");
        assert!(ok(&c, Origin::Local));
        assert!(ok(&c, remote("2001:db8::5")));
        assert!(!ok(&c, remote("2001:db9::5")));

        let c = cert_for("::1");
        assert!(ok(&c, Origin::Local));

        let c = cert_for("10.0.0.0/8,garbage");
        assert!(!ok(&c, remote("10.1.2.3")), "a malformed list refuses");

        assert_eq!(Origin::from_rhost(None), Origin::Local);
        assert_eq!(Origin::from_rhost(Some("  ")), Origin::Local);
    }

    #[test]
    fn verify_required_is_reported() {
        let mut s = spec();
        s.critical = vec![("verify-required", "")];
        assert!(check(&s).unwrap().verify_required);
    }
}
