//! Recording glue: pty sessions to asciicast v2 files, their upload to the CA,
//! and what a crash leaves behind.
//!
//! **Owns:** when a recording starts (the first pty channel of a session that
//! asks for a shell or a command), the 1-second flush ticker (so a crash loses
//! at most the last second), finishing and uploading at session end
//! (`PUT /v1/bastion/recordings/{id}` with the SHA-256 header), the spool of
//! finished recordings the CA has not taken yet (retried in the background),
//! and the per-session marker files that let a restarted bastion report the
//! sessions a crash cut off (`session_ended`, reason `bastion_restarted`).
//! The file format is `rampart_audit::recording`'s.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_api::BastionEventKind;
use rampart_audit::recording::{finish_recording, RecordingHeader, RecordingWriter};
use serde::{Deserialize, Serialize};

use crate::audit::{detail, event};
use crate::bridge::OutputTap;
use crate::server::Shared;

/// How often the flush ticker runs; with `FLUSH_INTERVAL` = 1 s in the writer,
/// output reaches the disk at most ~1.25 s after it was seen.
const TICK: Duration = Duration::from_millis(250);
/// How often the spool is retried.
const SPOOL_RETRY: Duration = Duration::from_secs(5);

/// A live recording, shared by the pump (output), the handler (input,
/// resize) and the flush ticker.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Option<(RecordingWriter, Instant)>>>,
}

impl Recorder {
    /// Start `DIR/<session>.cast`.
    pub fn start(dir: &Path, header: &RecordingHeader) -> Result<Recorder, String> {
        let path = dir.join(format!("{}.cast", header.session_id));
        let w = RecordingWriter::create(&path, header).map_err(|e| e.to_string())?;
        let r = Recorder {
            inner: Arc::new(Mutex::new(Some((w, Instant::now())))),
        };
        let ticker = r.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                let Ok(mut g) = ticker.inner.lock() else {
                    return;
                };
                match g.as_mut() {
                    Some((w, _)) => {
                        if let Err(e) = w.flush_if_due() {
                            tracing::error!("recording write failed: {e}");
                        }
                    }
                    None => return,
                }
            }
        });
        Ok(r)
    }

    fn with(&self, f: impl FnOnce(&mut RecordingWriter, Duration)) {
        if let Ok(mut g) = self.inner.lock() {
            if let Some((w, t0)) = g.as_mut() {
                let el = t0.elapsed();
                f(w, el);
            }
        }
    }

    /// Keystrokes (kept only when policy says so; the writer decides).
    pub fn input(&self, data: &[u8]) {
        self.with(|w, el| w.input(el, data));
    }

    /// Terminal resize.
    pub fn resize(&self, cols: u32, rows: u32) {
        self.with(|w, el| w.resize(el, cols, rows));
    }

    /// Close the file (flush, fsync); returns the `.cast` path.
    pub fn close(&self) -> Option<PathBuf> {
        let taken = self.inner.lock().ok().and_then(|mut g| g.take());
        let (w, _) = taken?;
        match w.close() {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!("closing a recording failed: {e}");
                None
            }
        }
    }
}

impl OutputTap for Recorder {
    fn output(&mut self, data: &[u8], _ext: Option<u32>) {
        self.with(|w, el| w.output(el, data));
    }
}

/// Finish `cast` and upload it; on failure it stays in the spool for the retrier.
pub async fn finish_and_upload(
    shared: Arc<Shared>,
    cast: PathBuf,
    session_id: String,
    abnormal: bool,
) {
    let finished = match tokio::task::spawn_blocking(move || finish_recording(&cast)).await {
        Ok(Ok(f)) => {
            crate::metrics::recording_finished(f.bytes);
            f
        }
        Ok(Err(e)) => {
            tracing::error!(session = %session_id, "finishing the recording failed: {e}");
            return;
        }
        Err(e) => {
            tracing::error!("finishing task failed: {e}");
            return;
        }
    };
    let spool = shared
        .config()
        .spool_dir
        .join(spool_name(&session_id, abnormal));
    if let Err(e) = std::fs::rename(&finished.path, &spool) {
        tracing::error!("moving the recording to the spool failed: {e}");
        return;
    }
    if let Err(e) = upload_one(&shared, &spool).await {
        tracing::warn!(session = %session_id, "recording upload failed, will retry: {e}");
    }
}

fn spool_name(session_id: &str, abnormal: bool) -> String {
    if abnormal {
        format!("{session_id}.abnormal.cast.zst")
    } else {
        format!("{session_id}.cast.zst")
    }
}

/// Upload one spooled file and remove it once the CA has sealed it.
async fn upload_one(shared: &Shared, path: &Path) -> Result<(), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("bad spool file name")?
        .to_owned();
    let abnormal = name.contains(".abnormal.");
    let session_id = name.split('.').next().unwrap_or_default().to_owned();
    let bytes = tokio::fs::read(path).await.map_err(|e| e.to_string())?;
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    match shared
        .ca()
        .upload_recording(&session_id, bytes, &sha, abnormal)
        .await
    {
        Ok(sealed) => {
            tracing::info!(session = %session_id, sha256 = %sealed.sha256, "recording sealed");
            let _ = tokio::fs::remove_file(path).await;
            Ok(())
        }
        Err(rampart_api::ClientError::Api {
            status,
            code,
            message,
        }) if (400..500).contains(&status) && status != 401 && status != 408 && status != 429 => {
            // The CA will never take this file (e.g. 409 `recording_exists`: a
            // different recording is sealed for the session). Keep it aside for
            // an operator instead of retrying forever.
            let aside = path.with_extension("zst.rejected");
            let _ = tokio::fs::rename(path, &aside).await;
            Err(format!(
                "the CA refused the recording ({code}: {message}); kept as {}",
                aside.display()
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Retry the spool in the background.
pub fn spawn_uploader(shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SPOOL_RETRY).await;
            let dir = shared.config().spool_dir.clone();
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.to_string_lossy().ends_with(".cast.zst") {
                    if let Err(err) = upload_one(&shared, &p).await {
                        tracing::warn!("spooled recording {} not uploaded yet: {err}", p.display());
                    }
                }
            }
        }
    });
}

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

/// Write a marker (best effort; its absence only loses the crash report).
pub fn write_marker(dir: &Path, m: &Marker) {
    let p = marker_path(dir, &m.session_id);
    match serde_json::to_vec(m) {
        Ok(b) => {
            if let Err(e) = std::fs::write(&p, b) {
                tracing::error!("cannot write session marker {}: {e}", p.display());
            }
        }
        Err(e) => tracing::error!("cannot encode session marker: {e}"),
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
        let mut e = event(BastionEventKind::SessionEnded, false);
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
