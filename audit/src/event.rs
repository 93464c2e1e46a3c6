//! The event schema: kinds with stable codes and severities, the builder callers
//! use ([`NewEvent`]), the stored form ([`Event`]) and the canonical encoding that
//! the hash chain covers (format described in the crate documentation).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::AuditError;

/// Version of the canonical body encoding (the `v` field). Part of the on-disk format.
pub const BODY_VERSION: u32 = 1;

/// Severity of an event kind, for SIEM routing and alerting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine, expected activity (a certificate issued, a session started).
    Info,
    /// A change worth a human glance later (a user created, a factor enrolled).
    Notice,
    /// Something failed or was refused that may be an attack or a misconfiguration.
    Warning,
    /// Needs attention now (lock-out, an admin action refused).
    High,
}

impl Severity {
    /// The snake_case name used in the canonical encoding.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::High => "high",
        }
    }
}

/// Whether the recorded action succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action happened.
    Success,
    /// The action was refused or failed.
    Failure,
}

impl Outcome {
    /// The snake_case name used in the canonical encoding.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $variant:ident => ($name:literal, $code:literal, $sev:ident), )*) => {
        /// What happened. Every kind has a stable, greppable code (see the table in the
        /// crate documentation) and a fixed severity.
        ///
        /// Codes and snake_case names are part of the on-disk format and of SIEM
        /// rules written by operators: never renumber or rename one, only add.
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )*
        }

        impl EventKind {
            const ALL: &'static [EventKind] = &[ $( EventKind::$variant, )* ];

            /// The stable code, e.g. `RA-AUTH-004` for [`EventKind::MfaFailed`].
            pub fn code(&self) -> &'static str {
                match self { $( EventKind::$variant => $code, )* }
            }

            /// The fixed severity of this kind.
            pub fn severity(&self) -> Severity {
                match self { $( EventKind::$variant => Severity::$sev, )* }
            }

            /// The snake_case name used in the canonical encoding and the `kind` column.
            pub fn as_str(&self) -> &'static str {
                match self { $( EventKind::$variant => $name, )* }
            }

            /// Every kind, in code order within each family.
            pub fn all() -> &'static [EventKind] {
                Self::ALL
            }

            /// Look a kind up by its stable code (`RA-CERT-001`).
            pub fn from_code(code: &str) -> Option<EventKind> {
                match code { $( $code => Some(EventKind::$variant), )* _ => None }
            }
        }

        impl FromStr for EventKind {
            type Err = AuditError;
            /// Accepts the snake_case name (`cert_issued`) or the code (`RA-CERT-001`).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $name => Ok(EventKind::$variant), )*
                    other => EventKind::from_code(other)
                        .ok_or_else(|| AuditError::Format(format!("unknown event kind {other:?}"))),
                }
            }
        }
    };
}

