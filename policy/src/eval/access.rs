//! Bastion access: may this user reach `login@target`, and with which switches.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;

use crate::glob::glob_match;
use crate::names::{check_name, check_target_pattern, expand};
use crate::{Factor, KeyAssurance, Policy};

use super::*;

/// A bastion access request: may `user` open `login@target`?
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    /// The authenticated user name (from the outer certificate).
    pub user: &'a str,
    /// The user's groups.
    pub groups: &'a [String],
    /// The factor the user proved.
    pub factor: Factor,
    /// When that factor was proved.
    pub mfa_time: DateTime<Utc>,
    /// The account on the target.
    pub login: &'a str,
    /// The target's name as the user addressed it.
    pub target: &'a str,
    /// The target's labels (from the bastion's target list). A role with
    /// `target_labels` reaches the target only if each of its labels is here
    /// with the same value.
    pub labels: &'a BTreeMap<String, String>,
}

/// Permission to open one bastion session. Only [`evaluate_access`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    user: String,
    login: String,
    target: String,
    roles: Vec<String>,
    reasons: Vec<String>,
    session_mfa: bool,
    webauthn_link: bool,
    record_input: bool,
    record_metered_mib: Option<u64>,
    port_forwarding: bool,
    agent_forwarding: bool,
}

impl AccessGrant {
    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The account on the target.
    pub fn login(&self) -> &str {
        &self.login
    }
    /// The target.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// Roles that permit this access, sorted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// Human-readable explanation.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// A per-session code is needed before the bastion connects onward: true if
    /// ANY permitting role says `session_mfa` (the strictest role wins, so adding
    /// a role to a user never weakens a requirement another role sets).
    pub fn session_mfa(&self) -> bool {
        self.session_mfa
    }
    /// Whether a security-key approval given on the CA's page (the only way a
    /// per-session approval is given) can satisfy this access: true if any
    /// permitting role keeps `webauthn_link` on. When it is false the CA asks
    /// for a per-session TOTP code instead, or refuses.
    pub fn webauthn_link(&self) -> bool {
        self.webauthn_link
    }
    /// Record keystrokes too: true if any permitting role says `record_input`.
    pub fn record_input(&self) -> bool {
        self.record_input
    }
    /// `Some(n)`: bulk data (exec and subsystem channels without a pty) may be
    /// metered: the first `n` MiB of each direction stored, the rest counted
    /// and hashed. Only when every permitting role says `record = "metered"`
    /// (a role that records in full wins, so adding a role never loses
    /// recorded data), with the largest of their `record_metered_mib`.
    pub fn record_metered_mib(&self) -> Option<u64> {
        self.record_metered_mib
    }
    /// Port forwarding allowed: true if any permitting role allows it (roles add
    /// permissions, as they add principals).
    pub fn port_forwarding(&self) -> bool {
        self.port_forwarding
    }
    /// Agent forwarding allowed: true if any permitting role allows it.
    pub fn agent_forwarding(&self) -> bool {
        self.agent_forwarding
    }
}

impl serde::Serialize for AccessGrant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AccessGrant", 11)?;
        st.serialize_field("user", &self.user)?;
        st.serialize_field("login", &self.login)?;
        st.serialize_field("target", &self.target)?;
        st.serialize_field("roles", &self.roles)?;
        st.serialize_field("reasons", &self.reasons)?;
        st.serialize_field("session_mfa", &self.session_mfa)?;
        st.serialize_field("webauthn_link", &self.webauthn_link)?;
        st.serialize_field("record_input", &self.record_input)?;
        st.serialize_field("record_metered_mib", &self.record_metered_mib)?;
        st.serialize_field("port_forwarding", &self.port_forwarding)?;
        st.serialize_field("agent_forwarding", &self.agent_forwarding)?;
        st.end()
    }
}

