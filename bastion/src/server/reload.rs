//! `systemctl reload rampart-bastion` (SIGHUP): `bastion.toml` read again,
//! validated exactly as at start-up, and swapped in for what comes next.
//!
//! **Owns:** the reload itself and its audit event. A file that does not
//! validate, or that changes a setting only a restart can change
//! ([`Config::reload_diff`]), is refused whole: the running config stays, the
//! log says why at error level naming the file, and the CA's audit chain gets
//! `bastion_config_reloaded` with outcome failure (which also counts it in
//! `rampart_bastion_config_reloads_total{outcome="refused"}`). An accepted file
//! replaces the config for new connections and sessions: new targets and
//! limits, the connection rate, the revocation poll. Nothing live is touched:
//! a session keeps its target (even one the file no longer lists) and the
//! config it started under. Host certificates for new targets are asked of the
//! CA at their first session, as for any target; those of removed targets are
//! forgotten.
//!
//! The event is handed to the auditor before the new config takes effect. It
//! is not awaited: a reload must work while the CA is away (that is when an
//! operator may need to move a target), and the auditor spools it on disk
//! until the CA takes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_api::BastionEventKind;
use sha2::{Digest, Sha256};
use tokio::signal::unix::Signal;

use super::Shared;
use crate::audit::{detail, event};
use crate::config::{Config, ReloadChange};
use crate::BastionError;

/// Read `path` and parse it as [`Config::load`] does; also the SHA-256 of
/// the bytes read (empty when the file could not be read).
fn read(path: &Path) -> (Result<Config, BastionError>, String) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return (Err(BastionError::io(path, e)), String::new()),
    };
    let digest = hex::encode(Sha256::digest(&bytes));
    let base = path.parent().unwrap_or(Path::new("."));
    let parsed = String::from_utf8(bytes)
        .map_err(|_| BastionError::Config("the file is not UTF-8".into()))
        .and_then(|text| Config::parse(&text, base));
    (parsed, digest)
}

/// Why a reload was refused; the running config stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadRefused {
    /// The file cannot be read or is not a valid config.
    #[error("{}", path.display())]
    Invalid {
        /// The file read.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: BastionError,
    },
    /// The file changes settings only a restart applies.
    #[error("{}: needs a restart: {}", path.display(), keys.join(", "))]
    NeedsRestart {
        /// The file read.
        path: PathBuf,
        /// The settings that changed.
        keys: Vec<String>,
    },
}

/// An accepted reload.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// What changed.
    pub change: ReloadChange,
    /// Lowercase hex SHA-256 of the file read.
    pub sha256: String,
}

impl Shared {
    /// Reload the config from `path` (see the module docs): what changed, or
    /// why the file was refused (naming it).
    pub async fn reload(&self, path: &Path) -> Result<Reloaded, ReloadRefused> {
        let (loaded, digest) = read(path);
        let running = self.config();
        let checked = loaded
            .map_err(|source| ReloadRefused::Invalid {
                path: path.to_owned(),
                source,
            })
            .and_then(|new| match running.reload_diff(&new) {
                Ok(change) => Ok((new, change)),
                Err(keys) => Err(ReloadRefused::NeedsRestart {
                    path: path.to_owned(),
                    keys: keys.into_iter().map(str::to_owned).collect(),
                }),
            });
        let e = detail(
            event(
                BastionEventKind::ConfigReloaded,
                checked.is_ok(),
                self.clock.now(),
            ),
            "path",
            path.display().to_string(),
        );
        let mut e = detail(e, "sha256", digest.clone());
        let (new, change) = match checked {
            Ok(ok) => ok,
            Err(why) => {
                e.reason = Some(rampart_api::report::one_line(&why));
                self.auditor.enqueue(e);
                return Err(why);
            }
        };
        let e = detail(e, "targets", new.targets.len());
        let e = detail(e, "added", change.added.clone());
        let e = detail(e, "removed", change.removed.clone());
        self.auditor
            .enqueue(detail(e, "changed", change.changed.clone()));

        let (rate, burst) = (
            new.limits.connections_per_second,
            new.limits.connection_burst,
        );
        let keep: Vec<String> = new.targets.keys().cloned().collect();
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        if let Ok(mut l) = self.limiter.lock() {
            l.set_rate(rate, burst);
        }
        self.target_configs
            .lock()
            .await
            .retain(|name, _| keep.contains(name));
        Ok(Reloaded {
            change,
            sha256: digest,
        })
    }
}

/// Reload on every SIGHUP in `hangup`, one at a time, until the process ends.
/// `hangup` is created at start-up, before readiness, so that a SIGHUP then
/// is a reload and not the default action (the end of the process).
pub async fn reload_loop(shared: Arc<Shared>, path: PathBuf, mut hangup: Signal) {
    while hangup.recv().await.is_some() {
        // The CA's keys too, at once: an operator stepping through a key
        // rotation need not wait for the next periodic refresh.
        super::refresh_ca_keys(&shared).await;
        match shared.reload(&path).await {
            Ok(Reloaded { change: c, sha256 }) if c.is_empty() => tracing::info!(
                "SIGHUP: config reloaded from {} (sha256 {sha256}): nothing changed",
                path.display()
            ),
            Ok(Reloaded { change: c, sha256 }) => tracing::info!(
                "SIGHUP: config reloaded from {} (sha256 {sha256}): targets added {:?}, \
                 removed {:?}, changed {:?}; settings changed {:?} (live sessions keep \
                 what they started with)",
                path.display(),
                c.added,
                c.removed,
                c.changed,
                c.settings
            ),
            Err(why) => {
                tracing::error!(
                    "SIGHUP: config reload refused, the running config stays: {}",
                    rampart_api::report::one_line(&why)
                )
            }
        }
    }
}
