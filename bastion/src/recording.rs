//! Recording glue: every session channel to one asciicast v2 file per session,
//! its upload to the CA, and what a crash leaves behind.
//!
//! **Owns:** the session's [`Recorder`] — started on the session's first
//! shell, exec or subsystem request, with or without a pty; every such channel
//! is written to it between channel markers (the format is
//! `rampart_audit::recording`'s, see its "Channels" section) — the 1-second
//! flush ticker (so a crash loses at most the last second), the bound on
//! stored bytes per session (beyond it a channel's data is counted and hashed,
//! not stored, and its close marker says so), the policy's metering of bulk
//! data (`record = "metered"`: of each direction of an exec or subsystem
//! channel without a pty only the first N MiB are stored, the rest counted and
//! hashed the same way; a pty, and a shell without one, are never metered),
//! finishing and uploading at
//! session end (`PUT /v1/bastion/recordings/{id}` with the SHA-256 header), the
//! spool of finished recordings the CA has not taken yet (retried in the
//! background), and the per-session marker files that let a restarted bastion
//! report the sessions a crash cut off (`session_ended`, reason
//! `bastion_restarted`).
//!
//! Recording fails closed: a recorder that cannot start refuses the channel
//! that needed it, and a write that fails calls the session's failure hook,
//! which ends the session.
//!
//! No file I/O here runs on a tokio worker: each session's recording is
//! written, flushed and fsynced by a thread of its own that the [`Recorder`]
//! handle sends to, and markers are written and removed, in order, by one
//! marker thread. The I/O paths assert (in debug builds) that they are not on
//! a runtime, so the tests, which drive them from async code, keep it so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rampart_api::BastionEventKind;
use rampart_audit::recording::{finish_recording, RecordingHeader, RecordingWriter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{detail, event};
use crate::server::Shared;

/// How often the flush ticker runs; with `FLUSH_INTERVAL` = 1 s in the writer,
/// output reaches the disk at most ~1.25 s after it was seen.
const TICK: Duration = Duration::from_millis(250);
/// Commands queued to a session's writer thread before a sender waits: the
/// back-pressure of a disk that cannot keep up.
const QUEUE: usize = 1024;
/// How often the spool is retried.
const SPOOL_RETRY: Duration = Duration::from_secs(5);

/// Called once when a write fails mid-session, with the reason.
pub type FailureHook = Box<dyn FnOnce(String) + Send>;

/// Bytes of one direction of one channel: how many, and their SHA-256 for a
/// channel without a pty (bulk data, whose digest is kept even where the
/// bytes themselves are not).
struct Meter {
    bytes: u64,
    sha256: Option<Sha256>,
}

impl Meter {
    fn new(hashed: bool) -> Meter {
        Meter {
            bytes: 0,
            sha256: hashed.then(Sha256::new),
        }
    }

    fn add(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    fn summary(self, name: &str) -> String {
        match self.sha256 {
            Some(h) => format!(
                "{name} {} bytes sha256 {}",
                self.bytes,
                hex::encode(h.finalize())
            ),
            None => format!("{name} {} bytes", self.bytes),
        }
    }
}

/// What the recorder knows of one open channel.
struct ChannelState {
    pty: bool,
    output: Meter,
    input: Meter,
    /// Bytes this channel had to leave out (the session's budget was spent).
    left_out: u64,
    /// Policy metering: bytes of each direction stored at most (`None`: all).
    metered: Option<u64>,
    /// Bytes stored so far of each direction, against `metered`.
    stored_output: u64,
    stored_input: u64,
    /// Bytes metering left out (counted and hashed only).
    metered_out: u64,
}

/// Which way data went on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Output,
    Input,
}

struct State {
    writer: RecordingWriter,
    started: Instant,
    /// Policy's `record_input`: keystrokes on a pty are stored.
    record_input: bool,
    channels: HashMap<u32, ChannelState>,
    /// Data bytes still to be stored before channels are only metered.
    budget: u64,
    /// Policy metering of bulk channels: bytes kept of each direction.
    metered: Option<u64>,
    on_failure: Option<FailureHook>,
}

impl State {
    /// Report a write error once; the recording is then stopped.
    fn check(&mut self) -> bool {
        match self.writer.flush_if_due() {
            Ok(()) => true,
            Err(e) => {
                crate::metrics::recording_failed("write");
                if let Some(hook) = self.on_failure.take() {
                    hook(format!(
                        "session recording failed: {}",
                        crate::error_chain(&e)
                    ));
                }
                false
            }
        }
    }

    /// How much of `len` bytes may still be stored.
    fn take_budget(&mut self, len: usize) -> usize {
        let n = len.min(usize::try_from(self.budget).unwrap_or(usize::MAX));
        self.budget -= n as u64;
        n
    }
}

/// A change to a recording, applied by its writer thread with the time into
/// the session it happened at.
type Change = Box<dyn FnOnce(&mut State, Duration) + Send>;

/// What a [`Recorder`] handle asks of its writer thread.
enum Cmd {
    /// Apply a change to the recording, `at` into the session.
    Apply(Change, Duration),
    /// Close the file and answer with its path (`None`: the recording failed).
    Close(tokio::sync::oneshot::Sender<Option<PathBuf>>),
}

/// The I/O below must not run on an async worker (it blocks on the disk).
fn assert_off_runtime() {
    debug_assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "recording file I/O on a tokio worker"
    );
}

