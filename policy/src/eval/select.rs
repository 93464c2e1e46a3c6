//! Steps 3-5: the roles a request selects and why each does or does not contribute.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::format_duration;
use crate::names::{check_name, expand};
use crate::policy::Role;
use crate::{Factor, FactorStrength, KeyAssurance, Policy};

use super::*;

/// Who is asking, shared by certificate and access evaluation.
pub(super) struct Subject<'a> {
    pub(super) user: &'a str,
    pub(super) groups: &'a [String],
    pub(super) factor: &'a Factor,
    pub(super) mfa_time: DateTime<Utc>,
    pub(super) key: KeyAssurance,
}

/// Roles that survived deny rules and factor checks.
pub(super) struct Selection<'p> {
    pub(super) roles: Vec<&'p Role>,
    /// Roles left out only because the key was used through a link
    /// (`webauthn_link = false`): bastion access names them when they are
    /// what would have permitted the session.
    pub(super) link_refused: Vec<&'p Role>,
    /// Expanded principal → the deny rule reason that removes it.
    pub(super) denied_principals: BTreeMap<String, String>,
    pub(super) reasons: Vec<String>,
}

/// Steps 2–5 of the module documentation.
pub(super) fn select<'p>(
    s: &Subject<'_>,
    policy: &'p Policy,
    now: DateTime<Utc>,
) -> Result<Selection<'p>, Denial> {
    check_name("user name", s.user).map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;

    let skew = chrono::TimeDelta::from_std(MAX_CLOCK_SKEW).unwrap_or(chrono::TimeDelta::MAX);
    if s.mfa_time
        > now
            .checked_add_signed(skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    {
        return Err(Denial::new(
            DenyCode::MfaInFuture,
            format!(
                "MFA time {} is in the future (now {}); check the CA's clock",
                s.mfa_time.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    // A small negative age (clock skew) counts as "just now".
    let age = now
        .signed_duration_since(s.mfa_time)
        .to_std()
        .unwrap_or(Duration::ZERO);

    let mut candidates = policy.roles_for(s.user, s.groups);
    if candidates.is_empty() {
        let groups = if s.groups.is_empty() {
            "no groups".to_owned()
        } else {
            format!("groups: {}", s.groups.join(", "))
        };
        return Err(Denial::new(
            DenyCode::NoRole,
            format!("no role is granted to {} ({groups})", s.user),
        ));
    }

    let mut reasons = Vec::new();
    let mut denied_principals = BTreeMap::new();
    for rule in policy.deny.iter().filter(|r| r.matches(s.user, s.groups)) {
        candidates.retain(|role| {
            let removed = rule.removes_role(role);
            if removed {
                reasons.push(format!(
                    "role {role} removed by a deny rule: {}",
                    rule.reason
                ));
            }
            !removed
        });
        for p in &rule.principals {
            denied_principals
                .entry(expand(p, s.user))
                .or_insert_with(|| rule.reason.clone());
        }
    }
    if candidates.is_empty() {
        return Err(Denial::new(DenyCode::DeniedByRule, reasons.join("; ")));
    }

    let strength = s.key.lift(s.factor.strength());
    let mut contributing = Vec::new();
    let mut link_refused = Vec::new();
    let mut failures: Vec<(DenyCode, String)> = Vec::new();
    for name in &candidates {
        let Some(role) = policy.roles.get(name) else {
            // from_toml guarantees every referenced role exists.
            continue;
        };
        let needed = role
            .min_factor
            .unwrap_or(policy.min_factor)
            .max(policy.min_factor);
        let failure = if *s.factor == Factor::Recovery && !role.allow_recovery {
            Some((
                DenyCode::RecoveryRefused,
                format!("role {name} does not accept recovery codes"),
            ))
        } else if strength < needed {
            Some((
                DenyCode::FactorTooWeak,
                format!(
                    "role {name} needs a {needed} factor; you used {} ({strength}){}",
                    s.factor,
                    if needed == FactorStrength::HardwareBound {
                        " (hardware-bound needs a PIV-attested key: rampart login --key piv)"
                    } else if strength == FactorStrength::UnattestedKey {
                        " (the CA does not trust this security key's model: its attestation \
                         was not verified and its AAGUID is not allow-listed)"
                    } else {
                        ""
                    }
                ),
            ))
        } else if matches!(s.factor, Factor::Webauthn { via_link: true, .. }) && !role.webauthn_link
        {
            Some((
                DenyCode::WebauthnLinkRefused,
                format!(
                    "role {name} accepts a security key only from your own machine, not \
                     approved through a link (rampart login --mfa fido2)"
                ),
            ))
        } else {
            match role.mfa_max_age {
                Some(max) if age > max => Some((
                    DenyCode::MfaTooOld,
                    format!(
                        "role {name} needs MFA within the last {}; yours is {} old",
                        format_duration(max),
                        format_duration(age)
                    ),
                )),
                _ => None,
            }
        };
        match failure {
            Some(f) => {
                if f.0 == DenyCode::WebauthnLinkRefused {
                    link_refused.push(role);
                }
                failures.push(f);
            }
            None => contributing.push(role),
        }
    }

    if contributing.is_empty() {
        // The most specific cause: the one the user can act on most directly.
        let order = [
            DenyCode::RecoveryRefused,
            DenyCode::WebauthnLinkRefused,
            DenyCode::FactorTooWeak,
            DenyCode::MfaTooOld,
        ];
        let code = order
            .into_iter()
            .find(|c| failures.iter().any(|(fc, _)| fc == c))
            .unwrap_or(DenyCode::NoRole);
        let mut all: Vec<String> = failures.into_iter().map(|(_, m)| m).collect();
        all.extend(reasons);
        return Err(Denial::new(code, all.join("; ")));
    }
    for (_, m) in failures {
        reasons.push(format!("not used: {m}"));
    }
    Ok(Selection {
        roles: contributing,
        link_refused,
        denied_principals,
        reasons,
    })
}
