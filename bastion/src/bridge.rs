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

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_api::{BastionEvent, BastionEventKind};
use russh::client;
use russh::keys::ssh_key::{certificate::CertType, Certificate, HashAlg, PrivateKey, PublicKey};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use crate::audit::{detail, Auditor};
use crate::clock::{monotonic_ms, Clock};
use crate::config::{HostKeyCheck, Target};

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

/// What a target's host key is judged by.
#[derive(Debug, Clone)]
pub struct HostTrust {
    /// The Rampart host CA.
    pub host_ca: PublicKey,
    /// Revoked key fingerprints as last fetched from the CA; a revoked host
    /// key is refused whatever certificate it carries.
    pub revoked_keys: Arc<HashSet<String>>,
    /// What "now" is for the host certificate's validity.
    pub clock: Arc<dyn Clock>,
}

/// Why a target's host key is refused. The text is what the user is told.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyRefused {
    /// The key (whatever vouches for it) is on the revocation list.
    #[error("target {target}'s host key {fingerprint} is revoked")]
    Revoked {
        /// The target's name.
        target: String,
        /// The key's `SHA256:…` fingerprint.
        fingerprint: String,
    },
    /// A plain key other than the pinned one.
    #[error("target {target} presented host key {fingerprint}, not the pinned key")]
    NotPinned {
        /// The target's name.
        target: String,
        /// The presented key's `SHA256:…` fingerprint.
        fingerprint: String,
    },
    /// A certificate for a key other than the pinned one.
    #[error("target {0} presented a certificate for another key")]
    CertificateForAnotherKey(String),
    /// A plain key where the config asks for a host certificate.
    #[error(
        "target {0} presented a plain host key, but it must present a host certificate from the Rampart host CA"
    )]
    PlainKey(String),
    /// A user certificate offered as a host key.
    #[error("target {0} presented a user certificate as host key")]
    UserCertificate(String),
    /// The host certificate does not verify against the host CA (or is not
    /// valid now).
    #[error("target {target}'s host certificate is not valid from the Rampart host CA")]
    InvalidCertificate {
        /// The target's name.
        target: String,
        /// What the certificate check found.
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    /// The host certificate names neither the target nor its address.
    #[error("target {target}'s host certificate names {principals:?}, not {target} or {address}")]
    WrongPrincipals {
        /// The target's name.
        target: String,
        /// The target's address from the config.
        address: String,
        /// The certificate's principals.
        principals: Vec<String>,
    },
}

