//! The SSH daemon: outer connections, inner sessions, and the user → target
//! direction of every bridged channel.
//!
//! **Owns:** the accept loop (per-source rate limit, authentication timeout),
//! the russh server handler for both the outer connection and the inner
//! session terminated on a `direct-tcpip` channel (ProxyJump), the direct
//! `login+target` form, per-session certificates and per-session MFA, the live
//! session registry (limits, revocation, idle timeout) and the session audit
//! events. A session starts only after the CA has acknowledged its
//! `session_started` event (fail closed).
//!
//! How a refusal reaches stock `ssh`: before authentication there is no
//! channel to write to, so a refused certificate is simply refused (ssh says
//! "Permission denied"). A refusal decided after the user is known — policy
//! denial, unknown target in the `login+target` form, unreachable target, audit
//! unavailable — lets the login through and answers the first session request
//! with the reason on stderr and exit status 1, then closes: ssh prints the
//! reason. With ProxyJump, an unknown target is refused at the `direct-tcpip`
//! open with the reason as the failure description (ssh prints
//! "open failed: administratively prohibited: …").

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rampart_api::{
    webauthn, BastionEventKind, BastionHostCertRequest, ClientError, SessionCertRequest,
    SessionCertResponse,
};
use russh::keys::ssh_key::{Certificate, HashAlg, PrivateKey};
use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelWriteHalf, MethodKind, MethodSet};
use tokio::sync::mpsc;

use crate::audit::{detail, event, Auditor};
use crate::auth::{check_user_cert, OuterUser, Revocations};
use crate::bridge::{self, Traffic};
use crate::ca_client::CaClient;
use crate::config::{Config, Target};
use crate::join::Identity;
use crate::limits::RateLimiter;
use crate::recording::{self, Recorder};
use crate::sftp::FileOps;
use crate::BastionError;

/// Host certificates for targets are renewed when less than this is left.
const HOST_CERT_RENEW_BEFORE: u64 = 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A live session, as the registry sees it.
#[derive(Debug)]
struct Live {
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
}

/// State shared by every connection.
pub struct Shared {
    config: Config,
    host_key: PrivateKey,
    user_ca: russh::keys::ssh_key::PublicKey,
    host_ca: russh::keys::ssh_key::PublicKey,
    ca: CaClient,
    auditor: Auditor,
    revocations: RwLock<Revocations>,
    outer_config: Arc<server::Config>,
    target_configs: tokio::sync::Mutex<HashMap<String, (Arc<server::Config>, u64)>>,
    sessions: Mutex<HashMap<String, Live>>,
    limiter: Mutex<RateLimiter>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// The russh server config for the outer connection or an inner session. The
/// authentication timeout is enforced by the accept loop, not here.
fn server_config(key: &PrivateKey, cert: Option<Certificate>) -> server::Config {
    server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..]),
        keys: vec![key.clone()],
        certificates: cert.into_iter().collect(),
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        nodelay: true,
        max_auth_attempts: 6,
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        ..server::Config::default()
    }
}

impl Shared {
    /// Build from config and identity.
    pub fn new(config: Config, identity: Identity) -> Result<Arc<Shared>, BastionError> {
        let ca = CaClient::new(&config.ca_url, config.ca_fingerprint)?
            .with_credential(identity.credential.clone());
        let auditor = Auditor::start(ca.clone());
        let outer_config = Arc::new(server_config(
            &identity.host_key,
            Some(identity.host_cert.clone()),
        ));
        let limiter = RateLimiter::new(
            config.limits.connections_per_second,
            config.limits.connection_burst,
        );
        Ok(Arc::new(Shared {
            host_key: identity.host_key,
            user_ca: identity.user_ca,
            host_ca: identity.host_ca,
            ca,
            auditor,
            revocations: RwLock::new(Revocations::default()),
            outer_config,
            target_configs: tokio::sync::Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            limiter: Mutex::new(limiter),
            config,
        }))
    }