event_kinds! {
    // CA lifecycle
    /// The CA created its keys and database (`rampart-ca init`).
    CaInitialized => ("ca_initialized", "RA-CA-001", Notice),
    /// The CA process started serving.
    CaStarted => ("ca_started", "RA-CA-002", Info),
    /// The CA process stopped.
    CaStopped => ("ca_stopped", "RA-CA-003", Notice),
    /// The CA re-read its policy on SIGHUP (failure: the new file was refused
    /// and the previous policy stays in force).
    PolicyReloaded => ("policy_reloaded", "RA-CA-004", Notice),
    /// The audit witness was started again, deliberately, from the database's
    /// newest checkpoint (`rampart-ca witness-restart`): history before that
    /// checkpoint is no longer witnessed on the CA host.
    AuditWitnessRestarted => ("audit_witness_restarted", "RA-CA-005", High),
    /// A step of a CA key rotation on the CA host (`rampart-ca rotate-key`):
    /// a next key made and published, that key made the signer, or the
    /// replaced key no longer trusted.
    CaKeyRotated => ("ca_key_rotated", "RA-CA-006", High),
    /// SIGHUP: the CA re-read `config.toml` and replaced its SIEM forwarders
    /// (failure: the file or a forwarder was refused and the running ones stay).
    CaConfigReloaded => ("ca_config_reloaded", "RA-CA-007", Notice),
    // identities / admin
    /// An administrator created a user.
    UserCreated => ("user_created", "RA-ADM-001", Notice),
    /// A user was disabled.
    UserDisabled => ("user_disabled", "RA-ADM-002", Warning),
    /// A user was re-enabled.
    UserEnabled => ("user_enabled", "RA-ADM-003", Notice),
    /// A user's groups (and so roles) changed.
    UserGroupsChanged => ("user_groups_changed", "RA-ADM-004", Notice),
    /// An enrolment invite was created.
    InviteCreated => ("invite_created", "RA-ADM-005", Notice),
    /// An invite was redeemed.
    InviteRedeemed => ("invite_redeemed", "RA-ADM-006", Notice),
    /// An invite was presented but refused (expired, used, unknown).
    InviteRefused => ("invite_refused", "RA-ADM-007", Warning),
    /// An administrative request was refused for lack of authority.
    AdminActionDenied => ("admin_action_denied", "RA-ADM-008", High),
    /// An administrator linked a user to an identity-provider account.
    UserIdpLinked => ("user_idp_linked", "RA-ADM-009", Warning),
    /// An administrator removed a user's link to an identity-provider account.
    UserIdpUnlinked => ("user_idp_unlinked", "RA-ADM-010", Notice),
    /// An admin invite was made offline on the CA host (`rampart-ca
    /// recover-admin`), past every admin session.
    AdminRecoveryInvite => ("admin_recovery_invite", "RA-ADM-011", High),
    // factors
    /// A TOTP factor was enrolled.
    TotpEnrolled => ("totp_enrolled", "RA-AUTH-001", Notice),
    /// A set of recovery codes was issued (replacing any previous set).
    RecoveryCodesIssued => ("recovery_codes_issued", "RA-AUTH-002", Notice),
    /// A multi-factor check succeeded.
    MfaSucceeded => ("mfa_succeeded", "RA-AUTH-003", Info),
    /// A multi-factor check failed.
    MfaFailed => ("mfa_failed", "RA-AUTH-004", Warning),
    /// Too many failures: the user's factor is locked.
    MfaLockedOut => ("mfa_locked_out", "RA-AUTH-005", High),
    /// A recovery code was consumed.
    RecoveryCodeUsed => ("recovery_code_used", "RA-AUTH-006", Warning),
    /// A WebAuthn/FIDO2 security key was enrolled.
    WebauthnKeyEnrolled => ("webauthn_key_enrolled", "RA-AUTH-007", Notice),
    /// A security key was removed (by its owner or an admin).
    WebauthnKeyRemoved => ("webauthn_key_removed", "RA-AUTH-008", Notice),
    /// A key's signature counter went backwards: it may be cloned, and was disabled.
    WebauthnKeyCloned => ("webauthn_key_cloned", "RA-AUTH-009", High),
    /// A key enrolment was refused (attestation policy, failed check, expired).
    WebauthnEnrolmentRefused => ("webauthn_enrolment_refused", "RA-AUTH-010", Warning),
    // sessions & certificates
    /// An authenticated session was created.
    SessionCreated => ("session_created", "RA-SES-001", Info),
    /// A session ended (logout, expiry, revocation).
    SessionEnded => ("session_ended", "RA-SES-002", Info),
    /// A user certificate was issued.
    CertIssued => ("cert_issued", "RA-CERT-001", Info),
    /// A certificate request was denied (policy, MFA freshness, revoked key…).
    CertDenied => ("cert_denied", "RA-CERT-002", Warning),
    /// A host certificate was issued.
    HostCertIssued => ("host_cert_issued", "RA-CERT-003", Notice),
    /// A user, key or serial was revoked.
    Revoked => ("revoked", "RA-CERT-004", Warning),
    /// A new KRL was published.
    KrlPublished => ("krl_published", "RA-CERT-005", Info),
    /// An administrator created a single-use host join token (a host's first
    /// certificate without a further admin step).
    HostTokenCreated => ("host_token_created", "RA-CERT-006", Notice),
    // bastions
    /// An administrator created a single-use bastion join token.
    BastionTokenCreated => ("bastion_token_created", "RA-BAS-001", Notice),
    /// A bastion joined with a valid token and received its credential.
    BastionJoined => ("bastion_joined", "RA-BAS-002", Notice),
    /// A bastion join was refused (token unknown, used, expired, or name refused).
    BastionJoinRefused => ("bastion_join_refused", "RA-BAS-003", Warning),
    /// A bastion session was authorised and its per-session certificate issued.
    AccessGranted => ("access_granted", "RA-BAS-004", Info),
    /// A bastion session was refused (policy, certificate, user or MFA).
    AccessDenied => ("access_denied", "RA-BAS-005", Warning),
    /// A bastion's inner session reached its target.
    BastionSessionStarted => ("bastion_session_started", "RA-BAS-006", Info),
    /// A bastion session ended (outcome failure when abnormal).
    BastionSessionEnded => ("bastion_session_ended", "RA-BAS-007", Info),
    /// A bastion refused a connection or a target before a session existed.
    BastionConnectionRefused => ("bastion_connection_refused", "RA-BAS-008", Warning),
    /// An exec request through a bastion: command, exit status, byte counts.
    BastionExec => ("bastion_exec", "RA-BAS-009", Info),
    /// One SFTP file operation seen by a bastion.
    BastionFileOp => ("bastion_file_op", "RA-BAS-010", Info),
    /// A forwarding channel through a bastion that policy allowed.
    BastionForward => ("bastion_forward", "RA-BAS-011", Info),
    /// A channel or request that a bastion refused by policy.
    BastionRequestRefused => ("bastion_request_refused", "RA-BAS-012", Warning),
    /// A session recording was stored and its SHA-256 sealed into the chain.
    RecordingSealed => ("recording_sealed", "RA-BAS-013", Notice),
    /// An administrator downloaded a sealed session recording.
    RecordingViewed => ("recording_viewed", "RA-BAS-014", Notice),
    /// The CA refused one event a bastion reported (a field out of bounds) and
    /// wrote this in its place: the kind, session and SHA-256 of what was
    /// refused, so the gap shows in the chain.
    AuditEventRejected => ("audit_event_rejected", "RA-BAS-015", Warning),
    /// A bastion re-read its `bastion.toml` on SIGHUP (failure: the file was
    /// refused and the running config stays).
    BastionConfigReloaded => ("bastion_config_reloaded", "RA-BAS-016", Notice),
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as a caller describes it, before the log gives it a sequence number,
/// a hash and (unless pre-allocated) an ID.
///
/// Time is a parameter: this crate never reads the wall clock for event times.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub(crate) kind: EventKind,
    pub(crate) outcome: Outcome,
    pub(crate) time: DateTime<Utc>,
    pub(crate) id: Option<ulid::Ulid>,
    pub(crate) actor: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) serial: Option<u64>,
    pub(crate) mfa_method: Option<String>,
    pub(crate) mfa_age_seconds: Option<i64>,
    pub(crate) reason: Option<String>,
    pub(crate) details: BTreeMap<String, serde_json::Value>,
}

