//! What a role asks of an OpenID Connect step-up: `acr` values, `amr` values,
//! and the factor allowed instead while the identity provider is down.
//!
//! Freshness is not repeated here: a role's `mfa_max_age` already bounds the MFA
//! time, and for OIDC the MFA time is the token's `auth_time` (when the user
//! authenticated at the provider, not when the token was minted).

use std::time::Duration;

use crate::{Factor, Policy};

/// Longest `acr`/`amr` value accepted in a policy.
const MAX_VALUE_LEN: usize = 256;
/// Most values per list.
const MAX_VALUES: usize = 16;

/// One role's OIDC settings, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RoleOidc {
    /// Any one of these `acr` values satisfies the role (empty: no requirement).
    pub(crate) acr_any: Vec<String>,
    /// All of these must be in `amr` (empty: no requirement).
    pub(crate) amr_all: Vec<String>,
    /// Accepted instead of OIDC while the provider is unreachable.
    pub(crate) fallback: Option<Factor>,
}

fn check_values(key: &str, list: &[String]) -> Result<(), String> {
    if list.len() > MAX_VALUES {
        return Err(format!("{key} has more than {MAX_VALUES} values"));
    }
    for v in list {
        if v.is_empty() || v.len() > MAX_VALUE_LEN || v.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(format!(
                "{key} value {v:?} must be 1-{MAX_VALUE_LEN} printable characters without spaces"
            ));
        }
    }
    Ok(())
}

impl RoleOidc {
    pub(crate) fn from_raw(
        acr: Vec<String>,
        amr: Vec<String>,
        fallback: Option<String>,
    ) -> Result<RoleOidc, String> {
        check_values("oidc_acr", &acr)?;
        check_values("oidc_amr", &amr)?;
        let fallback = match fallback {
            None => None,
            Some(f) => {
                let factor: Factor = f.parse().map_err(|e| format!("fallback_factor: {e}"))?;
                if factor == Factor::Oidc {
                    return Err("fallback_factor cannot be oidc itself".into());
                }
                Some(factor)
            }
        };
        Ok(RoleOidc {
            acr_any: acr,
            amr_all: amr,
            fallback,
        })
    }

    fn is_empty(&self) -> bool {
        self.acr_any.is_empty() && self.amr_all.is_empty()
    }
}

/// Why an OIDC login does not satisfy a user's roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpReason {
    /// Stable code: `acr_mismatch`, `amr_missing` or `auth_time_stale`.
    pub code: &'static str,
    /// One line for the user.
    pub message: String,
}

/// What an OIDC login must show for all of a user's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcRequirements {
    /// Per role that sets one: (role, acceptable `acr` values).
    pub acr: Vec<(String, Vec<String>)>,
    /// Per role that sets one: (role, required `amr` values).
    pub amr: Vec<(String, Vec<String>)>,
    /// Shortest `mfa_max_age` among the roles, if any sets one.
    pub max_age: Option<(String, Duration)>,
}