    /// The auditor.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The CA client.
    pub fn ca(&self) -> &CaClient {
        &self.ca
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many sessions are being proxied now.
    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// A server config presenting a host certificate for `target` (cached until near expiry).
    async fn target_config(&self, target: &str) -> Result<Arc<server::Config>, String> {
        let mut cache = self.target_configs.lock().await;
        let now = unix_now();
        if let Some((c, until)) = cache.get(target) {
            if now + HOST_CERT_RENEW_BEFORE < *until {
                return Ok(c.clone());
            }
        }
        let public = self
            .host_key
            .public_key()
            .to_openssh()
            .map_err(|e| e.to_string())?;
        let resp = self
            .ca
            .host_cert(&BastionHostCertRequest {
                target: target.to_owned(),
                host_public_key: public,
            })
            .await
            .map_err(|e| format!("the CA did not issue a host certificate for {target}: {e}"))?;
        let cert = Certificate::from_openssh(resp.certificate.trim()).map_err(|e| e.to_string())?;
        let until = cert.valid_before();
        let config = Arc::new(server_config(&self.host_key, Some(cert)));
        cache.insert(target.to_owned(), (config.clone(), until));
        Ok(config)
    }

    fn check_cert(&self, cert: &Certificate) -> Result<OuterUser, String> {
        let rev = self
            .revocations
            .read()
            .map_err(|_| "revocation state unavailable".to_owned())?;
        check_user_cert(cert, &self.user_ca, unix_now(), &rev)
    }

    fn count_sessions(&self, user: &str) -> (usize, usize) {
        match self.sessions.lock() {
            Ok(s) => (s.values().filter(|l| l.user == user).count(), s.len()),
            Err(_) => (usize::MAX, usize::MAX),
        }
    }

    /// Apply a revocation fetch and end the live sessions it covers.
    pub async fn apply_revocations(&self, r: &rampart_api::BastionRevocations) {
        crate::metrics::revocations_fetched();
        type Victim = (
            String,
            server::Handle,
            Option<server::Handle>,
            Vec<ChannelId>,
            String,
        );
        let victims: Vec<Victim> = {
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
                    if let Ok(mut e) = l.end_reason.lock() {
                        if e.is_some() {
                            return None;
                        }
                        *e = Some("revoked".into());
                    }
                    let chans = l.channels.lock().map(|c| c.clone()).unwrap_or_default();
                    Some((id.clone(), l.handle.clone(), l.outer.clone(), chans, why))
                })
                .collect()
        };
        for (id, handle, outer, chans, why) in victims {
            tracing::info!(session = %id, "ending session: {why}");
            let msg = format!("\r\nrampart: session ended by the bastion: {why}\r\n");
            for c in &chans {
                let _ = handle.extended_data(*c, 1, msg.clone().into_bytes()).await;
                let _ = handle.exit_status_request(*c, 255).await;
                let _ = handle.close(*c).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = handle
                .disconnect(
                    russh::Disconnect::ByApplication,
                    format!("rampart: {why}"),
                    "en".into(),
                )
                .await;
            if let Some(o) = outer {
                let _ = o
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        format!("rampart: {why}"),
                        "en".into(),
                    )
                    .await;
            }
        }
    }

    fn refuse_event(
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
        tokio::time::sleep(shared.config.revocation_poll).await;
    }
}

/// End sessions idle longer than the limit.
pub async fn idle_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5).min(shared.config.limits.idle_timeout)).await;
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(u64::MAX);
        let limit_ms =
            u64::try_from(shared.config.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let idle: Vec<(server::Handle, Option<server::Handle>)> = match shared.sessions.lock() {
            Ok(s) => s
                .values()
                .filter(|l| {
                    now_ms.saturating_sub(l.traffic.last_activity_ms.load(Ordering::Relaxed))
                        > limit_ms
                })
                .filter_map(|l| {
                    let mut e = l.end_reason.lock().ok()?;
                    if e.is_some() {
                        return None;
                    }
                    *e = Some("idle_timeout".into());
                    Some((l.handle.clone(), l.outer.clone()))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for (h, o) in idle {
            let _ = h
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "rampart: idle timeout".into(),
                    "en".into(),
                )
                .await;
            if let Some(o) = o {
                let _ = o
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "rampart: idle timeout".into(),
                        "en".into(),
                    )
                    .await;
            }
        }
    }
}

/// Accept connections on `listener` until `shutdown` fires.
pub async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), BastionError> {
    loop {
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let allowed = shared
            .limiter
            .lock()
            .map(|mut l| l.allow(peer.ip(), Instant::now()))
            .unwrap_or(false);
        if !allowed {
            shared.auditor.enqueue(shared.refuse_event(
                peer,
                None,
                "connection rate limit exceeded for this source",
            ));
            drop(socket);
            continue;
        }
        let _ = socket.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let conn = Conn::new(shared.clone(), peer, Mode::Outer);
            let authed = conn.authed.clone();
            let auth_hold = conn.auth_hold.clone();
            let running = match server::run_stream(shared.outer_config.clone(), socket, conn).await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(%peer, "handshake failed: {e}");
                    return;
                }
            };
            let handle = running.handle();
            let timeout = shared.config.limits.auth_timeout;
            let shared2 = shared.clone();
            let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let closed2 = closed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                // A security-key approval in progress holds the timeout off
                // until the approval itself ends.
                loop {
                    let (hold, now) = (auth_hold.load(Ordering::Relaxed), unix_now());
                    if hold <= now {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(hold - now)).await;
                }
                // Only a connection still open and still unauthenticated timed out.
                if !authed.load(Ordering::Relaxed) && !closed2.load(Ordering::Relaxed) {
                    shared2.auditor.enqueue(shared2.refuse_event(
                        peer,
                        None,
                        "authentication timeout",
                    ));
                    let _ = handle
                        .disconnect(
                            russh::Disconnect::ByApplication,
                            "rampart: authentication timeout".into(),
                            "en".into(),
                        )
                        .await;
                }
            });
            if let Err(e) = running.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            closed.store(true, Ordering::Relaxed);
        });
    }
}

#[derive(Debug, Clone)]
enum Mode {
    /// A TCP connection from a user.
    Outer,
    /// An inner session on a `direct-tcpip` channel of `outer` (ProxyJump).
    Inner(Box<InnerOf>),
}

/// Where an inner session came from.
#[derive(Debug, Clone)]
struct InnerOf {
    target: Target,
    outer_user: OuterUser,
    outer: server::Handle,
}

/// A per-session MFA prompt in progress.
struct PendingMfa {
    login: String,
    target: Target,
    user: OuterUser,
    /// The session ID the CA was (and will be) asked about: an approval is
    /// bound to it.
    session_id: String,
    /// A security-key approval waiting for the user, when the CA asked for one
    /// (its `poll_token` is a secret: `CeremonyStarted`'s Debug redacts it).
    approval: Option<webauthn::CeremonyStarted>,
}