impl NewEvent {
    /// Start an event of `kind` with its `outcome`, happening at `time`.
    pub fn new(kind: EventKind, outcome: Outcome, time: DateTime<Utc>) -> Self {
        NewEvent {
            kind,
            outcome,
            time,
            id: None,
            actor: None,
            user: None,
            source: None,
            target: None,
            session: None,
            serial: None,
            mfa_method: None,
            mfa_age_seconds: None,
            reason: None,
            details: BTreeMap::new(),
        }
    }

    /// Who performed the action (an admin, a service, `ca`).
    pub fn actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_owned());
        self
    }

    /// The user the event is about.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// The client's address.
    pub fn source(mut self, source: &str) -> Self {
        self.source = Some(source.to_owned());
        self
    }

    /// The object acted on (a host, an invite, a login@host).
    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    /// The session identifier.
    pub fn session(mut self, session: &str) -> Self {
        self.session = Some(session.to_owned());
        self
    }

    /// The certificate serial concerned.
    pub fn serial(mut self, serial: u64) -> Self {
        self.serial = Some(serial);
        self
    }

    /// The MFA method used (`totp`, `webauthn`, `recovery_code`, `oidc`).
    pub fn mfa_method(mut self, method: &str) -> Self {
        self.mfa_method = Some(method.to_owned());
        self
    }

    /// How old the MFA proof was when this action was taken, in seconds.
    pub fn mfa_age_seconds(mut self, age: i64) -> Self {
        self.mfa_age_seconds = Some(age);
        self
    }

    /// A short human-readable reason (mostly for failures and denials).
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// A free-form extra field. Keys are kept sorted; setting a key twice keeps the
    /// last value. Never put secrets here: the log is readable by auditors.
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Use a pre-allocated event ID (the CA puts the MFA event ID into the
    /// certificate before the event is written). Appending an ID the log already
    /// holds fails with [`AuditError::DuplicateId`].
    pub fn with_id(mut self, id: ulid::Ulid) -> Self {
        self.id = Some(id);
        self
    }

    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The event time given by the caller.
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }
}