/// A session's live recording, shared by the channel pumps (output) and the
/// handler (input, resize, channel open and close). A handle: the file is
/// written by the session's writer thread, which also flushes it on a
/// ticker.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::SyncSender<Cmd>,
    started: Instant,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Start `DIR/<session>.cast`, storing at most `budget` data bytes before
    /// channels are only metered, and with `metered` set at most that many
    /// bytes of each direction of a bulk channel without a pty. `on_failure`
    /// is called once if a write fails.
    ///
    /// Must be called on a tokio runtime: the failure hook runs in its
    /// context.
    pub async fn start(
        dir: &Path,
        header: &RecordingHeader,
        budget: u64,
        metered: Option<u64>,
        on_failure: FailureHook,
    ) -> Result<Recorder, rampart_audit::AuditError> {
        let path = dir.join(format!("{}.cast", header.session_id));
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (created_tx, created) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let header = header.clone();
        let record_input = header.record_input;
        let started = Instant::now();
        std::thread::Builder::new()
            .name("rampart-recorder".into())
            .spawn(move || {
                assert_off_runtime();
                let writer = match RecordingWriter::create(&path, &header) {
                    Ok(w) => {
                        let _ = created_tx.send(Ok(()));
                        w
                    }
                    Err(e) => {
                        let _ = created_tx.send(Err(e));
                        return;
                    }
                };
                let state = State {
                    writer,
                    started,
                    record_input,
                    channels: HashMap::new(),
                    budget,
                    metered,
                    on_failure: Some(on_failure),
                };
                write_until_closed(state, &rx, &runtime);
            })
            .map_err(rampart_audit::AuditError::Io)
            .inspect_err(|_| crate::metrics::recording_failed("start"))?;
        match created.await {
            Ok(Ok(())) => Ok(Recorder { tx, started }),
            Ok(Err(e)) => {
                crate::metrics::recording_failed("start");
                Err(e)
            }
            Err(_) => {
                crate::metrics::recording_failed("start");
                Err(rampart_audit::AuditError::Io(std::io::Error::other(
                    "the recording thread stopped before creating the file",
                )))
            }
        }
    }

    /// Queue `f` for the writer thread, stamped with the time it happened.
    fn with(&self, f: impl FnOnce(&mut State, Duration) + Send + 'static) {
        let el = self.started.elapsed();
        // A writer that is gone has failed or closed: nothing more to record.
        let _ = self.tx.send(Cmd::Apply(Box::new(f), el));
    }

    /// Channel `channel` starts `what` (with a pty or not); `bulk` for exec
    /// and subsystem channels, which policy may meter when they have no pty.
    pub fn open_channel(&self, channel: u32, what: &str, pty: bool, bulk: bool) {
        let what = what.to_owned();
        self.with(move |s, el| {
            let metered = if bulk && !pty { s.metered } else { None };
            s.channels.insert(
                channel,
                ChannelState {
                    pty,
                    output: Meter::new(!pty),
                    input: Meter::new(!pty),
                    left_out: 0,
                    metered,
                    stored_output: 0,
                    stored_input: 0,
                    metered_out: 0,
                },
            );
            s.writer.channel_opened(el, channel, &what);
        });
    }

    /// Output of `channel` (stdout and stderr).
    pub fn output(&self, channel: u32, data: &[u8]) {
        self.data(channel, Direction::Output, data);
    }

    /// Input to `channel`: kept in full without a pty, keystrokes on a pty only
    /// when policy says `record_input`.
    pub fn input(&self, channel: u32, data: &[u8]) {
        self.data(channel, Direction::Input, data);
    }

    fn data(&self, channel: u32, direction: Direction, data: &[u8]) {
        let data = data.to_vec();
        self.with(move |s, el| {
            let data = data.as_slice();
            let record_input = s.record_input;
            let Some(c) = s.channels.get_mut(&channel) else {
                return;
            };
            let pty = c.pty;
            match direction {
                Direction::Output => c.output.add(data),
                Direction::Input => c.input.add(data),
            }
            if direction == Direction::Input && pty && !record_input {
                // Keystrokes on a pty: counted, never stored.
                return;
            }
            // Metering first (this channel's allowance per direction), then
            // the session's budget: the smaller bound wins.
            let mut allowed = data.len();
            if let Some(cap) = c.metered {
                let stored = match direction {
                    Direction::Output => &mut c.stored_output,
                    Direction::Input => &mut c.stored_input,
                };
                let room = usize::try_from(cap.saturating_sub(*stored)).unwrap_or(usize::MAX);
                allowed = allowed.min(room);
                *stored += allowed as u64;
                c.metered_out += (data.len() - allowed) as u64;
            }
            let keep = s.take_budget(allowed);
            if keep < allowed {
                if let Some(c) = s.channels.get_mut(&channel) {
                    c.left_out += (allowed - keep) as u64;
                }
            }
            let kept = data.get(..keep).unwrap_or_default();
            if kept.is_empty() {
                return;
            }
            // Terminal text on a pty; anything on a channel without one, exactly.
            match (direction, pty) {
                (Direction::Output, true) => s.writer.channel_output(el, channel, kept),
                (Direction::Output, false) => s.writer.channel_output_exact(el, channel, kept),
                (Direction::Input, true) => s.writer.channel_input(el, channel, kept, true),
                (Direction::Input, false) => s.writer.channel_input_exact(el, channel, kept),
            }
        });
    }

    /// Terminal resize.
    pub fn resize(&self, cols: u32, rows: u32) {
        self.with(move |s, el| s.writer.resize(el, cols, rows));
    }

    /// Channel `channel` ended; `how` says how (`exit 0`, `signal KILL`, `closed`).
    pub fn close_channel(&self, channel: u32, how: &str) {
        let how = how.to_owned();
        self.with(move |s, el| {
            let Some(c) = s.channels.remove(&channel) else {
                return;
            };
            let mut summary = format!(
                "{how}, {}, {}",
                c.input.summary("in"),
                c.output.summary("out")
            );
            if c.metered_out > 0 {
                const MIB: u64 = 1024 * 1024;
                let cap = match c.metered.unwrap_or(0) {
                    b if b % MIB == 0 => format!("{} MiB", b / MIB),
                    b => format!("{b} bytes"),
                };
                summary.push_str(&format!(
                    ", {} bytes not stored (metered: {cap} of each direction kept)",
                    c.metered_out
                ));
            }
            if c.left_out > 0 {
                summary.push_str(&format!(
                    ", {} bytes not stored (session recording budget spent)",
                    c.left_out
                ));
            }
            s.writer.channel_closed(el, channel, &summary);
        });
    }

    /// Close the file (flush, fsync) once everything queued before is
    /// written; the `.cast` path, or `None` when the recording failed (the
    /// `.cast` then stays for the restart recovery, which uploads it marked as
    /// an abnormal end) or was closed already.
    pub fn close(&self) -> impl std::future::Future<Output = Option<PathBuf>> + Send + 'static {
        let (reply, closed) = tokio::sync::oneshot::channel();
        let sent = self.tx.send(Cmd::Close(reply)).is_ok();
        async move {
            if !sent {
                return None;
            }
            closed.await.ok().flatten()
        }
    }
}