impl OidcRequirements {
    /// `acr_values` to send to the provider: every acceptable value, in order.
    pub fn acr_values(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, list) in &self.acr {
            for v in list {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    /// Whether anything at all is required beyond a plain login.
    pub fn is_empty(&self) -> bool {
        self.acr.is_empty() && self.amr.is_empty() && self.max_age.is_none()
    }

    /// Check what the provider said. `age` is now − `auth_time` (negative
    /// skew counts as zero).
    pub fn check(
        &self,
        acr: Option<&str>,
        amr: &[String],
        age: Duration,
    ) -> Result<(), StepUpReason> {
        for (role, need) in &self.amr {
            if let Some(missing) = need.iter().find(|v| !amr.contains(v)) {
                return Err(StepUpReason {
                    code: "amr_missing",
                    message: format!(
                        "role {role} needs amr {missing}; the provider reported [{}]",
                        amr.join(", ")
                    ),
                });
            }
        }
        for (role, any) in &self.acr {
            if !acr.is_some_and(|a| any.iter().any(|v| v == a)) {
                return Err(StepUpReason {
                    code: "acr_mismatch",
                    message: format!(
                        "role {role} needs acr {}; the provider reported {}",
                        any.join(" or "),
                        acr.unwrap_or("none")
                    ),
                });
            }
        }
        if let Some((role, max)) = &self.max_age {
            if age > *max {
                return Err(StepUpReason {
                    code: "auth_time_stale",
                    message: format!(
                        "role {role} needs an authentication within {} s; this one is {} s old",
                        max.as_secs(),
                        age.as_secs()
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Policy {
    /// The OIDC requirements of every role the user would hold (before deny
    /// rules: a denied role still must not be reachable with a weaker login).
    pub fn oidc_requirements(&self, user: &str, groups: &[String]) -> OidcRequirements {
        let mut out = OidcRequirements::default();
        for name in self.roles_for(user, groups) {
            let Some(role) = self.roles.get(&name) else {
                continue;
            };
            if !role.oidc.is_empty() || role.mfa_max_age.is_some() {
                if !role.oidc.acr_any.is_empty() {
                    out.acr.push((name.clone(), role.oidc.acr_any.clone()));
                }
                if !role.oidc.amr_all.is_empty() {
                    out.amr.push((name.clone(), role.oidc.amr_all.clone()));
                }
                if let Some(age) = role.mfa_max_age {
                    if out.max_age.as_ref().is_none_or(|(_, m)| age < *m) {
                        out.max_age = Some((name.clone(), age));
                    }
                }
            }
        }
        out
    }

    /// Of `roles`, those that need an OIDC login (they set `oidc_acr` or
    /// `oidc_amr`), each with the factor it accepts while the provider is down.
    pub fn oidc_gated_roles(&self, roles: &[String]) -> Vec<(String, Option<Factor>)> {
        roles
            .iter()
            .filter_map(|r| {
                let role = self.roles.get(r)?;
                (!role.oidc.is_empty()).then(|| (r.clone(), role.oidc.fallback.clone()))
            })
            .collect()
    }

    /// The fallback factor every one of the user's OIDC-requiring roles allows,
    /// if they agree on one. `None`: no fallback (refused while the provider is
    /// down).
    pub fn oidc_fallback(&self, user: &str, groups: &[String]) -> Option<Factor> {
        let mut agreed: Option<Factor> = None;
        for name in self.roles_for(user, groups) {
            let role = self.roles.get(&name)?;
            match (&role.oidc.fallback, &agreed) {
                (None, _) => return None,
                (Some(f), None) => agreed = Some(f.clone()),
                (Some(f), Some(a)) if f == a => {}
                _ => return None,
            }
        }
        agreed
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    const POLICY: &str = r#"
version = 1
[roles.dev]
principals = ["{user}"]
fallback_factor = "totp"
[roles.dba]
principals = ["postgres"]
oidc_amr = ["hwk"]
oidc_acr = ["gold", "platinum"]
mfa_max_age = "15m"
fallback_factor = "totp"
[roles.ops]
principals = ["root"]
[groups]
devs = ["dev"]
dbas = ["dev", "dba"]
ops = ["ops"]
"#;

    fn p() -> Policy {
        Policy::from_toml(POLICY).unwrap()
    }

    #[test]
    fn requirements_are_the_union_of_the_users_roles() {
        let r = p().oidc_requirements("a", &["devs".into()]);
        assert!(r.is_empty());
        assert!(r.check(None, &[], Duration::from_secs(86_400)).is_ok());

        let r = p().oidc_requirements("a", &["dbas".into()]);
        assert_eq!(r.acr_values(), vec!["gold", "platinum"]);
        assert_eq!(r.max_age, Some(("dba".into(), Duration::from_secs(900))));
        let hwk = vec!["pwd".to_owned(), "hwk".to_owned()];
        let fresh = Duration::from_secs(60);
        assert!(r.check(Some("gold"), &hwk, fresh).is_ok());
        assert_eq!(
            r.check(Some("gold"), &["pwd".into()], fresh)
                .unwrap_err()
                .code,
            "amr_missing"
        );
        assert_eq!(
            r.check(Some("bronze"), &hwk, fresh).unwrap_err().code,
            "acr_mismatch"
        );
        assert_eq!(r.check(None, &hwk, fresh).unwrap_err().code, "acr_mismatch");
        assert_eq!(
            r.check(Some("platinum"), &hwk, Duration::from_secs(901))
                .unwrap_err()
                .code,
            "auth_time_stale"
        );
    }

    #[test]
    fn gated_roles_are_those_with_acr_or_amr() {
        let roles = vec!["dev".to_owned(), "dba".to_owned(), "ops".to_owned()];
        assert_eq!(
            p().oidc_gated_roles(&roles),
            vec![("dba".to_owned(), Some(Factor::Totp))]
        );
    }

    #[test]
    fn fallback_needs_every_role_to_allow_it() {
        assert_eq!(p().oidc_fallback("a", &["dbas".into()]), Some(Factor::Totp));
        assert_eq!(p().oidc_fallback("a", &["ops".into()]), None);
        assert_eq!(p().oidc_fallback("a", &["dbas".into(), "ops".into()]), None);
        assert_eq!(p().oidc_fallback("a", &[]), None);
    }

    #[test]
    fn a_fallback_without_oidc_requirements_is_linted() {
        let lints: Vec<String> = p().lint().iter().map(ToString::to_string).collect();
        assert!(
            lints
                .iter()
                .any(|l| l.contains("roles.dev.fallback_factor has no effect")),
            "{lints:?}"
        );
        assert!(!lints
            .iter()
            .any(|l| l.contains("roles.dba.fallback_factor")));
    }

    #[test]
    fn bad_values_are_refused_at_load() {
        for bad in [
            "oidc_amr = [\"\"]",
            "oidc_acr = [\"two words\"]",
            "fallback_factor = \"oidc\"",
            "fallback_factor = \"sms\"",
        ] {
            let src = format!("version = 1\n[roles.x]\nprincipals = [\"x\"]\n{bad}\n");
            assert!(Policy::from_toml(&src).is_err(), "{bad} accepted");
        }
    }
}
