//! Machine-readable output: the one way `--json` flags print, so that every
//! command's JSON is encoded (and fails) alike.

use serde::Serialize;

use crate::error::CliError;

/// `value` as pretty-printed JSON (no trailing newline).
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Other(anyhow::anyhow!("cannot encode the JSON output: {e}")))
}
