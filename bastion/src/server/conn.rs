//! One connection (outer, or the inner session of a ProxyJump): its state, and
//! how it tells the user about a refusal.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rampart_api::user_proof::UserProof;
use russh::server::{self, Auth, Session};
use russh::{ChannelId, MethodKind, MethodSet};

use super::channels::{Bridged, TargetSession};
use super::events::{self, refuse_event};
use super::mfa::PendingMfa;
use super::Shared;
use crate::auth::OuterUser;
use crate::config::Target;
use crate::recording;

#[derive(Debug, Clone)]
pub(super) enum Mode {
    /// A TCP connection from a user.
    Outer,
    /// An inner session on a `direct-tcpip` channel of `outer` (ProxyJump).
    Inner(Box<InnerOf>),
}

/// Where an inner session came from.
#[derive(Debug, Clone)]
pub(super) struct InnerOf {
    pub(super) target: Target,
    pub(super) outer_user: OuterUser,
    pub(super) outer: server::Handle,
}

/// The russh handler for one connection (outer or inner).
pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    pub(super) peer: SocketAddr,
    pub(super) mode: Mode,
    pub(super) authed: Arc<std::sync::atomic::AtomicBool>,
    /// Unix seconds until which the accept loop's authentication timeout is
    /// held off (a security-key approval in progress needs the user's time).
    pub(super) auth_hold: Arc<std::sync::atomic::AtomicU64>,
    pub(super) user: Option<OuterUser>,
    pub(super) mfa: Option<PendingMfa>,
    pub(super) session: Option<TargetSession>,
    /// A reason to show on the first session request, then close.
    pub(super) refusal: Option<String>,
    /// Why the last certificate offered on this connection was refused, shown
    /// to the user through keyboard-interactive (see [`Conn::explain_refusal`]).
    pub(super) certificate_refusal: Option<String>,
    /// The refusal has been explained; the next keyboard-interactive round ends it.
    pub(super) explained: bool,
    /// What the user's client signed to log in on this connection, and the
    /// signature (from the last certificate login): sent with every
    /// session-certificate request so the CA sees the user is present.
    pub(super) user_proof: Option<UserProof>,
    pub(super) channels: HashMap<ChannelId, Bridged>,
    pub(super) refused_channels: HashMap<ChannelId, ()>,
    /// ProxyJump inner sessions open on this (outer) connection, logged in
    /// or not.
    pub(super) inner_sessions: Arc<std::sync::atomic::AtomicUsize>,
}

