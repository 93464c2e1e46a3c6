//! The accept loop: the per-source rate limit, then one task a connection,
//! each (and each ProxyJump inner session) watched by the login timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::server;

use super::conn::{Conn, Mode};
use super::events::refuse_event;
use super::Shared;
use crate::audit::detail;
use crate::BastionError;

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
            shared.auditor.enqueue(refuse_event(
                peer,
                None,
                "connection rate limit exceeded for this source",
                shared.clock.now(),
            ));
            drop(socket);
            continue;
        }
        let _ = socket.set_nodelay(true);
        let shared = shared.clone();
        let conn = Conn::new(shared.clone(), peer, Mode::Outer);
        let config = shared.outer_config.clone();
        tokio::spawn(run_connection(shared, config, socket, conn, "outer"));
    }
}

/// Run one SSH connection — a user's TCP connection, or the inner session of
/// a ProxyJump on a `direct-tcpip` channel — under the login timeout: the
/// client's identification line and a successful login must both come within
/// `[limits] auth_timeout_secs`, except while the person is being asked for a
/// per-session code or a security-key approval (the connection's `auth_hold`).
/// A client that never sends its banner, or stalls its login, is cut off and
/// audited; it holds nothing for longer.
pub(super) async fn run_connection<S>(
    shared: Arc<Shared>,
    config: Arc<server::Config>,
    stream: S,
    conn: Conn,
    what: &'static str,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let authed = conn.authed.clone();
    let auth_hold = conn.auth_hold.clone();
    let timeout = shared.config().limits.auth_timeout;
    // russh reads the client's identification line before it returns.
    let running =
        match tokio::time::timeout(timeout, server::run_stream(config, stream, conn)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "{what}: handshake failed: {e}");
                return;
            }
            Err(_) => {
                shared.auditor.enqueue(detail(
                    refuse_event(
                        peer,
                        None,
                        "no SSH identification within the login timeout",
                        shared.clock.now(),
                    ),
                    "connection",
                    what,
                ));
                return;
            }
        };
    let handle = running.handle();
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let closed = closed.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // A per-session prompt in progress holds the timeout off until
            // it ends.
            loop {
                let (hold, now) = (auth_hold.load(Ordering::Relaxed), shared.clock.unix_secs());
                if hold <= now {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(hold - now)).await;
            }
            // Only a connection still open and still unauthenticated timed out.
            if !authed.load(Ordering::Relaxed) && !closed.load(Ordering::Relaxed) {
                shared.auditor.enqueue(detail(
                    refuse_event(peer, None, "authentication timeout", shared.clock.now()),
                    "connection",
                    what,
                ));
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "rampart: authentication timeout".into(),
                        "en".into(),
                    )
                    .await;
            }
        })
    };
    if let Err(e) = running.await {
        tracing::debug!(%peer, "{what} ended: {e}");
    }
    closed.store(true, Ordering::Relaxed);
    watcher.abort();
}
