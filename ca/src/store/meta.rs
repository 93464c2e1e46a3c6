//! A small key/value table for CA facts that have no table of their own (the
//! serial high-water mark, the KRL version, salts).

use super::StoreError;

/// CA metadata.
pub trait MetaStore {
    /// A small key/value table for CA metadata (salt, schema facts).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Set a metadata value.
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Set `key` to `value` only if it holds `expected` now (`None`: only if
    /// it is not set), in one step: of CAs racing from the same value exactly
    /// one succeeds. `false` when the value was another.
    fn replace_meta(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError>;
}
