//! OCSF (Open Cybersecurity Schema Framework) 1.3.0 events, one JSON object per
//! Rampart event.
//!
//! Every event carries the base event's required attributes (`activity_id`,
//! `category_uid`, `class_uid`, `type_uid` = `class_uid * 100 + activity_id`,
//! `time` in ms, `severity_id`, `metadata` with `product` and `version`) and its
//! class's required attributes (`user` for the IAM classes 3001/3002/3003/3005,
//! `entity` for Entity Management 3004, `app` for Application Lifecycle 6002),
//! plus `service` for Authentication's "at least one of service, dst_endpoint"
//! constraint. What has no OCSF attribute goes under `unmapped.rampart`, the
//! schema's place for source fields that were not mapped. The kind → class table
//! and the reasons for each choice are in `audit/SCHEMA.md`.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::event::{Event, EventKind, Outcome, Severity};

use super::{epoch_millis, kind_title, message, PRODUCT, PRODUCT_VERSION, VENDOR};

/// The OCSF schema version written to `metadata.version`.
pub const OCSF_VERSION: &str = "1.3.0";

/// Where a kind lands in OCSF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OcsfClass {
    /// `category_uid` (3 Identity & Access Management, 6 Application Activity).
    pub category_uid: u32,
    /// The category's caption.
    pub category_name: &'static str,
    /// `class_uid`.
    pub class_uid: u32,
    /// The class's caption.
    pub class_name: &'static str,
    /// `activity_id` within the class (99 = Other).
    pub activity_id: u32,
    /// The activity's caption (for 99, our own words).
    pub activity_name: &'static str,
}

impl OcsfClass {
    /// `type_uid` = `class_uid * 100 + activity_id`.
    pub fn type_uid(&self) -> u64 {
        u64::from(self.class_uid) * 100 + u64::from(self.activity_id)
    }
}

const IAM: (u32, &str) = (3, "Identity & Access Management");
const APP: (u32, &str) = (6, "Application Activity");

