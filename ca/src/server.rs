//! Start-up and shutdown: load the config, keys, policy, store and audit log into
//! an [`Authority`]; serve the API over TLS; re-read the policy on SIGHUP; stop
//! cleanly on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::{AuditConfig, AuditError, EventKind, NewEvent, Outcome};
use rampart_policy::{LintSeverity, Policy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::authority::policy_share::{self, parse_policy, PolicyShare};
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

/// Read and validate the policy file.
pub fn load_policy(path: &Path) -> Result<Policy, CaError> {
    load_policy_text(path).map(|(_, policy)| policy)
}

/// Read and validate the policy file; its text too (what the CAs share).
pub fn load_policy_text(path: &Path) -> Result<(String, Policy), CaError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
    let policy = parse_policy(&text, &path.display().to_string())?;
    Ok((text, policy))
}

/// Re-read the policy file into a running authority (SIGHUP). The new policy
/// is validated exactly as at start-up; one that does not validate is refused
/// and the previous policy stays in force, so a typo during an incident never
/// leaves the CA without a policy. Either way the attempt is audited first.
/// An edited file is published to every CA on the database
/// ([`crate::authority::policy_share`]); an unchanged one changes nothing.
/// Returns the shared version published, if any.
pub fn reload_policy(
    path: &Path,
    auth: &Authority,
    share: &PolicyShare,
) -> Result<Option<u64>, CaError> {
    let loaded = load_policy_text(path);
    let outcome = if loaded.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let digest = match &loaded {
        Ok((text, _)) => policy_share::digest(text.as_bytes()),
        Err(_) => std::fs::read(path)
            .map(|b| policy_share::digest(&b))
            .unwrap_or_default(),
    };
    let mut ev = NewEvent::new(EventKind::PolicyReloaded, outcome, auth.now())
        .actor("rampart-ca")
        .detail("path", path.display().to_string())
        .detail("sha256", digest);
    if let Err(e) = &loaded {
        // The whole chain: an unreadable file names its path and the cause.
        ev = ev.reason(&rampart_api::report::one_line(e));
    }
    auth.record(ev)?;
    let (text, policy) = loaded?;
    for lint in policy.lint() {
        tracing::warn!("policy warning: {lint}");
    }
    auth.publish_reloaded_policy(share, &text, policy)
}

/// On every SIGHUP, [`reload_policy`]; the outcome goes to the log.
fn spawn_policy_reload(path: std::path::PathBuf, auth: Arc<Authority>, share: Arc<PolicyShare>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: reloading the policy needs a restart");
            return;
        }
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let (path, auth, share) = (path.clone(), Arc::clone(&auth), Arc::clone(&share));
            let done =
                tokio::task::spawn_blocking(move || reload_policy(&path, &auth, &share)).await;
            match done {
                Ok(Ok(Some(version))) => {
                    tracing::info!(version, "policy reloaded and shared with every CA")
                }
                Ok(Ok(None)) => tracing::info!(
                    "policy file unchanged since this CA last published or adopted it; \
                     the policy in force stays"
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %rampart_api::report::one_line(&e), "policy reload refused; the previous policy stays in force")
                }
                Err(e) => tracing::error!(error = %e, "policy reload task failed"),
            }
        }
    });
}

/// How often a CA looks for a policy another CA published.
const POLICY_POLL: Duration = Duration::from_secs(1);

/// Every [`POLICY_POLL`], adopt a newer shared policy. A failure is logged
/// when it first happens or changes, not every second.
fn spawn_policy_poll(auth: Arc<Authority>, share: Arc<PolicyShare>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLICY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error = String::new();
        loop {
            tick.tick().await;
            let (auth, share) = (Arc::clone(&auth), Arc::clone(&share));
            let done = tokio::task::spawn_blocking(move || auth.adopt_newer_policy(&share)).await;
            match done {
                Ok(Ok(_)) => last_error.clear(),
                Ok(Err(e)) => {
                    let message = rampart_api::report::one_line(&e);
                    if message != last_error {
                        tracing::error!(error = %message,
                            "cannot adopt the shared policy; this CA keeps the policy it has");
                        last_error = message;
                    }
                }
                Err(e) => tracing::error!(error = %e, "policy poll task failed"),
            }
        }
    });
}

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
    import_local_recordings(&authority);
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
/// can hand them out. The files stay; a failure is logged and tried again at
/// the next start, since the recordings are safe where they are.
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
const WITNESS_HINT: &str = "do not delete the witness; keep audit.db and the witness as \
    evidence, run `rampart audit verify --db AUDIT_DB --witness WITNESS --audit-pubkey \
    keys/audit.pub` to see what is missing, and restore the database from a copy that \
    reaches the witnessed head (docs/audit.md: \"When the CA refuses to start\")";

