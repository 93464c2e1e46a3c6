//! Authentication factors and how strong each one is.

use std::fmt;
use std::str::FromStr;

use crate::PolicyError;

/// How much an authentication factor proves, weakest first.
///
/// The ordering is the point: a role's `min_factor` is satisfied by any factor whose
/// strength compares `>=` to it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FactorStrength {
    /// A single-use recovery code: proves possession of a printout, nothing more.
    Recovery,
    /// A one-time password (TOTP) or an equivalent that can be phished.
    Otp,
    /// A security key that verified the user, but whose make and model nothing
    /// vouches for: its attestation was not checked against a trusted root and its
    /// AAGUID is on no allow-list. Origin-bound, yet it may be a software
    /// authenticator that merely claims user verification, so it ranks below
    /// [`FactorStrength::PhishingResistant`].
    UnattestedKey,
    /// A factor bound to the relying party's origin from an authenticator the CA
    /// trusts (WebAuthn with user verification, attested or allow-listed).
    PhishingResistant,
    /// A key that provably lives in hardware (e.g. attested YubiKey PIV).
    HardwareBound,
}

impl FactorStrength {
    const ALL: &'static str = "recovery, otp, unattested-key, phishing-resistant, hardware-bound";

    /// The spelling used in the policy file and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorStrength::Recovery => "recovery",
            FactorStrength::Otp => "otp",
            FactorStrength::UnattestedKey => "unattested-key",
            FactorStrength::PhishingResistant => "phishing-resistant",
            FactorStrength::HardwareBound => "hardware-bound",
        }
    }
}

impl fmt::Display for FactorStrength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FactorStrength {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        Ok(match s {
            "recovery" => FactorStrength::Recovery,
            "otp" => FactorStrength::Otp,
            "unattested-key" => FactorStrength::UnattestedKey,
            "phishing-resistant" => FactorStrength::PhishingResistant,
            "hardware-bound" => FactorStrength::HardwareBound,
            _ => {
                return Err(PolicyError::UnknownFactor {
                    value: s.to_owned(),
                    expected: Self::ALL,
                })
            }
        })
    }
}

/// Which kind of factor a user proved: the name a session, a certificate's
/// `mfa-method@rampart` extension and an audit event's `mfa_method` carry. A
/// [`Factor`] says more (how a security key was used); this is only its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaMethod {
    /// A TOTP code.
    Totp,
    /// A single-use recovery code.
    Recovery,
    /// A security key (WebAuthn or CTAP2).
    Webauthn,
    /// A login or step-up at an OpenID Connect identity provider.
    Oidc,
}

impl MfaMethod {
    const ALL_NAMES: &'static str = "totp, recovery, webauthn, oidc";

    /// Every method.
    pub const ALL: [MfaMethod; 4] = [
        MfaMethod::Totp,
        MfaMethod::Recovery,
        MfaMethod::Webauthn,
        MfaMethod::Oidc,
    ];

    /// The name as stored and written: `totp`, `recovery`, `webauthn`, `oidc`.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaMethod::Totp => "totp",
            MfaMethod::Recovery => "recovery",
            MfaMethod::Webauthn => "webauthn",
            MfaMethod::Oidc => "oidc",
        }
    }
}

impl fmt::Display for MfaMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exactly the [`MfaMethod::as_str`] names; anything else is refused.
impl FromStr for MfaMethod {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        MfaMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| PolicyError::UnknownFactor {
                value: s.to_owned(),
                expected: Self::ALL_NAMES,
            })
    }
}

/// The factor a user actually proved for this request.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Factor {
    /// A TOTP code (RFC 6238).
    Totp,
    /// A single-use recovery code.
    Recovery,
    /// A WebAuthn assertion; `user_verified` is the UV flag of the authenticator data
    /// (WebAuthn §6.1), i.e. a PIN or biometric was checked, not just presence;
    /// `attested` says whether the CA trusts the key's make and model; `via_link`
    /// says how the assertion reached the CA.
    Webauthn {
        /// Whether the authenticator reported user verification (UV).
        user_verified: bool,
        /// Whether the key's attestation verified against the CA's configured
        /// roots when it was enrolled, or its AAGUID is on the CA's allow-list.
        /// Without it a UV flag is only the authenticator's own claim.
        attested: bool,
        /// The assertion was given on the CA's approval page, reached through a
        /// link the client printed, rather than by the client itself talking
        /// CTAP2 to a key on its own machine. Number matching ties the page to
        /// the terminal, but whoever holds the key need not sit at that
        /// terminal; roles with `webauthn_link = false` refuse such assertions.
        /// Does not change the factor's strength.
        via_link: bool,
    },
    /// A step-up at an OpenID Connect identity provider. We cannot see which factor the
    /// IdP used, so it counts as OTP-strength.
    Oidc,
}

impl Factor {
    const ALL: &'static str = "totp, recovery, webauthn, webauthn-uv, webauthn-unattested, \
         webauthn-uv-unattested (each webauthn spelling also with -link), oidc";

