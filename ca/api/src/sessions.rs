//! Admin listing of bastion sessions, as the audit log knows them.

use super::*;

/// Query of `GET /v1/admin/sessions`: every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Only this Rampart user's sessions.
    pub user: Option<String>,
    /// Only sessions to this target.
    pub target: Option<String>,
    /// Only this session ID.
    pub session: Option<String>,
    /// At most this many, newest first (default 50, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// One bastion session as the audit log knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSummary {
    /// The session ID (ULID).
    pub session_id: String,
    /// The bastion that carried it.
    pub bastion: String,
    /// The Rampart user.
    pub user: String,
    /// The account on the target.
    pub login: String,
    /// The target's name.
    pub target: String,
    /// When the inner session started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended (`closed`, `revoked`, `idle_timeout`, `bastion_restarted`…).
    pub end_reason: Option<String>,
    /// Whether it ended normally.
    pub ended_normally: Option<bool>,
    /// SHA-256 of the sealed recording, if one was sealed.
    pub recording_sha256: Option<String>,
}

/// `GET /v1/admin/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionSummary>,
}
