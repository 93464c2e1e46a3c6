//! What an attestation states: the key's PIN and touch policies, and the
//! device facts ([`Attested`]) recorded in the certificate and the audit event.

use super::{EXT_KEY, EXT_KEY_PIV, EXT_PIV_POLICY, EXT_PIV_SERIAL};

/// A key's PIN policy as the attestation states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinPolicy {
    /// No PIN for private-key operations.
    Never,
    /// PIN once per session.
    Once,
    /// PIN before every operation.
    Always,
    /// Biometric match (or PIN) once per session (YubiKey Bio, 5.7+).
    MatchOnce,
    /// Biometric match (or PIN) before every operation (YubiKey Bio, 5.7+).
    MatchAlways,
}

impl PinPolicy {
    const ALL: [PinPolicy; 5] = [
        PinPolicy::Never,
        PinPolicy::Once,
        PinPolicy::Always,
        PinPolicy::MatchOnce,
        PinPolicy::MatchAlways,
    ];

    /// Config and extension spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PinPolicy::Never => "never",
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
            PinPolicy::MatchOnce => "match-once",
            PinPolicy::MatchAlways => "match-always",
        }
    }

    pub(super) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => PinPolicy::Never,
            2 => PinPolicy::Once,
            3 => PinPolicy::Always,
            4 => PinPolicy::MatchOnce,
            5 => PinPolicy::MatchAlways,
            _ => return None,
        })
    }

    /// Parse the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for PinPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's touch policy as the attestation states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TouchPolicy {
    /// No touch.
    Never,
    /// A touch for every operation.
    Always,
    /// A touch, then 15 seconds without.
    Cached,
}

impl TouchPolicy {
    const ALL: [TouchPolicy; 3] = [TouchPolicy::Never, TouchPolicy::Always, TouchPolicy::Cached];

    /// Config and extension spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchPolicy::Never => "never",
            TouchPolicy::Always => "always",
            TouchPolicy::Cached => "cached",
        }
    }

    pub(super) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => TouchPolicy::Never,
            2 => TouchPolicy::Always,
            3 => TouchPolicy::Cached,
            _ => return None,
        })
    }

    /// Parse the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for TouchPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a verified attestation says about the key and the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The YubiKey's serial number, if the attestation carries it.
    pub serial: Option<u32>,
    /// Firmware `major.minor.patch`, if present.
    pub firmware: Option<String>,
    /// The key's PIN policy.
    pub pin_policy: PinPolicy,
    /// The key's touch policy.
    pub touch_policy: TouchPolicy,
    /// The form factor byte, if present.
    pub form_factor: Option<u8>,
    /// Subject of the root the chain ends in (RFC 4514 string).
    pub root: String,
}

impl Attested {
    /// Certificate extensions recording this attestation: [`EXT_KEY`] always,
    /// [`EXT_PIV_SERIAL`] when the serial is known, and [`EXT_PIV_POLICY`].
    pub fn extensions(&self) -> Vec<(String, String)> {
        let mut out = vec![(EXT_KEY.to_owned(), EXT_KEY_PIV.to_owned())];
        if let Some(s) = self.serial {
            out.push((EXT_PIV_SERIAL.to_owned(), s.to_string()));
        }
        out.push((
            EXT_PIV_POLICY.to_owned(),
            format!("pin={},touch={}", self.pin_policy, self.touch_policy),
        ));
        out
    }
}

impl Attested {
    /// The `piv_attestation` detail of the `cert_issued` audit event.
    pub fn audit_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "serial": self.serial,
            "firmware": self.firmware,
            "pin_policy": self.pin_policy.as_str(),
            "touch_policy": self.touch_policy.as_str(),
            "form_factor": self.form_factor,
            "root": self.root,
        })
    }
}
