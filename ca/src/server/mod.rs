//! Start-up and shutdown: load the config, keys, policy, store and audit log into
//! an [`Authority`]; serve the API over TLS; stop cleanly on SIGTERM/SIGINT.
//!
//! - `policy.rs`: the policy file, read at start and on SIGHUP, shared with
//!   the other CAs on the database;
//! - `tasks.rs`: the background tasks (SIGHUP, the shared-policy poll, audit
//!   retention, expired flows);
//! - `check.rs`: `rampart-ca check`.

mod check;
mod config_reload;
mod policy;
mod tasks;

pub use check::{check, passphrase_beside_keys};
pub use policy::{load_policy, load_policy_text, reload_policy};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::{AuditConfig, AuditError, EventKind, NewEvent, Outcome};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::authority::policy_share::PolicyShare;
use crate::authority::Authority;
use crate::clock::{Clock, SystemClock};
use crate::config::{check_private_file, Config, Database};
use crate::error::CaError;
use crate::secrets::Sealer;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// Metadata key of the seal salt, written by `init`.
pub const SEAL_SALT: &str = "seal_salt";

/// Everything loaded from a config, before serving.
#[derive(Debug)]
pub struct Loaded {
    /// The authority.
    pub authority: Arc<Authority>,
    /// The policy file's text the authority's policy was parsed from.
    pub policy_text: String,
    /// TLS server settings.
    pub tls: Arc<rustls::ServerConfig>,
}

