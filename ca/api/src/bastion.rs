//! What a bastion asks of the CA: joining, host and per-session certificates, revocations, session events and sealed recordings.

use super::*;

/// Query of `GET /v1/bastion/revocations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevocationsQuery {
    /// The `version` of the last [`BastionRevocations`] applied; absent on the
    /// first poll.
    pub since_version: Option<u64>,
}

/// Query of `PUT /v1/bastion/recordings/{session_id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordingUploadQuery {
    /// `1`/`true` when the session did not end cleanly (as the header
    /// [`RECORDING_ABNORMAL_END_HEADER`] says).
    pub abnormal_end: Option<String>,
}

/// `POST /v1/bastion/join`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionJoinRequest {
    /// The join token from `rampart admin bastion-token`.
    pub token: WireSecret,
    /// The bastion's name (a host name): its host certificate's principal.
    pub name: String,
    /// The bastion's SSH host public key (OpenSSH one-line format).
    pub host_public_key: String,
}

/// The bastion's identity with the CA, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionJoinResponse {
    /// The bastion's name.
    pub name: String,
    /// The bearer credential for the bastion endpoints
    /// (starts with [`BASTION_CREDENTIAL_PREFIX`]). The CA keeps only its hash.
    pub credential: WireSecret,
    /// User CA public key (OpenSSH one-line): outer certificates must be signed by it.
    pub user_ca: String,
    /// Host CA public key (OpenSSH one-line): targets' host certificates are.
    pub host_ca: String,
    /// A host certificate for the bastion's own host key (principal = name).
    pub host_certificate: CertResponse,
}

/// `POST /v1/bastion/host-cert`: a short-lived host certificate for a target name,
/// which the bastion presents when it terminates the inner SSH session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionHostCertRequest {
    /// The target's name as users dial it (`db-1`); the only principal.
    pub target: String,
    /// The host public key the bastion presents for it.
    pub host_public_key: String,
}

/// `POST /v1/bastion/session-cert`: a per-session user certificate for the
/// bastion's ephemeral key, so it can log in onward as `login@target`.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCertRequest {
    /// The user's outer certificate, OpenSSH one-line format, as the user
    /// presented it to the bastion.
    pub user_certificate: String,
    /// The account on the target.
    pub login: String,
    /// The target's name.
    pub target: String,
    /// The target's labels from the bastion config (audited; policy on labels
    /// comes later).
    #[serde(default)]
    pub target_labels: std::collections::BTreeMap<String, String>,
    /// The bastion's session ID (audited, and in the key ID).
    pub session_id: String,
    /// The bastion's ephemeral public key for this session.
    pub public_key: String,
    /// The user's address as the bastion saw it (TCP peer), audited.
    #[serde(default)]
    pub source: Option<String>,
    /// A per-session TOTP code, when the bastion asked the user for one.
    #[serde(default)]
    pub totp_code: Option<WireSecret>,
    /// A per-session security-key approval the bastion started
    /// ([`webauthn::BASTION_APPROVAL_START`]) and the user gave in a browser:
    /// the CA consumes it (once) and issues the certificate with its evidence
    /// (`mfa-method@rampart=webauthn`, fresh `mfa-time`, UV and AAGUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn_approval: Option<webauthn::WaitRequest>,
    /// What the user's SSH client signed to log in to the bastion on this
    /// connection, and the signature: the proof that the certificate's holder
    /// is taking part, which the certificate alone cannot give (it is
    /// public). Required; optional on the wire only so that a request
    /// without it is refused and audited (`user_proof_required`) rather than
    /// rejected as unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_proof: Option<user_proof::UserProof>,
}

impl std::fmt::Debug for SessionCertRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCertRequest")
            .field("login", &self.login)
            .field("target", &self.target)
            .field("session_id", &self.session_id)
            .field("source", &self.source)
            .field("totp_code", &self.totp_code)
            .field("webauthn_approval", &self.webauthn_approval)
            .field("user_proof", &self.user_proof.is_some())
            .finish_non_exhaustive()
    }
}

/// A per-session certificate and the decision behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCertResponse {
    /// The certificate (principal = the login, ≈1 minute).
    pub certificate: CertResponse,
    /// The user it was issued for.
    pub user: String,
    /// Roles that permitted the access.
    pub roles: Vec<String>,
    /// Whether a per-session TOTP code was verified for it.
    pub session_mfa: bool,
    /// Policy wants keystrokes (pty input) recorded as well as output.
    #[serde(default)]
    pub record_input: bool,
    /// Policy meters bulk data (`record = "metered"`): of each direction of an
    /// exec or subsystem channel without a pty, only the first this many MiB
    /// are stored, the rest counted and hashed. `None`: recorded in full. A
    /// pty, and a shell without one, are always recorded in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_metered_mib: Option<u64>,
    /// Policy allows `direct-tcpip`/`tcpip-forward` port forwarding in this session.
    #[serde(default)]
    pub port_forwarding: bool,
    /// Policy allows agent forwarding to the target in this session.
    #[serde(default)]
    pub agent_forwarding: bool,
}