/// Decide whether `user` may open `login@target` through the bastion.
///
/// The same role selection as [`evaluate`] (deny rules, factor, freshness), then a
/// role permits the access if one of its `targets.allow` globs matches the target,
/// none of its `targets.deny` globs does, the target carries every one of its
/// `target_labels`, and its logins (default: its principals, `{user}` expanded,
/// deny-rule principals removed) include `login`. A role without `targets`
/// reaches nothing (fail closed). The bastion switches of the grant combine the
/// permitting roles: see [`AccessGrant::session_mfa`] and the others.
pub fn evaluate_access(
    req: &AccessRequest<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<AccessGrant, Denial> {
    evaluate_access_with_key(req, KeyAssurance::Unattested, policy, now)
}

/// [`evaluate_access`] for a user whose outer certificate's key was attested
/// (the CA marked it `mfa-key@rampart=piv-attested` at issuance): roles with
/// `min_factor = "hardware-bound"` can then permit the access, as they could
/// contribute to that certificate ([`evaluate_with_key`]).
pub fn evaluate_access_with_key(
    req: &AccessRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<AccessGrant, Denial> {
    check_name("login", req.login).map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;
    check_target_pattern(req.target)
        .and_then(|()| {
            if req.target.contains(['*', '?']) {
                Err(format!(
                    "target {:?} must not contain wildcards",
                    req.target
                ))
            } else {
                Ok(())
            }
        })
        .map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;
    let subject = Subject {
        user: req.user,
        groups: req.groups,
        factor: &req.factor,
        mfa_time: req.mfa_time,
        key,
    };
    let sel = select(&subject, policy, now)?;

    let mut reaching = Vec::new();
    let mut permitting = Vec::new();
    let mut label_misses = Vec::new();
    let (mut session_mfa, mut record_input, mut port_forwarding, mut agent_forwarding) =
        (false, false, false, false);
    let mut webauthn_link = false;
    // Metered only while every permitting role meters (`Some(0)` = none yet).
    let mut record_metered_mib = Some(0);
    for role in &sel.roles {
        let allowed = role.targets_allow.iter().any(|p| glob_match(p, req.target))
            && !role.targets_deny.iter().any(|p| glob_match(p, req.target));
        if !allowed {
            continue;
        }
        if let Some((k, v)) = role
            .target_labels
            .iter()
            .find(|(k, v)| req.labels.get(*k) != Some(*v))
        {
            label_misses.push(format!("{} needs label {k}={v}", role.name));
            continue;
        }
        reaching.push(role.name.clone());
        let login_ok = role.login_templates().iter().any(|t| {
            let l = expand(t, req.user);
            l == req.login && !sel.denied_principals.contains_key(&l)
        });
        if login_ok {
            permitting.push(role.name.clone());
            session_mfa |= role.session_mfa;
            webauthn_link |= role.webauthn_link;
            record_input |= role.record_input;
            record_metered_mib = match (record_metered_mib, role.record_metered_mib) {
                (Some(have), Some(mib)) => Some(have.max(mib)),
                _ => None,
            };
            port_forwarding |= role.port_forwarding;
            agent_forwarding |= role.agent_forwarding;
        }
    }
    if permitting.is_empty() {
        // A role the key's use through a link left out would have permitted
        // this: say that, rather than that no role reaches the target.
        let would = sel.link_refused.iter().find(|role| {
            role.targets_allow.iter().any(|p| glob_match(p, req.target))
                && !role.targets_deny.iter().any(|p| glob_match(p, req.target))
                && role
                    .target_labels
                    .iter()
                    .all(|(k, v)| req.labels.get(k) == Some(v))
                && role.login_templates().iter().any(|t| {
                    let l = expand(t, req.user);
                    l == req.login && !sel.denied_principals.contains_key(&l)
                })
        });
        if let Some(role) = would {
            return Err(Denial::new(
                DenyCode::WebauthnLinkRefused,
                format!(
                    "role {} would permit {}@{}, but it accepts a security key only from your \
                     own machine, not approved through a link (rampart login --mfa fido2)",
                    role.name, req.login, req.target
                ),
            ));
        }
    }
    let all: Vec<&str> = sel.roles.iter().map(|r| r.name.as_str()).collect();
    if reaching.is_empty() {
        let labels = if label_misses.is_empty() {
            String::new()
        } else {
            format!(" (target labels: {})", label_misses.join("; "))
        };
        return Err(Denial::new(
            DenyCode::TargetNotAllowed,
            format!(
                "none of your roles ({}) may reach target {}{labels}",
                all.join(", "),
                req.target
            ),
        ));
    }
    if permitting.is_empty() {
        return Err(Denial::new(
            DenyCode::LoginNotGranted,
            format!(
                "roles that may reach {} ({}) do not grant login {}",
                req.target,
                reaching.join(", "),
                req.login
            ),
        ));
    }
    let mut reasons = vec![format!(
        "{}@{} permitted by role(s) {}",
        req.login,
        req.target,
        permitting.join(", ")
    )];
    reasons.extend(sel.reasons);
    Ok(AccessGrant {
        user: req.user.to_owned(),
        login: req.login.to_owned(),
        target: req.target.to_owned(),
        roles: permitting,
        reasons,
        session_mfa,
        webauthn_link,
        record_input,
        record_metered_mib: record_metered_mib.filter(|mib| *mib > 0),
        port_forwarding,
        agent_forwarding,
    })
}