/// Why the bastion could not open its leg to a target. The text (with its
/// sources, see [`crate::error_chain`]) is what the user is told.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No TCP connection within the deadline.
    #[error("target {0} did not answer within 10 s")]
    Timeout(String),
    /// The TCP connection failed.
    #[error("cannot reach target {target}")]
    Unreachable {
        /// The target's name.
        target: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The target's host key was refused.
    #[error(transparent)]
    HostKey(#[from] HostKeyRefused),
    /// The SSH handshake failed for another reason.
    #[error("SSH handshake with target {target} failed")]
    Handshake {
        /// The target's name.
        target: String,
        /// russh's error.
        #[source]
        source: russh::Error,
    },
    /// The user-authentication exchange failed.
    #[error("login to target {target} failed")]
    Login {
        /// The target's name.
        target: String,
        /// russh's error.
        #[source]
        source: russh::Error,
    },
    /// The target's sshd did not accept the per-session certificate.
    #[error("target {target} refused the per-session certificate for {login}")]
    CertificateRefused {
        /// The target's name.
        target: String,
        /// The login asked for.
        login: String,
    },
}

/// Check a target's host key or certificate against the config and the
/// revoked keys.
pub fn check_host_key(
    target: &Target,
    trust: &HostTrust,
    presented: &PublicKeyOrCertificate,
    now: u64,
) -> Result<(), HostKeyRefused> {
    let host_ca = &trust.host_ca;
    let key_fp = match presented {
        PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
        PublicKeyOrCertificate::Certificate(cert) => {
            PublicKey::from(cert.public_key().clone()).fingerprint(HashAlg::Sha256)
        }
    };
    if trust.revoked_keys.contains(&key_fp.to_string()) {
        return Err(HostKeyRefused::Revoked {
            target: target.name.clone(),
            fingerprint: key_fp.to_string(),
        });
    }
    match (&target.host_key, presented) {
        (HostKeyCheck::Pinned(pin), PublicKeyOrCertificate::PublicKey { key, .. }) => {
            if key.key_data() == pin.key_data() {
                Ok(())
            } else {
                Err(HostKeyRefused::NotPinned {
                    target: target.name.clone(),
                    fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
                })
            }
        }
        (HostKeyCheck::Pinned(pin), PublicKeyOrCertificate::Certificate(cert)) => {
            if cert.public_key() == pin.key_data() {
                Ok(())
            } else {
                Err(HostKeyRefused::CertificateForAnotherKey(
                    target.name.clone(),
                ))
            }
        }
        (HostKeyCheck::HostCa, PublicKeyOrCertificate::Certificate(cert)) => {
            check_host_cert(target, host_ca, cert, now)
        }
        (HostKeyCheck::HostCa, PublicKeyOrCertificate::PublicKey { .. }) => {
            Err(HostKeyRefused::PlainKey(target.name.clone()))
        }
    }
}

fn check_host_cert(
    target: &Target,
    host_ca: &PublicKey,
    cert: &Certificate,
    now: u64,
) -> Result<(), HostKeyRefused> {
    if cert.cert_type() != CertType::Host {
        return Err(HostKeyRefused::UserCertificate(target.name.clone()));
    }
    let fp = host_ca.fingerprint(HashAlg::Sha256);
    cert.validate_at(now, [&fp])
        .map_err(|source| HostKeyRefused::InvalidCertificate {
            target: target.name.clone(),
            source,
        })?;
    let names = cert.valid_principals();
    if names
        .iter()
        .any(|p| p == &target.name || p == &target.address)
    {
        Ok(())
    } else {
        Err(HostKeyRefused::WrongPrincipals {
            target: target.name.clone(),
            address: target.address.clone(),
            principals: names.to_vec(),
        })
    }
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
                tracing::warn!("{}", crate::error_chain(&why));
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

/// The ciphers the bastion offers and asks for: AES-GCM only where the CPU has
/// AES and carry-less multiply instructions, russh's defaults elsewhere.
///
/// The bastion decrypts and re-encrypts every byte of a ProxyJump session
/// three times (target leg, inner session, outer connection), where an
/// OpenSSH jump host only relays the inner session. With
/// chacha20-poly1305, which OpenSSH clients pick first when offered, those
/// passes cap a session near 220 MB/s on a 2-core test machine; AES-GCM in
/// hardware costs a fraction of that. An OpenSSH client picks the first of
/// its own list that the server offers, so the server offers only AES-GCM
/// (every OpenSSH since 6.2 has it); it is no weaker.
pub fn ciphers() -> std::borrow::Cow<'static, [russh::cipher::Name]> {
    use russh::cipher::{AES_128_GCM, AES_256_GCM};
    if hardware_aes() {
        std::borrow::Cow::Borrowed(&[AES_256_GCM, AES_128_GCM])
    } else {
        russh::Preferred::default().cipher
    }
}

#[cfg(target_arch = "x86_64")]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

/// Client config for targets: certificate host keys first when the host CA is
/// used, and [`ciphers`].
pub fn client_config(target: &Target) -> client::Config {
    use russh::keys::ssh_key::Algorithm;
    let mut preferred = russh::Preferred {
        cipher: ciphers(),
        ..russh::Preferred::default()
    };
    if target.host_key == HostKeyCheck::HostCa {
        preferred.host_key_certificates = std::borrow::Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: russh::keys::ssh_key::EcdsaCurve::NistP256,
            },
            Algorithm::Rsa {
                hash: Some(russh::keys::ssh_key::HashAlg::Sha512),
            },
        ]);
    }
    client::Config {
        nodelay: true,
        preferred,
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(60)),
        ..client::Config::default()
    }
}