/// What an operator should do when the witness is gone but the database has
/// checkpoints: find out whether the log was cut, then restart the witness on
/// purpose. Names this CA's files so the commands can be pasted.
fn witness_missing_hint(config: &Config) -> String {
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

/// `rampart-ca check`: everything `serve` loads, without serving. Returns a short
/// human summary.
pub fn check(config_path: &Path) -> Result<String, CaError> {
    let config = Config::load(config_path)?;
    let pass = config.read_passphrase()?;
    let keys = crate::keys::load(&config, &pass)?;
    let audit_public = keys.audit.public_key().clone();
    drop(keys);
    let policy = load_policy(&config.policy)?;
    // The policy's own lints, plus the one only the CA can judge: roles needing
    // phishing-resistant keys when `[webauthn]` vouches for no key model.
    let warnings = policy
        .lint()
        .into_iter()
        .chain(policy.lint_key_attestation(config.webauthn.verifies_key_models()))
        .filter(|l| l.severity == LintSeverity::Warning)
        .map(|l| format!("policy warning: {l}"))
        .collect::<Vec<_>>();
    load_tls(&config)?;
    for f in &config.forwarders {
        crate::forwarders::sink_for(f)?; // the TLS CA file must load
    }
    let files = [
        config.database.sqlite_path(),
        config.audit_database.sqlite_path(),
    ];
    for db in files.into_iter().flatten() {
        if !db.exists() {
            return Err(CaError::Config(format!("{} does not exist", db.display())));
        }
    }
    let schema_lines = check_schemas(&config)?;
    let witness_line = check_witness(&config, &audit_public)?;
    let rotation_lines = crate::rotation::describe(&config)?;
    let mut out = format!(
        "configuration OK: {} (listen {}, keys decrypt, policy valid, TLS loads)",
        config.path.display(),
        config.listen
    );
    for line in schema_lines
        .iter()
        .chain([&witness_line])
        .chain(&rotation_lines)
    {
        out.push('\n');
        out.push_str(line);
    }
    let warnings = passphrase_beside_keys(&config).into_iter().chain(warnings);
    for w in warnings {
        out.push('\n');
        out.push_str(&w);
    }
    Ok(out)
}

/// `check`'s view of the two databases' schema versions, read without upgrading
/// anything: an error for a database `serve` would refuse (newer than this
/// binary, or not Rampart's), else a line each saying the version and whether
/// the next start upgrades it.
fn check_schemas(config: &Config) -> Result<[String; 2], CaError> {
    let ca = match &config.database {
        Database::Sqlite(path) => crate::store::sqlite::inspect(path),
        Database::Postgres(pg) => crate::store::postgres::inspect(&pg.target()?),
    }
    .map_err(|e| {
        CaError::Config(format!(
            "CA database {}: {}; `serve` would refuse to start",
            config.database,
            rampart_api::report::one_line(&e)
        ))
    })?;
    let ca_line = if ca.needs_upgrade() {
        format!(
            "CA database {}: schema version {}; the next start upgrades it to {} \
             (back it up first)",
            config.database, ca.found, ca.supported
        )
    } else {
        format!(
            "CA database OK: {} (schema version {})",
            config.database, ca.found
        )
    };
    let audit = config.audit_database.schema_version().map_err(|e| {
        CaError::Config(format!(
            "audit database {}: {}",
            config.audit_database,
            rampart_api::report::one_line(&e)
        ))
    })?;
    let audit_line = if audit == 0 {
        format!(
            "audit database {}: no audit tables yet; the next start creates them",
            config.audit_database
        )
    } else {
        format!(
            "audit database OK: {} (schema version {audit})",
            config.audit_database
        )
    };
    Ok([ca_line, audit_line])
}

/// `check`'s view of the audit witness: an error when the database is behind or
/// disagrees with it, or when it is missing or empty beside a database with
/// checkpoints (what `serve` would refuse), else one line saying where the
/// witnessed head is.
fn check_witness(config: &Config, audit_key: &ssh_key::PublicKey) -> Result<String, CaError> {
    let w = &config.audit_witness;
    let absent = rampart_audit::witness::is_absent(w).map_err(|e| {
        CaError::Config(format!(
            "audit witness: {}",
            rampart_api::report::one_line(&e)
        ))
    })?;
    if absent {
        return match config
            .audit_database
            .absent_witness_problem(w)
            .map_err(|e| {
                CaError::Config(format!(
                    "audit witness: {}",
                    rampart_api::report::one_line(&e)
                ))
            })? {
            Some(p) => Err(CaError::Config(format!(
                "{p}; `serve` would refuse to start: {}",
                witness_missing_hint(config)
            ))),
            None => Ok(format!(
                "audit witness {} is not started yet: the audit database has no \
                 checkpoint, and the first one begins it",
                w.display()
            )),
        };
    }
    let report = config
        .audit_database
        .check_witness(w, Some(audit_key))
        .map_err(|e| {
            CaError::Config(format!(
                "audit witness: {}",
                rampart_api::report::one_line(&e)
            ))
        })?;
    if let Some(p) = report.problem {
        return Err(CaError::Config(format!(
            "audit witness {}: {p}; `serve` would refuse to start: {WITNESS_HINT}",
            w.display()
        )));
    }
    Ok(match report.witnessed_head {
        Some((h, _)) => format!(
            "audit witness OK: {} (database head {}, witnessed head {h})",
            w.display(),
            report.db_head
        ),
        None => format!("audit witness {} is empty", w.display()),
    })
}

/// A warning when the key passphrase is a file inside the CA directory or a key
/// directory: then whoever copies the directory (a backup, a snapshot, a stolen
/// disk image) has the encrypted keys and their passphrase together, and the
/// encryption protects nothing.
pub fn passphrase_beside_keys(config: &Config) -> Option<String> {
    let file = config.passphrase_path()?;
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let file = real(&file);
    let dirs = std::iter::once(config.path.as_path())
        .chain(config.key_files())
        .filter_map(Path::parent);
    let dir = dirs.map(real).find(|d| file.starts_with(d))?;
    let name = crate::init::SYSTEMD_CREDENTIAL;
    Some(format!(
        "warning: the key passphrase file {file} is inside {dir}, beside the encrypted keys: \
         a copy of that directory holds both. Move it into a systemd credential \
         (systemd-creds encrypt --name={name} {file} /etc/rampart/ca-passphrase.cred, set \
         passphrase_credential = \"{name}\" in [keys], then shred -u {file})",
        file = file.display(),
        dir = dir.display(),
    ))
}

/// Prune the audit log to `window` at start and then hourly, on a blocking
/// thread (pruning deletes in short transactions; the writer keeps going).
fn spawn_retention(
    db: std::path::PathBuf,
    witness: std::path::PathBuf,
    window: chrono::Duration,
    auth: Arc<Authority>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let cutoff = auth.now() - window;
            let (db, witness) = (db.clone(), witness.clone());
            match tokio::task::spawn_blocking(move || {
                rampart_audit::retention::prune_witnessed(&db, cutoff, Some(&witness))
            })
            .await
            {
                Ok(Ok(r)) => tracing::debug!(
                    anchor = r.anchor.as_ref().map(|a| a.seq),
                    deleted = r.events_deleted,
                    "audit retention run"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %rampart_api::report::one_line(&e), "audit retention failed; will retry")
                }
                Err(e) => tracing::warn!(error = %e, "audit retention task failed"),
            }
        }
    });
}

