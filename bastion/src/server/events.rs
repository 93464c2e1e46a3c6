//! The audit events of a session (its fields on every event) and of refusals.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use rampart_api::{BastionEvent, BastionEventKind};
use russh::server::Session;
use russh::ChannelId;

use super::channels::TargetSession;
use super::conn::Conn;
use super::establish::SessionPlan;
use crate::audit::{detail, event};
use crate::auth::OuterUser;
use crate::bridge::ChannelEnd;

/// `e` with the fields of the session `plan` describes, reached from `peer`:
/// session ID, user, login, target, source and certificate serial.
pub(super) fn with_session(
    mut e: BastionEvent,
    plan: &SessionPlan,
    peer: SocketAddr,
) -> BastionEvent {
    e.session_id = Some(plan.id.clone());
    e.user = Some(plan.user.name.clone());
    e.login = Some(plan.login.clone());
    e.target = Some(plan.target.name.clone());
    e.source = Some(peer.ip().to_string());
    e.serial = Some(plan.user.serial);
    e
}

/// A `connection_refused` event from `peer`, for `user` when known.
pub(super) fn refuse_event(
    peer: SocketAddr,
    user: Option<&OuterUser>,
    reason: &str,
    at: DateTime<Utc>,
) -> BastionEvent {
    let mut e = event(BastionEventKind::ConnectionRefused, false, at);
    e.source = Some(peer.ip().to_string());
    e.user = user.map(|u| u.name.clone());
    e.serial = user.map(|u| u.serial);
    e.reason = Some(reason.chars().take(1000).collect());
    e
}

/// The `session_ended` event of `s`: why it ended ("closed" unless the
/// bastion ended it), the bytes each way and how long it lasted.
pub(super) fn session_ended(
    s: &TargetSession,
    peer: SocketAddr,
    at: DateTime<Utc>,
) -> BastionEvent {
    let reason = s
        .end_reason
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .unwrap_or_else(|| "closed".into());
    let mut e = with_session(
        event(BastionEventKind::SessionEnded, reason == "closed", at),
        &s.plan,
        peer,
    );
    e.reason = Some(reason);
    let e = detail(e, "bytes_up", s.traffic.up.load(Ordering::Relaxed));
    let e = detail(e, "bytes_down", s.traffic.down.load(Ordering::Relaxed));
    detail(
        e,
        "duration_ms",
        u64::try_from(s.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    )
}

/// The `exec` event of a channel whose `command` ended as `end` says, from
/// `base` (the session's fields).
pub(super) fn exec_ended(base: BastionEvent, command: String, end: ChannelEnd) -> BastionEvent {
    let mut e = base;
    e.success = end.exit_status == Some(0);
    let mut e = detail(e, "command", command);
    if let Some(st) = end.exit_status {
        e = detail(e, "exit_status", st);
    }
    if let Some(sig) = end.exit_signal {
        e = detail(e, "exit_signal", sig);
    }
    detail(e, "bytes_down", end.bytes_down)
}

impl Conn {
    /// A bare event of `kind` carrying this session's fields.
    pub(super) fn session_event(&self, kind: BastionEventKind, success: bool) -> BastionEvent {
        let at = self.shared.clock.now();
        if let Some(s) = &self.session {
            return with_session(event(kind, success, at), &s.plan, self.peer);
        }
        let mut e = event(kind, success, at);
        e.source = Some(self.peer.ip().to_string());
        if let Some(u) = &self.user {
            e.user = Some(u.name.clone());
            e.serial = Some(u.serial);
        }
        e
    }

    pub(super) fn refuse_request(&self, channel: ChannelId, what: &str, session: &mut Session) {
        let _ = session.channel_failure(channel);
        self.request_refused_event(what);
    }

    pub(super) fn request_refused_event(&self, what: &str) {
        let mut e = self.session_event(BastionEventKind::RequestRefused, false);
        e.reason = Some(format!("{what} is not allowed by policy"));
        self.shared.auditor.enqueue(detail(e, "request", what));
    }
}