/// Dial `target`, check its host key and log in as `login` with `cert`.
pub async fn connect(
    target: &Target,
    trust: HostTrust,
    login: &str,
    key: PrivateKey,
    cert: Certificate,
    agent: AgentSlot,
    remote: RemoteForwards,
) -> Result<client::Handle<TargetClient>, DialError> {
    let refusal = Arc::new(Mutex::new(None));
    let handler = TargetClient {
        target: target.clone(),
        trust,
        refusal: refusal.clone(),
        agent,
        remote,
    };
    let addr = (target.address.as_str(), target.port);
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .map_err(|_| DialError::Timeout(target.name.clone()))?
    .map_err(|source| DialError::Unreachable {
        target: target.name.clone(),
        source,
    })?;
    let _ = stream.set_nodelay(true);
    let config = Arc::new(client_config(target));
    let mut handle = client::connect_stream(config, stream, handler)
        .await
        .map_err(|source| {
            // A refused host key ends the handshake too; say why it was refused.
            match refusal.lock().ok().and_then(|mut r| r.take()) {
                Some(why) => DialError::HostKey(why),
                None => DialError::Handshake {
                    target: target.name.clone(),
                    source,
                },
            }
        })?;
    let res = handle
        .authenticate_openssh_cert(login, Arc::new(key), cert)
        .await
        .map_err(|source| DialError::Login {
            target: target.name.clone(),
            source,
        })?;
    if !res.success() {
        return Err(DialError::CertificateRefused {
            target: target.name.clone(),
            login: login.to_owned(),
        });
    }
    Ok(handle)
}

/// Counters of one session, shared by its channels.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes user → target.
    pub up: AtomicU64,
    /// Bytes target → user.
    pub down: AtomicU64,
    /// When the last data went either way, in [`monotonic_ms`] (idle timeout).
    pub last_activity_ms: AtomicU64,
}

impl Traffic {
    /// Note activity now.
    pub fn touch(&self) {
        self.last_activity_ms
            .store(monotonic_ms(), Ordering::Relaxed);
    }
}

/// How long the pump holds a target's EOF waiting for its exit status.
const EOF_HOLD: Duration = Duration::from_millis(200);

/// What the pump reports when the target channel ends.
#[derive(Debug, Default, Clone)]
pub struct ChannelEnd {
    /// Exit status, if the target sent one.
    pub exit_status: Option<u32>,
    /// Exit signal name, if the target sent one.
    pub exit_signal: Option<String>,
    /// Bytes target → user on this channel.
    pub bytes_down: u64,
}

/// Hooks the pump calls for target output (recording).
pub trait OutputTap: Send {
    /// Output bytes (`ext` = 1 for stderr).
    fn output(&mut self, data: &[u8], ext: Option<u32>);
}