/// Every ten minutes, forget the flows in progress that expired, on a blocking
/// thread (the store may be PostgreSQL).
fn spawn_request_purge(auth: Arc<Authority>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let a = Arc::clone(&auth);
            match tokio::task::spawn_blocking(move || a.purge_expired_requests()).await {
                Ok(Ok(n)) => tracing::debug!(forgotten = n, "expired requests purged"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %rampart_api::report::one_line(&e), "purging expired requests failed; will retry")
                }
                Err(e) => tracing::warn!(error = %e, "request purge task failed"),
            }
        }
    });
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
    let forwarders =
        crate::forwarders::Forwarders::start(&config.forwarders, &config.audit_database)?;
    if let Some(addr) = config.metrics.listen {
        for p in &config.oidc {
            crate::metrics::provider_configured(&p.name);
        }
        let (auth, fwd) = (Arc::clone(&auth), forwarders.status_handles());
        let refresh: crate::metrics::Refresh = Arc::new(move || {
            crate::metrics::witness_failures(auth.audit_log().witness_failures());
            let head = auth.audit_log().head().ok().map(|(seq, _)| seq);
            fwd.iter()
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
        spawn_retention(
            db.to_path_buf(),
            config.audit_witness.clone(),
            window,
            Arc::clone(&auth),
        );
    }
    spawn_policy_reload(config.policy.clone(), Arc::clone(&auth), Arc::clone(&share));
    spawn_policy_poll(Arc::clone(&auth), Arc::clone(&share));
    spawn_request_purge(Arc::clone(&auth));
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
    tokio::task::block_in_place(|| forwarders.stop());
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