/// `GET /v1/bastion/revocations`: what the bastion needs to refuse revoked
/// certificates and end live sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionRevocations {
    /// Current KRL version (the same number as [`KRL_VERSION_HEADER`]).
    pub version: u64,
    /// False when `since_version` is the current version: the lists are then empty.
    pub changed: bool,
    /// Every revoked user-certificate serial.
    pub serials: Vec<u64>,
    /// Every revoked key fingerprint (`SHA256:…`).
    pub key_fingerprints: Vec<String>,
    /// Users that are disabled (their live sessions must end).
    pub disabled_users: Vec<String>,
}

/// What happened at a bastion, as the bastion reports it to the CA. Each maps
/// to one audit event kind (`RA-BAS-006` … `RA-BAS-012` and `RA-BAS-016`, see
/// audit/SCHEMA.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BastionEventKind {
    /// The inner session reached the target (`bastion_session_started`).
    SessionStarted,
    /// A session ended; `success = false` when abnormal (revoked, idle
    /// timeout, target lost, bastion crash found at restart).
    SessionEnded,
    /// An outer connection or a target request was refused before a session
    /// existed: bad certificate, password or plain key, unknown target, limits.
    ConnectionRefused,
    /// An exec request: command, exit status, byte counts.
    Exec,
    /// One SFTP file operation (open for read/write, remove, rename, mkdir…).
    FileOp,
    /// A port-forward or agent channel that policy allowed.
    Forward,
    /// A channel or request that policy refused (forward, agent, subsystem…).
    RequestRefused,
    /// The bastion re-read its config on SIGHUP (`bastion_config_reloaded`);
    /// `success = false` when the file was refused and the running config stays.
    ConfigReloaded,
}

/// One bastion event. Strings are bounded by the CA (names 256 bytes, reason and
/// detail strings 4 KiB, 32 detail keys); the CA stamps its own time and keeps
/// the bastion's `at` as a detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionEvent {
    /// The event's ID in the audit chain (a ULID the bastion chose when the
    /// event happened). A bastion resends events it has no answer for with the
    /// same ID, and the CA writes an ID once: resending is harmless. Without
    /// one the CA assigns an ID (and a resend would be a second event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened.
    pub kind: BastionEventKind,
    /// Whether the action happened (`false`: refused or failed).
    pub success: bool,
    /// When the bastion saw it.
    pub at: DateTime<Utc>,
    /// The bastion's session ID (a ULID), once there is one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The Rampart user (from the outer certificate's key ID), when known.
    #[serde(default)]
    pub user: Option<String>,
    /// The account on the target.
    #[serde(default)]
    pub login: Option<String>,
    /// The target's name.
    #[serde(default)]
    pub target: Option<String>,
    /// The user's address (TCP peer of the outer connection).
    #[serde(default)]
    pub source: Option<String>,
    /// The outer certificate's serial.
    #[serde(default)]
    pub serial: Option<u64>,
    /// One sentence, for refusals and abnormal ends.
    #[serde(default)]
    pub reason: Option<String>,
    /// Kind-specific fields (`command`, `exit_status`, `op`, `path`, `bytes_up`…).
    #[serde(default)]
    pub details: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `POST /v1/bastion/events`: written in order in one transaction. The CA
/// judges each event on its own: an event it refuses (a field too long, a
/// session ID that is not a ULID…) is replaced in the chain by an
/// `audit_event_rejected` event carrying its kind, session and digest, and is
/// named in [`BastionEventAck::rejected`]; the others are written as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionEventBatch {
    /// At most [`MAX_EVENTS_PER_BATCH`].
    pub events: Vec<BastionEvent>,
}

/// The audit event IDs, in the order of the batch (one per event sent; for a
/// rejected event, the ID of the `audit_event_rejected` event that stands in
/// for it). A 2xx means every one is durably in the chain; anything else means
/// none is and the bastion must refuse the action it was about to take (fail
/// closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionEventAck {
    /// ULIDs of the written events.
    pub ids: Vec<String>,
    /// The events the CA refused, by their index in the batch, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedEvent>,
}

/// One event of a batch that the CA refused and replaced by an
/// `audit_event_rejected` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedEvent {
    /// Its index in [`BastionEventBatch::events`].
    pub index: usize,
    /// Why (one sentence, e.g. "user must be 1-256 bytes without control characters").
    pub reason: String,
}

/// Reply to a recording upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingSealed {
    /// The session.
    pub session_id: String,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Size of the stored bytes.
    pub bytes: u64,
    /// The `recording_sealed` audit event's ID.
    pub event_id: String,
}