/// A stored event, as read back by [`crate::AuditLog::query`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Position in the chain, gap-free from 1.
    pub seq: u64,
    /// The event's ULID.
    #[serde(serialize_with = "ser_display")]
    pub id: ulid::Ulid,
    /// When it happened (caller-supplied).
    pub time: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The kind's stable code at the time of writing.
    pub code: String,
    /// The kind's severity at the time of writing.
    pub severity: Severity,
    /// Success or failure.
    pub outcome: Outcome,
    /// Who did it.
    pub actor: Option<String>,
    /// The user concerned.
    pub user: Option<String>,
    /// Client address.
    pub source: Option<String>,
    /// Object acted on.
    pub target: Option<String>,
    /// Session identifier.
    pub session: Option<String>,
    /// Certificate serial.
    pub serial: Option<u64>,
    /// MFA method.
    pub mfa_method: Option<String>,
    /// MFA age in seconds.
    pub mfa_age_seconds: Option<i64>,
    /// Reason text.
    pub reason: Option<String>,
    /// Free-form extra fields, sorted by key.
    pub details: BTreeMap<String, serde_json::Value>,
    /// `SHA-256(prev_hash ‖ canonical body)`, serialized as lowercase hex.
    #[serde(serialize_with = "ser_hex")]
    pub hash: [u8; 32],
}

fn ser_display<S: Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_hex<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// Format a time the way the canonical body, the `time` column and checkpoint
/// messages do: RFC 3339, UTC, `Z`, always nine fractional digits. Fixed width, so
/// the `time` column sorts lexicographically in time order.
pub fn canonical_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The canonical body, field order fixed by declaration order (serde derive
/// serializes struct fields in order). `details` goes through [`Canonical`] so that
/// nested objects are key-sorted too, whatever serde_json's map features are.
#[derive(Serialize)]
struct BodyOut<'a> {
    v: u32,
    seq: u64,
    id: &'a str,
    time: &'a str,
    kind: &'static str,
    code: &'static str,
    severity: &'static str,
    outcome: &'static str,
    actor: Option<&'a str>,
    user: Option<&'a str>,
    source: Option<&'a str>,
    target: Option<&'a str>,
    session: Option<&'a str>,
    serial: Option<u64>,
    mfa_method: Option<&'a str>,
    mfa_age_seconds: Option<i64>,
    reason: Option<&'a str>,
    details: CanonicalMap<'a>,
}

struct CanonicalMap<'a>(&'a BTreeMap<String, serde_json::Value>);

impl Serialize for CanonicalMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, Canonical(v))))
    }
}

struct Canonical<'a>(&'a serde_json::Value);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde_json::Value;
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                s.collect_map(entries.into_iter().map(|(k, v)| (k, Canonical(v))))
            }
            Value::Array(items) => s.collect_seq(items.iter().map(Canonical)),
            other => other.serialize(s),
        }
    }
}

/// The fields the writer has decided for a new event.
pub(crate) struct Sealed<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub time: &'a str,
    pub ev: &'a NewEvent,
}

/// Encode an event's canonical body (see the crate docs for the exact format).
pub(crate) fn encode_body(s: &Sealed<'_>) -> Result<Vec<u8>, AuditError> {
    let e = s.ev;
    let out = BodyOut {
        v: BODY_VERSION,
        seq: s.seq,
        id: s.id,
        time: s.time,
        kind: e.kind.as_str(),
        code: e.kind.code(),
        severity: e.kind.severity().as_str(),
        outcome: e.outcome.as_str(),
        actor: e.actor.as_deref(),
        user: e.user.as_deref(),
        source: e.source.as_deref(),
        target: e.target.as_deref(),
        session: e.session.as_deref(),
        serial: e.serial,
        mfa_method: e.mfa_method.as_deref(),
        mfa_age_seconds: e.mfa_age_seconds,
        reason: e.reason.as_deref(),
        details: CanonicalMap(&e.details),
    };
    serde_json::to_vec(&out).map_err(|e| AuditError::write_failed_by("encoding event", e))
}

/// `SHA-256(prev_hash ‖ body)`.
pub(crate) fn chain_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

/// The owned decoding of a body, used by `query`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyIn {
    v: u32,
    seq: u64,
    id: String,
    time: String,
    kind: EventKind,
    code: String,
    severity: Severity,
    outcome: Outcome,
    actor: Option<String>,
    user: Option<String>,
    source: Option<String>,
    target: Option<String>,
    session: Option<String>,
    serial: Option<u64>,
    mfa_method: Option<String>,
    mfa_age_seconds: Option<i64>,
    reason: Option<String>,
    details: BTreeMap<String, serde_json::Value>,
}