/// The writer thread's loop: apply what the handles send, flush on the
/// ticker, and close on request (or when every handle is gone).
fn write_until_closed(
    mut state: State,
    rx: &mpsc::Receiver<Cmd>,
    runtime: &tokio::runtime::Handle,
) {
    assert_off_runtime();
    let mut ticking = true;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Cmd::Apply(f, el)) => f(&mut state, el),
            Ok(Cmd::Close(reply)) => {
                let _ = reply.send(close_state(state));
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Dropped without close: the `.cast` stays for the recovery.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // After every command too: under steady traffic the timeout never
        // fires, and the flush is due by time.
        if ticking {
            // The failure hook may start tasks.
            let _context = runtime.enter();
            ticking = state.check();
        }
    }
}

/// Mark the channels still open as ended and close the file.
fn close_state(mut state: State) -> Option<PathBuf> {
    let open: Vec<u32> = state.channels.keys().copied().collect();
    for channel in open {
        let el = state.started.elapsed();
        state.channels.remove(&channel);
        state.writer.channel_closed(el, channel, "session ended");
    }
    match state.writer.close() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!("closing a recording failed: {}", crate::error_chain(&e));
            None
        }
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
            tracing::error!(
                session = %session_id,
                "finishing the recording failed: {}",
                crate::error_chain(&e)
            );
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
        tracing::warn!(
            session = %session_id,
            "recording upload failed, will retry: {}",
            crate::error_chain(&e)
        );
    }
}

