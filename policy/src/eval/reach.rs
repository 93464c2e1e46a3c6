//! What a user may reach through the bastions, as a list: the view behind
//! `rampart ls` (and what `rampart ssh` and `rampart login`'s Host blocks use).
//!
//! The policy names targets in two places: roles grant `targets.allow` globs,
//! and each bastion registers the names it may serve (`[bastions.<name>]
//! targets`). Only a target some bastion registers is reachable, so the list
//! is built from the registrations:
//!
//! - a registered **name** (no wildcard) is listed when a selected role's
//!   `targets.allow` matches it and no `targets.deny` does, with the logins
//!   those roles grant (deny-rule principals removed);
//! - a registered **pattern** (`db-*`) is listed as the pattern itself
//!   (`pattern = true`) when a role's allow glob could match a name it covers
//!   and no deny glob covers the whole pattern. The bastion decides the actual
//!   names; which of them a role reaches is known only per name.
//!
//! A role that grants a pattern no bastion registers lists nothing: nothing
//! serves those names. Target labels live in the bastions' own config, which
//! the policy does not see: a row reached only through roles with
//! `target_labels` says which labels the target must carry.
//!
//! This is a view, never a grant: the bastion still asks [`evaluate_access`]
//! for each session.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::glob::{glob_match, globs_intersect};
use crate::names::{check_name, expand};
use crate::{Factor, KeyAssurance, Policy};

use super::*;

/// Who asks for the list: the same subject as a certificate request.
#[derive(Debug, Clone)]
pub struct ReachRequest<'a> {
    /// The authenticated user name.
    pub user: &'a str,
    /// The user's groups.
    pub groups: &'a [String],
    /// The factor of the user's session.
    pub factor: Factor,
    /// When that factor was proved.
    pub mfa_time: DateTime<Utc>,
}

/// One target (or registered pattern) a user may reach through one bastion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reachable {
    /// The target name, or the registered pattern when `pattern` is true.
    pub target: String,
    /// `target` is a glob the bastion registers, not one host.
    pub pattern: bool,
    /// The bastion serving it.
    pub bastion: String,
    /// Accounts on the target, sorted.
    pub logins: Vec<String>,
    /// The roles that grant them, sorted.
    pub roles: Vec<String>,
    /// Some granting role asks for a per-session code or approval.
    pub session_mfa: bool,
    /// A per-session approval given on the CA's page can satisfy it (some
    /// granting role keeps `webauthn_link` on), as [`AccessGrant::webauthn_link`].
    pub webauthn_link: bool,
    /// Labels the target must carry: set when every granting role names
    /// `target_labels` (then the union of the labels of the roles that do);
    /// empty when some role reaches it whatever its labels.
    pub labels: BTreeMap<String, String>,
}

/// The targets `req.user` may reach, by bastion, then in the order the
/// bastion's `targets` lists them. An empty list
/// when no role reaches a registered target; the [`Denial`] when no role is
/// selected at all (no role, deny rules, factor, MFA age).
pub fn reachable(
    req: &ReachRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Vec<Reachable>, Denial> {
    let subject = Subject {
        user: req.user,
        groups: req.groups,
        factor: &req.factor,
        mfa_time: req.mfa_time,
        key,
    };
    let sel = select(&subject, policy, now)?;
    let mut out = Vec::new();
    for (bastion, entries) in &policy.bastions {
        for entry in entries {
            let pattern = entry.contains(['*', '?']);
            let mut logins = BTreeSet::new();
            let mut roles = Vec::new();
            let (mut session_mfa, mut webauthn_link) = (false, false);
            let mut unlabelled = false;
            let mut labels = BTreeMap::new();
            for role in &sel.roles {
                let reaches = if pattern {
                    role.targets_allow.iter().any(|p| globs_intersect(p, entry))
                        && !role.targets_deny.iter().any(|p| glob_match(p, entry))
                } else {
                    role.targets_allow.iter().any(|p| glob_match(p, entry))
                        && !role.targets_deny.iter().any(|p| glob_match(p, entry))
                };
                if !reaches {
                    continue;
                }
                let granted: Vec<String> = role
                    .login_templates()
                    .iter()
                    .map(|t| expand(t, req.user))
                    .filter(|l| {
                        !sel.denied_principals.contains_key(l) && check_name("login", l).is_ok()
                    })
                    .collect();
                if granted.is_empty() {
                    continue;
                }
                logins.extend(granted);
                roles.push(role.name.clone());
                session_mfa |= role.session_mfa;
                webauthn_link |= role.webauthn_link;
                if role.target_labels.is_empty() {
                    unlabelled = true;
                } else {
                    labels.extend(role.target_labels.clone());
                }
            }
            if roles.is_empty() {
                continue;
            }
            roles.sort();
            out.push(Reachable {
                target: entry.clone(),
                pattern,
                bastion: bastion.clone(),
                logins: logins.into_iter().collect(),
                roles,
                session_mfa,
                webauthn_link,
                labels: if unlabelled { BTreeMap::new() } else { labels },
            });
        }
    }
    Ok(out)
}
