//! A granted certificate: the only road from policy to a signature.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::ser::SerializeStruct;

use crate::{Factor, KeyAssurance};

/// An approved user certificate specification.
///
/// Fields are private and there is no constructor or `Deserialize`: the only way to
/// get one is [`evaluate`], so code that takes a `Grant` cannot sign without a
/// policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub(super) user: String,
    pub(super) roles: Vec<String>,
    pub(super) principals: Vec<String>,
    pub(super) ttl: Duration,
    pub(super) extensions: BTreeMap<String, String>,
    pub(super) source_address: Vec<IpNet>,
    pub(super) factor: Factor,
    pub(super) mfa_time: DateTime<Utc>,
    pub(super) reasons: Vec<String>,
    pub(super) key: KeyAssurance,
}

impl Grant {
    /// The user the certificate is for.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// Principals to put in the certificate; never empty.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }
    /// The roles that contributed to this grant, sorted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// Certificate lifetime, whole seconds, at least 1s:
    /// min(requested or default, smallest contributing role `max_ttl`, `defaults.max_ttl`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// Certificate extensions, e.g. `"permit-pty" → ""` (OpenSSH's flag extensions
    /// have empty data, PROTOCOL.certkeys).
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }
    /// CIDRs for the `source-address` critical option; empty = unrestricted.
    pub fn source_address(&self) -> &[IpNet] {
        &self.source_address
    }
    /// The factor the user proved.
    pub fn factor(&self) -> &Factor {
        &self.factor
    }
    /// When the factor was proved.
    pub fn mfa_time(&self) -> DateTime<Utc> {
        self.mfa_time
    }
    /// Human-readable explanation: which roles contributed, why others did not.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// What was proved about the certified key (see [`evaluate_with_key`]).
    pub fn key_assurance(&self) -> KeyAssurance {
        self.key
    }
}

/// JSON for `rampart policy test`; the lifetime is `ttl_seconds`.
impl serde::Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Grant", 9)?;
        st.serialize_field("user", &self.user)?;
        st.serialize_field("roles", &self.roles)?;
        st.serialize_field("principals", &self.principals)?;
        st.serialize_field("ttl_seconds", &self.ttl.as_secs())?;
        st.serialize_field("extensions", &self.extensions)?;
        let nets: Vec<String> = self
            .source_address
            .iter()
            .map(ToString::to_string)
            .collect();
        st.serialize_field("source_address", &nets)?;
        st.serialize_field("factor", &self.factor)?;
        st.serialize_field("factor_strength", &self.key.lift(self.factor.strength()))?;
        if self.key != KeyAssurance::Unattested {
            st.serialize_field("key", &self.key)?;
        }
        st.serialize_field("mfa_time", &self.mfa_time)?;
        st.serialize_field("reasons", &self.reasons)?;
        st.end()
    }
}