impl Conn {
    pub(super) fn new(shared: Arc<Shared>, peer: SocketAddr, mode: Mode) -> Conn {
        Conn {
            shared,
            peer,
            mode,
            authed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            auth_hold: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            user: None,
            mfa: None,
            session: None,
            refusal: None,
            certificate_refusal: None,
            explained: false,
            user_proof: None,
            channels: HashMap::new(),
            refused_channels: HashMap::new(),
            inner_sessions: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Keyboard-interactive without an accepted certificate: say why in the
    /// round's instructions, which OpenSSH prints even with no prompt, then
    /// refuse and take keyboard-interactive off the list so the client does not
    /// ask again. Without this the user reads only "Permission denied".
    ///
    /// russh refuses a certificate that has expired, is not yet valid or is badly
    /// signed before [`server::Handler::auth_openssh_certificate`] runs, so when
    /// no refusal of ours is on record that is the likely cause, and it is
    /// audited here (once per connection) with the source and SSH user name.
    pub(super) fn explain_refusal(&mut self, ssh_user: &str) -> Auth {
        if self.explained {
            return Auth::Reject {
                proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
                partial_success: false,
            };
        }
        self.explained = true;
        let why = match &self.certificate_refusal {
            Some(why) => format!("Your certificate was refused: {why}."),
            None => {
                let why = "no valid certificate was offered: none, or one that has expired, \
                           is not yet valid or is badly signed";
                let mut e = refuse_event(self.peer, None, why, self.shared.clock.now());
                e.login = Some(ssh_user.chars().take(256).collect());
                self.shared.auditor.enqueue(e);
                format!("Refused: {why}. Run `rampart login` for a new certificate.")
            }
        };
        Auth::Partial {
            name: Cow::Borrowed("Rampart"),
            instructions: Cow::Owned(ascii_line(&why)),
            prompts: Cow::Owned(Vec::new()),
        }
    }

    pub(super) fn refuse(&self, user: Option<&OuterUser>, reason: &str) {
        self.shared.auditor.enqueue(refuse_event(
            self.peer,
            user,
            reason,
            self.shared.clock.now(),
        ));
    }

    /// Accept the login but answer every session with `reason`.
    pub(super) fn accept_refused(&mut self, reason: String) -> Auth {
        self.refusal = Some(reason);
        self.authed.store(true, Ordering::Relaxed);
        Auth::Accept
    }

    /// Answer a request on a refused channel: the reason on stderr, exit 1, close.
    pub(super) fn explain_and_close(&mut self, channel: ChannelId, session: &mut Session) -> bool {
        if !self.refused_channels.contains_key(&channel) {
            return false;
        }
        let reason = self
            .refusal
            .clone()
            .unwrap_or_else(|| "this connection does not lead to a target".into());
        let _ = session.channel_success(channel);
        let _ = session.extended_data(channel, 1, format!("rampart: {reason}\r\n").into_bytes());
        let _ = session.exit_status_request(channel, 1);
        let _ = session.eof(channel);
        let _ = session.close(channel);
        self.refused_channels.remove(&channel);
        true
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(s) = self.session.take() else { return };
        self.shared.unregister(&s.plan.id);
        recording::remove_marker(&s.config.recording_dir, &s.plan.id);
        self.shared.auditor.enqueue(events::session_ended(
            &s,
            self.peer,
            self.shared.clock.now(),
        ));
        // The whole session's recording: finished and uploaded now that its
        // last channel is gone (a channel still open is closed in it).
        if let Some(recorder) = s.recorder.as_ref() {
            let closed = recorder.close();
            let (shared, id) = (self.shared.clone(), s.plan.id.clone());
            tokio::spawn(async move {
                if let Some(cast) = closed.await {
                    recording::finish_and_upload(shared, cast, id, false).await;
                }
            });
        }
        let client = s.client;
        tokio::spawn(async move {
            let _ = client
                .disconnect(russh::Disconnect::ByApplication, "session ended", "en")
                .await;
        });
    }
}

/// `text` with anything but printable ASCII replaced by `?`: OpenSSH shows a
/// server's keyboard-interactive instructions through its log, which escapes
/// other bytes into noise.
pub(super) fn ascii_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

pub(super) fn split_direct(user: &str) -> Option<(&str, &str)> {
    let (login, target) = user.rsplit_once('+')?;
    (!login.is_empty() && !target.is_empty()).then_some((login, target))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_direct_form_splits_at_the_last_plus() {
        assert_eq!(split_direct("root+db-1"), Some(("root", "db-1")));
        assert_eq!(split_direct("a+b+db-1"), Some(("a+b", "db-1")));
        assert_eq!(split_direct("rampart"), None);
        assert_eq!(split_direct("+db-1"), None);
        assert_eq!(split_direct("root+"), None);
        assert_eq!(split_direct("+"), None);
        assert_eq!(split_direct(""), None);
    }

    #[test]
    fn instructions_keep_printable_ascii_only() {
        let plain = "Refused: no valid certificate. Run `rampart login` (100%)!";
        assert_eq!(ascii_line(plain), plain);
        assert_eq!(ascii_line("caf\u{e9}\tok\r\n\u{1b}[0m"), "caf??ok???[0m");
        assert_eq!(ascii_line("\u{2014} \u{1f511}"), "? ?");
        assert_eq!(ascii_line(""), "");
    }
}
