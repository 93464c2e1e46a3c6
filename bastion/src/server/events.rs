//! The audit events of a session (its fields on every event) and of refusals.

use std::net::SocketAddr;

use rampart_api::BastionEventKind;
use russh::server::Session;
use russh::ChannelId;

use super::conn::Conn;
use super::Shared;
use crate::audit::{detail, event};
use crate::auth::OuterUser;

impl Shared {
    /// A `connection_refused` event from `peer`, for `user` when known.
    pub(super) fn refuse_event(
        &self,
        peer: SocketAddr,
        user: Option<&OuterUser>,
        reason: &str,
    ) -> rampart_api::BastionEvent {
        let mut e = event(BastionEventKind::ConnectionRefused, false);
        e.source = Some(peer.ip().to_string());
        e.user = user.map(|u| u.name.clone());
        e.serial = user.map(|u| u.serial);
        e.reason = Some(reason.chars().take(1000).collect());
        e
    }
}

impl Conn {
    /// A bare event of `kind` carrying this session's fields.
    pub(super) fn session_event(
        &self,
        kind: BastionEventKind,
        success: bool,
    ) -> rampart_api::BastionEvent {
        let mut e = event(kind, success);
        e.source = Some(self.peer.ip().to_string());
        if let Some(s) = &self.session {
            e.session_id = Some(s.id.clone());
            e.user = Some(s.user.name.clone());
            e.login = Some(s.login.clone());
            e.target = Some(s.target.name.clone());
            e.serial = Some(s.user.serial);
        } else if let Some(u) = &self.user {
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
