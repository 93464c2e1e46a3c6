//! The live session registry: what the session limits count, and what
//! revocation and the idle timeout end.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::server;
use russh::ChannelId;

use super::conn::{Conn, Mode};
use super::Shared;
use crate::bridge::Traffic;

/// A live session, as the registry sees it.
#[derive(Debug)]
pub(super) struct Live {
    user: String,
    serial: u64,
    key_fingerprint: String,
    /// The connection that carries it (inner session, or outer for the direct form).
    handle: server::Handle,
    /// The outer connection, for ProxyJump (closed too on revocation).
    outer: Option<server::Handle>,
    /// Open user-side channels, to write the reason to before closing.
    channels: Arc<Mutex<Vec<ChannelId>>>,
    /// Set when the bastion ends the session, read by the session's end event.
    end_reason: Arc<Mutex<Option<String>>>,
    traffic: Arc<Traffic>,
    /// The idle timeout of the config it started under.
    idle_timeout: Duration,
}

impl Shared {
    /// How many sessions are being proxied now.
    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub(super) fn count_sessions(&self, user: &str) -> (usize, usize) {
        match self.sessions.lock() {
            Ok(s) => (s.values().filter(|l| l.user == user).count(), s.len()),
            Err(_) => (usize::MAX, usize::MAX),
        }
    }

    /// Apply a revocation fetch and end the live sessions it covers.
    pub async fn apply_revocations(&self, r: &rampart_api::BastionRevocations) {
        crate::metrics::revocations_fetched(self.clock.now());
        let victims: Vec<(Ending, String)> = {
            let Ok(mut rev) = self.revocations.write() else {
                return;
            };
            rev.apply(r);
            let Ok(sessions) = self.sessions.lock() else {
                return;
            };
            sessions
                .iter()
                .filter_map(|(id, l)| {
                    let why = rev.revoked(&l.user, l.serial, &l.key_fingerprint)?;
                    Some((l.claim(id, "revoked")?, why.to_string()))
                })
                .collect()
        };
        for (ending, why) in victims {
            ending.end(&why).await;
        }
    }

    /// Take a session that has ended out of the registry.
    pub(super) fn unregister(&self, id: &str) {
        if let Ok(mut reg) = self.sessions.lock() {
            reg.remove(id);
        }
    }

    /// End live session `id`: `reason` is the code its `session_ended` event
    /// carries (unless something else ended it first), `why` what the user reads.
    pub(super) async fn end_session(&self, id: &str, reason: &str, why: &str) {
        let ending = match self.sessions.lock() {
            Ok(s) => s.get(id).and_then(|l| l.claim(id, reason)),
            Err(_) => None,
        };
        if let Some(ending) = ending {
            ending.end(why).await;
        }
    }
}

/// A session the bastion is ending: where to say why, and what to disconnect.
struct Ending {
    id: String,
    handle: server::Handle,
    outer: Option<server::Handle>,
    channels: Vec<ChannelId>,
}

impl Live {
    /// Claim this session's end for `reason`; `None` when it is already ending.
    fn claim(&self, id: &str, reason: &str) -> Option<Ending> {
        let mut e = self.end_reason.lock().ok()?;
        if e.is_some() {
            return None;
        }
        *e = Some(reason.to_owned());
        Some(Ending {
            id: id.to_owned(),
            handle: self.handle.clone(),
            outer: self.outer.clone(),
            channels: self.channels.lock().map(|c| c.clone()).unwrap_or_default(),
        })
    }
}

impl Ending {
    /// Write `why` to every open channel (stderr, exit status 255), close
    /// them, then disconnect the session's connection and, for ProxyJump, the
    /// outer one.
    async fn end(self, why: &str) {
        tracing::info!(session = %self.id, "ending session: {why}");
        let msg = format!("\r\nrampart: session ended by the bastion: {why}\r\n");
        for c in &self.channels {
            let _ = self
                .handle
                .extended_data(*c, 1, msg.clone().into_bytes())
                .await;
            let _ = self.handle.exit_status_request(*c, 255).await;
            let _ = self.handle.close(*c).await;
        }
        if !self.channels.is_empty() {
            // Let the reason reach the user before the connection goes.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for h in std::iter::once(&self.handle).chain(self.outer.as_ref()) {
            let _ = h
                .disconnect(
                    russh::Disconnect::ByApplication,
                    format!("rampart: {why}"),
                    "en".into(),
                )
                .await;
        }
    }
}

impl Conn {
    /// Enter this connection's session in the registry, carried by `handle`.
    pub(super) fn register(&self, handle: server::Handle) {
        let Some(s) = &self.session else { return };
        let outer = match &self.mode {
            Mode::Inner(i) => Some(i.outer.clone()),
            Mode::Outer => None,
        };
        if let Ok(mut reg) = self.shared.sessions.lock() {
            reg.insert(
                s.plan.id.clone(),
                Live {
                    user: s.plan.user.name.clone(),
                    serial: s.plan.user.serial,
                    key_fingerprint: s.plan.user.key_fingerprint.clone(),
                    handle,
                    outer,
                    channels: s.channels.clone(),
                    end_reason: s.end_reason.clone(),
                    traffic: s.traffic.clone(),
                    idle_timeout: s.config.limits.idle_timeout,
                },
            );
        }
    }
}

/// Fetch the revocation list once, retrying until `max` has passed.
pub async fn first_revocations(shared: &Shared, max: Duration) {
    let deadline = Instant::now() + max;
    loop {
        match shared.ca.revocations(None).await {
            Ok(r) => {
                shared.apply_revocations(&r).await;
                return;
            }
            Err(e) if Instant::now() < deadline => {
                tracing::warn!("revocation list not loaded yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                tracing::error!(
                    "revocation list not loaded; refusing every certificate until it is: {e}"
                );
                return;
            }
        }
    }
}

/// Poll the CA's revocation list forever.
pub async fn revocation_loop(shared: Arc<Shared>) {
    let mut since: Option<u64> = None;
    loop {
        match shared.ca.revocations(since).await {
            Ok(r) => {
                since = Some(r.version);
                shared.apply_revocations(&r).await;
            }
            Err(e) => tracing::warn!("revocation poll failed: {e}"),
        }
        let every = shared.config().revocation_poll;
        tokio::time::sleep(every).await;
    }
}

/// End sessions idle longer than the idle timeout they started under.
pub async fn idle_loop(shared: Arc<Shared>) {
    loop {
        let every = Duration::from_secs(5).min(shared.config().limits.idle_timeout);
        tokio::time::sleep(every).await;
        // Idle time is measured on the monotonic clock: stepping the wall
        // clock must neither end sessions nor keep them alive.
        let now_ms = crate::clock::monotonic_ms();
        let idle: Vec<Ending> = match shared.sessions.lock() {
            Ok(s) => s
                .iter()
                .filter(|(_, l)| {
                    let limit_ms = u64::try_from(l.idle_timeout.as_millis()).unwrap_or(u64::MAX);
                    now_ms.saturating_sub(l.traffic.last_activity_ms.load(Ordering::Relaxed))
                        > limit_ms
                })
                .filter_map(|(id, l)| l.claim(id, "idle_timeout"))
                .collect(),
            Err(_) => Vec::new(),
        };
        for ending in idle {
            ending.end("idle timeout").await;
        }
    }
}
