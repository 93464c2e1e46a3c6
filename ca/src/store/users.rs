//! Users and how they arrive: the user records, the invites that enrol them, and
//! the enrolments started and not yet finished (whose completion installs the
//! first TOTP seed and recovery codes in the same step).

use chrono::{DateTime, Utc};

use super::{StoreError, TotpRecord};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Unique name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Admin flag.
    pub admin: bool,
    /// Disabled flag.
    pub disabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Outcome of redeeming an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteRedemption {
    /// Valid; now used. Carries the user it enrols.
    Redeemed(String),
    /// No such invite.
    Unknown,
    /// Already used.
    AlreadyUsed,
    /// Past its expiry.
    Expired,
}

/// An enrolment that was started and not finished yet.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingEnrollment {
    /// The user.
    pub user: String,
    /// Encrypted new seed.
    pub sealed_seed: Vec<u8>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrollment")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Users, invites and enrolments.
pub trait UserStore {
    /// Create a user. [`StoreError::Duplicate`] when the name is taken.
    fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// Look a user up.
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;

    /// All users, by name.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Set the disabled flag; false when no such user.
    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError>;

    /// Replace groups; false when no such user.
    fn set_groups(&self, name: &str, groups: &[String]) -> Result<bool, StoreError>;

    /// Store an invite by the hash of its code.
    fn create_invite(
        &self,
        code_hash: &[u8; 32],
        user: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Atomically redeem an invite.
    fn redeem_invite(
        &self,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<InviteRedemption, StoreError>;

    /// Remember a started enrolment under the hash of its token.
    fn put_enrollment(
        &self,
        token_hash: &[u8; 32],
        pending: &PendingEnrollment,
    ) -> Result<(), StoreError>;

    /// Look a started enrolment up.
    fn enrollment(&self, token_hash: &[u8; 32]) -> Result<Option<PendingEnrollment>, StoreError>;

    /// Finish an enrolment atomically: drop the pending row, install the TOTP seed
    /// with `last_step` (the step just used to confirm it), and replace the user's
    /// recovery codes. False when the pending row was already taken.
    fn complete_enrollment(
        &self,
        token_hash: &[u8; 32],
        user: &str,
        totp: &TotpRecord,
        recovery: &[(String, String)],
    ) -> Result<bool, StoreError>;
}
