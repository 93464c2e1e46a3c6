//! Login sessions, and what stands behind an OIDC login: the identity provider's
//! evidence for a session, and the link between a provider's subject and a user.

use chrono::{DateTime, Utc};

use super::StoreError;

/// The method stored in a session row, read back.
pub(super) fn mfa_method_of(stored: &str) -> Result<rampart_policy::MfaMethod, StoreError> {
    stored
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("session MFA method {stored:?}")))
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Short public ID (for audit; not the token).
    pub id: String,
    /// The user.
    pub user: String,
    /// The factor the session was opened with (stored as its name; a name
    /// this build does not know reads as a corrupt row).
    pub mfa_method: rampart_policy::MfaMethod,
    /// When the factor was verified.
    pub mfa_time: DateTime<Utc>,
    /// Audit event ID of that verification.
    pub mfa_event: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Outcome of [`SessionStore::bind_idp_subject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpBinding {
    /// First login of this subject: now bound to the user.
    Bound,
    /// Already bound to this user.
    Matches,
    /// This subject is bound to another user (the user-name claim changed).
    SubjectBoundTo(String),
    /// The user is bound to another subject at this provider.
    UserBoundElsewhere,
}

/// What an identity provider said about an OIDC login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpEvidence {
    /// Provider name from the config.
    pub provider: String,
    /// `acr`, if the token had one.
    pub acr: Option<String>,
    /// `amr` values.
    pub amr: Vec<String>,
    /// `auth_time`.
    pub auth_time: DateTime<Utc>,
}

/// Sessions and identity-provider links and evidence.
pub trait SessionStore {
    /// Store a session under the hash of its token.
    fn create_session(&self, token_hash: &[u8; 32], s: &SessionRecord) -> Result<(), StoreError>;

    /// Look a session up.
    fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError>;

    /// End a session.
    fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// End all of a user's sessions.
    fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError>;

    /// Keep what an identity provider said about a session's login (OIDC), for
    /// the certificate's evidence extensions.
    fn put_idp_evidence(
        &self,
        session_id: &str,
        ev: &IdpEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The identity provider's evidence for a session, if it was an OIDC login.
    fn idp_evidence(&self, session_id: &str) -> Result<Option<IdpEvidence>, StoreError>;

    /// Tie an identity provider's subject (`iss` + `sub`, the only identifier
    /// OIDC Core §5.7 promises is stable) to a Rampart user on first login, and
    /// check it on every later one.
    fn bind_idp_subject(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpBinding, StoreError>;

    /// The user an IdP account is linked to, if any.
    fn idp_subject_user(&self, provider: &str, subject: &str)
        -> Result<Option<String>, StoreError>;

    /// The IdP account (subject) `user` is linked to at `provider`, if any.
    fn idp_link(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError>;

    /// Remove `user`'s link at `provider`; the subject that was linked.
    fn unlink_idp_subject(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError>;
}