fn spool_name(session_id: &str, abnormal: bool) -> String {
    if abnormal {
        format!("{session_id}.abnormal.cast.zst")
    } else {
        format!("{session_id}.cast.zst")
    }
}

/// Why a spooled recording was not uploaded (this time).
#[derive(Debug, thiserror::Error)]
enum UploadError {
    /// The spool file's name is not UTF-8.
    #[error("bad spool file name")]
    BadName,
    /// The spool file could not be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// The CA will never take the file; it was set aside.
    #[error("the CA refused the recording ({code}: {message}); kept as {}", aside.display())]
    Refused {
        /// The CA's error code.
        code: String,
        /// The CA's message.
        message: String,
        /// Where the file now lies.
        aside: PathBuf,
    },
    /// The CA could not be reached or failed; the next round retries.
    #[error(transparent)]
    Ca(#[from] rampart_api::ClientError),
}

/// Upload one spooled file and remove it once the CA has sealed it.
async fn upload_one(shared: &Shared, path: &Path) -> Result<(), UploadError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(UploadError::BadName)?
        .to_owned();
    let abnormal = name.contains(".abnormal.");
    let session_id = name.split('.').next().unwrap_or_default().to_owned();
    let bytes = tokio::fs::read(path).await?;
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
            Err(UploadError::Refused {
                code,
                message,
                aside,
            })
        }
        Err(e) => Err(e.into()),
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
                        tracing::warn!(
                            "spooled recording {} not uploaded yet: {}",
                            p.display(),
                            crate::error_chain(&err)
                        );
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
    use super::*;

    use rampart_audit::recording::{parse_cast, CastEventKind, ReadLimits};

    fn header() -> RecordingHeader {
        RecordingHeader {
            session_id: "01METERED".into(),
            user: "alice".into(),
            login: "backup".into(),
            target: "nas-1".into(),
            width: 80,
            height: 24,
            started: chrono::Utc::now(),
            record_input: false,
            term: None,
        }
    }

    /// Metering stores the first bytes of each direction of a bulk channel
    /// without a pty and counts and hashes all of it; a shell without a pty is
    /// not metered; the session budget still bounds what metering lets through.
    #[tokio::test]
    async fn metering_keeps_the_head_of_bulk_channels_and_hashes_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::start(dir.path(), &header(), 1000, Some(10), Box::new(|_| {}))
            .await
            .unwrap();
        r.open_channel(0, "exec cat (no pty)", false, true);
        r.open_channel(1, "shell (no pty)", false, false);
        r.open_channel(2, "subsystem sftp (no pty)", false, true);
        let out: Vec<u8> = (0u8..25).collect();
        r.output(0, &out[..7]);
        r.output(0, &out[7..]);
        r.input(0, b"0123456789abcdef");
        r.input(1, &[b'x'; 40]);
        let close = |ch| r.close_channel(ch, "exit 0");
        close(0);
        close(1);
        let cast = std::fs::read(r.close().await.unwrap()).unwrap();
        let rec = parse_cast(&cast, &ReadLimits::default()).unwrap();
        assert_eq!(rec.channel_output_bytes(0), out[..10]);
        assert_eq!(rec.channel_input_bytes(0), b"0123456789");
        assert_eq!(
            rec.channel_input_bytes(1),
            [b'x'; 40],
            "typed input kept in full"
        );
        let markers: Vec<&str> = rec
            .events
            .iter()
            .filter(|e| e.kind == CastEventKind::Marker)
            .map(|e| e.data.as_str())
            .collect();
        let closed0 = markers
            .iter()
            .find(|m| m.starts_with("channel 0 closed"))
            .unwrap();
        let sha = |d: &[u8]| hex::encode(Sha256::digest(d));
        assert!(
            closed0.contains(&format!("out 25 bytes sha256 {}", sha(&out)))
                && closed0.contains(&format!("in 16 bytes sha256 {}", sha(b"0123456789abcdef")))
                && closed0
                    .contains("21 bytes not stored (metered: 10 bytes of each direction kept)"),
            "{closed0}"
        );
        let closed1 = markers
            .iter()
            .find(|m| m.starts_with("channel 1 closed"))
            .unwrap();
        assert!(!closed1.contains("not stored"), "{closed1}");

        // A session budget smaller than the allowance still wins.
        let r = Recorder::start(
            dir.path(),
            &RecordingHeader {
                session_id: "01BUDGET".into(),
                ..header()
            },
            4,
            Some(10),
            Box::new(|_| {}),
        )
        .await
        .unwrap();
        r.open_channel(0, "exec cat (no pty)", false, true);
        r.output(0, &out);
        r.close_channel(0, "exit 0");
        let cast = std::fs::read(r.close().await.unwrap()).unwrap();
        let rec = parse_cast(&cast, &ReadLimits::default()).unwrap();
        assert_eq!(rec.channel_output_bytes(0), out[..4]);
    }

    /// The recording is written on a thread of its own: every change is
    /// applied off the async runtime that asked for it, and closing waits for
    /// everything queued before.
    #[tokio::test]
    async fn the_recording_is_written_off_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::start(
            dir.path(),
            &RecordingHeader {
                session_id: "01OFFRUNTIME".into(),
                ..header()
            },
            1000,
            None,
            Box::new(|_| {}),
        )
        .await
        .unwrap();
        let writer_thread = Arc::new(std::sync::Mutex::new(None));
        let seen = Arc::clone(&writer_thread);
        r.with(move |_, _| {
            let on_runtime = tokio::runtime::Handle::try_current().is_ok();
            *seen.lock().unwrap() = Some((on_runtime, std::thread::current().id()));
        });
        r.open_channel(0, "shell", true, false);
        r.output(0, b"hello");
        // A handle dropped without closing does not end the recording.
        drop(r.clone());
        let cast = r.close().await.expect("closed after the queued changes");
        let (on_runtime, thread) = writer_thread.lock().unwrap().expect("change applied");
        assert!(!on_runtime, "a change was applied on the runtime");
        assert_ne!(thread, std::thread::current().id());
        let rec = parse_cast(&std::fs::read(cast).unwrap(), &ReadLimits::default()).unwrap();
        assert_eq!(rec.channel_output_bytes(0), b"hello");
        assert!(
            r.close().await.is_none(),
            "a second close has nothing to close"
        );
    }

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
