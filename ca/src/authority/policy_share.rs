//! One policy for every CA on a database: a policy change made on one CA
//! reaches the others within a poll (1 s), with no file to copy.
//!
//! **Owns:** the shared policy (meta key `policy` in the store: version,
//! SHA-256, text, when and where it was set), publishing a new version by
//! compare-and-set, adopting a newer one, and the CA's own record of what its
//! policy file held when it last published or adopted (`policy.state` beside
//! the config).
//!
//! The file stays how an operator changes the policy: edit it on any CA and
//! `systemctl reload rampart-ca` (or restart). A CA tells an edit from a
//! stale copy by that record: a file whose SHA-256 differs from the one it
//! last published or adopted was edited here, and is published as the next
//! version; a file that did not change since then is only this CA's older
//! copy, and the shared policy (perhaps newer, set elsewhere while this CA
//! was down) is what it uses. So a CA restarting with an old file never
//! reverts a change made through another. An adopted version is written back
//! to the file where the file can be written, so `cat policy.toml` shows the
//! policy in force; where it cannot, the CA warns and goes on.
//!
//! Every adoption is audited (`policy_reloaded`, details `source = "shared"`,
//! `version`, `sha256`, `origin`) before it takes effect; a shared version
//! this binary refuses (a newer release's keys) is logged and skipped, and
//! the CA keeps the policy it has.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rampart_audit::{EventKind, Outcome};
use rampart_policy::Policy;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::Authority;
use crate::error::CaError;

/// The store's meta key holding the shared policy.
const META_KEY: &str = "policy";

/// The record beside the config.
pub const STATE_FILE: &str = "policy.state";

/// The shared policy as stored.
#[derive(Clone, Serialize, Deserialize)]
struct SharedPolicy {
    version: u64,
    sha256: String,
    text: String,
    set_at: DateTime<Utc>,
    /// Which CA host and file it came from, for the audit trail.
    origin: String,
}

/// What this CA's policy file held when it last published or adopted, and
/// which version that was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LocalState {
    file_sha256: String,
    version: u64,
}

/// This CA's end of the shared policy: its file, its record, the version in
/// force here.
#[derive(Debug)]
pub struct PolicyShare {
    file: PathBuf,
    state_file: PathBuf,
    origin: String,
    state: Mutex<LocalState>,
    /// The raw meta value last looked at, so an unchanged poll parses nothing.
    seen: Mutex<Option<Vec<u8>>>,
}

/// Lowercase hex SHA-256 of a policy file's bytes.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Parse and validate a policy text as the CA does at start: TOML, then the
/// policy's own lints at error level. `shown` names it in messages.
pub fn parse_policy(text: &str, shown: &str) -> Result<Policy, CaError> {
    let policy = Policy::from_toml(text).map_err(|e| CaError::Config(format!("{shown}: {e}")))?;
    let errors: Vec<String> = policy
        .lint()
        .into_iter()
        .filter(|l| l.severity == rampart_policy::LintSeverity::Error)
        .map(|l| l.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(CaError::Config(format!("{shown}: {}", errors.join("; "))));
    }
    Ok(policy)
}

impl PolicyShare {
    /// The share for the policy file `file`, with its record in `dir`.
    pub fn new(file: &Path, dir: &Path) -> PolicyShare {
        let state_file = dir.join(STATE_FILE);
        let state = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        PolicyShare {
            file: file.to_path_buf(),
            state_file,
            origin: format!("{}:{}", host.trim(), file.display()),
            state: Mutex::new(state),
            seen: Mutex::new(None),
        }
    }

    /// The shared version in force on this CA (0 before the first sync).
    pub fn version(&self) -> u64 {
        self.state.lock().map(|s| s.version).unwrap_or(0)
    }

    fn remember(&self, file_sha256: String, version: u64) {
        let state = LocalState {
            file_sha256,
            version,
        };
        let written = serde_json::to_vec(&state)
            .map_err(std::io::Error::other)
            .and_then(|b| write_atomically(&self.state_file, &b));
        if let Err(e) = written {
            tracing::warn!(file = %self.state_file.display(), error = %e,
                "cannot record the policy version; the next start compares with the shared policy again");
        }
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    fn file_edited(&self, file_sha256: &str) -> bool {
        self.state
            .lock()
            .map(|s| s.file_sha256 != file_sha256)
            .unwrap_or(true)
    }

    fn write_back(&self, text: &str) -> String {
        match write_atomically(&self.file, text.as_bytes()) {
            Ok(()) => digest(text.as_bytes()),
            Err(e) => {
                tracing::warn!(file = %self.file.display(), error = %e,
                    "the shared policy is in force, but this CA's policy file could not be \
                     updated to show it");
                self.state
                    .lock()
                    .map(|s| s.file_sha256.clone())
                    .unwrap_or_default()
            }
        }
    }
}

impl Authority {
    fn shared_policy(&self) -> Result<(Option<Vec<u8>>, Option<SharedPolicy>), CaError> {
        let raw = self.store.meta(META_KEY)?;
        let parsed = match &raw {
            Some(bytes) => Some(serde_json::from_slice(bytes).map_err(|e| {
                CaError::Store(crate::store::StoreError::Corrupt(format!(
                    "shared policy: {e}"
                )))
            })?),
            None => None,
        };
        Ok((raw, parsed))
    }