/// Fresh per-session MFA the user gave, for the session-cert request.
enum MfaProof {
    /// A TOTP code typed at the keyboard-interactive prompt.
    Totp(String),
    /// A security-key approval the user gave in a browser.
    Approval(webauthn::WaitRequest),
}

impl MfaProof {
    fn method(&self) -> &'static str {
        match self {
            MfaProof::Totp(_) => "totp",
            MfaProof::Approval(_) => "webauthn",
        }
    }
}

/// The longest the bastion waits for a security-key approval, whatever
/// expiry the CA gives it.
const MAX_APPROVAL_WAIT: Duration = Duration::from_secs(15 * 60);

/// An established session to a target.
struct TargetSession {
    id: String,
    login: String,
    target: Target,
    user: OuterUser,
    client: russh::client::Handle<bridge::TargetClient>,
    policy: SessionCertResponse,
    traffic: Arc<Traffic>,
    channels: Arc<Mutex<Vec<ChannelId>>>,
    end_reason: Arc<Mutex<Option<String>>>,
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    /// Whether this session's recording has been started (one per session).
    recording: bool,
    /// Agent channels from the target go here once allowed.
    agent: bridge::AgentSlot,
    /// Remote forwards (`ssh -R`) granted in this session.
    remote: bridge::RemoteForwards,
}

/// One bridged channel.
struct Bridged {
    to_target: ChannelWriteHalf<russh::client::Msg>,
    replies: mpsc::UnboundedReceiver<bool>,
    exec: Arc<Mutex<Option<String>>>,
    bytes_up: u64,
    /// `pty-req` as asked: TERM, columns, rows.
    pty: Option<(String, u32, u32)>,
    /// The recording of this channel, once it started.
    rec: Arc<Mutex<Option<Recorder>>>,
    /// The SFTP file-operation tracker, once the channel is an sftp subsystem.
    sftp: Arc<Mutex<Option<FileOps>>>,
}

/// Output tap: feeds whatever recording the channel has by then, and the
/// SFTP tracker, whose finished operations become `file_op` events.
struct SlotTap {
    rec: Arc<Mutex<Option<Recorder>>>,
    sftp: Arc<Mutex<Option<FileOps>>>,
    auditor: Auditor,
    base: rampart_api::BastionEvent,
}

impl bridge::OutputTap for SlotTap {
    fn output(&mut self, data: &[u8], ext: Option<u32>) {
        if let Ok(mut g) = self.rec.lock() {
            if let Some(r) = g.as_mut() {
                bridge::OutputTap::output(r, data, ext);
            }
        }
        if ext.is_some() {
            return;
        }
        let ops = match self.sftp.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(f) => f.server_data(data),
                None => return,
            },
            Err(_) => return,
        };
        for op in ops {
            let mut e = self.base.clone();
            e.kind = BastionEventKind::FileOp;
            e.success = op.success;
            e.at = chrono::Utc::now();
            let mut e = detail(detail(e, "op", op.op), "path", op.path);
            if let Some(to) = op.to {
                e = detail(e, "to", to);
            }
            if let Some(b) = op.bytes {
                e = detail(e, "bytes", b);
            }
            self.auditor.enqueue(e);
        }
    }
}

/// A channel request the user sent that the bastion passes on to the target.
enum ChannelRequest<'a> {
    Pty {
        term: &'a str,
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &'a [(russh::Pty, u32)],
    },
    Env {
        name: &'a str,
        value: &'a str,
    },
    Shell,
    Exec(&'a [u8]),
    Subsystem(&'a str),
}

/// The russh handler for one connection (outer or inner).
struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    mode: Mode,
    authed: Arc<std::sync::atomic::AtomicBool>,
    /// Unix seconds until which the accept loop's authentication timeout is
    /// held off (a security-key approval in progress needs the user's time).
    auth_hold: Arc<std::sync::atomic::AtomicU64>,
    user: Option<OuterUser>,
    mfa: Option<PendingMfa>,
    session: Option<TargetSession>,
    /// A reason to show on the first session request, then close.
    refusal: Option<String>,
    /// Why the last certificate offered on this connection was refused, shown
    /// to the user through keyboard-interactive (see [`Conn::explain_refusal`]).
    certificate_refusal: Option<String>,
    /// The refusal has been explained; the next keyboard-interactive round ends it.
    explained: bool,
    channels: HashMap<ChannelId, Bridged>,
    refused_channels: HashMap<ChannelId, ()>,
}

