//! The bastion → target leg: dialling the target with russh's client, checking
//! its host key, logging in with the per-session certificate, and pumping one
//! target channel's messages back to the user's channel.
//!
//! **Owns:** host-key verification for targets (a host certificate from the
//! host CA naming the target, or the pinned key from config — never trust on
//! first use), the target → user direction of every bridged channel, and the
//! channels the target opens towards the user (agent, remote forwards). The
//! user → target direction is driven by the server handler in
//! [`crate::server`], which owns the write half of the target channel.
//!
//! # Files
//!
//! - `mod.rs`: the client handler (the channels a target opens towards the
//!   user: agent, remote forwards) and the splice of forwarded connections.
//! - `host_key.rs`: the target's host key against the host CA or the pin.
//! - `dial.rs`: client settings, connecting and logging in.
//! - `pump.rs`: one channel's target → user direction, and the traffic counts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rampart_api::{BastionEvent, BastionEventKind};
use russh::client;
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use crate::audit::{detail, Auditor};
use crate::clock::Clock;
use crate::config::Target;

mod dial;
mod host_key;
mod pump;

pub use dial::{ciphers, client_config, connect, DialError};
pub use host_key::{check_host_key, HostKeyRefused, HostTrust};
pub use pump::{pump, ChannelEnd, OutputTap, Traffic};

/// Where agent channels the target opens are sent: the user's connection,
/// once policy allowed agent forwarding and the user asked for it.
#[derive(Debug, Clone, Default)]
pub struct AgentSlot(Arc<Mutex<Option<russh::server::Handle>>>);

impl AgentSlot {
    /// Let the target's agent channels through to `user`.
    pub fn allow(&self, user: russh::server::Handle) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(user);
        }
    }

    fn get(&self) -> Option<russh::server::Handle> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

/// What a forwarded connection is audited and counted against.
#[derive(Debug, Clone)]
pub struct ForwardContext {
    /// The user's connection, on which `forwarded-tcpip` channels are opened.
    pub user: russh::server::Handle,
    /// Where the `bastion_forward` events go.
    pub auditor: Auditor,
    /// The session's fields (session, user, login, target, source, serial).
    pub base: BastionEvent,
    /// The session's counters (bytes, idle timeout).
    pub traffic: Arc<Traffic>,
    /// Stamps the `bastion_forward` events.
    pub clock: Arc<dyn Clock>,
}

/// Remote forwards (`ssh -R`, RFC 4254 §7.1) that policy allowed and the
/// target granted: only `forwarded-tcpip` channels for one of these listening
/// ports are bridged to the user; any other is refused.
#[derive(Debug, Clone, Default)]
pub struct RemoteForwards(Arc<Mutex<RemoteState>>);

#[derive(Debug, Default)]
struct RemoteState {
    context: Option<ForwardContext>,
    /// (listen address as the user asked, bound port on the target).
    listening: Vec<(String, u32)>,
}

impl RemoteForwards {
    /// Bridge the target's connections to `address:port` (the port the target
    /// bound) to the user of `context`.
    pub fn listen(&self, context: ForwardContext, address: &str, port: u32) {
        if let Ok(mut g) = self.0.lock() {
            g.context = Some(context);
            if !g.listening.iter().any(|(a, p)| a == address && *p == port) {
                g.listening.push((address.to_owned(), port));
            }
        }
    }

    /// Stop bridging `address:port`; whether it was listening.
    pub fn cancel(&self, address: &str, port: u32) -> bool {
        let Ok(mut g) = self.0.lock() else {
            return false;
        };
        let before = g.listening.len();
        g.listening.retain(|(a, p)| !(a == address && *p == port));
        g.listening.len() != before
    }

    /// The context for a connection the target says arrived on `port`. The
    /// port alone decides: sshd may spell the listen address differently from
    /// the request (`localhost` vs an empty string), never the port.
    fn lookup(&self, port: u32) -> Option<(ForwardContext, String)> {
        let g = self.0.lock().ok()?;
        let (address, _) = g.listening.iter().find(|(_, p)| *p == port)?;
        Some((g.context.clone()?, address.clone()))
    }
}