/// Decode a stored body into an [`Event`] (the hash comes from the row).
pub(crate) fn decode_body(seq: u64, body: &[u8], hash: [u8; 32]) -> Result<Event, AuditError> {
    let corrupt = |reason: String| AuditError::CorruptRow { seq, reason };
    let b: BodyIn = serde_json::from_slice(body).map_err(|e| corrupt(format!("body: {e}")))?;
    if b.v != BODY_VERSION {
        return Err(corrupt(format!("unsupported body version {}", b.v)));
    }
    if b.seq != seq {
        return Err(corrupt(format!("body says sequence {}", b.seq)));
    }
    let id = ulid::Ulid::from_string(&b.id).map_err(|e| corrupt(format!("id: {e}")))?;
    let time = DateTime::parse_from_rfc3339(&b.time)
        .map_err(|e| corrupt(format!("time: {e}")))?
        .with_timezone(&Utc);
    Ok(Event {
        seq,
        id,
        time,
        kind: b.kind,
        code: b.code,
        severity: b.severity,
        outcome: b.outcome,
        actor: b.actor,
        user: b.user,
        source: b.source,
        target: b.target,
        session: b.session,
        serial: b.serial,
        mfa_method: b.mfa_method,
        mfa_age_seconds: b.mfa_age_seconds,
        reason: b.reason,
        details: b.details,
        hash,
    })
}

