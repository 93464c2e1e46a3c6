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
                warn(format!(
                    "groups.{} maps to no roles",
                    crate::policy::quote_key(g)
                ));
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
            if role.oidc.fallback.is_some()
                && role.oidc.acr_any.is_empty()
                && role.oidc.amr_all.is_empty()
            {
                warn(format!(
                    "roles.{name}.fallback_factor has no effect: the role sets neither \
                     oidc_acr nor oidc_amr, so any factor already gets it"
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
            if !role.webauthn_link && effective < FactorStrength::UnattestedKey {
                warn(format!(
                    "roles.{name}.webauthn_link = false keeps out security keys approved through \
                     a link, but its min_factor is {effective}: a TOTP code or an OIDC step-up \
                     gets the role from any machine; raise min_factor to unattested-key or above"
                ));
            }
            if !role.webauthn_link && role.session_mfa && !role.targets_allow.is_empty() {
                // A bastion's per-session approval is always given on the CA's
                // page, so the only per-session check left is a TOTP code.
                if effective > FactorStrength::Otp {
                    warn(format!(
                        "roles.{name} sets session_mfa with webauthn_link = false: a per-session \
                         approval comes through a link, which the role refuses, and a per-session \
                         TOTP code is below its min_factor ({effective}); no session of this role \
                         can open"
                    ));
                } else {
                    warn(format!(
                        "roles.{name} sets session_mfa with webauthn_link = false: a per-session \
                         approval comes through a link, which the role refuses, so each session \
                         needs a TOTP code and users with only a security key are refused"
                    ));
                }
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
            if role.targets_allow.is_empty() {
                let switches = [
                    ("session_mfa", role.session_mfa),
                    ("record_input", role.record_input),
                    ("record", role.record_metered_mib.is_some()),
                    ("port_forwarding", role.port_forwarding),
                    ("agent_forwarding", role.agent_forwarding),
                    ("target_labels", !role.target_labels.is_empty()),
                ];
                for (key, set) in switches {
                    if set {
                        warn(format!(
                            "roles.{name}.{key} has no effect: targets.allow is empty, so the role \
                             opens no bastion session"
                        ));
                    }
                }
            }
            if !role.bastion_only && !role.targets_allow.is_empty() {
                // Rules the bastion applies mean nothing if the user can take
                // the same principals straight to the host.
                let bastion_rules = [
                    ("session_mfa", role.session_mfa),
                    ("record_input", role.record_input),
                ];
                for (key, set) in bastion_rules {
                    if set {
                        warn(format!(
                            "roles.{name}.{key} is enforced only at the bastion, but the role is \
                             not bastion-only: its principals are in the user's own certificate, \
                             which reaches the host directly; add access = \"bastion\""
                        ));
                    }
                }
            }
            if role.record_metered_mib_set && role.record_metered_mib.is_none() {
                warn(format!(
                    "roles.{name}.record_metered_mib has no effect: the role records in full; \
                     set record = \"metered\""
                ));
            }
            if role.bastion_only && role.targets_allow.is_empty() {
                warn(format!(
                    "roles.{name}.access = \"bastion\" with an empty targets.allow: the role \
                     grants nothing at all"
                ));
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

    /// Advice that needs to know what the CA's `[webauthn]` settings trust, which
    /// the policy file alone does not say: `verifies_keys` is true when the CA
    /// checks attestation against configured roots or has an AAGUID allow-list.
    /// Without either, every security key is an `unattested-key`, so a role that
    /// needs `phishing-resistant` can be reached only with a PIV-attested key.
    /// `rampart-ca check` runs this with its config; `rampart policy lint` cannot.
    pub fn lint_key_attestation(&self, verifies_keys: bool) -> Vec<Lint> {
        if verifies_keys {
            return Vec::new();
        }
        self.roles
            .iter()
            .filter(|(_, role)| {
                role.min_factor
                    .unwrap_or(self.min_factor)
                    .max(self.min_factor)
                    == FactorStrength::PhishingResistant
            })
            .map(|(name, _)| Lint {
                severity: LintSeverity::Warning,
                message: format!(
                    "roles.{name} needs a phishing-resistant factor, but [webauthn] sets neither \
                     attestation_roots nor allowed_aaguids: every security key counts as \
                     unattested-key, so no security key reaches this role (only a PIV-attested SSH \
                     key does)"
                ),
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "version = 1\n";

    fn lints(body: &str) -> Vec<Lint> {
        Policy::from_toml(&format!("{HEAD}{body}")).unwrap().lint()
    }

    #[test]
    fn clean_policy_has_no_lints() {
        let l = lints("[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n");
        assert!(l.is_empty(), "{l:?}");
        // A bastion-only role with per-session MFA is the intended shape.
        let l = lints(
            "[roles.db]\nprincipals = [\"root\"]\naccess = \"bastion\"\nsession_mfa = true\ntargets = { allow = [\"db-*\"] }\n[groups]\neng = [\"db\"]\n",
        );
        assert!(l.is_empty(), "{l:?}");
        // Keys from the user's own machine only, on a role a TOTP code cannot
        // reach: what the setting is for.
        let l = lints(
            "[roles.prod]\nprincipals = [\"root\"]\nmin_factor = \"phishing-resistant\"\nwebauthn_link = false\n[groups]\neng = [\"prod\"]\n",
        );
        assert!(l.is_empty(), "{l:?}");
    }

    /// (policy body, severity, substring of the one expected lint)
    #[test]
    fn lint_table() {
        use LintSeverity::*;
        let ok_role = "[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n";
        let cases: Vec<(String, LintSeverity, &str)> = vec![
            (
                "[roles.db]\nprincipals = [\"root\"]\ntargets = { allow = [\"db-*\"] }\nsession_mfa = true\n[groups]\neng = [\"db\"]\n".into(),
                Warning,
                "roles.db.session_mfa is enforced only at the bastion, but the role is not bastion-only",
            ),
            (
                "[roles.db]\nprincipals = [\"root\"]\ntargets = { allow = [\"db-*\"] }\nrecord_input = true\n[groups]\neng = [\"db\"]\n".into(),
                Warning,
                "roles.db.record_input is enforced only at the bastion",
            ),
            (
                "[roles.db]\nprincipals = [\"root\"]\naccess = \"bastion\"\n[groups]\neng = [\"db\"]\n".into(),
                Warning,
                "roles.db.access = \"bastion\" with an empty targets.allow",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\n".into(),
                Warning,
                "roles.dev is unreachable",
            ),
            (
                "[roles.dev]\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "roles.dev grants no principals",
            ),
            (
                "[defaults]\nmin_factor = \"phishing-resistant\"\n[roles.dev]\nprincipals = [\"x\"]\nmin_factor = \"otp\"\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "roles.dev.min_factor (otp) is below defaults.min_factor (phishing-resistant)",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\nmax_ttl = \"1d\"\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "roles.dev.max_ttl (1d) exceeds defaults.max_ttl (8h)",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\nallow_recovery = true\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "roles.dev.allow_recovery has no effect",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\nmin_factor = \"hardware-bound\"\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "needs a hardware-bound factor",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\nsource_address = [\"10.1.2.3/8\"]\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "10.1.2.3/8 has host bits set; it means 10.0.0.0/8",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\nsource_address = [\"::/0\"]\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "allows every address",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\ntargets = { deny = [\"prod-*\"] }\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "targets.deny has no effect",
            ),
            (
                "[roles.dev]\nprincipals = [\"x\"]\nwebauthn_link = false\n[groups]\neng = [\"dev\"]\n".into(),
                Warning,
                "roles.dev.webauthn_link = false keeps out security keys approved through a link, but its min_factor is otp",
            ),
            (
                "[roles.db]\nprincipals = [\"root\"]\naccess = \"bastion\"\nmin_factor = \"phishing-resistant\"\nwebauthn_link = false\nsession_mfa = true\ntargets = { allow = [\"db-*\"] }\n[groups]\neng = [\"db\"]\n".into(),
                Warning,
                "no session of this role can open",
            ),
            (
                "[roles.db]\nprincipals = [\"root\"]\naccess = \"bastion\"\nwebauthn_link = false\nsession_mfa = true\ntargets = { allow = [\"db-*\"] }\n[groups]\neng = [\"db\"]\n".into(),
                Warning,
                "each session needs a TOTP code and users with only a security key are refused",
            ),
            (
                "[defaults]\nttl = \"9h\"\n".to_owned() + ok_role,
                Warning,
                "defaults.ttl (9h) is longer than defaults.max_ttl (8h)",
            ),
            (
                ok_role.to_owned() + "empty = []\n",
                Warning,
                "groups.empty maps to no roles",
            ),
            (
                // The role it removes is granted to nobody, and nobody is granted "root".
                "[roles.dev]\nprincipals = [\"dev\"]\n[roles.admin]\nprincipals = [\"root\"]\n[groups]\neng = [\"dev\"]\n[[deny]]\ngroups = [\"contractors\"]\nroles = [\"admin\"]\nprincipals = [\"root\"]\nreason = \"no root\"\n".into(),
                Error,
                "deny[1] (no root) can never take effect",
            ),
        ];
        for (body, severity, want) in &cases {
            let l = lints(body);
            let hit = l.iter().find(|x| x.message.contains(want));
            let Some(hit) = hit else {
                panic!("{want:?} not in {l:?}");
            };
            assert_eq!(hit.severity, *severity, "{want}");
        }
    }

    #[test]
    fn deny_rules_that_can_match_are_not_flagged() {
        let bodies = [
            // Removes a reachable role.
            "[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n[[deny]]\nusers = [\"x\"]\nroles = [\"dev\"]\n",
            // Removes a principal a reachable role grants literally.
            "[roles.dev]\nprincipals = [\"root\"]\n[groups]\neng = [\"dev\"]\n[[deny]]\nusers = [\"x\"]\nprincipals = [\"root\"]\n",
            // Removes a principal a {user} template might expand to.
            "[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n[[deny]]\nusers = [\"x\"]\nprincipals = [\"x\"]\n",
            // Wildcard roles.
            "[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n[[deny]]\nusers = [\"x\"]\nroles = [\"*\"]\n",
        ];
        for body in bodies {
            let l = lints(body);
            assert!(l.is_empty(), "{body}\n{l:?}");
        }
    }

    #[test]
    fn errors_first_and_display() {
        let l = lints(
            "[roles.dev]\nprincipals = [\"dev\"]\n[[deny]]\nusers = [\"x\"]\nroles = [\"dev\"]\n",
        );
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l[0].severity, LintSeverity::Error);
        assert_eq!(l[1].severity, LintSeverity::Warning);
        assert!(l[0].to_string().starts_with("error: deny[1]"), "{}", l[0]);
        assert!(
            l[1].to_string()
                .starts_with("warning: roles.dev is unreachable"),
            "{}",
            l[1]
        );
        assert!(LintSeverity::Warning < LintSeverity::Error);
    }

    #[test]
    fn phishing_resistant_roles_warn_when_the_ca_trusts_no_key_model() {
        let p = Policy::from_toml(&format!(
            "{HEAD}[roles.prod]\nprincipals = [\"root\"]\nmin_factor = \"phishing-resistant\"\n\
             [roles.keys]\nprincipals = [\"x\"]\nmin_factor = \"unattested-key\"\n\
             [roles.dev]\nprincipals = [\"y\"]\n[groups]\neng = [\"prod\", \"keys\", \"dev\"]\n"
        ))
        .unwrap();
        let l = p.lint_key_attestation(false);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(l[0].severity, LintSeverity::Warning);
        assert!(
            l[0].message
                .starts_with("roles.prod needs a phishing-resistant factor")
                && l[0]
                    .message
                    .contains("attestation_roots nor allowed_aaguids"),
            "{}",
            l[0]
        );
        assert!(p.lint_key_attestation(true).is_empty());
        // The file-only lint cannot know the CA's settings and says nothing.
        assert!(p.lint().is_empty(), "{:?}", p.lint());
    }
}
