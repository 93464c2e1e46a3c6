//! What a serving CA does in the background: reload the policy on SIGHUP,
//! adopt a policy another CA published, prune the audit log, forget expired
//! flows. Each runs its store or file work on a blocking thread.

use std::sync::Arc;
use std::time::Duration;

use super::config_reload::ConfigReload;
use super::policy::reload_policy;
use crate::authority::policy_share::PolicyShare;
use crate::authority::Authority;

/// On every SIGHUP, [`reload_policy`], then the forwarders of `config.toml`
/// ([`ConfigReload`]); the outcomes go to the log.
pub(super) fn spawn_reload(
    path: std::path::PathBuf,
    config: Arc<ConfigReload>,
    auth: Arc<Authority>,
    share: Arc<PolicyShare>,
) {
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
            let config = Arc::clone(&config);
            let done = tokio::task::spawn_blocking(move || {
                (reload_policy(&path, &auth, &share), config.reload(&auth))
            })
            .await;
            let Ok((policy, forwarders)) = done else {
                tracing::error!("reload task failed");
                continue;
            };
            match policy {
                Ok(Some(version)) => {
                    tracing::info!(version, "policy reloaded and shared with every CA")
                }
                Ok(None) => tracing::info!(
                    "policy file unchanged since this CA last published or adopted it; \
                     the policy in force stays"
                ),
                Err(e) => {
                    tracing::error!(error = %rampart_api::report::one_line(&e), "policy reload refused; the previous policy stays in force")
                }
            }
            match forwarders {
                Ok(Some(names)) => tracing::info!(?names, "SIEM forwarders replaced"),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %rampart_api::report::one_line(&e), "config reload refused; the running SIEM forwarders stay")
                }
            }
        }
    });
}

/// How often a CA looks for a policy another CA published.
const POLICY_POLL: Duration = Duration::from_secs(1);

/// Every [`POLICY_POLL`], adopt a newer shared policy. A failure is logged
/// when it first happens or changes, not every second.
pub(super) fn spawn_policy_poll(auth: Arc<Authority>, share: Arc<PolicyShare>) {
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

/// Prune the audit log to `window` at start and then hourly, on a blocking
/// thread (pruning deletes in short transactions; the writer keeps going).
pub(super) fn spawn_retention(
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
pub(super) fn spawn_request_purge(auth: Arc<Authority>) {
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
