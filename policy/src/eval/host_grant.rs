//! Host certificates: names checked, lifetime clamped.

use std::time::Duration;

use serde::ser::SerializeStruct;

use crate::names::check_host_name;
use crate::Policy;

use super::*;

/// An approved host certificate specification. Only [`approve_host`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    name: String,
    principals: Vec<String>,
    ttl: Duration,
}

impl HostGrant {
    /// The host's primary name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Principals: the name first, then the extra names, deduplicated.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }
    /// Lifetime, whole seconds, at most `hosts.max_ttl` (default 30d).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl serde::Serialize for HostGrant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("HostGrant", 3)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("principals", &self.principals)?;
        st.serialize_field("ttl_seconds", &self.ttl.as_secs())?;
        st.end()
    }
}

/// Approve a host certificate for `name` (plus `extra_principals`, e.g. aliases or
/// addresses). Every name must be an IP address or an RFC 1123 host name; the
/// lifetime is the requested one (default: the maximum) clamped to `hosts.max_ttl`.
pub fn approve_host(
    policy: &Policy,
    name: &str,
    extra_principals: &[String],
    requested_ttl: Option<Duration>,
) -> Result<HostGrant, Denial> {
    let mut principals: Vec<String> = Vec::new();
    for n in std::iter::once(name).chain(extra_principals.iter().map(String::as_str)) {
        check_host_name(n).map_err(|m| Denial::new(DenyCode::InvalidHostName, m))?;
        if !principals.iter().any(|p| p == n) {
            principals.push(n.to_owned());
        }
    }
    let max = policy.host_max_ttl;
    let ttl = match requested_ttl {
        Some(t) if t.as_secs() == 0 => {
            return Err(Denial::new(
                DenyCode::InvalidRequest,
                "requested lifetime must be at least 1s",
            ))
        }
        Some(t) => t.min(max),
        None => max,
    };
    Ok(HostGrant {
        name: name.to_owned(),
        principals,
        ttl: Duration::from_secs(ttl.as_secs()),
    })
}