/// Copy the target channel's messages to the user's channel until it closes.
/// Replies to channel requests go to `replies` in order.
pub async fn pump(
    mut from: ChannelReadHalf,
    to: ChannelWriteHalf<russh::server::Msg>,
    server: russh::server::Handle,
    replies: mpsc::UnboundedSender<bool>,
    traffic: Arc<Traffic>,
    mut tap: Option<Box<dyn OutputTap>>,
) -> ChannelEnd {
    let mut end = ChannelEnd::default();
    let id = to.id();
    // The target's EOF is held until its exit status (or close) follows, at
    // most EOF_HOLD: sshd sends EOF, exit-status and close back to back, and
    // an OpenSSH client that sees EOF alone with its own input already closed
    // (a multiplexed session) sends close at once — the exit status that
    // follows is then dropped and the client reports 255.
    let mut eof_pending = false;
    loop {
        let msg = if eof_pending {
            match tokio::time::timeout(EOF_HOLD, from.wait()).await {
                Ok(m) => m,
                Err(_) => {
                    eof_pending = false;
                    let _ = to.eof().await;
                    continue;
                }
            }
        } else {
            from.wait().await
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => {
                let n = data.len() as u64;
                end.bytes_down += n;
                traffic.down.fetch_add(n, Ordering::Relaxed);
                traffic.touch();
                if let Some(t) = tap.as_mut() {
                    t.output(&data, None);
                }
                if to.data_bytes(data).await.is_err() {
                    break;
                }
            }
            ChannelMsg::ExtendedData { data, ext } => {
                let n = data.len() as u64;
                end.bytes_down += n;
                traffic.down.fetch_add(n, Ordering::Relaxed);
                traffic.touch();
                if let Some(t) = tap.as_mut() {
                    t.output(&data, Some(ext));
                }
                if to.extended_data_bytes(ext, data).await.is_err() {
                    break;
                }
            }
            ChannelMsg::Eof => {
                eof_pending = true;
            }
            ChannelMsg::ExitStatus { exit_status } => {
                end.exit_status = Some(exit_status);
                let _ = to.exit_status(exit_status).await;
                if std::mem::take(&mut eof_pending) {
                    let _ = to.eof().await;
                }
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => {
                end.exit_signal = Some(format!("{signal_name:?}"));
                let _ = server
                    .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                    .await;
                if std::mem::take(&mut eof_pending) {
                    let _ = to.eof().await;
                }
            }
            ChannelMsg::Success => {
                let _ = replies.send(true);
            }
            ChannelMsg::Failure => {
                let _ = replies.send(false);
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if eof_pending {
        let _ = to.eof().await;
    }
    // Exit status (if any) went out above; close after it, as RFC 4254 §6.10 orders.
    let _ = to.close().await;
    end
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use russh::keys::ssh_key::certificate::Builder;

    fn host_cert(ca: &PrivateKey, host: &PrivateKey, principal: &str, now: u64) -> Certificate {
        let mut b = Builder::new(
            [9u8; 32].to_vec(),
            host.public_key().key_data().clone(),
            now - 10,
            now + 600,
        )
        .unwrap();
        b.serial(42).unwrap();
        b.key_id("host").unwrap();
        b.cert_type(CertType::Host).unwrap();
        b.valid_principal(principal).unwrap();
        b.sign(ca).unwrap()
    }

    #[test]
    fn a_revoked_host_key_is_refused_whatever_certificate_or_pin_vouches_for_it() {
        let now = crate::clock::SystemClock.unix_secs();
        let ca = crate::join::generate_ed25519().unwrap();
        let host = crate::join::generate_ed25519().unwrap();
        let mut target = Target {
            name: "db-1".into(),
            address: "10.0.0.5".into(),
            port: 22,
            labels: Default::default(),
            host_key: HostKeyCheck::HostCa,
        };
        let cert = PublicKeyOrCertificate::Certificate(host_cert(&ca, &host, "db-1", now));
        let none = HostTrust {
            host_ca: ca.public_key().clone(),
            revoked_keys: Arc::default(),
            clock: Arc::new(crate::clock::SystemClock),
        };
        assert!(check_host_key(&target, &none, &cert, now).is_ok());
        let fp = host.public_key().fingerprint(HashAlg::Sha256).to_string();
        let revoked = HostTrust {
            revoked_keys: Arc::new([fp.clone()].into()),
            ..none.clone()
        };
        let why = check_host_key(&target, &revoked, &cert, now)
            .unwrap_err()
            .to_string();
        assert!(why.contains(&fp) && why.contains("revoked"), "{why}");
        // A pinned plain key is refused too once revoked.
        target.host_key = HostKeyCheck::Pinned(host.public_key().clone());
        let plain = PublicKeyOrCertificate::PublicKey {
            key: host.public_key().clone(),
            hash_alg: None,
        };
        assert!(check_host_key(&target, &none, &plain, now).is_ok());
        assert!(check_host_key(&target, &revoked, &plain, now).is_err());
    }
}