/// Build the rustls server config from the PEM files named by the config.
pub fn load_tls(config: &Config) -> Result<Arc<rustls::ServerConfig>, CaError> {
    check_private_file(&config.tls_key)?;
    let certs = CertificateDer::pem_file_iter(&config.tls_cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| CaError::Config(format!("{}: {e}", config.tls_cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&config.tls_key)
        .map_err(|e| CaError::Config(format!("{}: {e}", config.tls_key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| CaError::Config(format!("TLS certificate and key: {e}")))?;
    Ok(Arc::new(tls))
}

/// Open the configured store, and read the seal salt `init` put there.
fn open_store(config: &Config) -> Result<(Arc<dyn Store>, Vec<u8>), CaError> {
    let store: Arc<dyn Store> = match &config.database {
        Database::Sqlite(path) => {
            if !path.exists() {
                return Err(CaError::Config(format!(
                    "{} does not exist; run `rampart-ca init` first",
                    path.display()
                )));
            }
            Arc::new(SqliteStore::open(path).map_err(|e| {
                CaError::Config(format!(
                    "{}: {}",
                    path.display(),
                    rampart_api::report::one_line(&e)
                ))
            })?)
        }
        Database::Postgres(pg) => Arc::new(PostgresStore::open(&pg.target()?).map_err(|e| {
            CaError::Config(format!(
                "{}: {}",
                pg.redacted(),
                rampart_api::report::one_line(&e)
            ))
        })?),
    };
    let salt = store.meta(SEAL_SALT)?.ok_or_else(|| {
        CaError::Config(format!(
            "{} was not initialised by `rampart-ca init` (no seal salt)",
            config.database
        ))
    })?;
    Ok((store, salt))
}

/// Load keys, policy, store and audit log; fail with a clear reason on anything
/// missing, unreadable, loose or wrong.
pub fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Loaded, CaError> {
    let pass = config.read_passphrase()?;
    if let Some(w) = passphrase_beside_keys(config) {
        tracing::warn!("{w}");
    }
    open_with_passphrase(config, &pass, clock)
}

/// [`open`] with the key passphrase already in hand (`init`, whose typed
/// passphrase the daemon will later read from a credential that does not exist
/// yet).
pub fn open_with_passphrase(
    config: &Config,
    pass: &secrecy::SecretString,
    clock: Arc<dyn Clock>,
) -> Result<Loaded, CaError> {
    let keys = crate::keys::load(config, pass)?;
    let (policy_text, policy) = load_policy_text(&config.policy)?;
    let tls = load_tls(config)?;
    let (store, salt) = open_store(config)?;
    let sealer = Sealer::derive(pass, &salt)?;
    let audit = config
        .audit_database
        .open(
            Some(keys.audit),
            AuditConfig {
                checkpoint_every_events: config.checkpoint_every_events,
                checkpoint_every: config.checkpoint_every,
                witness: Some(config.audit_witness.clone()),
                ..AuditConfig::default()
            },
        )
        .map_err(|e| match e {
            // Already names both heads and the witness file.
            AuditError::Witness(m) => {
                CaError::Config(format!("refusing to start: {m}; {}", WITNESS_HINT))
            }
            AuditError::WitnessMissing(m) => CaError::Config(format!(
                "refusing to start: {m}; {}",
                witness_missing_hint(config)
            )),
            e => CaError::Config(format!(
                "{}: {}",
                config.audit_database,
                rampart_api::report::one_line(&e)
            )),
        })?;
    let settings = config.authority.clone();
    let authority = Authority::new(store, audit, policy, keys.ca, sealer, clock, settings)?;
    if !config.oidc.is_empty() {
        authority.set_oidc(crate::oidc::RelyingParty::new(config.oidc.clone())?);
    }
    authority.set_webauthn(crate::webauthn::RelyingParty::new(config.webauthn.clone())?);
    if let Some(piv) = &config.piv {
        authority.set_piv(piv.clone());
    }
    Ok(Loaded {
        authority: Arc::new(authority),
        policy_text,
        tls,
    })
}

/// A CA that kept sealed recordings in its own directory before its audit log
/// moved to a shared PostgreSQL database copies them there, so that every CA
/// can hand them out. Run in the background once the CA serves (a directory
/// of many recordings must not hold up the start). The files stay; a failure
/// is logged and tried again at the next start, since the recordings are safe
/// where they are.
fn import_local_recordings(authority: &Authority) {
    let store = authority.recording_store();
    let dir = authority.recordings_dir();
    match store.import_dir(&dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, from = %dir.display(), to = %store,
            "copied recordings kept in this CA's directory to the shared store"),
        Err(e) => tracing::warn!(from = %dir.display(), to = %store,
            error = %rampart_api::report::one_line(&e),
            "could not copy this CA's recordings to the shared store; they stay where they are"),
    }
}

/// What an operator should do when the audit database and its witness part.
pub(super) const WITNESS_HINT: &str =
    "do not delete the witness; keep audit.db and the witness as \
    evidence, run `rampart audit verify --db AUDIT_DB --witness WITNESS --audit-pubkey \
    keys/audit.pub` to see what is missing, and restore the database from a copy that \
    reaches the witnessed head (docs/audit.md: \"When the CA refuses to start\")";

/// What an operator should do when the witness is gone but the database has
/// checkpoints: find out whether the log was cut, then restart the witness on
/// purpose. Names this CA's files so the commands can be pasted.
pub(super) fn witness_missing_hint(config: &Config) -> String {
    format!(
        "compare the database with the SIEM's copy of the checkpoints before anything \
         else: `rampart audit verify --db {db} --audit-pubkey {key}.pub --expect-head \
         SEQ:HASH` with the newest checkpoint the SIEM received (or `--witness` with an \
         off-host copy of the witness); if the database reaches it, start a new witness \
         deliberately with `rampart-ca witness-restart --config {config}` (audited as \
         audit_witness_restarted); if it does not, treat it as an incident and restore \
         the database from a copy that does (docs/audit.md: \"When the CA refuses to start\")",
        db = config.audit_database,
        key = config.audit_key.display(),
        config = config.path.display(),
    )
}

/// Serve until SIGTERM or SIGINT. `on_ready` gets the bound address (useful with
/// port 0).
pub async fn serve(
    config: Config,
    on_ready: impl FnOnce(SocketAddr) + Send + 'static,
) -> Result<(), CaError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let loaded = tokio::task::block_in_place(|| open(&config, clock))?;
    let auth = loaded.authority;
    let share = Arc::new(PolicyShare::new(
        &config.policy,
        config.path.parent().unwrap_or(Path::new(".")),
    ));
    tokio::task::block_in_place(|| auth.sync_policy_at_start(&share, &loaded.policy_text))
        .map_err(|e| {
            CaError::Config(format!(
                "refusing to start: the policy could not be brought in line with the one \
                 the other CAs on this database share: {}",
                rampart_api::report::one_line(&e)
            ))
        })?;
    auth.record(
        NewEvent::new(EventKind::CaStarted, Outcome::Success, auth.now())
            .actor("rampart-ca")
            .detail("version", env!("CARGO_PKG_VERSION"))
            .detail("listen", config.listen.to_string()),
    )?;
    // After CaStarted, so that it is forwarded in the first batch.
    let forwarders = Arc::new(std::sync::Mutex::new(crate::forwarders::Forwarders::start(
        &config.forwarders,
        &config.audit_database,
    )?));
    if let Some(addr) = config.metrics.listen {
        for p in &config.oidc {
            crate::metrics::provider_configured(&p.name);
        }
        let (auth, fwd) = (Arc::clone(&auth), Arc::clone(&forwarders));
        let refresh: crate::metrics::Refresh = Arc::new(move || {
            crate::metrics::witness_failures(auth.audit_log().witness_failures());
            let head = auth.audit_log().head().ok().map(|(seq, _)| seq);
            // Read each time: a reload may have replaced the forwarders.
            let handles = fwd.lock().map(|f| f.status_handles()).unwrap_or_default();
            handles
                .iter()
                .for_each(|h| crate::metrics::forwarder_status(&h.get(), head));
            if let Err(e) = auth.refresh_metrics() {
                tracing::warn!(error = %rampart_api::report::one_line(&e), "metrics refresh failed");
            }
        });
        let bound = crate::metrics::serve(addr, refresh).await?;
        println!("rampart-ca metrics on http://{bound}/metrics");
    }
    // Retention is refused at load for a PostgreSQL log.
    if let (Some(window), Some(db)) = (config.audit_retention, config.audit_database.sqlite_path())
    {
        tasks::spawn_retention(
            db.to_path_buf(),
            config.audit_witness.clone(),
            window,
            Arc::clone(&auth),
        );
    }
    tasks::spawn_reload(
        config.policy.clone(),
        Arc::new(config_reload::ConfigReload::new(
            &config,
            Arc::clone(&forwarders),
        )),
        Arc::clone(&auth),
        Arc::clone(&share),
    );
    tasks::spawn_policy_poll(Arc::clone(&auth), Arc::clone(&share));
    tasks::spawn_request_purge(Arc::clone(&auth));
    let importer = Arc::clone(&auth);
    tokio::task::spawn_blocking(move || import_local_recordings(&importer));
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    let stop = stop_signal();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("shutting down");
        sd_notify("STOPPING=1");
        shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let ready = handle.clone();
    let (ready_auth, webauthn) = (Arc::clone(&auth), config.webauthn.clone());
    tokio::spawn(async move {
        if let Some(addr) = ready.listening().await {
            if webauthn.origin_follows_listen {
                // `listen` had port 0: the pages' default origin is the bound port.
                match crate::webauthn::RelyingParty::new(webauthn.with_port(addr.port())) {
                    Ok(rp) => ready_auth.set_webauthn(rp),
                    Err(e) => tracing::error!(
                        error = %rampart_api::report::one_line(&e),
                        "webauthn relying party"
                    ),
                }
            }
            on_ready(addr);
            sd_notify(&format!("READY=1\nSTATUS=listening on https://{addr}"));
        }
    });
    let app = crate::http::router(Arc::clone(&auth))
        .layer(axum::middleware::from_fn(crate::metrics::observe_request));
    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        config.http.request_timeout,
    ));
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(loaded.tls),
    )
    .handshake_timeout(config.http.handshake_timeout)
    .acceptor(crate::connections::ConnectionGate::new(&config.http));
    let mut server = axum_server::bind(config.listen)
        .acceptor(acceptor)
        .handle(handle);
    // HTTP/1.1 only (the API's clients speak nothing else), with a deadline
    // for every request head, which also ends idle keep-alive connections.
    let builder = server.http_builder();
    *builder = std::mem::replace(
        builder,
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new()),
    )
    .http1_only();
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.http.header_timeout);
    let result = server
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(|e| CaError::Config(format!("cannot serve on {}: {e}", config.listen)));
    let stop = auth.record(
        NewEvent::new(EventKind::CaStopped, Outcome::Success, auth.now()).actor("rampart-ca"),
    );
    // Close the log first: closing signs a last checkpoint over CaStopped, and the
    // forwarders' drain then sends both, so the SIEM holds the final signed head.
    let close = auth.audit_log().close();
    tokio::task::block_in_place(|| forwarders.lock().map(|mut f| f.stop()).unwrap_or_default());
    result?;
    stop?;
    close.map_err(CaError::AuditUnavailable)
}