/// The client handler for one target connection: checks the host key and
/// bridges agent channels and remote-forward connections when allowed.
#[derive(Debug)]
pub struct TargetClient {
    target: Target,
    trust: HostTrust,
    /// Why the host key was refused, for the message to the user.
    refusal: Arc<Mutex<Option<HostKeyRefused>>>,
    agent: AgentSlot,
    remote: RemoteForwards,
}

impl client::Handler for TargetClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match check_host_key(&self.target, &self.trust, key, self.trust.clock.unix_secs()) {
            Ok(()) => Ok(true),
            Err(why) => {
                tracing::warn!("{}", rampart_api::report::one_line(&why));
                if let Ok(mut r) = self.refusal.lock() {
                    *r = Some(why);
                }
                Ok(false)
            }
        }
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        // Only after policy allowed it and the user asked (see AgentSlot); the
        // target's agent channel is joined to a new agent channel to the user.
        let Some(user) = self.agent.get() else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        match user.channel_open_agent().await {
            Ok(uc) => {
                reply.accept().await;
                tokio::spawn(async move {
                    let mut a = channel.into_stream();
                    let mut b = uc.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                });
            }
            Err(e) => {
                tracing::warn!("the user's client refused the agent channel: {e}");
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            }
        }
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some((ctx, listen)) = self.remote.lookup(connected_port) else {
            tracing::warn!(
                "target {} opened forwarded-tcpip for {connected_address}:{connected_port}, which nobody asked for",
                self.target.name
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        // Opening the user's channel waits for the user's answer, which the
        // server side's loop delivers; that loop may itself be waiting on this
        // target connection (a forwarded channel request), so do it off this
        // handler.
        let connected = connected_address.to_owned();
        let originator = format!("{originator_address}:{originator_port}");
        let (orig_addr, orig_port) = (originator_address.to_owned(), originator_port);
        tokio::spawn(async move {
            let mut e = ctx.base.clone();
            e.kind = BastionEventKind::Forward;
            e.at = ctx.clock.now();
            let e = detail(
                detail(e, "kind", "remote"),
                "listen",
                format!("{listen}:{connected_port}"),
            );
            let e = detail(e, "originator", originator);
            match ctx
                .user
                .channel_open_forwarded_tcpip(connected, connected_port, orig_addr, orig_port)
                .await
            {
                Ok(uc) => {
                    reply.accept().await;
                    ctx.auditor.enqueue(e);
                    splice(channel, uc, ctx.traffic).await;
                }
                Err(err) => {
                    tracing::info!("the user's client refused a forwarded connection: {err}");
                    reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                    let mut e = e;
                    e.success = false;
                    e.reason = Some(format!("the user's client refused the connection: {err}"));
                    ctx.auditor.enqueue(e);
                }
            }
        });
        Ok(())
    }
}

/// Join a target channel and a user channel both ways until both ends close,
/// counting bytes and activity on the session's `traffic`.
pub async fn splice(
    target: russh::Channel<client::Msg>,
    user: russh::Channel<russh::server::Msg>,
    traffic: Arc<Traffic>,
) {
    let (tr, tw) = target.split();
    let (ur, uw) = user.split();
    tokio::join!(
        relay(tr, uw, traffic.clone(), false),
        relay(ur, tw, traffic, true)
    );
}

/// One direction of [`splice`]: data, EOF and close.
async fn relay<S>(
    mut from: ChannelReadHalf,
    to: ChannelWriteHalf<S>,
    traffic: Arc<Traffic>,
    up: bool,
) where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let counter = if up { &traffic.up } else { &traffic.down };
    while let Some(msg) = from.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                traffic.touch();
                if to.data_bytes(data).await.is_err() {
                    break;
                }
            }
            ChannelMsg::Eof => {
                let _ = to.eof().await;
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    let _ = to.close().await;
}
