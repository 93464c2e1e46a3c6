//! Advice about a policy that parsed but probably does not say what its author meant.
//!
//! Anything that is certainly wrong (unknown keys, unknown role names, bad values) is
//! a parse error instead; lints are for the legal-but-suspicious.

use std::fmt;

use crate::names::USER_PLACEHOLDER;
use crate::{FactorStrength, Policy};

/// How serious a [`Lint`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LintSeverity {
    /// Probably unintended, but harmless or fail-closed.
    Warning,
    /// The policy does not do what it says, in a way that matters for security
    /// (e.g. a deny rule that can never take effect). `check` commands should fail.
    Error,
}

impl fmt::Display for LintSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LintSeverity::Warning => "warning",
            LintSeverity::Error => "error",
        })
    }
}

/// One piece of advice about a policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lint {
    /// How serious it is.
    pub severity: LintSeverity,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

impl Policy {
    /// Find legal-but-suspicious constructs. Errors are listed before warnings.
    pub fn lint(&self) -> Vec<Lint> {
        let mut out = Vec::new();
        let mut warn = |message: String| {
            out.push(Lint {
                severity: LintSeverity::Warning,
                message,
            })
        };

        if self.default_ttl > self.max_ttl {
            warn(format!(
                "defaults.ttl ({}) is longer than defaults.max_ttl ({}); certificates get {}",
                crate::duration::format_duration(self.default_ttl),
                crate::duration::format_duration(self.max_ttl),
                crate::duration::format_duration(self.max_ttl),
            ));
        }

        for (g, roles) in &self.groups {
            if roles.is_empty() {
                warn(format!("groups.{g:?} maps to no roles"));
            }
        }

        for (name, role) in &self.roles {
            if !self.is_reachable(name) {
                warn(format!(
                    "roles.{name} is unreachable: no entry in [groups] or [users] grants it"
                ));
            }
            if role.principals.is_empty() {
                warn(format!(
                    "roles.{name} grants no principals; on its own it yields no certificate"
                ));
            }
            if let Some(f) = role.min_factor {
                if f < self.min_factor {
                    warn(format!(
                        "roles.{name}.min_factor ({f}) is below defaults.min_factor ({}), which applies anyway",
                        self.min_factor
                    ));
                }
            }
            let effective = role
                .min_factor
                .unwrap_or(self.min_factor)
                .max(self.min_factor);
            if role.allow_recovery && effective > FactorStrength::Recovery {
                warn(format!(
                    "roles.{name}.allow_recovery has no effect: the role needs at least {effective}, \
                     stronger than a recovery code"
                ));
            }
            if effective == FactorStrength::HardwareBound {
                warn(format!(
                    "roles.{name} needs a hardware-bound factor, which no login method of this \
                     version provides yet; nobody can get it"
                ));
            }
            if let Some(t) = role.max_ttl {
                if t > self.max_ttl {
                    warn(format!(
                        "roles.{name}.max_ttl ({}) exceeds defaults.max_ttl ({}), which caps it",
                        crate::duration::format_duration(t),
                        crate::duration::format_duration(self.max_ttl)
                    ));
                }
            }
            for net in &role.source_address {
                if net.trunc() != *net {
                    warn(format!(
                        "roles.{name}.source_address {net} has host bits set; it means {}",
                        net.trunc()
                    ));
                }
                if net.prefix_len() == 0 {
                    warn(format!(
                        "roles.{name}.source_address {net} allows every address; remove it instead"
                    ));
                }
            }
            if role.targets_allow.is_empty() && !role.targets_deny.is_empty() {
                warn(format!(
                    "roles.{name}.targets.deny has no effect: targets.allow is empty, so no target is allowed"
                ));
            }
        }

        let mut errors = Vec::new();
        for rule in &self.deny {
            let n = rule.number;
            let roles_can_match = match &rule.roles {
                None => !self.roles.is_empty(),
                Some(list) => list.iter().any(|r| self.is_reachable(r)),
            };
            let principals_can_match = rule
                .principals
                .iter()
                .any(|p| self.principal_may_be_granted(p));
            if !roles_can_match && !principals_can_match {
                errors.push(Lint {
                    severity: LintSeverity::Error,
                    message: format!(
                        "deny[{n}] ({}) can never take effect: the roles it removes are granted to \
                         nobody and no role grants the principals it removes",
                        rule.reason
                    ),
                });
            }
        }
        errors.extend(out);
        errors
    }

    /// Whether any `[groups]` or `[users]` entry grants the role.
    fn is_reachable(&self, role: &str) -> bool {
        self.groups
            .values()
            .chain(self.users.values())
            .any(|roles| roles.iter().any(|r| r == role))
    }

    /// Whether some reachable role could grant a principal matching the template.
    fn principal_may_be_granted(&self, template: &str) -> bool {
        self.roles
            .values()
            .filter(|r| self.is_reachable(&r.name))
            .any(|r| {
                r.principals.iter().chain(r.login_templates()).any(|t| {
                    // A template on either side can expand to anything, so assume it may.
                    t == template
                        || t.contains(USER_PLACEHOLDER)
                        || template.contains(USER_PLACEHOLDER)
                })
            })
    }
}