impl Conn {
    fn new(shared: Arc<Shared>, peer: SocketAddr, mode: Mode) -> Conn {
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
            channels: HashMap::new(),
            refused_channels: HashMap::new(),
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
    fn explain_refusal(&mut self, ssh_user: &str) -> Auth {
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
                let mut e = self.shared.refuse_event(self.peer, None, why);
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

    fn refuse(&self, user: Option<&OuterUser>, reason: &str) {
        self.shared
            .auditor
            .enqueue(self.shared.refuse_event(self.peer, user, reason));
    }

    /// Accept the login but answer every session with `reason`.
    fn accept_refused(&mut self, reason: String) -> Auth {
        self.refusal = Some(reason);
        self.authed.store(true, Ordering::Relaxed);
        Auth::Accept
    }

    /// Ask the CA for a per-session certificate, dial the target, audit the start.
    async fn establish(
        &mut self,
        user: OuterUser,
        login: String,
        target: Target,
        session_id: String,
        proof: Option<MfaProof>,
    ) -> Auth {
        let (mine, total) = self.shared.count_sessions(&user.name);
        let limits = &self.shared.config.limits;
        if mine >= limits.max_sessions_per_user || total >= limits.max_sessions {
            let why = if mine >= limits.max_sessions_per_user {
                format!(
                    "too many sessions for {} (limit {})",
                    user.name, limits.max_sessions_per_user
                )
            } else {
                format!(
                    "the bastion is at its session limit ({})",
                    limits.max_sessions
                )
            };
            self.refuse(Some(&user), &why);
            return self.accept_refused(why);
        }
        let key = match crate::join::generate_ed25519() {
            Ok(k) => k,
            Err(e) => return self.accept_refused(format!("internal error: {e}")),
        };
        let public = match key.public_key().to_openssh() {
            Ok(p) => p,
            Err(e) => return self.accept_refused(format!("internal error: {e}")),
        };
        let req = SessionCertRequest {
            user_certificate: user.cert_line.clone(),
            login: login.clone(),
            target: target.name.clone(),
            target_labels: target.labels.clone(),
            session_id: session_id.clone(),
            public_key: public,
            source: Some(self.peer.ip().to_string()),
            totp_code: match &proof {
                Some(MfaProof::Totp(code)) => Some(code.clone()),
                _ => None,
            },
            webauthn_approval: match &proof {
                Some(MfaProof::Approval(a)) => Some(a.clone()),
                _ => None,
            },
        };
        let totp = matches!(proof, Some(MfaProof::Totp(_)));
        let resp = match self.shared.ca.session_cert(&req).await {
            Ok(r) => r,
            Err(ClientError::Api { code, .. })
                if code == rampart_api::SESSION_APPROVAL_REQUIRED && proof.is_none() =>
            {
                return self.start_approval(user, login, target, session_id).await;
            }
            Err(ClientError::Api { code, message, .. })
                if code == rampart_api::SESSION_MFA_REQUIRED
                    && !matches!(proof, Some(MfaProof::Approval(_))) =>
            {
                if totp {
                    // A code was sent and the CA still wants one: wrong or replayed.
                    tracing::info!("per-session code refused: {message}");
                    self.mfa = Some(PendingMfa {
                        login,
                        target,
                        user,
                        session_id,
                        approval: None,
                    });
                    return Auth::Reject {
                        proceed_with_methods: Some(MethodSet::from(
                            &[MethodKind::KeyboardInteractive][..],
                        )),
                        partial_success: false,
                    };
                }
                self.mfa = Some(PendingMfa {
                    login,
                    target,
                    user,
                    session_id,
                    approval: None,
                });
                return Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )),
                    partial_success: true,
                };
            }
            Err(ClientError::Api { code, message, .. }) if totp && code.starts_with("totp") => {
                tracing::info!("per-session code refused ({code}): {message}");
                self.mfa = Some(PendingMfa {
                    login,
                    target,
                    user,
                    session_id,
                    approval: None,
                });
                return Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )),
                    partial_success: false,
                };
            }
            Err(ClientError::Api { message, .. }) => {
                // The CA audited its decision already.
                return self.accept_refused(format!("access denied: {message}"));
            }
            Err(e) => {
                let why = format!("the CA cannot be reached to authorise this session ({e})");
                self.refuse(Some(&user), &why);
                return self.accept_refused(why);
            }
        };
        let cert = match Certificate::from_openssh(resp.certificate.certificate.trim()) {
            Ok(c) => c,
            Err(e) => {
                return self
                    .accept_refused(format!("the CA's session certificate is unreadable: {e}"))
            }
        };
        let agent = bridge::AgentSlot::default();
        let remote = bridge::RemoteForwards::default();
        let client = match bridge::connect(
            &target,
            &self.shared.host_ca,
            &login,
            key,
            cert,
            agent.clone(),
            remote.clone(),
        )
        .await
        {
            Ok(c) => c,
            Err(why) => {
                let mut e = self.shared.refuse_event(self.peer, Some(&user), &why);
                e.session_id = Some(session_id);
                e.login = Some(login);
                e.target = Some(target.name.clone());
                self.shared.auditor.enqueue(e);
                return self.accept_refused(why);
            }
        };
        // Fail closed: no session unless its start is in the audit chain.
        let mut start = event(BastionEventKind::SessionStarted, true);
        start.session_id = Some(session_id.clone());
        start.user = Some(user.name.clone());
        start.login = Some(login.clone());
        start.target = Some(target.name.clone());
        start.source = Some(self.peer.ip().to_string());
        start.serial = Some(user.serial);
        let start = detail(
            detail(
                start,
                "mode",
                if matches!(self.mode, Mode::Inner(_)) {
                    "proxyjump"
                } else {
                    "direct"
                },
            ),
            "session_mfa",
            resp.session_mfa,
        );
        let start = match &proof {
            Some(p) => detail(start, "session_mfa_method", p.method()),
            None => start,
        };
        if let Err(e) = self.shared.auditor.record(vec![start]).await {
            let _ = client
                .disconnect(russh::Disconnect::ByApplication, "audit unavailable", "en")
                .await;
            return self.accept_refused(format!(
                "the session cannot be audited, so it is refused ({e})"
            ));
        }
        let traffic = Arc::new(Traffic::default());
        traffic.touch();
        recording::write_marker(
            &self.shared.config.recording_dir,
            &recording::Marker {
                session_id: session_id.clone(),
                user: user.name.clone(),
                login: login.clone(),
                target: target.name.clone(),
                source: self.peer.ip().to_string(),
                serial: user.serial,
            },
        );
        self.session = Some(TargetSession {
            id: session_id,
            login,
            target,
            user: user.clone(),
            client,
            policy: resp,
            traffic,
            channels: Arc::new(Mutex::new(Vec::new())),
            end_reason: Arc::new(Mutex::new(None)),
            started: Instant::now(),
            started_at: chrono::Utc::now(),
            recording: false,
            agent,
            remote,
        });
        self.authed.store(true, Ordering::Relaxed);
        Auth::Accept
    }

    /// The CA wants a security-key approval for this session: start one and
    /// ask for keyboard-interactive, whose prompt shows its URL and short code.
    async fn start_approval(
        &mut self,
        user: OuterUser,
        login: String,
        target: Target,
        session_id: String,
    ) -> Auth {
        let req = webauthn::BastionApprovalStartRequest {
            user: user.name.clone(),
            session_id: session_id.clone(),
            target: target.name.clone(),
            login: login.clone(),
        };
        match self.shared.ca.approval_start(&req).await {
            Ok(started) => {
                let until = u64::try_from(started.expires_at.timestamp()).unwrap_or(0);
                let cap = unix_now() + MAX_APPROVAL_WAIT.as_secs();
                self.auth_hold.store(until.min(cap) + 10, Ordering::Relaxed);
                self.mfa = Some(PendingMfa {
                    login,
                    target,
                    user,
                    session_id,
                    approval: Some(started),
                });
                Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )),
                    partial_success: true,
                }
            }
            // The CA audited its refusal (no usable key, locked out, …).
            Err(ClientError::Api { message, .. }) => {
                self.accept_refused(format!("access denied: {message}"))
            }
            Err(e) => {
                let why =
                    format!("the CA cannot be reached to start a security-key approval ({e})");
                self.refuse(Some(&user), &why);
                self.accept_refused(why)
            }
        }
    }

    /// Wait until the approval is no longer pending (approved, or refused:
    /// denied, expired), at most until it expires. The CA decides what it
    /// amounts to when the session certificate is asked for; this returns the
    /// CA's words when it refused the approval, for the user.
    async fn await_approval(
        &self,
        wait: &webauthn::WaitRequest,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Option<String> {
        let left = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_APPROVAL_WAIT);
        // A little past the expiry, so the CA has declared it expired.
        let deadline = Instant::now() + left + Duration::from_secs(2);
        loop {
            match self.shared.ca.approval_wait(wait).await {
                Ok(webauthn::CeremonyOutcome::Pending { .. }) => {}
                Ok(_) => return None,
                Err(ClientError::Api { code, message, .. }) => {
                    tracing::info!("security-key approval refused ({code}): {message}");
                    return Some(message);
                }
                Err(e) => {
                    tracing::warn!("waiting for a security-key approval: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    fn register(&self, handle: server::Handle) {
        let Some(s) = &self.session else { return };
        let outer = match &self.mode {
            Mode::Inner(i) => Some(i.outer.clone()),
            Mode::Outer => None,
        };
        if let Ok(mut reg) = self.shared.sessions.lock() {
            reg.insert(
                s.id.clone(),
                Live {
                    user: s.user.name.clone(),
                    serial: s.user.serial,
                    key_fingerprint: s.user.key_fingerprint.clone(),
                    handle,
                    outer,
                    channels: s.channels.clone(),
                    end_reason: s.end_reason.clone(),
                    traffic: s.traffic.clone(),
                },
            );
        }
    }

    /// Answer a request on a refused channel: the reason on stderr, exit 1, close.
    fn explain_and_close(&mut self, channel: ChannelId, session: &mut Session) -> bool {
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

    /// Start the session's recording on `channel` if it has a pty and the
    /// session has no recording yet.
    fn start_recording(&mut self, channel: ChannelId) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let Some(b) = self.channels.get(&channel) else {
            return;
        };
        let Some((term, cols, rows)) = b.pty.clone() else {
            return;
        };
        if s.recording {
            return;
        }
        s.recording = true;
        let header = rampart_audit::recording::RecordingHeader {
            session_id: s.id.clone(),
            user: s.user.name.clone(),
            login: s.login.clone(),
            target: s.target.name.clone(),
            width: cols,
            height: rows,
            started: s.started_at,
            record_input: s.policy.record_input,
            term: Some(term),
        };
        match Recorder::start(&self.shared.config.recording_dir, &header) {
            Ok(r) => {
                if let Ok(mut g) = b.rec.lock() {
                    *g = Some(r);
                }
            }
            Err(e) => tracing::error!(session = %s.id, "cannot start the recording: {e}"),
        }
    }

    /// Forward a channel request to the target and relay its answer
    /// (`channel_failure` when it cannot be sent or the target refuses it).
    async fn forward_request(
        &mut self,
        channel: ChannelId,
        request: ChannelRequest<'_>,
        session: &mut Session,
    ) {
        let ok = match self.channels.get_mut(&channel) {
            Some(b) => {
                let t = &b.to_target;
                let sent = match request {
                    ChannelRequest::Pty {
                        term,
                        cols,
                        rows,
                        pix_width,
                        pix_height,
                        modes,
                    } => {
                        t.request_pty(true, term, cols, rows, pix_width, pix_height, modes)
                            .await
                    }
                    ChannelRequest::Env { name, value } => t.set_env(true, name, value).await,
                    ChannelRequest::Shell => t.request_shell(true).await,
                    ChannelRequest::Exec(command) => t.exec(true, command.to_vec()).await,
                    ChannelRequest::Subsystem(name) => t.request_subsystem(true, name).await,
                };
                sent.is_ok()
                    && matches!(
                        tokio::time::timeout(Duration::from_secs(30), b.replies.recv()).await,
                        Ok(Some(true))
                    )
            }
            None => false,
        };
        let _ = if ok {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        };
    }

    /// A bare event of `kind` carrying this session's fields.
    fn session_event(&self, kind: BastionEventKind, success: bool) -> rampart_api::BastionEvent {
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

    fn refuse_request(&self, channel: ChannelId, what: &str, session: &mut Session) {
        let _ = session.channel_failure(channel);
        self.request_refused_event(what);
    }

    fn request_refused_event(&self, what: &str) {
        let mut e = self.session_event(BastionEventKind::RequestRefused, false);
        e.reason = Some(format!("{what} is not allowed by policy"));
        self.shared.auditor.enqueue(detail(e, "request", what));
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(s) = self.session.take() else { return };
        if let Ok(mut reg) = self.shared.sessions.lock() {
            reg.remove(&s.id);
        }
        let _ = std::fs::remove_file(recording::marker_path(
            &self.shared.config.recording_dir,
            &s.id,
        ));
        let reason = s
            .end_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "closed".into());
        let mut e = event(BastionEventKind::SessionEnded, reason == "closed");
        e.session_id = Some(s.id.clone());
        e.user = Some(s.user.name.clone());
        e.login = Some(s.login.clone());
        e.target = Some(s.target.name.clone());
        e.source = Some(self.peer.ip().to_string());
        e.serial = Some(s.user.serial);
        e.reason = Some(reason);
        let e = detail(e, "bytes_up", s.traffic.up.load(Ordering::Relaxed));
        let e = detail(e, "bytes_down", s.traffic.down.load(Ordering::Relaxed));
        let e = detail(
            e,
            "duration_ms",
            u64::try_from(s.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        self.shared.auditor.enqueue(e);
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
fn ascii_line(text: &str) -> String {
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

fn split_direct(user: &str) -> Option<(&str, &str)> {
    let (login, target) = user.rsplit_once('+')?;
    (!login.is_empty() && !target.is_empty()).then_some((login, target))
}

impl server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        // Keyboard-interactive is offered only to explain a refusal (or, after
        // a certificate, to ask for per-session MFA): it never logs anyone in.
        Ok(Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(
                &[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..],
            )),
            partial_success: false,
        })
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        self.refuse(
            None,
            &format!("password authentication refused (user {user:?}): certificates only"),
        );
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.refuse(
            None,
            &format!(
                "plain public key {} refused (user {user:?}): a Rampart certificate is required",
                key.public_key.fingerprint(HashAlg::Sha256)
            ),
        );
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let outer = match self.shared.check_cert(certificate) {
            Ok(u) => u,
            Err(why) => {
                let mut e = self.shared.refuse_event(self.peer, None, &why);
                e.user = crate::auth::key_id_user(certificate.key_id()).map(str::to_owned);
                e.serial = Some(certificate.serial());
                self.shared.auditor.enqueue(e);
                self.certificate_refusal = Some(why);
                return Ok(Auth::reject());
            }
        };
        match self.mode.clone() {
            Mode::Inner(i) => {
                let InnerOf {
                    target, outer_user, ..
                } = *i;
                if outer.key_fingerprint != outer_user.key_fingerprint
                    || outer.name != outer_user.name
                {
                    self.refuse(
                        Some(&outer),
                        "inner session authenticated with another key than the outer connection",
                    );
                    return Ok(Auth::reject());
                }
                self.user = Some(outer.clone());
                let id = ulid::Ulid::new().to_string();
                Ok(self
                    .establish(outer, user.to_owned(), target, id, None)
                    .await)
            }
            Mode::Outer => {
                self.user = Some(outer.clone());
                if let Some((login, target)) = split_direct(user) {
                    let Some(t) = self.shared.config.targets.get(target).cloned() else {
                        let why = format!("unknown target {target:?}");
                        let mut e = self.shared.refuse_event(self.peer, Some(&outer), &why);
                        e.target = Some(target.chars().take(256).collect());
                        e.login = Some(login.chars().take(256).collect());
                        self.shared.auditor.enqueue(e);
                        return Ok(self.accept_refused(why));
                    };
                    let id = ulid::Ulid::new().to_string();
                    Ok(self.establish(outer, login.to_owned(), t, id, None).await)
                } else {
                    self.authed.store(true, Ordering::Relaxed);
                    Ok(Auth::Accept)
                }
            }
        }
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(p) = &self.mfa else {
            return Ok(self.explain_refusal(user));
        };
        match response {
            None if p.approval.is_some() => {
                let (url, code) = p
                    .approval
                    .as_ref()
                    .map(|a| (a.url.clone(), a.short_code.clone()))
                    .unwrap_or_default();
                // ASCII only: OpenSSH shows a server's instructions through its
                // log, which escapes other bytes.
                Ok(Auth::Partial {
                    name: Cow::Borrowed("Rampart"),
                    instructions: Cow::Owned(format!(
                        "This session to {}@{} needs your security key.",
                        p.login, p.target.name
                    )),
                    prompts: Cow::Owned(vec![(
                        Cow::Owned(format!(
                            "Approve at {url} (code {code}), then press Enter: "
                        )),
                        true,
                    )]),
                })
            }
            None => Ok(Auth::Partial {
                name: Cow::Borrowed("Rampart"),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(
                    Cow::Owned(format!(
                        "Rampart per-session code for {}@{}: ",
                        p.login, p.target.name
                    )),
                    false,
                )]),
            }),
            Some(mut r) => {
                let code = r
                    .next()
                    .map(|b| {
                        String::from_utf8_lossy(&b)
                            .trim()
                            .chars()
                            .take(16)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let Some(p) = self.mfa.take() else {
                    return Ok(Auth::reject());
                };
                if let Some(a) = p.approval {
                    let wait = webauthn::WaitRequest {
                        request_id: a.request_id,
                        poll_token: a.poll_token,
                    };
                    let refused = self.await_approval(&wait, a.expires_at).await;
                    let auth = self
                        .establish(
                            p.user,
                            p.login,
                            p.target,
                            p.session_id,
                            Some(MfaProof::Approval(wait)),
                        )
                        .await;
                    // The CA refused the session; its approval's own refusal
                    // (denied, expired) says best why.
                    if let (Some(why), Some(_)) = (refused, &self.refusal) {
                        self.refusal = Some(format!("access denied: {why}"));
                    }
                    return Ok(auth);
                }
                Ok(self
                    .establish(
                        p.user,
                        p.login,
                        p.target,
                        p.session_id,
                        Some(MfaProof::Totp(code)),
                    )
                    .await)
            }
        }
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        self.register(session.handle());
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(user) = self.user.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if let Some(s) = &self.session {
            // A port forward inside a session to a target.
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
                return Ok(());
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
                    let (tr, tw) = tc.split();
                    let (_ur, uw) = channel.split();
                    let (rtx, rrx) = mpsc::unbounded_channel();
                    self.channels.insert(
                        uw.id(),
                        Bridged {
                            to_target: tw,
                            replies: rrx,
                            exec: Arc::new(Mutex::new(None)),
                            bytes_up: 0,
                            pty: None,
                            rec: Arc::new(Mutex::new(None)),
                            sftp: Arc::new(Mutex::new(None)),
                        },
                    );
                    let traffic = s.traffic.clone();
                    let handle = session.handle();
                    tokio::spawn(bridge::pump(tr, uw, handle, rtx, traffic, None));
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
            return Ok(());
        }
        if matches!(self.mode, Mode::Inner(_)) || self.refusal.is_some() {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        // ProxyJump: terminate an inner SSH session for a configured target.
        let Some(target) = self.shared.config.targets.get(host_to_connect).cloned() else {
            let why = format!("unknown target {host_to_connect:?}");
            let mut e = self.shared.refuse_event(self.peer, Some(&user), &why);
            e.target = Some(host_to_connect.chars().take(256).collect());
            self.shared.auditor.enqueue(e);
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 1,
                    reason: format!("rampart: {why}: this bastion does not lead there"),
                })
                .await;
            return Ok(());
        };
        let config = match self.shared.target_config(&target.name).await {
            Ok(c) => c,
            Err(why) => {
                self.refuse(Some(&user), &why);
                reply
                    .reject(ChannelOpenFailure::Other {
                        code: 2,
                        reason: format!("rampart: {why}"),
                    })
                    .await;
                return Ok(());
            }
        };
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
        let peer = self.peer;
        tokio::spawn(async move {
            match server::run_stream(config, stream, inner).await {
                Ok(running) => {
                    if let Err(e) = running.await {
                        tracing::debug!(%peer, "inner session ended: {e}");
                    }
                }
                Err(e) => tracing::debug!(%peer, "inner handshake failed: {e}"),
            }
        });
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(s) = &self.session else {
            // No target behind this connection: explain on the first request.
            if self.refusal.is_none() {
                self.refusal = Some(
                    "no target named: use `ssh -J rampart@bastion login@target` or `ssh login+target@bastion`"
                        .into(),
                );
            }
            self.refused_channels.insert(channel.id(), ());
            reply.accept().await;
            return Ok(());
        };
        let tc = match s.client.channel_open_session().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("target {} refused a session channel: {e}", s.target.name);
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        reply.accept().await;
        let (tr, tw) = tc.split();
        let (_ur, uw) = channel.split();
        let id = uw.id();
        if let Ok(mut c) = s.channels.lock() {
            c.push(id);
        }
        let (rtx, rrx) = mpsc::unbounded_channel();
        let exec = Arc::new(Mutex::new(None));
        let rec: Arc<Mutex<Option<Recorder>>> = Arc::new(Mutex::new(None));
        let sftp: Arc<Mutex<Option<FileOps>>> = Arc::new(Mutex::new(None));
        self.channels.insert(
            id,
            Bridged {
                to_target: tw,
                replies: rrx,
                exec: exec.clone(),
                bytes_up: 0,
                pty: None,
                rec: rec.clone(),
                sftp: sftp.clone(),
            },
        );
        let traffic = s.traffic.clone();
        let handle = session.handle();
        let auditor = self.shared.auditor.clone();
        let mut base = event(BastionEventKind::Exec, true);
        base.session_id = Some(s.id.clone());
        base.user = Some(s.user.name.clone());
        base.login = Some(s.login.clone());
        base.target = Some(s.target.name.clone());
        base.source = Some(self.peer.ip().to_string());
        base.serial = Some(s.user.serial);
        let chans = s.channels.clone();
        let shared = self.shared.clone();
        let session_id = s.id.clone();
        tokio::spawn(async move {
            let tap: Box<dyn bridge::OutputTap> = Box::new(SlotTap {
                rec: rec.clone(),
                sftp,
                auditor: auditor.clone(),
                base: base.clone(),
            });
            let end = bridge::pump(tr, uw, handle, rtx, traffic, Some(tap)).await;
            let recorder = rec.lock().ok().and_then(|mut g| g.take());
            if let Some(cast) = recorder.and_then(|r| r.close()) {
                tokio::spawn(recording::finish_and_upload(
                    shared, cast, session_id, false,
                ));
            }
            if let Ok(mut c) = chans.lock() {
                c.retain(|c| *c != id);
            }
            let command = exec.lock().ok().and_then(|c| c.clone());
            if let Some(command) = command {
                let mut e = base;
                e.success = end.exit_status == Some(0);
                let mut e = detail(e, "command", command);
                if let Some(st) = end.exit_status {
                    e = detail(e, "exit_status", st);
                }
                if let Some(sig) = end.exit_signal {
                    e = detail(e, "exit_signal", sig);
                }
                auditor.enqueue(detail(e, "bytes_down", end.bytes_down));
            }
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(b) = self.channels.get_mut(&channel) {
            b.bytes_up += data.len() as u64;
            if let Some(s) = &self.session {
                s.traffic.up.fetch_add(data.len() as u64, Ordering::Relaxed);
                s.traffic.touch();
            }
            if let Ok(g) = b.rec.lock() {
                if let Some(r) = g.as_ref() {
                    r.input(data);
                }
            }
            if let Ok(mut g) = b.sftp.lock() {
                if let Some(f) = g.as_mut() {
                    f.client_data(data);
                }
            }
            let _ = b
                .to_target
                .data_bytes(bytes::Bytes::copy_from_slice(data))
                .await;
        }
        Ok(())
    }

    async fn extended_data(
        &mut self,
        channel: ChannelId,
        code: u32,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(b) = self.channels.get_mut(&channel) {
            let _ = b
                .to_target
                .extended_data_bytes(code, bytes::Bytes::copy_from_slice(data))
                .await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.to_target.eof().await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(b) = self.channels.remove(&channel) {
            let _ = b.to_target.close().await;
        }
        self.refused_channels.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.refused_channels.contains_key(&channel) {
            let _ = session.channel_success(channel);
            return Ok(());
        }
        if let Some(b) = self.channels.get_mut(&channel) {
            b.pty = Some((term.chars().take(64).collect(), col_width, row_height));
        }
        let request = ChannelRequest::Pty {
            term,
            cols: col_width,
            rows: row_height,
            pix_width,
            pix_height,
            modes,
        };
        self.forward_request(channel, request, session).await;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.forward_request(channel, ChannelRequest::Env { name, value }, session)
            .await;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.explain_and_close(channel, session) {
            return Ok(());
        }
        self.start_recording(channel);
        self.forward_request(channel, ChannelRequest::Shell, session)
            .await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.explain_and_close(channel, session) {
            return Ok(());
        }
        self.start_recording(channel);
        if let Some(b) = self.channels.get(&channel) {
            if let Ok(mut c) = b.exec.lock() {
                *c = Some(String::from_utf8_lossy(data).chars().take(4000).collect());
            }
        }
        self.forward_request(channel, ChannelRequest::Exec(data), session)
            .await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.explain_and_close(channel, session) {
            return Ok(());
        }
        if let (Some(b), "sftp") = (self.channels.get(&channel), name) {
            if let Ok(mut g) = b.sftp.lock() {
                *g = Some(FileOps::new());
            }
        }
        self.forward_request(channel, ChannelRequest::Subsystem(name), session)
            .await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(b) = self.channels.get(&channel) {
            if let Ok(g) = b.rec.lock() {
                if let Some(r) = g.as_ref() {
                    r.resize(col_width, row_height);
                }
            }
            let _ = b
                .to_target
                .window_change(col_width, row_height, pix_width, pix_height)
                .await;
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: russh::Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.to_target.signal(signal).await;
        }
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(s) = &self.session else {
            return Ok(false);
        };
        if !s.policy.agent_forwarding {
            self.request_refused_event("agent forwarding");
            return Ok(false);
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
        Ok(ok)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "X11 forwarding", session);
        Ok(())
    }

    /// `ssh -R` (RFC 4254 §7.1): where policy allows port forwarding, the
    /// target is asked to listen, and the connections it then opens back
    /// (`forwarded-tcpip`) are bridged to the user by [`bridge::RemoteForwards`].
    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let what = format!("remote port forwarding {address}:{port}");
        let Some(s) = &self.session else {
            self.request_refused_event(&what);
            return Ok(false);
        };
        if !s.policy.port_forwarding {
            self.request_refused_event(&what);
            return Ok(false);
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
                    },
                    address,
                    bound,
                );
                self.shared
                    .auditor
                    .enqueue(detail(e, "listen", format!("{address}:{bound}")));
                Ok(true)
            }
            Ok(Err(err)) => {
                let mut e = detail(e, "listen", format!("{address}:{requested}"));
                e.success = false;
                e.reason = Some(format!("the target refused to listen: {err}"));
                self.shared.auditor.enqueue(e);
                Ok(false)
            }
            Err(_) => {
                let mut e = detail(e, "listen", format!("{address}:{requested}"));
                e.success = false;
                e.reason = Some("the target did not answer within 30 s".into());
                self.shared.auditor.enqueue(e);
                Ok(false)
            }
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(s) = &self.session else {
            return Ok(false);
        };
        if !s.remote.cancel(address, port) {
            return Ok(false);
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
        Ok(ok)
    }
}
