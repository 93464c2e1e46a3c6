//! Which targets each joined bastion may stand in for (`[bastions.<name>]`).
//!
//! A bastion terminates the user's inner SSH session under a host certificate
//! the CA signs for the target's name, and asks for per-session user
//! certificates for that target. Whoever holds a bastion's credential can do the
//! same, so the set of names is fixed by the policy, not by the bastion: a
//! bastion with no `[bastions.<name>]` table serves no target at all (fail
//! closed), and one with a table serves only the names its `targets` globs match.

use crate::eval::{Denial, DenyCode};
use crate::glob::glob_match;
use crate::Policy;

impl Policy {
    /// The target patterns registered for a bastion, if it has a table.
    pub fn bastion_targets(&self, bastion: &str) -> Option<&[String]> {
        self.bastions.get(bastion).map(Vec::as_slice)
    }

    /// Where users' ssh reaches a bastion: `[bastions.<name>] address`, else
    /// the bastion's name on port 22.
    pub fn bastion_address(&self, bastion: &str) -> (String, u16) {
        self.bastion_addresses
            .get(bastion)
            .cloned()
            .unwrap_or_else(|| (bastion.to_owned(), 22))
    }

    /// Names of the bastions the policy registers targets for, sorted.
    pub fn registered_bastions(&self) -> impl Iterator<Item = &str> {
        self.bastions.keys().map(String::as_str)
    }
}

/// Whether `bastion` may obtain certificates for `target`.
pub fn bastion_may_serve(policy: &Policy, bastion: &str, target: &str) -> Result<(), Denial> {
    match policy.bastion_targets(bastion) {
        None => Err(Denial::new(
            DenyCode::TargetNotRegistered,
            format!(
                "no targets are registered for the bastion {bastion:?}: \
                 add [bastions.{bastion}] targets = [\"{target}\"] to the policy"
            ),
        )),
        Some(patterns) if patterns.iter().any(|p| glob_match(p, target)) => Ok(()),
        Some(_) => Err(Denial::new(
            DenyCode::TargetNotRegistered,
            format!(
                "the target {target:?} is not registered for the bastion {bastion:?} \
                 (policy [bastions.{bastion}] targets)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(extra: &str) -> Result<Policy, crate::PolicyError> {
        Policy::from_toml(&format!("version = 1\n{extra}"))
    }

    #[test]
    fn a_bastion_without_a_table_serves_nothing() {
        let p = policy("[bastions.b1]\ntargets = [\"db-*\"]\n").unwrap();
        let d = bastion_may_serve(&p, "b2", "db-1").unwrap_err();
        assert_eq!(d.code, DenyCode::TargetNotRegistered);
        assert!(d.reason.contains("[bastions.b2]"), "{}", d.reason);
        let empty = policy("").unwrap();
        assert!(bastion_may_serve(&empty, "b1", "db-1").is_err());
    }

    #[test]
    fn a_bastion_serves_only_the_names_its_globs_match() {
        let p = policy("[bastions.b1]\ntargets = [\"db-*\", \"web.prod.example\"]\n").unwrap();
        assert!(bastion_may_serve(&p, "b1", "db-1").is_ok());
        assert!(
            bastion_may_serve(&p, "b1", "DB-2").is_ok(),
            "host names are case-insensitive"
        );
        assert!(bastion_may_serve(&p, "b1", "web.prod.example").is_ok());
        for other in ["web.prod.example.evil", "xdb-1", "mail", ""] {
            let d = bastion_may_serve(&p, "b1", other).unwrap_err();
            assert_eq!(d.code, DenyCode::TargetNotRegistered, "{other}");
        }
        assert_eq!(p.registered_bastions().collect::<Vec<_>>(), ["b1"]);
    }

    #[test]
    fn malformed_bastion_tables_are_refused() {
        for bad in [
            "[bastions.b1]\ntargets = []\n",
            "[bastions.b1]\n",
            "[bastions.b1]\ntargets = [\"db 1\"]\n",
            "[bastions.b1]\ntargets = [\"db-1\"]\nhosts = [\"x\"]\n",
            "[bastions.\"not a host\"]\ntargets = [\"db-1\"]\n",
        ] {
            assert!(policy(bad).is_err(), "{bad}");
        }
    }
}
