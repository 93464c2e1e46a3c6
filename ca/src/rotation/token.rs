//! A rotation's slots as labels in a PKCS#11 token: beside the key labelled
//! `L` (the `[keys.pkcs11]` label), `L.next` and `L.previous`. The token
//! holds everything, so every CA that shares the token sees the same
//! rotation without a file being copied.
//!
//! The replaced key carries the day it was replaced as its `CKA_END_DATE`,
//! the standard attribute for a key's last day of use. A `CK_DATE` has no
//! time of day, so the replaced key counts as signing until that day ends:
//! `retire` may wait up to a day longer than with key files, never shorter.

use std::rc::Rc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use rampart_signer::Pkcs11Token;

use super::{Published, Replaced};
use crate::error::CaError;
use crate::keys::token_error;

/// The three labels of one CA key in an opened token.
pub struct TokenSlots {
    token: Rc<Pkcs11Token>,
    /// The signing key's label.
    pub current: String,
    /// The key that will sign.
    pub next: String,
    /// The key that signed before.
    pub previous: String,
}

impl std::fmt::Debug for TokenSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSlots")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl TokenSlots {
    /// The slots beside the key labelled `current` in `token`.
    pub fn new(token: Rc<Pkcs11Token>, current: &str) -> TokenSlots {
        TokenSlots {
            token,
            current: current.to_owned(),
            next: format!("{current}.next"),
            previous: format!("{current}.previous"),
        }
    }

    /// The public halves of the next and the replaced key.
    pub fn published(&self) -> Result<Published, CaError> {
        let next = self.token.public_key(&self.next).map_err(token_error)?;
        let previous = match self.token.public_key(&self.previous).map_err(token_error)? {
            None => None,
            Some(found) => {
                let day = found.end_date.ok_or_else(|| {
                    CaError::Config(format!(
                        "[keys] pkcs11: the key labelled {:?} has no CKA_END_DATE, so when it \
                         was replaced is unknown",
                        self.previous
                    ))
                })?;
                Some(Replaced {
                    key: found.key,
                    replaced_at: end_of(day),
                })
            }
        };
        Ok(Published {
            next: next.map(|n| n.key),
            previous,
        })
    }

    /// Make the next key inside the token; its public key.
    pub(super) fn generate_next(&self) -> Result<ssh_key::PublicKey, CaError> {
        let key = self.token.generate(&self.next).map_err(token_error)?;
        Ok(rampart_signer::CaSigner::public_key(&key).clone())
    }

    /// The next key can sign (both halves are there).
    pub(super) fn check_next(&self) -> Result<(), CaError> {
        self.token.key(&self.next).map(|_| ()).map_err(token_error)
    }

    /// `L` → `L.previous` (dated `now`'s day), `L.next` → `L`.
    pub(super) fn activate(&self, now: DateTime<Utc>) -> Result<(), CaError> {
        self.token
            .activate_next(&self.current, &self.next, &self.previous, now.date_naive())
            .map_err(token_error)
    }

    /// Whether an activation stopped half-way (a crash): a half of the next
    /// key is left while the signing label lacks a half.
    pub(super) fn interrupted(&self) -> Result<bool, CaError> {
        let next_left = self.token.holds_any(&self.next).map_err(token_error)?;
        Ok(next_left && self.token.key(&self.current).is_err())
    }

    /// Destroy the replaced key.
    pub(super) fn destroy_previous(&self) -> Result<(), CaError> {
        self.token.destroy(&self.previous).map_err(token_error)
    }

    /// Destroy a next key whose making could not be audited.
    pub(super) fn destroy_next(&self) -> Result<(), CaError> {
        self.token.destroy(&self.next).map_err(token_error)
    }
}

/// The first moment after `day` (UTC).
fn end_of(day: NaiveDate) -> DateTime<Utc> {
    day.checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_replaced_day_counts_until_it_ends() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(end_of(day).to_rfc3339(), "2027-01-01T00:00:00+00:00");
    }
}