const fn class(
    cat: (u32, &'static str),
    class_uid: u32,
    class_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
) -> OcsfClass {
    OcsfClass {
        category_uid: cat.0,
        category_name: cat.1,
        class_uid,
        class_name,
        activity_id,
        activity_name,
    }
}

const ACCOUNT_CHANGE: &str = "Account Change";
const AUTHENTICATION: &str = "Authentication";
const AUTHORIZE_SESSION: &str = "Authorize Session";
const ENTITY_MANAGEMENT: &str = "Entity Management";
const USER_ACCESS: &str = "User Access Management";
const APP_LIFECYCLE: &str = "Application Lifecycle";

/// The OCSF class and activity of a kind.
pub fn ocsf_class(kind: EventKind) -> OcsfClass {
    match kind {
        EventKind::CaInitialized => class(APP, 6002, APP_LIFECYCLE, 1, "Install"),
        EventKind::CaStarted => class(APP, 6002, APP_LIFECYCLE, 3, "Start"),
        EventKind::CaStopped => class(APP, 6002, APP_LIFECYCLE, 4, "Stop"),
        EventKind::PolicyReloaded => class(APP, 6002, APP_LIFECYCLE, 8, "Update"),
        EventKind::CaConfigReloaded => class(APP, 6002, APP_LIFECYCLE, 8, "Update"),
        EventKind::AuditWitnessRestarted => {
            class(APP, 6002, APP_LIFECYCLE, 99, "Audit Witness Restarted")
        }
        EventKind::CaKeyRotated => class(APP, 6002, APP_LIFECYCLE, 99, "CA Key Rotated"),
        EventKind::BastionConfigReloaded => class(APP, 6002, APP_LIFECYCLE, 8, "Update"),
        EventKind::UserCreated => class(IAM, 3001, ACCOUNT_CHANGE, 1, "Create"),
        EventKind::UserDisabled => class(IAM, 3001, ACCOUNT_CHANGE, 5, "Disable"),
        EventKind::UserEnabled => class(IAM, 3001, ACCOUNT_CHANGE, 2, "Enable"),
        EventKind::UserGroupsChanged => class(IAM, 3005, USER_ACCESS, 1, "Assign Privileges"),
        EventKind::UserIdpLinked => class(IAM, 3001, ACCOUNT_CHANGE, 99, "Link Identity"),
        EventKind::UserIdpUnlinked => class(IAM, 3001, ACCOUNT_CHANGE, 99, "Unlink Identity"),
        EventKind::AdminRecoveryInvite => {
            class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Admin Recovery Invite")
        }
        EventKind::InviteCreated => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::InviteRedeemed => class(IAM, 3004, ENTITY_MANAGEMENT, 3, "Update"),
        EventKind::InviteRefused => class(IAM, 3004, ENTITY_MANAGEMENT, 3, "Update"),
        EventKind::AdminActionDenied => {
            class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Admin Action Denied")
        }
        EventKind::TotpEnrolled => class(IAM, 3001, ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
        EventKind::RecoveryCodesIssued => class(IAM, 3001, ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
        EventKind::MfaSucceeded => class(IAM, 3002, AUTHENTICATION, 1, "Logon"),
        EventKind::MfaFailed => class(IAM, 3002, AUTHENTICATION, 1, "Logon"),
        EventKind::MfaLockedOut => class(IAM, 3001, ACCOUNT_CHANGE, 9, "Lock"),
        EventKind::RecoveryCodeUsed => class(IAM, 3002, AUTHENTICATION, 1, "Logon"),
        EventKind::WebauthnKeyEnrolled => class(IAM, 3001, ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
        EventKind::WebauthnKeyRemoved => class(IAM, 3001, ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
        EventKind::WebauthnKeyCloned => class(IAM, 3001, ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
        EventKind::WebauthnEnrolmentRefused => {
            class(IAM, 3001, ACCOUNT_CHANGE, 10, "MFA Factor Enable")
        }
        EventKind::SessionCreated => class(IAM, 3002, AUTHENTICATION, 1, "Logon"),
        EventKind::SessionEnded => class(IAM, 3002, AUTHENTICATION, 2, "Logoff"),
        EventKind::CertIssued => class(IAM, 3003, AUTHORIZE_SESSION, 1, "Assign Privileges"),
        EventKind::CertDenied => class(IAM, 3003, AUTHORIZE_SESSION, 1, "Assign Privileges"),
        EventKind::HostCertIssued => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::Revoked => class(IAM, 3004, ENTITY_MANAGEMENT, 3, "Update"),
        EventKind::KrlPublished => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::HostTokenCreated => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::BastionTokenCreated => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::BastionJoined => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::BastionJoinRefused => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::AccessGranted => class(IAM, 3003, AUTHORIZE_SESSION, 1, "Assign Privileges"),
        EventKind::AccessDenied => class(IAM, 3003, AUTHORIZE_SESSION, 1, "Assign Privileges"),
        EventKind::BastionSessionStarted => class(IAM, 3002, AUTHENTICATION, 1, "Logon"),
        EventKind::BastionSessionEnded => class(IAM, 3002, AUTHENTICATION, 2, "Logoff"),
        EventKind::BastionConnectionRefused => class(IAM, 3002, AUTHENTICATION, 1, "Logon"),
        EventKind::BastionExec => class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Session Exec"),
        EventKind::BastionFileOp => {
            class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Session File Operation")
        }
        EventKind::BastionForward => class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Session Forward"),
        EventKind::BastionRequestRefused => {
            class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Session Request Refused")
        }
        EventKind::RecordingSealed => class(IAM, 3004, ENTITY_MANAGEMENT, 1, "Create"),
        EventKind::RecordingViewed => class(IAM, 3004, ENTITY_MANAGEMENT, 2, "Read"),
        EventKind::AuditEventRejected => {
            class(IAM, 3004, ENTITY_MANAGEMENT, 99, "Session Event Rejected")
        }
    }
}

/// OCSF `severity_id`: 1 Informational, 2 Low, 3 Medium, 4 High.
pub(crate) fn ocsf_severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Notice => (2, "Low"),
        Severity::Warning => (3, "Medium"),
        Severity::High => (4, "High"),
    }
}

fn user_obj(name: &str) -> Value {
    json!({ "name": name, "type_id": 1, "type": "User" })
}

/// The OCSF `user` for classes that require one: the event's user, else its
/// actor, else `{"name": "unknown", "type_id": 0}` (never emitted by today's CA
/// for those classes; the required attribute stays present).
fn required_user(ev: &Event) -> Value {
    match ev.user.as_deref().or(ev.actor.as_deref()) {
        Some(u) => user_obj(u),
        None => json!({ "name": "unknown", "type_id": 0, "type": "Unknown" }),
    }
}

fn endpoint(source: &str) -> Value {
    match source.parse::<IpAddr>() {
        Ok(ip) => json!({ "ip": ip.to_string() }),
        Err(_) => json!({ "hostname": source }),
    }
}

fn str_list(ev: &Event, key: &str) -> Vec<Value> {
    match ev.details.get(key) {
        Some(Value::Array(a)) => a.iter().filter(|v| v.is_string()).cloned().collect(),
        _ => Vec::new(),
    }
}

/// Encode one event as an OCSF 1.3.0 object.
pub fn to_ocsf(ev: &Event) -> Value {
    let c = ocsf_class(ev.kind);
    let (severity_id, severity) = ocsf_severity(ev.kind.severity());
    let (status_id, status) = match ev.outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
    };
    let mut o = Map::new();
    o.insert("category_uid".into(), c.category_uid.into());
    o.insert("category_name".into(), c.category_name.into());
    o.insert("class_uid".into(), c.class_uid.into());
    o.insert("class_name".into(), c.class_name.into());
    o.insert("activity_id".into(), c.activity_id.into());
    o.insert("activity_name".into(), c.activity_name.into());
    o.insert("type_uid".into(), c.type_uid().into());
    o.insert(
        "type_name".into(),
        format!("{}: {}", c.class_name, c.activity_name).into(),
    );
    o.insert("time".into(), epoch_millis(&ev.time).into());
    o.insert("severity_id".into(), severity_id.into());
    o.insert("severity".into(), severity.into());
    o.insert("status_id".into(), status_id.into());
    o.insert("status".into(), status.into());
    if let Some(r) = &ev.reason {
        o.insert("status_detail".into(), r.clone().into());
    }
    o.insert("message".into(), message(ev).into());
    o.insert(
        "metadata".into(),
        json!({
            "version": super::OCSF_VERSION,
            "product": {
                "name": PRODUCT,
                "vendor_name": VENDOR,
                "version": PRODUCT_VERSION,
            },
            "uid": ev.id.to_string(),
            "event_code": ev.kind.code(),
            "sequence": ev.seq,
            "log_name": "rampart-audit",
            "original_time": super::canonical_time(&ev.time),
        }),
    );
    if let Some(a) = &ev.actor {
        let mut actor = Map::new();
        actor.insert("user".into(), user_obj(a));
        if let Some(s) = &ev.session {
            actor.insert("session".into(), json!({ "uid": s }));
        }
        o.insert("actor".into(), Value::Object(actor));
    }
    if let Some(s) = &ev.source {
        o.insert("src_endpoint".into(), endpoint(s));
    }
    let session = ev.session.as_ref().map(|s| json!({ "uid": s }));
    match c.class_uid {
        3001 => {
            o.insert("user".into(), required_user(ev));
        }
        3002 => {
            o.insert("user".into(), required_user(ev));
            // Authentication: "at_least_one": ["service", "dst_endpoint"].
            o.insert("service".into(), json!({ "name": PRODUCT }));
            o.insert("is_mfa".into(), true.into());
            o.insert("is_remote".into(), true.into());
            if let Some(m) = &ev.mfa_method {
                // auth_protocol_id 99 "Other": TOTP and recovery codes have no id.
                o.insert("auth_protocol_id".into(), 99.into());
                o.insert("auth_protocol".into(), m.clone().into());
            }
            if ev.kind == EventKind::SessionCreated {
                o.insert("is_new_logon".into(), true.into());
            }
            if let Some(s) = &session {
                o.insert("session".into(), s.clone());
            }
        }
        3003 => {
            o.insert("user".into(), required_user(ev));
            // Authorize Session: "at_least_one": ["privileges", "groups"]. The
            // certificate's principals are the privileges it grants (empty when
            // the request was denied).
            o.insert(
                "privileges".into(),
                Value::Array(str_list(ev, "principals")),
            );
            if let Some(s) = &session {
                o.insert("session".into(), s.clone());
            }
        }
        3005 => {
            o.insert("user".into(), required_user(ev));
            o.insert("privileges".into(), Value::Array(str_list(ev, "groups")));
        }
        3004 => {
            o.insert("entity".into(), entity(ev));
            if let Some(r) = &ev.reason {
                o.insert("comment".into(), r.clone().into());
            }
            if let Some(u) = &ev.user {
                o.insert("user".into(), user_obj(u));
            }
        }
        _ if ev.kind == EventKind::BastionConfigReloaded => {
            // 6002 Application Lifecycle, of a bastion: the app is the bastion
            // the actor names (`bastion:NAME`), whose version the CA does not know.
            let name = ev
                .actor
                .as_deref()
                .and_then(|a| a.strip_prefix("bastion:"))
                .unwrap_or("unknown");
            o.insert(
                "app".into(),
                json!({ "name": "rampart-bastion", "uid": name, "vendor_name": VENDOR }),
            );
        }
        _ => {
            // 6002 Application Lifecycle: the app is the CA itself.
            o.insert(
                "app".into(),
                json!({ "name": PRODUCT, "vendor_name": VENDOR, "version": PRODUCT_VERSION }),
            );
        }
    }
    o.insert("unmapped".into(), json!({ "rampart": unmapped(ev) }));
    Value::Object(o)
}

/// The managed entity of an Entity Management event.
fn entity(ev: &Event) -> Value {
    let (kind, name) = match ev.kind {
        EventKind::InviteCreated | EventKind::InviteRedeemed | EventKind::InviteRefused => (
            "invite",
            ev.user
                .as_ref()
                .map_or_else(|| "invite".to_owned(), |u| format!("invite for {u}")),
        ),
        EventKind::AdminActionDenied => (
            "admin_action",
            ev.details
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
        ),
        EventKind::HostTokenCreated => (
            "ssh_host_join_token",
            ev.target.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        EventKind::HostCertIssued => (
            "ssh_host_certificate",
            ev.target.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        EventKind::Revoked => (
            "revocation",
            ev.target.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        EventKind::KrlPublished => ("krl", "OpenSSH KRL".to_owned()),
        EventKind::BastionTokenCreated
        | EventKind::BastionJoined
        | EventKind::BastionJoinRefused => (
            "bastion",
            ev.target.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        EventKind::BastionExec
        | EventKind::BastionFileOp
        | EventKind::BastionForward
        | EventKind::BastionRequestRefused
        | EventKind::AuditEventRejected => (
            "bastion_session",
            ev.session.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        EventKind::RecordingSealed | EventKind::RecordingViewed => (
            "session_recording",
            ev.session.clone().unwrap_or_else(|| "unknown".to_owned()),
        ),
        _ => ("unknown", kind_title(ev.kind).to_owned()),
    };
    let mut e = Map::new();
    e.insert("name".into(), name.into());
    e.insert("type".into(), kind.into());
    if let Some(s) = ev.serial {
        e.insert("uid".into(), s.to_string().into());
    } else if let Some(v) = ev.details.get("krl_version") {
        e.insert("uid".into(), v.to_string().into());
    }
    Value::Object(e)
}

fn unmapped(ev: &Event) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), ev.kind.as_str().into());
    m.insert("code".into(), ev.kind.code().into());
    m.insert("severity".into(), ev.kind.severity().as_str().into());
    m.insert("outcome".into(), ev.outcome.as_str().into());
    let opt = |m: &mut Map<String, Value>, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), v.clone().into());
        }
    };
    opt(&mut m, "target", &ev.target);
    opt(&mut m, "session", &ev.session);
    opt(&mut m, "mfa_method", &ev.mfa_method);
    if let Some(s) = ev.serial {
        // A string: OCSF consumers often parse numbers as doubles; serials are u64.
        m.insert("serial".into(), s.to_string().into());
    }
    if let Some(a) = ev.mfa_age_seconds {
        m.insert("mfa_age_seconds".into(), a.into());
    }
    if !ev.details.is_empty() {
        m.insert(
            "details".into(),
            Value::Object(ev.details.clone().into_iter().collect()),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_uid_is_class_times_100_plus_activity() {
        for k in EventKind::all() {
            let c = ocsf_class(*k);
            assert_eq!(
                c.type_uid(),
                u64::from(c.class_uid) * 100 + u64::from(c.activity_id)
            );
            assert_eq!(c.category_uid, c.class_uid / 1000, "{k}");
        }
    }
}
