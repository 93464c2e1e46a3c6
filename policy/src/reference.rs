//! Keeping a configuration reference true: which keys a
//! `#[serde(deny_unknown_fields)]` table accepts, read from serde's own
//! refusal of a key no table has. The tests that check `docs/configuration.md`,
//! the host policy reference and the bastion's key table against the types
//! all ask this one function.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

/// The key no table accepts; serde's refusal of it lists the ones it does.
pub const BOGUS_KEY: &str = "zz_unknown_key";

/// The keys `T` accepts in the table where `probe` (a TOML text) sets
/// [`BOGUS_KEY`]: serde answers "unknown field `zz_unknown_key`, expected one
/// of `a`, `b`, …". An error when the probe was accepted or refused for
/// another reason.
pub fn accepted_keys<T: DeserializeOwned>(probe: &str) -> Result<BTreeSet<String>, String> {
    let err = match toml::from_str::<T>(probe) {
        Ok(_) => return Err(format!("a bogus key was accepted by {probe:?}")),
        Err(e) => e.to_string(),
    };
    let marker = format!("unknown field `{BOGUS_KEY}`");
    let Some(at) = err.find(&marker) else {
        return Err(format!(
            "the probe {probe:?} failed for another reason: {err}"
        ));
    };
    let rest = err.get(at + marker.len()..).unwrap_or_default();
    let listed = rest.lines().next().unwrap_or_default();
    // The names are the backticked words: every second piece between backticks.
    Ok(listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Table {
        alpha: Option<u32>,
        beta_gamma: Option<String>,
    }

    #[test]
    fn the_keys_come_from_serdes_refusal_and_a_probe_that_proves_nothing_is_an_error() {
        let keys = accepted_keys::<Table>(&format!("{BOGUS_KEY} = 1")).unwrap();
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            ["alpha", "beta_gamma"]
        );
        assert!(accepted_keys::<Table>("alpha = 1").is_err(), "accepted");
        assert!(
            accepted_keys::<Table>("alpha = \"x\"").is_err(),
            "another refusal"
        );
    }
}
