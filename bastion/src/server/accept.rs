//! The accept loop: the per-source rate limit, then one task a connection,
//! each watched by the authentication timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::server;

use super::conn::{Conn, Mode};
use super::events::refuse_event;
use super::{unix_now, Shared};
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
                    shared2
                        .auditor
                        .enqueue(refuse_event(peer, None, "authentication timeout"));
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
