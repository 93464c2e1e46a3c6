//! The `serve` daemon's life: signal handlers, config and identity, crash
//! recovery of recordings, the listener, the first revocation list, the
//! background loops, readiness (stdout line and `sd_notify`), then the accept
//! loop until SIGTERM or SIGINT, and a drain of the audit queue on the way out.
//!
//! **Owns:** the start-up order and why it is that order; each step's work
//! lives in its own module.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::{join, recording, server, BastionError, Config};

/// How long start-up waits for the CA's revocation list before it announces
/// readiness anyway (refusing every certificate until the list arrives).
const FIRST_REVOCATIONS_WAIT: Duration = Duration::from_secs(10);
/// How long a stopping bastion keeps trying to hand queued events to the CA
/// (what it cannot hand over stays in the spool for the next start).
const AUDIT_DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Run the bastion from the config file at `path` until SIGTERM or SIGINT.
///
/// # Errors
/// A config or identity that does not load, a listener that cannot bind, a
/// signal handler that cannot be installed.
pub async fn serve(path: &Path) -> Result<(), BastionError> {
    // SIGHUP (`systemctl reload`) reloads the config. Its handler comes first,
    // well before readiness: the default action of SIGHUP ends the process, and
    // a reload sent while the bastion starts (recovering recordings, loading
    // the revocation list) must not kill it. One that arrives early is kept
    // and handled once the bastion runs.
    let hangup = handler(SignalKind::hangup(), "SIGHUP")?;
    let config = Config::load(path)?;
    config.check_files()?;
    let identity = join::Identity::load(&config)?;
    let listen = config.listen;
    let shared = server::Shared::new(config, identity)?;
    recording::recover(shared.clone()).await;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| BastionError::Listen {
            addr: listen,
            source,
        })?;
    // Every certificate is refused until the revocation list is loaded (fail
    // closed); try for a while before announcing readiness.
    server::first_revocations(&shared, FIRST_REVOCATIONS_WAIT).await;
    tokio::spawn(server::revocation_loop(shared.clone()));
    server::refresh_ca_keys(&shared).await;
    tokio::spawn(server::ca_keys_loop(shared.clone()));
    // Before readiness is announced: a SIGTERM that arrives the moment the
    // service manager (or a test) hears READY must stop the daemon cleanly,
    // not kill it with the default action before the handler exists.
    let mut term = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = handler(SignalKind::interrupt(), "SIGINT")?;
    tokio::spawn(server::reload_loop(
        shared.clone(),
        path.to_path_buf(),
        hangup,
    ));
    let bound = listener
        .local_addr()
        .map_err(|source| BastionError::Listen {
            addr: listen,
            source,
        })?;
    announce_ready(bound);
    if let Some(addr) = shared.config().metrics_listen {
        let live = shared.clone();
        let bound = crate::metrics::serve(
            addr,
            Arc::new(move || live.live_sessions()),
            shared.clock().clone(),
        )
        .await
        .map_err(|source| BastionError::Listen { addr, source })?;
        tracing::info!("rampart-bastion metrics on http://{bound}/metrics");
    }
    tokio::spawn(server::idle_loop(shared.clone()));
    recording::spawn_uploader(shared.clone());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let accept = tokio::spawn(server::serve(Arc::clone(&shared), listener, stopping));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop.send(true);
    let _ = accept.await;
    shared.auditor().drain(AUDIT_DRAIN_WAIT).await;
    Ok(())
}

fn handler(
    kind: SignalKind,
    name: &'static str,
) -> Result<tokio::signal::unix::Signal, BastionError> {
    signal(kind).map_err(|source| BastionError::Signal {
        signal: name,
        source,
    })
}

/// The one readiness line on stdout (tests and service managers wait for it)
/// and systemd's `Type=notify` (packaging/systemd/rampart-bastion.service; a
/// no-op without `NOTIFY_SOCKET`).
fn announce_ready(bound: std::net::SocketAddr) {
    println!("rampart-bastion listening on {bound}");
    if let Err(e) = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("listening on {bound}")),
    ]) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}