    /// The method recorded in certificates and audit events.
    pub fn method(&self) -> MfaMethod {
        match self {
            Factor::Totp => MfaMethod::Totp,
            Factor::Recovery => MfaMethod::Recovery,
            Factor::Webauthn { .. } => MfaMethod::Webauthn,
            Factor::Oidc => MfaMethod::Oidc,
        }
    }

    /// How strong this factor is for policy purposes.
    pub fn strength(&self) -> FactorStrength {
        match self {
            Factor::Totp | Factor::Oidc => FactorStrength::Otp,
            Factor::Recovery => FactorStrength::Recovery,
            // Without UV a stolen, unlocked key suffices: still origin-bound, but we
            // rate it no higher than OTP so "phishing-resistant" means key + PIN.
            Factor::Webauthn {
                user_verified: false,
                ..
            } => FactorStrength::Otp,
            // UV from a key nobody vouches for is the authenticator's own word.
            Factor::Webauthn {
                user_verified: true,
                attested: false,
                ..
            } => FactorStrength::UnattestedKey,
            Factor::Webauthn {
                user_verified: true,
                attested: true,
                ..
            } => FactorStrength::PhishingResistant,
        }
    }
}

/// What the CA could prove about where the private key of the certified public
/// key lives. Separate from [`Factor`]: the factor proves *who* asks, this proves
/// that the key cannot be copied off a device.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAssurance {
    /// Nothing is known: a file key, an agent key.
    #[default]
    Unattested,
    /// A hardware attestation (YubiKey PIV) proved the key was generated in, and
    /// cannot leave, a hardware token whose touch and PIN policies the CA checked.
    HardwareAttested,
}

/// Certificate extension in which the CA records a [`KeyAssurance`] other than
/// [`KeyAssurance::Unattested`]; read back by the bastion and by `pam_rampart`,
/// which trust it because the CA signed it.
pub const EXT_MFA_KEY: &str = "mfa-key@rampart";
/// Value of [`EXT_MFA_KEY`] for [`KeyAssurance::HardwareAttested`] (a YubiKey
/// PIV attestation verified at issuance).
pub const EXT_MFA_KEY_PIV: &str = "piv-attested";

impl KeyAssurance {
    /// The assurance a signed certificate records in [`EXT_MFA_KEY`]: hardware
    /// only for exactly [`EXT_MFA_KEY_PIV`]; absent or anything else is
    /// unattested (never more than the CA wrote).
    pub fn from_extension(value: Option<&str>) -> KeyAssurance {
        match value {
            Some(EXT_MFA_KEY_PIV) => KeyAssurance::HardwareAttested,
            _ => KeyAssurance::Unattested,
        }
    }

    /// The strength a request reaches with `factor` and this key: an attested key
    /// lifts it to [`FactorStrength::HardwareBound`] (never lowers it), so that a
    /// role with `min_factor = "hardware-bound"` needs an attested key.
    pub fn lift(self, factor: FactorStrength) -> FactorStrength {
        match self {
            KeyAssurance::Unattested => factor,
            KeyAssurance::HardwareAttested => factor.max(FactorStrength::HardwareBound),
        }
    }
}

/// Formats as the `FromStr` spelling: `webauthn-uv` for a user-verified assertion,
/// with `-unattested` appended when the CA does not trust the key's model and
/// `-link` when the assertion came through the approval page.
impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Factor::Webauthn {
                user_verified,
                attested,
                via_link,
            } => {
                f.write_str("webauthn")?;
                if *user_verified {
                    f.write_str("-uv")?;
                }
                if !*attested {
                    f.write_str("-unattested")?;
                }
                if *via_link {
                    f.write_str("-link")?;
                }
                Ok(())
            }
            other => f.write_str(other.method().as_str()),
        }
    }
}

