//! Steps 6-7: user and per-session certificates from the contributing roles.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::duration::format_duration;
use crate::names::{check_name, expand};
use crate::{KeyAssurance, Policy};

use super::*;

/// Decide whether to issue a user certificate, and with what contents.
///
/// Pure: `now` is the only notion of time. See the module docs for the semantics.
pub fn evaluate(req: &CertRequest<'_>, policy: &Policy, now: DateTime<Utc>) -> Decision {
    evaluate_with_key(req, KeyAssurance::Unattested, policy, now)
}

/// [`evaluate`] for a key whose custody the CA has verified (e.g. a YubiKey PIV
/// attestation): the factor strength is lifted by [`KeyAssurance::lift`], so a
/// role with `min_factor = "hardware-bound"` contributes only with an attested
/// key. The grant remembers the assurance ([`Grant::key_assurance`]).
pub fn evaluate_with_key(
    req: &CertRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    match evaluate_inner(req, key, policy, now, CertUse::User) {
        Ok(g) => Decision::Allow(g),
        Err(d) => Decision::Deny(d),
    }
}

/// [`evaluate_with_key`] for a bastion's per-session certificate: roles with
/// `access = "bastion"` contribute too. The CA calls this only for a bastion,
/// after [`evaluate_access_with_key`] allowed the login and target.
pub fn evaluate_session_with_key(
    req: &CertRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    match evaluate_inner(req, key, policy, now, CertUse::BastionSession) {
        Ok(g) => Decision::Allow(g),
        Err(d) => Decision::Deny(d),
    }
}

/// The principal a user certificate carries when every principal the user's
/// roles grant is bastion-only. A certificate with no principal at all would
/// be valid for every account (PROTOCOL.certkeys), so it gets this one, which
/// no account can match: `:` cannot appear in a Unix account name.
pub const BASTION_ONLY_PRINCIPAL: &str = "rampart:bastion-only";

/// Extension that marks a bastion's per-session certificate, with the value
/// `<bastion> <session id>`. Only the CA signs it, and only into a per-session
/// certificate, so a host can require it for accounts that must be reached
/// through a bastion (`rampart host principals`, `via_bastion = true`).
pub const EXT_BASTION_SESSION: &str = "bastion-session@rampart";

/// What a certificate is for, which decides whether bastion-only roles
/// contribute principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CertUse {
    /// The user's own certificate (`rampart login`).
    User,
    /// A bastion's per-session certificate.
    BastionSession,
}

pub(super) fn evaluate_inner(
    req: &CertRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
    cert_use: CertUse,
) -> Result<Grant, Denial> {
    if let Some(t) = req.requested_ttl {
        if t.as_secs() == 0 {
            return Err(Denial::new(
                DenyCode::InvalidRequest,
                "requested lifetime must be at least 1s",
            ));
        }
    }
    if let Some(login) = req.login {
        check_name("login", login).map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;
    }
    let subject = Subject {
        user: req.user,
        groups: req.groups,
        factor: &req.factor,
        mfa_time: req.mfa_time,
        key,
    };
    let sel = select(&subject, policy, now)?;
    let mut reasons = Vec::new();

    let mut principals: Vec<String> = Vec::new();
    for role in &sel.roles {
        if role.bastion_only && cert_use == CertUse::User {
            reasons.push(format!(
                "role {} is bastion-only: its principals go only into per-session certificates",
                role.name
            ));
            continue;
        }
        let mut from_role = Vec::new();
        for t in &role.principals {
            let p = expand(t, req.user);
            if let Err(m) = check_name("principal", &p) {
                reasons.push(format!("role {}: skipped principal: {m}", role.name));
                continue;
            }
            if let Some(why) = sel.denied_principals.get(&p) {
                reasons.push(format!(
                    "role {}: principal {p} removed by a deny rule: {why}",
                    role.name
                ));
                continue;
            }
            from_role.push(p.clone());
            if !principals.contains(&p) {
                principals.push(p);
            }
        }
        reasons.push(if from_role.is_empty() {
            format!("role {} contributes no principals", role.name)
        } else {
            format!("role {} grants {}", role.name, from_role.join(", "))
        });
    }
    reasons.extend(sel.reasons);
    let role_names: Vec<String> = sel.roles.iter().map(|r| r.name.clone()).collect();

    if principals.is_empty()
        && cert_use == CertUse::User
        && sel.roles.iter().any(|r| r.bastion_only)
    {
        // The certificate is for reaching the bastion only.
        principals.push(BASTION_ONLY_PRINCIPAL.to_owned());
    }
    if principals.is_empty() {
        return Err(Denial::new(
            DenyCode::NoPrincipals,
            format!(
                "roles {} grant no principals ({})",
                role_names.join(", "),
                reasons.join("; ")
            ),
        ));
    }
    if let Some(login) = req.login {
        if !principals.iter().any(|p| p == login) {
            return Err(Denial::new(
                DenyCode::LoginNotGranted,
                format!(
                    "login {login} is not granted; your principals are {}",
                    principals.join(", ")
                ),
            ));
        }
    }

    // Lifetime: requested or default, clamped to the global and the strictest role
    // ceiling (fail closed: a short-lived role keeps the whole certificate short).
    let wanted = req.requested_ttl.unwrap_or(policy.default_ttl);
    let mut ceiling = policy.max_ttl;
    let mut ceiling_src = "defaults.max_ttl".to_owned();
    for role in &sel.roles {
        if let Some(m) = role.max_ttl {
            if m < ceiling {
                ceiling = m;
                ceiling_src = format!("roles.{}.max_ttl", role.name);
            }
        }
    }
    let ttl = if wanted > ceiling {
        reasons.push(format!(
            "lifetime {} clamped to {} by {ceiling_src}",
            format_duration(wanted),
            format_duration(ceiling)
        ));
        ceiling
    } else {
        wanted
    };
    // Certificates count in whole seconds; never round up past a ceiling.
    let ttl = Duration::from_secs(ttl.as_secs().max(1));

    let mut extensions = BTreeMap::new();
    for role in &sel.roles {
        for e in &role.extensions {
            extensions.insert(e.clone(), String::new());
        }
    }

    // Fail closed: any restricting role restricts the whole certificate.
    let mut source_address: Vec<IpNet> = Vec::new();
    for role in &sel.roles {
        for net in &role.source_address {
            if !source_address.contains(net) {
                source_address.push(*net);
            }
        }
    }
    if !source_address.is_empty() {
        let restricting: Vec<&str> = sel
            .roles
            .iter()
            .filter(|r| !r.source_address.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        reasons.push(format!(
            "source-address restricted by role(s) {}",
            restricting.join(", ")
        ));
    }

    Ok(Grant {
        user: req.user.to_owned(),
        roles: role_names,
        principals,
        ttl,
        extensions,
        source_address,
        factor: req.factor.clone(),
        mfa_time: req.mfa_time,
        reasons,
        key,
    })
}
