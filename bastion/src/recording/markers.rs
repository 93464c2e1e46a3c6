//! What a crash leaves behind: the per-session marker files (written and
//! removed, in order, by one marker thread, never on a tokio worker), and the
//! start-up recovery that reports the sessions a crash cut off and finishes
//! and uploads their recordings.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use rampart_api::BastionEventKind;
use serde::{Deserialize, Serialize};

use super::{assert_off_runtime, finish_and_upload};
use crate::audit::{detail, event};
use crate::server::Shared;

/// What a live session leaves on disk until it ends: `DIR/<session>.live`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    /// Session ID.
    pub session_id: String,
    /// Rampart user.
    pub user: String,
    /// Login on the target.
    pub login: String,
    /// Target name.
    pub target: String,
    /// User's address.
    pub source: String,
    /// Outer certificate serial.
    pub serial: u64,
}

/// Path of a session's marker.
pub fn marker_path(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("{session_id}.live"))
}

/// A marker change, done by the marker thread in the order asked.
enum MarkerCmd {
    Write(PathBuf, Vec<u8>),
    Remove(PathBuf),
}

/// The marker thread's queue; started on first use. One thread for every
/// session keeps a session's write before its removal.
fn markers() -> Option<&'static mpsc::Sender<MarkerCmd>> {
    static QUEUE: OnceLock<Option<mpsc::Sender<MarkerCmd>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<MarkerCmd>();
            let spawned = std::thread::Builder::new()
                .name("rampart-markers".into())
                .spawn(move || {
                    assert_off_runtime();
                    for cmd in rx {
                        match cmd {
                            MarkerCmd::Write(p, b) => {
                                if let Err(e) = std::fs::write(&p, b) {
                                    tracing::error!(
                                        "cannot write session marker {}: {e}",
                                        p.display()
                                    );
                                }
                            }
                            MarkerCmd::Remove(p) => {
                                let _ = std::fs::remove_file(&p);
                            }
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!("cannot start the session marker thread: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Write a marker (best effort; its absence only loses the crash report).
/// Queued: the marker thread writes it.
pub fn write_marker(dir: &Path, m: &Marker) {
    let p = marker_path(dir, &m.session_id);
    match serde_json::to_vec(m) {
        Ok(b) => {
            if let Some(q) = markers() {
                let _ = q.send(MarkerCmd::Write(p, b));
            }
        }
        Err(e) => tracing::error!("cannot encode session marker: {e}"),
    }
}

/// Remove a session's marker (it ended). Queued after its write.
pub fn remove_marker(dir: &Path, session_id: &str) {
    if let Some(q) = markers() {
        let _ = q.send(MarkerCmd::Remove(marker_path(dir, session_id)));
    }
}

/// Largest marker file read back (they are small JSON objects).
const MAX_MARKER: u64 = 64 * 1024;

/// At start-up: report sessions a crash cut off, finish and upload their
/// recordings, and queue finished ones that never left.
pub async fn recover(shared: Arc<Shared>) {
    let dir = shared.config().recording_dir.clone();
    for d in [&dir, &shared.config().spool_dir] {
        if let Err(e) = std::fs::create_dir_all(d) {
            tracing::error!("cannot create {}: {e}", d.display());
        }
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut markers = Vec::new();
    let mut casts = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.ends_with(".live") {
            markers.push(p);
        } else if name.ends_with(".cast") || name.ends_with(".cast.zst") {
            casts.push(p);
        }
    }
    for m in markers {
        let ok_size = std::fs::metadata(&m)
            .map(|md| md.len() <= MAX_MARKER)
            .unwrap_or(false);
        let marker: Option<Marker> = if ok_size {
            std::fs::read(&m)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        } else {
            None
        };
        let Some(marker) = marker else {
            tracing::error!("unreadable session marker {}", m.display());
            continue;
        };
        let mut e = event(BastionEventKind::SessionEnded, false, shared.clock().now());
        e.session_id = Some(marker.session_id.clone());
        e.user = Some(marker.user);
        e.login = Some(marker.login);
        e.target = Some(marker.target);
        e.source = Some(marker.source);
        e.serial = Some(marker.serial);
        e.reason = Some("bastion_restarted".into());
        let e = detail(
            e,
            "detail",
            "the bastion stopped while the session was live",
        );
        match shared.auditor().record(vec![e]).await {
            Ok(()) => {
                let _ = std::fs::remove_file(&m);
            }
            Err(err) => {
                tracing::error!("cannot report crashed session {}: {err}", marker.session_id)
            }
        }
    }
    for c in casts {
        let name = c
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let session_id = name.split('.').next().unwrap_or_default().to_owned();
        let cast = if name.ends_with(".zst") {
            // finish_recording hashes an existing .zst when the .cast is gone.
            c.with_extension("")
        } else {
            c
        };
        finish_and_upload(shared.clone(), cast, session_id, true).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Markers are written and removed by the marker thread in the order
    /// asked: a session that ends at once leaves no marker behind.
    #[tokio::test]
    async fn markers_are_written_and_removed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let marker = |id: &str| Marker {
            session_id: id.into(),
            user: "alice".into(),
            login: "root".into(),
            target: "db-1".into(),
            source: "192.0.2.1".into(),
            serial: 7,
        };
        write_marker(dir.path(), &marker("01GONE"));
        remove_marker(dir.path(), "01GONE");
        write_marker(dir.path(), &marker("01LIVE"));
        let live = marker_path(dir.path(), "01LIVE");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !live.exists() {
            assert!(Instant::now() < deadline, "the marker was never written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!marker_path(dir.path(), "01GONE").exists());
        let back: Marker = serde_json::from_slice(&std::fs::read(&live).unwrap()).unwrap();
        assert_eq!(back.serial, 7);
    }
}