/// The fields of a body that `verify` cross-checks against the row, borrowed from
/// the row's text where possible so that verifying does not allocate per event.
/// Fields not named here are skipped by serde_json without being materialised.
#[derive(Deserialize)]
pub(crate) struct BodyView<'a> {
    pub v: u32,
    pub seq: u64,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub user: Option<Cow<'a, str>>,
    pub serial: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashSet;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn codes_are_unique_well_formed_and_round_trip() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for k in EventKind::all() {
            let code = k.code();
            assert!(codes.insert(code), "duplicate code {code}");
            assert!(names.insert(k.as_str()), "duplicate name {}", k.as_str());
            let parts: Vec<&str> = code.split('-').collect();
            assert_eq!(parts.len(), 3, "{code}");
            assert_eq!(parts[0], "RA");
            assert!(
                ["CA", "ADM", "AUTH", "SES", "CERT", "BAS"].contains(&parts[1]),
                "{code}"
            );
            assert_eq!(parts[2].len(), 3);
            assert!(parts[2].bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(EventKind::from_code(code), Some(*k));
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), *k);
            assert_eq!(code.parse::<EventKind>().unwrap(), *k);
            // serde name and as_str agree (the column and the body use the same spelling)
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(EventKind::all().len(), 52);
        assert!("no_such_kind".parse::<EventKind>().is_err());
        assert!("RA-CERT-999".parse::<EventKind>().is_err());
    }

    #[test]
    fn table_of_codes_and_severities() {
        // The published table: changing a row here is a breaking change for SIEM rules.
        let table = [
            (EventKind::CaInitialized, "RA-CA-001", Severity::Notice),
            (EventKind::MfaSucceeded, "RA-AUTH-003", Severity::Info),
            (EventKind::MfaFailed, "RA-AUTH-004", Severity::Warning),
            (EventKind::MfaLockedOut, "RA-AUTH-005", Severity::High),
            (EventKind::WebauthnKeyCloned, "RA-AUTH-009", Severity::High),
            (EventKind::CertIssued, "RA-CERT-001", Severity::Info),
            (EventKind::CertDenied, "RA-CERT-002", Severity::Warning),
            (EventKind::AdminActionDenied, "RA-ADM-008", Severity::High),
            (EventKind::KrlPublished, "RA-CERT-005", Severity::Info),
            (EventKind::HostTokenCreated, "RA-CERT-006", Severity::Notice),
            (EventKind::BastionJoined, "RA-BAS-002", Severity::Notice),
            (EventKind::AccessDenied, "RA-BAS-005", Severity::Warning),
        ];
        for (k, code, sev) in table {
            assert_eq!(k.code(), code);
            assert_eq!(k.severity(), sev);
        }
    }

    #[test]
    fn canonical_body_exact_bytes() {
        let ev = NewEvent::new(EventKind::CertIssued, Outcome::Success, t0())
            .user("alice")
            .serial(42)
            .mfa_method("totp")
            .mfa_age_seconds(12)
            .detail("zeta", 1)
            .detail(
                "alpha",
                serde_json::json!({"b": [true, null], "a": "x\"y\n"}),
            );
        let body = encode_body(&Sealed {
            seq: 7,
            id: "01JN0000000000000000000000",
            time: &canonical_time(&ev.time),
            ev: &ev,
        })
        .unwrap();
        let expected = concat!(
            r#"{"v":1,"seq":7,"id":"01JN0000000000000000000000","time":"2025-03-01T12:00:00.000000000Z","#,
            r#""kind":"cert_issued","code":"RA-CERT-001","severity":"info","outcome":"success","#,
            r#""actor":null,"user":"alice","source":null,"target":null,"session":null,"serial":42,"#,
            r#""mfa_method":"totp","mfa_age_seconds":12,"reason":null,"#,
            r#""details":{"alpha":{"a":"x\"y\n","b":[true,null]},"zeta":1}}"#
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[test]
    fn nested_objects_are_sorted_even_if_built_unsorted() {
        // Build a map through serde_json::Map in reverse insertion order.
        let mut m = serde_json::Map::new();
        m.insert("z".into(), 1.into());
        m.insert("a".into(), serde_json::json!({"y": 1, "b": 2}));
        let ev = NewEvent::new(EventKind::CaStarted, Outcome::Success, t0())
            .detail("m", serde_json::Value::Object(m));
        let body = encode_body(&Sealed {
            seq: 1,
            id: "X",
            time: "T",
            ev: &ev,
        })
        .unwrap();
        let s = String::from_utf8(body).unwrap();
        assert!(
            s.ends_with(r#""details":{"m":{"a":{"b":2,"y":1},"z":1}}}"#),
            "{s}"
        );
    }

    #[test]
    fn decode_round_trips_and_rejects_mismatch() {
        let ev = NewEvent::new(EventKind::MfaFailed, Outcome::Failure, t0())
            .user("bob")
            .source("192.0.2.1")
            .reason("bad code")
            .detail("attempt", 3);
        let id = ulid::Ulid::from_parts(1, 2).to_string();
        let time = canonical_time(&ev.time);
        let body = encode_body(&Sealed {
            seq: 3,
            id: &id,
            time: &time,
            ev: &ev,
        })
        .unwrap();
        let e = decode_body(3, &body, [7; 32]).unwrap();
        assert_eq!(e.kind, EventKind::MfaFailed);
        assert_eq!(e.code, "RA-AUTH-004");
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user.as_deref(), Some("bob"));
        assert_eq!(e.time, t0());
        assert_eq!(e.details["attempt"], serde_json::json!(3));
        assert!(matches!(
            decode_body(4, &body, [0; 32]),
            Err(AuditError::CorruptRow { seq: 4, .. })
        ));
        assert!(decode_body(3, b"{}", [0; 32]).is_err());
        let v: BodyView<'_> = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v.seq, v.kind.as_ref(), v.user.as_deref()),
            (3, "mfa_failed", Some("bob"))
        );
    }

    #[test]
    fn chain_hash_is_sha256_of_prev_then_body() {
        use sha2::{Digest, Sha256};
        let prev = [9u8; 32];
        let mut h = Sha256::new();
        h.update([9u8; 32]);
        h.update(b"abc");
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(chain_hash(&prev, b"abc"), expected);
        assert_ne!(chain_hash(&[0; 32], b"abc"), expected);
    }

    #[test]
    fn canonical_time_is_fixed_width() {
        let a = canonical_time(&t0());
        let b = canonical_time(&(t0() + chrono::Duration::nanoseconds(5)));
        assert_eq!(a.len(), b.len());
        assert_eq!(b, "2025-03-01T12:00:00.000000005Z");
        assert!(a < b);
    }

    #[test]
    fn event_serializes_id_and_hash_as_text() {
        let e = Event {
            seq: 1,
            id: ulid::Ulid::from_parts(0, 1),
            time: t0(),
            kind: EventKind::Revoked,
            code: "RA-CERT-004".into(),
            severity: Severity::Warning,
            outcome: Outcome::Success,
            actor: None,
            user: None,
            source: None,
            target: None,
            session: None,
            serial: None,
            mfa_method: None,
            mfa_age_seconds: None,
            reason: None,
            details: BTreeMap::new(),
            hash: [0xab; 32],
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["id"], "00000000000000000000000001");
        assert_eq!(v["hash"], "ab".repeat(32));
        assert_eq!(v["kind"], "revoked");
        assert_eq!(v["severity"], "warning");
    }
}
