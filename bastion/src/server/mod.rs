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
//!
//! Where things are, in the order a connection meets them:
//!
//! - `accept`: the accept loop, its rate limit and authentication timeout.
//! - `handler`: the russh handler, which only dispatches to the files below.
//! - `conn`: one connection's state and how it refuses.
//! - `login`: the certificate login (ProxyJump, `login+target`, or none yet)
//!   and the keyboard-interactive rounds.
//! - `mfa`: per-session MFA: the pending prompt, security-key approvals.
//! - `establish`: a session's start, step by step: limits, per-session key
//!   and certificate, dial, audit, register.
//! - `host_certs`: host certificates the bastion presents for each target.
//! - `channels`: session channels bridged to the target, recording, SFTP.
//! - `forwards`: port and agent forwarding, and the ProxyJump inner session.
//! - `events`: the audit events of a session and of refusals.
//! - `registry`: the live sessions, and how revocation and idleness end them.
//! - `reload`: SIGHUP, `bastion.toml` re-read and swapped in for new sessions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use russh::keys::ssh_key::{Certificate, PrivateKey};
use russh::server;
use russh::{MethodKind, MethodSet};

use crate::audit::spool::EventSpool;
use crate::audit::Auditor;
use crate::auth::{check_user_cert, CertRefused, OuterUser, Revocations};
use crate::ca_client::CaClient;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::join::Identity;
use crate::limits::RateLimiter;
use crate::BastionError;

mod accept;
mod ca_keys;
mod channels;
mod conn;
mod establish;
mod events;
mod forwards;
mod handler;
mod host_certs;
mod login;
mod mfa;
mod registry;
mod reload;

pub use accept::serve;
pub use ca_keys::{ca_keys_loop, refresh_ca_keys, CaKeys};
pub use registry::{first_revocations, idle_loop, revocation_loop};
pub use reload::{reload_loop, ReloadRefused, Reloaded};

/// State shared by every connection.
pub struct Shared {
    /// The running config: replaced whole by a reload, read afresh by each
    /// new connection and session (a live session keeps the one it started
    /// under).
    config: RwLock<Arc<Config>>,
    host_key: PrivateKey,
    /// The CA keys certificates are checked against, refreshed from the CA
    /// ([`ca_keys_loop`]) so a key rotation needs no restart here.
    ca_keys: RwLock<Arc<CaKeys>>,
    ca: CaClient,
    auditor: Auditor,
    revocations: RwLock<Revocations>,
    outer_config: Arc<server::Config>,
    target_configs: host_certs::Cache,
    sessions: Mutex<HashMap<String, registry::Live>>,
    limiter: Mutex<RateLimiter>,
    /// Every wall-clock reading of the server (see [`crate::clock`]).
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.config().name)
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
        preferred: russh::Preferred {
            cipher: crate::bridge::ciphers(),
            ..russh::Preferred::default()
        },
        ..server::Config::default()
    }
}

impl Shared {
    /// Build from config and identity, on the system clock.
    pub fn new(config: Config, identity: Identity) -> Result<Arc<Shared>, BastionError> {
        Self::with_clock(config, identity, Arc::new(SystemClock))
    }

    /// Build from config and identity, reading the time from `clock`.
    pub fn with_clock(
        config: Config,
        identity: Identity,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Shared>, BastionError> {
        let ca = CaClient::new(&config.ca_url, config.ca_fingerprint)?
            .with_credential(identity.credential.clone());
        let spool = EventSpool::open(&config.audit_spool_dir, config.audit_spool_max)
            .map_err(|e| BastionError::io(&config.audit_spool_dir, e))?;
        let auditor = Auditor::start(ca.clone(), spool);
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
            ca_keys: RwLock::new(Arc::new(CaKeys {
                user: identity.user_ca.into(),
                host: identity.host_ca.into(),
            })),
            ca,
            auditor,
            revocations: RwLock::new(Revocations::default()),
            outer_config,
            target_configs: host_certs::Cache::default(),
            sessions: Mutex::new(HashMap::new()),
            limiter: Mutex::new(limiter),
            config: RwLock::new(Arc::new(config)),
            clock,
        }))
    }

    /// The auditor.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The clock every wall-clock reading of the server comes from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The CA client.
    pub fn ca(&self) -> &CaClient {
        &self.ca
    }

    /// The running config (the latest one a reload accepted).
    pub fn config(&self) -> Arc<Config> {
        // A panic while the lock was held cannot leave a half-written config:
        // the write only swaps one Arc for another.
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Check a certificate presented from `client`.
    fn check_cert(&self, cert: &Certificate, client: IpAddr) -> Result<OuterUser, CertRefused> {
        let rev = self
            .revocations
            .read()
            .map_err(|_| CertRefused::RevocationsUnavailable)?;
        check_user_cert(
            cert,
            &self.ca_keys().user,
            self.clock.unix_secs(),
            &rev,
            client,
        )
    }

    /// The CA keys trusted now.
    pub(crate) fn ca_keys(&self) -> Arc<CaKeys> {
        self.ca_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