impl FromStr for Factor {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let unknown = || PolicyError::UnknownFactor {
            value: s.to_owned(),
            expected: Self::ALL,
        };
        Ok(match s {
            "totp" => Factor::Totp,
            "recovery" => Factor::Recovery,
            "oidc" => Factor::Oidc,
            _ => {
                // `webauthn`, then each suffix at most once and in this order,
                // so that every factor has exactly one spelling.
                let rest = s.strip_prefix("webauthn").ok_or_else(unknown)?;
                let (user_verified, rest) = match rest.strip_prefix("-uv") {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let (attested, rest) = match rest.strip_prefix("-unattested") {
                    Some(r) => (false, r),
                    None => (true, rest),
                };
                let (via_link, rest) = match rest.strip_prefix("-link") {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                if !rest.is_empty() {
                    return Err(unknown());
                }
                Factor::Webauthn {
                    user_verified,
                    attested,
                    via_link,
                }
            }
        })
    }
}

/// Serialises as the `Display` spelling, e.g. `"webauthn-uv"`.
impl serde::Serialize for Factor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfa_methods_keep_their_names_and_refuse_others() {
        let names: Vec<&str> = MfaMethod::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["totp", "recovery", "webauthn", "oidc"]);
        for m in MfaMethod::ALL {
            assert_eq!(m.as_str().parse::<MfaMethod>().unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<MfaMethod>(&json).unwrap(), m);
        }
        // Only the exact names: no other case, no factor spellings, no PIV
        // (a key's attestation, not a login method).
        for bad in [
            "",
            "TOTP",
            "Totp",
            "webauthn-uv",
            "fido2",
            "piv",
            "sms",
            " totp",
        ] {
            let err = bad.parse::<MfaMethod>().unwrap_err().to_string();
            assert!(
                err.contains("totp, recovery, webauthn, oidc"),
                "{bad:?}: {err}"
            );
            assert!(
                serde_json::from_str::<MfaMethod>(&format!("{bad:?}")).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn strengths_are_ordered() {
        assert!(FactorStrength::Recovery < FactorStrength::Otp);
        assert!(FactorStrength::Otp < FactorStrength::UnattestedKey);
        assert!(FactorStrength::UnattestedKey < FactorStrength::PhishingResistant);
        assert!(FactorStrength::PhishingResistant < FactorStrength::HardwareBound);
    }

    #[test]
    fn strength_spellings_round_trip() {
        for s in [
            "recovery",
            "otp",
            "unattested-key",
            "phishing-resistant",
            "hardware-bound",
        ] {
            let v: FactorStrength = s.parse().unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
            let back: FactorStrength = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(back, v);
        }
        assert!("phishing_resistant".parse::<FactorStrength>().is_err());
        assert!("OTP".parse::<FactorStrength>().is_err());
    }

    #[test]
    fn an_attested_key_lifts_strength_to_hardware_bound_and_never_lowers_it() {
        let table = [
            (
                KeyAssurance::Unattested,
                FactorStrength::Otp,
                FactorStrength::Otp,
            ),
            (
                KeyAssurance::Unattested,
                FactorStrength::PhishingResistant,
                FactorStrength::PhishingResistant,
            ),
            (
                KeyAssurance::HardwareAttested,
                FactorStrength::Recovery,
                FactorStrength::HardwareBound,
            ),
            (
                KeyAssurance::HardwareAttested,
                FactorStrength::Otp,
                FactorStrength::HardwareBound,
            ),
            (
                KeyAssurance::HardwareAttested,
                FactorStrength::HardwareBound,
                FactorStrength::HardwareBound,
            ),
        ];
        for (key, factor, want) in table {
            assert_eq!(key.lift(factor), want, "{key:?} {factor:?}");
        }
        assert_eq!(KeyAssurance::default(), KeyAssurance::Unattested);
    }

    #[test]
    fn factors_map_to_method_and_strength() {
        let table = [
            ("totp", "totp", FactorStrength::Otp),
            ("recovery", "recovery", FactorStrength::Recovery),
            ("webauthn", "webauthn", FactorStrength::Otp),
            ("webauthn-uv", "webauthn", FactorStrength::PhishingResistant),
            ("webauthn-unattested", "webauthn", FactorStrength::Otp),
            (
                "webauthn-uv-unattested",
                "webauthn",
                FactorStrength::UnattestedKey,
            ),
            ("oidc", "oidc", FactorStrength::Otp),
            // How the assertion arrived never changes what it proves.
            ("webauthn-link", "webauthn", FactorStrength::Otp),
            (
                "webauthn-uv-link",
                "webauthn",
                FactorStrength::PhishingResistant,
            ),
            (
                "webauthn-uv-unattested-link",
                "webauthn",
                FactorStrength::UnattestedKey,
            ),
        ];
        for (input, method, strength) in table {
            let f: Factor = input.parse().unwrap();
            assert_eq!(f.method().as_str(), method, "{input}");
            assert_eq!(f.strength(), strength, "{input}");
            assert_eq!(f.to_string(), input);
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{input}\""));
        }
        let err = "sms".parse::<Factor>().unwrap_err().to_string();
        assert!(err.contains("sms") && err.contains("webauthn-uv"), "{err}");
        // One spelling per factor: suffixes in order, once each, nothing after.
        for bad in [
            "webauthn-link-uv",
            "webauthn-unattested-uv",
            "webauthn-uv-uv",
            "webauthn-link-link",
            "webauthn-",
            "webauthnx",
            "webauthn-uv-direct",
        ] {
            assert!(bad.parse::<Factor>().is_err(), "{bad}");
        }
        assert_eq!(
            "webauthn-uv-link".parse::<Factor>().unwrap(),
            Factor::Webauthn {
                user_verified: true,
                attested: true,
                via_link: true,
            }
        );
        assert_eq!(
            "webauthn-uv".parse::<Factor>().unwrap(),
            Factor::Webauthn {
                user_verified: true,
                attested: true,
                via_link: false,
            }
        );
    }
}
