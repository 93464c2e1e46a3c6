//! M8, factor coverage: per role, how many enabled users have a factor and a
//! phishing-resistant one, computed from the store at most every
//! [`COVERAGE_EVERY`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;
use crate::error::CaError;

/// Coverage of one scope (a role, or `all`) for M8.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Enabled users.
    pub users: i64,
    /// … with at least one factor.
    pub with_factor: i64,
    /// … with a phishing-resistant factor.
    pub phishing_resistant: i64,
}

/// Replace the M8 gauges: coverage per role (`all` included by the caller) and
/// users per enrolled factor.
pub fn set_coverage(per_role: &HashMap<String, Coverage>, per_factor: &HashMap<Factor, i64>) {
    let m = metrics();
    m.users.clear();
    m.users_with_factor.clear();
    m.users_phishing_resistant.clear();
    for (role, c) in per_role {
        let role = Role {
            role: m.roles.label(role),
        };
        m.users.get_or_create_owned(&role).inc_by(c.users);
        m.users_with_factor
            .get_or_create_owned(&role)
            .inc_by(c.with_factor);
        m.users_phishing_resistant
            .get_or_create_owned(&role)
            .inc_by(c.phishing_resistant);
    }
    for factor in Factor::ALL {
        m.factor_users
            .get_or_create_owned(&FactorOnly {
                factor: factor.as_str(),
            })
            .set(per_factor.get(&factor).copied().unwrap_or(0));
    }
}

/// Compute M8 from the store: every enabled user, their enrolled factors, and the
/// roles policy gives them. One user list plus one factor lookup per user; run at
/// most every [`COVERAGE_EVERY`] (scrapes in between reuse the last figures).
/// `key_attested` says whether the CA vouches for a key's model: only such a key
/// makes its user count as phishing-resistant, as it does for policy.
pub fn refresh_coverage(
    store: &dyn crate::store::Store,
    policy: &rampart_policy::Policy,
    key_attested: &dyn Fn(&crate::store::WebauthnKeyRecord) -> bool,
) -> Result<(), CaError> {
    if let Ok(mut last) = metrics().coverage_at.lock() {
        if last.is_some_and(|t| t.elapsed() < COVERAGE_EVERY) {
            return Ok(());
        }
        *last = Some(Instant::now());
    }
    let mut per_role: HashMap<String, Coverage> = HashMap::new();
    for role in policy.role_names() {
        per_role.insert(role.to_owned(), Coverage::default());
    }
    let mut per_factor: HashMap<Factor, i64> = HashMap::new();
    for user in store.users()? {
        if user.disabled {
            continue;
        }
        let mut factors = Vec::new();
        if store.totp(&user.name)?.is_some() {
            factors.push(Factor::Totp);
        }
        if store.recovery_codes_left(&user.name)? > 0 {
            factors.push(Factor::Recovery);
        }
        let keys = store.webauthn_keys(&user.name)?;
        let usable = || keys.iter().filter(|k| k.disabled_reason.is_none());
        if usable().next().is_some() {
            factors.push(Factor::Webauthn);
        }
        for f in &factors {
            *per_factor.entry(*f).or_default() += 1;
        }
        // A recovery code alone is not a factor anyone should log in with daily.
        let with_factor = factors.iter().any(|f| *f != Factor::Recovery);
        // An unattested key may be a software authenticator: not resistant.
        let resistant = factors
            .iter()
            .any(|f| f.phishing_resistant() && *f != Factor::Webauthn)
            || usable().any(key_attested);
        let roles = policy.roles_for(&user.name, &user.groups);
        for scope in roles.iter().map(String::as_str).chain(["all"]) {
            let c = per_role.entry(scope.to_owned()).or_default();
            c.users += 1;
            c.with_factor += i64::from(with_factor);
            c.phishing_resistant += i64::from(resistant);
        }
    }
    per_role.entry("all".to_owned()).or_default();
    set_coverage(&per_role, &per_factor);
    Ok(())
}

/// Least time between two coverage computations.
pub const COVERAGE_EVERY: Duration = Duration::from_secs(5);
