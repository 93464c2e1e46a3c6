//! Forwarding: a `direct-tcpip` channel is either a port forward inside a
//! session (`ssh -L`, where policy allows it) or, on an outer connection, the
//! start of a ProxyJump inner session; agent forwarding and remote forwards
//! (`ssh -R`) are passed on to the target where policy allows them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rampart_api::BastionEventKind;
use russh::server::{self, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};

use super::accept::run_connection;
use super::channels::join;
use super::conn::{Conn, InnerOf, Mode};
use super::events::refuse_event;
use crate::audit::detail;
use crate::auth::OuterUser;
use crate::bridge;

impl Conn {
    /// A `direct-tcpip` channel: a port forward inside a session, or a
    /// ProxyJump to a target.
    pub(super) async fn open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) {
        let Some(user) = self.user.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        };
        if self.session.is_some() {
            self.forward_port(channel, host_to_connect, port_to_connect, reply, session)
                .await;
            return;
        }
        if matches!(self.mode, Mode::Inner(_)) || self.refusal.is_some() {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
        self.start_inner_session(channel, host_to_connect, user, reply, session)
            .await;
    }

    /// A port forward inside a session to a target.
    async fn forward_port(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) {
        let Some(s) = &self.session else { return };
        if !s.policy.port_forwarding {
            self.request_refused_event(&format!(
                "direct-tcpip to {host_to_connect}:{port_to_connect}"
            ));
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 1,
                    reason: "rampart: port forwarding is not allowed by policy".into(),
                })
                .await;
            return;
        }
        match s
            .client
            .channel_open_direct_tcpip(host_to_connect, port_to_connect, "127.0.0.1", 0)
            .await
        {
            Ok(tc) => {
                let e = self.session_event(BastionEventKind::Forward, true);
                self.shared.auditor.enqueue(detail(
                    e,
                    "destination",
                    format!("{host_to_connect}:{port_to_connect}"),
                ));
                reply.accept().await;
                let (bridged, pump) = join(tc, channel);
                self.channels.insert(pump.id(), bridged);
                let traffic = s.traffic.clone();
                let handle = session.handle();
                tokio::spawn(pump.run(handle, traffic, None));
            }
            Err(e) => {
                reply
                    .reject(ChannelOpenFailure::Other {
                        code: 2,
                        reason: format!("rampart: target refused the forward: {e}"),
                    })
                    .await;
            }
        }
    }

    /// ProxyJump: terminate an inner SSH session for a configured target.
    async fn start_inner_session(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        user: OuterUser,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) {
        let Some(target) = self.shared.config().targets.get(host_to_connect).cloned() else {
            let why = format!("unknown target {host_to_connect:?}");
            let mut e = refuse_event(self.peer, Some(&user), &why, self.shared.clock.now());
            e.target = Some(host_to_connect.chars().take(256).collect());
            self.shared.auditor.enqueue(e);
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 1,
                    reason: format!("rampart: {why}: this bastion does not lead there"),
                })
                .await;
            return;
        };
        let config = match self.shared.target_config(&target.name).await {
            Ok(c) => c,
            Err(e) => {
                let why = rampart_api::report::one_line(&e);
                self.refuse(Some(&user), &why);
                reply
                    .reject(ChannelOpenFailure::Other {
                        code: 2,
                        reason: format!("rampart: {why}"),
                    })
                    .await;
                return;
            }
        };
        // Inner sessions count against the user's session limit from the
        // moment they are opened, not only once they log in: one outer
        // connection cannot hold more handshakes than the user may have
        // sessions.
        let max = self.shared.config().limits.max_sessions_per_user;
        if self.inner_sessions.fetch_add(1, Ordering::Relaxed) >= max {
            self.inner_sessions.fetch_sub(1, Ordering::Relaxed);
            let why = format!("too many sessions on one connection (limit {max})");
            self.refuse(Some(&user), &why);
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 1,
                    reason: format!("rampart: {why}"),
                })
                .await;
            return;
        }
        reply.accept().await;
        let inner = Conn::new(
            self.shared.clone(),
            self.peer,
            Mode::Inner(Box::new(InnerOf {
                target,
                outer_user: user,
                outer: session.handle(),
            })),
        );
        let stream = channel.into_stream();
        let shared = self.shared.clone();
        let open = self.inner_sessions.clone();
        tokio::spawn(async move {
            run_connection(shared, config, stream, inner, "inner").await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// `auth-agent-req`: where policy allows it, agent channels the target
    /// opens are bridged to the user, and the request is passed on.
    pub(super) async fn agent_requested(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> bool {
        let Some(s) = &self.session else {
            return false;
        };
        if !s.policy.agent_forwarding {
            self.request_refused_event("agent forwarding");
            return false;
        }
        s.agent.allow(session.handle());
        let mut base = self.session_event(BastionEventKind::Forward, true);
        let ok = match self.channels.get_mut(&channel) {
            Some(b) => {
                b.to_target.agent_forward(true).await.is_ok()
                    && matches!(
                        tokio::time::timeout(Duration::from_secs(30), b.replies.recv()).await,
                        Ok(Some(true))
                    )
            }
            None => false,
        };
        base.success = ok;
        self.shared.auditor.enqueue(detail(base, "kind", "agent"));
        ok
    }

    /// `ssh -R` (RFC 4254 §7.1): where policy allows port forwarding, the
    /// target is asked to listen, and the connections it then opens back
    /// (`forwarded-tcpip`) are bridged to the user by [`bridge::RemoteForwards`].
    pub(super) async fn tcpip_forward_requested(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> bool {
        let what = format!("remote port forwarding {address}:{port}");
        let Some(s) = &self.session else {
            self.request_refused_event(&what);
            return false;
        };
        if !s.policy.port_forwarding {
            self.request_refused_event(&what);
            return false;
        }
        let requested = *port;
        let asked = tokio::time::timeout(
            Duration::from_secs(30),
            s.client.tcpip_forward(address, requested),
        )
        .await;
        let e = detail(
            self.session_event(BastionEventKind::Forward, true),
            "kind",
            "remote_listen",
        );
        match asked {
            Ok(Ok(bound)) => {
                // The target answers the port only when it chose one (port 0).
                let bound = if requested == 0 { bound } else { requested };
                *port = bound;
                s.remote.listen(
                    bridge::ForwardContext {
                        user: session.handle(),
                        auditor: self.shared.auditor.clone(),
                        base: self.session_event(BastionEventKind::Forward, true),
                        traffic: s.traffic.clone(),
                        clock: self.shared.clock.clone(),
                    },
                    address,
                    bound,
                );
                self.shared
                    .auditor
                    .enqueue(detail(e, "listen", format!("{address}:{bound}")));
                true
            }
            Ok(Err(err)) => {
                let mut e = detail(e, "listen", format!("{address}:{requested}"));
                e.success = false;
                e.reason = Some(format!("the target refused to listen: {err}"));
                self.shared.auditor.enqueue(e);
                false
            }
            Err(_) => {
                let mut e = detail(e, "listen", format!("{address}:{requested}"));
                e.success = false;
                e.reason = Some("the target did not answer within 30 s".into());
                self.shared.auditor.enqueue(e);
                false
            }
        }
    }

    /// `cancel-tcpip-forward` for a remote forward granted earlier.
    pub(super) async fn cancel_tcpip_forward_requested(
        &mut self,
        address: &str,
        port: u32,
    ) -> bool {
        let Some(s) = &self.session else {
            return false;
        };
        if !s.remote.cancel(address, port) {
            return false;
        }
        let ok = matches!(
            tokio::time::timeout(
                Duration::from_secs(30),
                s.client.cancel_tcpip_forward(address, port)
            )
            .await,
            Ok(Ok(()))
        );
        let mut e = detail(
            detail(
                self.session_event(BastionEventKind::Forward, ok),
                "kind",
                "remote_cancel",
            ),
            "listen",
            format!("{address}:{port}"),
        );
        if !ok {
            e.reason = Some("the target did not cancel the forward".into());
        }
        self.shared.auditor.enqueue(e);
        ok
    }
}