/// Readiness for systemd's `Type=notify` (sd_notify(3)): when the service manager set
/// `$NOTIFY_SOCKET`, send one datagram of newline-separated `VAR=value` assignments to
/// it. "If the first character of $NOTIFY_SOCKET is "@", the string is understood as
/// Linux abstract namespace socket" (sd_notify(3)). Without the variable (not under
/// systemd) this does nothing; a failed send is logged, never fatal.
fn sd_notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = sd_notify_to(&socket, state) {
        tracing::warn!(socket = ?socket, error = %e, "cannot notify the service manager");
    }
}

/// Send `state` to the `AF_UNIX` datagram socket named like `$NOTIFY_SOCKET`.
pub fn sd_notify_to(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
    let bytes = socket.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => UnixAddr::from_abstract_name(name)?,
        None if bytes.starts_with(b"/") => UnixAddr::from_pathname(Path::new(socket))?,
        // sd_notify(3) also knows vsock: addresses (VMs); Rampart does not run there.
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an abstract name",
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so that a signal sent the moment readiness is
/// announced stops the CA cleanly instead of killing it.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move { wait_for(term, int).await }
}

async fn wait_for(
    term: std::io::Result<tokio::signal::unix::Signal>,
    int: std::io::Result<tokio::signal::unix::Signal>,
) {
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            // Without signal handlers, fall back to Ctrl-C only.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod sd_notify_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};

    use super::sd_notify_to;

    #[test]
    fn sends_one_datagram_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        sd_notify_to(path.as_os_str(), "READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
    }

    #[test]
    fn sends_to_an_abstract_socket_named_with_at() {
        let name = format!("rampart-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&UnixAddr::from_abstract_name(&name).unwrap()).unwrap();
        sd_notify_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn refuses_a_relative_name_and_reports_a_missing_socket() {
        assert!(sd_notify_to(std::ffi::OsStr::new("relative/notify"), "READY=1").is_err());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        assert!(sd_notify_to(missing.as_os_str(), "READY=1").is_err());
    }
}