    /// Publish `text` (already validated and in force here) as the next
    /// shared version; returns it.
    fn publish_policy(&self, share: &PolicyShare, text: &str) -> Result<u64, CaError> {
        let sha256 = digest(text.as_bytes());
        loop {
            let (raw, current) = self.shared_policy()?;
            if let Some(c) = current.as_ref().filter(|c| c.sha256 == sha256) {
                share.remember(sha256, c.version);
                return Ok(c.version);
            }
            let next = SharedPolicy {
                version: current.as_ref().map_or(1, |c| c.version + 1),
                sha256: sha256.clone(),
                text: text.to_owned(),
                set_at: self.now(),
                origin: share.origin.clone(),
            };
            let bytes = serde_json::to_vec(&next)
                .map_err(|e| CaError::Internal(format!("shared policy: {e}")))?;
            if self.store.replace_meta(META_KEY, raw.as_deref(), &bytes)? {
                share.remember(sha256, next.version);
                if let Ok(mut seen) = share.seen.lock() {
                    *seen = Some(bytes);
                }
                tracing::info!(version = next.version, sha256 = %next.sha256,
                    "published the policy to every CA on this database");
                return Ok(next.version);
            }
            // Another CA published in between: judge against the new one.
        }
    }

    /// Use the shared `policy`: audited first, then in force, then written
    /// back to the file.
    fn adopt_policy(&self, share: &PolicyShare, shared: &SharedPolicy) -> Result<(), CaError> {
        let policy = parse_policy(
            &shared.text,
            &format!("shared policy version {}", shared.version),
        )?;
        self.record(
            self.event(EventKind::PolicyReloaded, Outcome::Success, None)
                .actor("rampart-ca")
                .detail("source", "shared")
                .detail("version", shared.version)
                .detail("sha256", shared.sha256.clone())
                .detail("origin", shared.origin.clone()),
        )?;
        self.set_policy(policy);
        let file_sha256 = share.write_back(&shared.text);
        share.remember(file_sha256, shared.version);
        tracing::info!(version = shared.version, origin = %shared.origin,
            "adopted the shared policy");
        Ok(())
    }

    /// At start, with the policy file's `text` (validated, in force): publish
    /// it when it was edited here, else use the shared policy when it is
    /// another (see the module docs).
    pub fn sync_policy_at_start(&self, share: &PolicyShare, text: &str) -> Result<(), CaError> {
        let sha256 = digest(text.as_bytes());
        let (_, current) = self.shared_policy()?;
        match current {
            None => {
                self.publish_policy(share, text)?;
            }
            Some(c) if c.sha256 == sha256 => share.remember(sha256, c.version),
            Some(_) if share.file_edited(&sha256) && share.version() > 0 => {
                self.publish_policy(share, text)?;
            }
            Some(c) => {
                if share.version() == 0 {
                    tracing::warn!(version = c.version, origin = %c.origin,
                        "this CA's policy file differs from the policy the other CAs share; \
                         using the shared one (edit the file and reload to change it for all)");
                }
                self.adopt_policy(share, &c)?;
            }
        }
        Ok(())
    }

    /// Publish a policy file reloaded on SIGHUP (validated and audited by
    /// the caller) and put it in force here; the other CAs adopt it at their
    /// next poll. `None` when the file did not change since this CA last
    /// published or adopted: then the policy in force stays (it may be a newer
    /// one set through another CA).
    pub fn publish_reloaded_policy(
        &self,
        share: &PolicyShare,
        text: &str,
        policy: Policy,
    ) -> Result<Option<u64>, CaError> {
        if !share.file_edited(&digest(text.as_bytes())) {
            return Ok(None);
        }
        // Shared first: a change the other CAs would not get is not made here
        // either.
        let version = self.publish_policy(share, text)?;
        self.set_policy(policy);
        Ok(Some(version))
    }

    /// Poll: adopt the shared policy when it is newer than the one in force.
    /// Returns the version adopted, if any.
    pub fn adopt_newer_policy(&self, share: &PolicyShare) -> Result<Option<u64>, CaError> {
        let raw = self.store.meta(META_KEY)?;
        let mark_seen = |raw: Option<Vec<u8>>| {
            if let Ok(mut seen) = share.seen.lock() {
                *seen = raw;
            }
        };
        if share.seen.lock().map(|s| *s == raw).unwrap_or(false) {
            return Ok(None);
        }
        let (_, current) = self.shared_policy()?;
        match current {
            Some(c) if c.version > share.version() => match self.adopt_policy(share, &c) {
                Ok(()) => {
                    mark_seen(raw);
                    Ok(Some(c.version))
                }
                Err(e) => {
                    // A policy this binary refuses is tried again only when
                    // the shared value changes; an audit or database failure
                    // at the next poll.
                    if matches!(e, CaError::Config(_)) {
                        mark_seen(raw);
                    }
                    Err(e)
                }
            },
            _ => {
                mark_seen(raw);
                Ok(None)
            }
        }
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Keep the file's mode (the policy is readable by whoever could read it).
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
