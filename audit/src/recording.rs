//! Session recordings: asciicast v2 files written while a bastion session runs,
//! then finished (compressed with zstd and hashed) so that their digest can be
//! sealed into the audit chain.
//!
//! **Owns:** the recording format (asciicast v2 with Rampart's own header keys),
//! [`RecordingWriter`] (buffered, at most ~1 s of output lost if the process
//! dies), [`finish_recording`] (torn-line repair, zstd, SHA-256) and a bounded
//! reader ([`read_recording`]) for `rampart sessions play` and verification.
//! **Must never:** decide whether a session is recorded (policy does), or talk to
//! the network; the bastion uploads the finished file and the CA seals it.
//!
//! # Format
//!
//! A recording is [asciicast v2](https://docs.asciinema.org/manual/asciicast/v2/):
//! one JSON header line, then one JSON array per event.
//!
//! ```text
//! {"version":2,"width":80,"height":24,"timestamp":1700000000,"env":{"TERM":"xterm"},
//!  "title":"root@db-1","rampart":{"session":"01J…","user":"alice","login":"root",
//!  "target":"db-1","started":"2023-11-14T22:13:20Z","record_input":false}}
//! [0.104211, "o", "$ "]
//! [1.500000, "i", "ls\r"]
//! [2.000000, "r", "120x40"]
//! ```
//!
//! (The header is one line in the file; it is wrapped here.) Players such as
//! `asciinema cat` ignore the `rampart` key. Event times are seconds since the
//! session started, with microsecond precision, never decreasing.
//!
//! # Channels
//!
//! One SSH session can carry several channels at once: a shell with or without a
//! pty, `exec` commands (`scp`, `rsync`), subsystems (`sftp`), each multiplexed
//! over one connection. A session's recording holds all of them in one stream,
//! told apart by asciicast markers (`"m"` events), so that one file (one digest
//! sealed in the chain) is the whole session:
//!
//! ```text
//! [0.010000, "m", "channel 0 open: shell (pty xterm 80x24)"]
//! [0.104211, "o", "$ "]
//! [3.200000, "m", "channel 1 open: exec \"uname -a\""]
//! [3.250000, "o", "Linux db-1 6.1.0\n"]
//! [3.260000, "m", "channel 1 closed: exit 0, in 0 bytes, out 17 bytes"]
//! [4.000000, "m", "channel 0"]
//! [4.000100, "o", "$ "]
//! ```
//!
//! `channel N open: WHAT` starts channel N; `channel N` says that the events
//! after it belong to channel N again (written only when the channel changes);
//! `channel N closed: SUMMARY` ends it. Players show markers as breakpoints and
//! otherwise play the output as one terminal. Input of a channel without a pty
//! (what a program or a person sends to `ssh -T`) is always kept; keystrokes on a
//! pty only when the header says `record_input` (they may hold passwords typed at
//! a prompt that does not echo).
//!
//! A channel without a pty often carries bytes that are not text (`scp`, `sftp`,
//! `tar | ssh …`). Such a chunk is kept exactly, base64-encoded, under Rampart's
//! own codes `"ob"` (output) and `"ib"` (input) — players ignore codes they do not
//! know, as asciinema does — instead of as text with U+FFFD for every byte that
//! is not UTF-8 (and six bytes for every NUL).
//!
//! Terminal output is bytes, but asciicast stores text. A multi-byte UTF-8
//! character split across two SSH data packets is carried over to the next
//! event instead of being replaced, so only bytes that are really not UTF-8 turn
//! into U+FFFD.
//!
//! The finished file is `<name>.cast.zst` (format name [`RECORDING_FORMAT`]);
//! its digest is the SHA-256 of the compressed bytes, which is what the CA stores,
//! seals (`recording_sealed`) and what `rampart audit verify --recordings` checks.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// Format name of a finished recording, as sealed in `recording_sealed` details.
pub const RECORDING_FORMAT: &str = "asciicast-v2+zstd";

/// Buffered events are written at most this long after they happened (provided
/// [`RecordingWriter::flush_if_due`] is called at least this often).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Buffered bytes that force a write regardless of [`FLUSH_INTERVAL`], so that
/// bulk output through a pty does not pile up in memory.
const FLUSH_BYTES: usize = 1024 * 1024;

/// Longest data chunk that goes into one event. Larger writes become several
/// events with the same time, which keeps every line well under
/// [`ReadLimits::max_line_bytes`] even when every byte needs a `\u00XX` escape.
const MAX_CHUNK: usize = 32 * 1024;

/// zstd level for finished recordings: zstd's default, a good speed/ratio point
/// for terminal output.
const ZSTD_LEVEL: i32 = 3;

/// Who, where and what a recording is about: the asciicast header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingHeader {
    /// The bastion's session ID (a ULID).
    pub session_id: String,
    /// The Rampart user.
    pub user: String,
    /// The login on the target.
    pub login: String,
    /// The target's name.
    pub target: String,
    /// Terminal columns at the start.
    pub width: u32,
    /// Terminal rows at the start.
    pub height: u32,
    /// When the session started (the bastion's clock).
    pub started: DateTime<Utc>,
    /// Whether keystrokes are recorded too ([`RecordingWriter::input`] is a no-op
    /// otherwise).
    pub record_input: bool,
    /// The client's `TERM`, if it sent one.
    pub term: Option<String>,
}

/// The header line as stored. Field order is the order in the file.
#[derive(Serialize, Deserialize)]
struct CastHeader {
    version: u32,
    width: u32,
    height: u32,
    timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<CastEnv>,
    #[serde(default)]
    title: Option<String>,
    rampart: RampartKeys,
}

#[derive(Serialize, Deserialize)]
struct CastEnv {
    #[serde(rename = "TERM", default, skip_serializing_if = "Option::is_none")]
    term: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RampartKeys {
    session: String,
    user: String,
    login: String,
    target: String,
    started: DateTime<Utc>,
    #[serde(default)]
    record_input: bool,
}

impl RecordingHeader {
    fn to_line(&self) -> Result<Vec<u8>, AuditError> {
        let cast = CastHeader {
            version: 2,
            width: self.width,
            height: self.height,
            timestamp: self.started.timestamp(),
            env: self.term.clone().map(|term| CastEnv { term: Some(term) }),
            title: Some(format!("{}@{}", self.login, self.target)),
            rampart: RampartKeys {
                session: self.session_id.clone(),
                user: self.user.clone(),
                login: self.login.clone(),
                target: self.target.clone(),
                started: self.started,
                record_input: self.record_input,
            },
        };
        let mut line = serde_json::to_vec(&cast)
            .map_err(|e| AuditError::Recording(format!("cannot encode header: {e}")))?;
        line.push(b'\n');
        Ok(line)
    }

    fn from_line(line: &[u8]) -> Result<Self, AuditError> {
        let cast: CastHeader = serde_json::from_slice(line)
            .map_err(|e| AuditError::Recording(format!("header: {e}")))?;
        if cast.version != 2 {
            return Err(AuditError::Recording(format!(
                "header: asciicast version {} (only 2 is supported)",
                cast.version
            )));
        }
        Ok(RecordingHeader {
            session_id: cast.rampart.session,
            user: cast.rampart.user,
            login: cast.rampart.login,
            target: cast.rampart.target,
            width: cast.width,
            height: cast.height,
            started: cast.rampart.started,
            record_input: cast.rampart.record_input,
            term: cast.env.and_then(|e| e.term),
        })
    }
}

/// Writes one session's recording as it happens.
///
/// Events are buffered in memory and written to the file by
/// [`flush_if_due`](Self::flush_if_due) once [`FLUSH_INTERVAL`] has passed (or
/// when 1 MiB is buffered): call it after every event *and* from a timer at least
/// once a second, so that a crash of the process loses at most about one second.
/// The file is fsynced only by [`close`](Self::close); the page cache survives a
/// process crash, not a power cut.
///
/// A write error is sticky: the event methods cannot report it, so the next
/// `flush_if_due` or `close` returns it. A bastion should then end the session
/// (recording is required, so fail closed).
pub struct RecordingWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    last_flush: Instant,
    last_time: Duration,
    /// Incomplete UTF-8 sequences per channel (`None`: the untagged stream of
    /// [`output`](Self::output) and [`input`](Self::input)).
    carries: BTreeMap<Option<u32>, Carries>,
    /// The channel the last data event belonged to (see the module docs).
    current: Option<u32>,
    record_input: bool,
    failed: Option<io::Error>,
}

/// A stream's carried-over bytes, output and input.
#[derive(Default)]
struct Carries {
    output: Vec<u8>,
    input: Vec<u8>,
}

impl fmt::Debug for RecordingWriter {
    // Not derived: the buffer holds session output, which may be secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("path", &self.path)
            .field("buffered", &self.buf.len())
            .field("record_input", &self.record_input)
            .field("failed", &self.failed.is_some())
            .finish_non_exhaustive()
    }
}

/// Which of the writer's two UTF-8 carries an event uses.
#[derive(Clone, Copy)]
enum Stream {
    Output,
    Input,
}

impl RecordingWriter {
    /// Create `path` (it must not exist; mode 0600) and write the header line to
    /// it at once, so that even an immediate crash leaves a readable recording.
    pub fn create(path: &Path, header: &RecordingHeader) -> Result<Self, AuditError> {
        let line = header.to_line()?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&line)?;
        Ok(RecordingWriter {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(64 * 1024),
            last_flush: Instant::now(),
            last_time: Duration::ZERO,
            carries: BTreeMap::new(),
            current: None,
            record_input: header.record_input,
            failed: None,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Terminal output (`elapsed` since the session started).
    pub fn output(&mut self, elapsed: Duration, data: &[u8]) {
        self.data_event(elapsed, None, Stream::Output, data);
    }

    /// Keystrokes; ignored unless the header said `record_input`.
    pub fn input(&mut self, elapsed: Duration, data: &[u8]) {
        if self.record_input {
            self.data_event(elapsed, None, Stream::Input, data);
        }
    }

    /// Channel `channel` of the session opened; `what` says what it runs
    /// (`shell (pty xterm 80x24)`, `exec "uname -a"`, `subsystem sftp`).
    pub fn channel_opened(&mut self, elapsed: Duration, channel: u32, what: &str) {
        let time = self.time(elapsed);
        self.push_line(time, "m", &format!("channel {channel} open: {what}"));
        self.current = Some(channel);
    }

    /// Output of `channel` (stdout and stderr alike).
    pub fn channel_output(&mut self, elapsed: Duration, channel: u32, data: &[u8]) {
        self.switch_to(elapsed, channel);
        self.data_event(elapsed, Some(channel), Stream::Output, data);
    }

    /// Output of `channel`, kept exactly: as text when it is text, else as
    /// base64 bytes (`"ob"`). For channels without a pty.
    pub fn channel_output_exact(&mut self, elapsed: Duration, channel: u32, data: &[u8]) {
        self.switch_to(elapsed, channel);
        self.exact_event(elapsed, channel, Stream::Output, data);
    }

    /// Input to `channel`, kept exactly (see
    /// [`channel_output_exact`](Self::channel_output_exact)); always kept.
    pub fn channel_input_exact(&mut self, elapsed: Duration, channel: u32, data: &[u8]) {
        self.switch_to(elapsed, channel);
        self.exact_event(elapsed, channel, Stream::Input, data);
    }

    /// Input sent to `channel`. Kept when the header says `record_input`, or
    /// when `always` (a channel without a pty: see the module docs).
    pub fn channel_input(&mut self, elapsed: Duration, channel: u32, data: &[u8], always: bool) {
        if self.record_input || always {
            self.switch_to(elapsed, channel);
            self.data_event(elapsed, Some(channel), Stream::Input, data);
        }
    }

    /// Channel `channel` ended; `summary` says how (exit status, byte counts).
    pub fn channel_closed(&mut self, elapsed: Duration, channel: u32, summary: &str) {
        let time = self.time(elapsed);
        if let Some(carries) = self.carries.remove(&Some(channel)) {
            if carries.output.iter().chain(&carries.input).next().is_some() {
                self.switch_to(elapsed, channel);
            }
            self.flush_carries(time, carries);
        }
        self.push_line(time, "m", &format!("channel {channel} closed: {summary}"));
        self.current = None;
    }

    /// Write a marker saying the events after it are `channel`'s, unless the
    /// last data event already was.
    fn switch_to(&mut self, elapsed: Duration, channel: u32) {
        if self.current != Some(channel) {
            let time = self.time(elapsed);
            self.push_line(time, "m", &format!("channel {channel}"));
            self.current = Some(channel);
        }
    }

    /// Write the carried-over bytes of one stream as text (incomplete UTF-8
    /// becomes U+FFFD: the stream has ended).
    fn flush_carries(&mut self, time: Duration, carries: Carries) {
        for (stream, carry) in [
            (Stream::Output, carries.output),
            (Stream::Input, carries.input),
        ] {
            if !carry.is_empty() {
                let text = String::from_utf8_lossy(&carry).into_owned();
                self.push_line(time, stream.code(), &text);
            }
        }
    }

    /// The terminal was resized (`window-change`).
    pub fn resize(&mut self, elapsed: Duration, cols: u32, rows: u32) {
        let time = self.time(elapsed);
        let text = format!("{cols}x{rows}");
        self.push_line(time, "r", &text);
    }

    /// Write buffered events if [`FLUSH_INTERVAL`] has passed since the last write
    /// (or a lot is buffered). Returns a write error, including one that happened
    /// earlier inside an event method.
    pub fn flush_if_due(&mut self) -> Result<(), AuditError> {
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.write_buffer();
            self.last_flush = Instant::now();
        }
        self.check()
    }

    /// Write everything (including a UTF-8 sequence left incomplete at the end,
    /// as U+FFFD), fsync, and return the path for [`finish_recording`].
    pub fn close(mut self) -> Result<PathBuf, AuditError> {
        let time = self.last_time;
        for (channel, carries) in std::mem::take(&mut self.carries) {
            if let Some(channel) = channel {
                self.switch_to(time, channel);
            }
            self.flush_carries(time, carries);
        }
        self.write_buffer();
        self.check()?;
        self.file.sync_all()?;
        Ok(self.path)
    }

    fn check(&mut self) -> Result<(), AuditError> {
        match &self.failed {
            None => Ok(()),
            Some(e) => Err(AuditError::Io(io::Error::new(e.kind(), e.to_string()))),
        }
    }

    fn carry(&mut self, channel: Option<u32>, stream: Stream) -> &mut Vec<u8> {
        let carries = self.carries.entry(channel).or_default();
        match stream {
            Stream::Output => &mut carries.output,
            Stream::Input => &mut carries.input,
        }
    }

    /// Event times never go backwards (players assume it).
    fn time(&mut self, elapsed: Duration) -> Duration {
        if elapsed > self.last_time {
            self.last_time = elapsed;
        }
        self.last_time
    }

    fn data_event(&mut self, elapsed: Duration, channel: Option<u32>, stream: Stream, data: &[u8]) {
        let time = self.time(elapsed);
        for chunk in data.chunks(MAX_CHUNK) {
            let mut text = String::with_capacity(chunk.len() + 4);
            decode_utf8(self.carry(channel, stream), chunk, &mut text);
            if !text.is_empty() {
                self.push_line(time, stream.code(), &text);
            }
        }
    }

    /// A chunk that is text goes in as text; anything else, with what was
    /// carried over from the text before it, as base64 bytes.
    fn exact_event(&mut self, elapsed: Duration, channel: u32, stream: Stream, data: &[u8]) {
        if looks_like_text(data) {
            return self.data_event(elapsed, Some(channel), stream, data);
        }
        let time = self.time(elapsed);
        let mut carry = std::mem::take(self.carry(Some(channel), stream));
        for chunk in data.chunks(MAX_CHUNK) {
            let encoded = if carry.is_empty() {
                BASE64.encode(chunk)
            } else {
                carry.extend_from_slice(chunk);
                let e = BASE64.encode(&carry);
                carry.clear();
                e
            };
            self.push_line(time, stream.bytes_code(), &encoded);
        }
    }

    fn push_line(&mut self, time: Duration, code: &str, text: &str) {
        // Writing into a Vec cannot fail; `let _` keeps the signature infallible.
        let _ = write!(
            self.buf,
            "[{}.{:06}, \"{code}\", ",
            time.as_secs(),
            time.subsec_micros()
        );
        let _ = serde_json::to_writer(&mut self.buf, text);
        self.buf.extend_from_slice(b"]\n");
        if self.buf.len() >= FLUSH_BYTES {
            self.write_buffer();
        }
    }

    fn write_buffer(&mut self) {
        if self.buf.is_empty() || self.failed.is_some() {
            return;
        }
        // Whole lines only, so what is on disk is always a readable prefix.
        match self.file.write_all(&self.buf) {
            Ok(()) => self.buf.clear(),
            Err(e) => self.failed = Some(e),
        }
    }
}

impl Stream {
    fn code(self) -> &'static str {
        match self {
            Stream::Output => "o",
            Stream::Input => "i",
        }
    }

    fn bytes_code(self) -> &'static str {
        match self {
            Stream::Output => "ob",
            Stream::Input => "ib",
        }
    }
}

/// Whether `data` reads as terminal text: UTF-8 (a sequence cut at the end is
/// fine) with no control characters but the ones terminals use.
fn looks_like_text(data: &[u8]) -> bool {
    let valid = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            // Only an incomplete sequence at the very end.
            match data.get(..e.valid_up_to()).map(std::str::from_utf8) {
                Some(Ok(s)) => s,
                _ => return false,
            }
        }
        Err(_) => return false,
    };
    valid
        .bytes()
        .all(|b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x1b | 0x07 | 0x08))
}

/// Append `carry ++ data`, decoded as UTF-8, to `out`. Invalid bytes become
/// U+FFFD; an incomplete sequence at the very end stays in `carry` for the next
/// chunk (at most 3 bytes).
fn decode_utf8(carry: &mut Vec<u8>, data: &[u8], out: &mut String) {
    let joined;
    let mut rest: &[u8] = if carry.is_empty() {
        data
    } else {
        let mut v = std::mem::take(carry);
        v.extend_from_slice(data);
        joined = v;
        &joined
    };
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid_up_to` promises this prefix is UTF-8; lossy never replaces here.
                out.push_str(&String::from_utf8_lossy(valid));
                match e.error_len() {
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        rest = after.get(bad..).unwrap_or_default();
                    }
                    None => {
                        carry.extend_from_slice(after);
                        return;
                    }
                }
            }
        }
    }
}

/// A finished recording: compressed, fsynced, hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedRecording {
    /// `<name>.cast.zst`.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the compressed file (what gets sealed).
    pub sha256: String,
    /// Size of the compressed file.
    pub bytes: u64,
}

/// Where [`finish_recording`] puts the compressed form of `cast`:
/// the same name with `.zst` appended.
pub fn finished_path(cast: &Path) -> PathBuf {
    let mut name = cast.as_os_str().to_os_string();
    name.push(".zst");
    PathBuf::from(name)
}

/// Finish a `.cast` left by [`RecordingWriter::close`] or by a crashed process:
/// drop a torn last line (everything after the last `\n`), compress with zstd into
/// [`finished_path`] (via a temporary file, fsynced, renamed), hash the compressed
/// bytes and remove the `.cast`.
///
/// Safe to call again after a crash half-way: if the `.cast` is gone but the
/// `.cast.zst` exists, it is hashed and returned as is.
pub fn finish_recording(cast: &Path) -> Result<FinishedRecording, AuditError> {
    let zst = finished_path(cast);
    let mut src = match File::open(cast) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && zst.exists() => {
            let (sha256, bytes) = digest_file(&zst)?;
            return Ok(FinishedRecording {
                path: zst,
                sha256,
                bytes,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let keep = complete_lines_len(&mut src)?;
    if keep == 0 {
        return Err(AuditError::Recording(format!(
            "{} holds no complete line (not even the header)",
            cast.display()
        )));
    }
    src.seek(SeekFrom::Start(0))?;

    let mut tmp_name = zst.as_os_str().to_os_string();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, out),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut encoder = zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL)?;
    io::copy(&mut (&mut src).take(keep), &mut encoder)?;
    let mut hashing = encoder.finish()?;
    hashing.inner.flush()?;
    let HashingWriter {
        inner,
        hasher,
        bytes,
    } = hashing;
    let out = inner.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, &zst)?;
    std::fs::remove_file(cast)?;
    if let Some(dir) = zst.parent() {
        sync_dir(dir)?;
    }
    Ok(FinishedRecording {
        path: zst,
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

/// Lowercase hex SHA-256 and size of a file, read in a streaming way.
pub fn digest_file(path: &Path) -> Result<(String, u64), AuditError> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Length of the prefix of `file` that ends with its last `\n` (0 if none).
fn complete_lines_len(file: &mut File) -> Result<u64, AuditError> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(block.len());
        let slice = block.get_mut(..n).unwrap_or_default();
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(slice)?;
        if let Some(pos) = slice.iter().rposition(|&b| b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        let written = data.get(..n).unwrap_or_default();
        self.hasher.update(written);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bounds for reading a recording that came from outside (a download, a file on
/// disk that anyone could have edited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest decompressed size accepted.
    pub max_decompressed_bytes: u64,
    /// Longest line (header or event) accepted.
    pub max_line_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_decompressed_bytes: 1024 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
        }
    }
}

/// What an event line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CastEventKind {
    /// Terminal output (`"o"`).
    Output,
    /// Keystrokes (`"i"`).
    Input,
    /// A resize (`"r"`, data `COLSxROWS`).
    Resize,
    /// A marker (`"m"`): Rampart's channel markers, or other writers' marks.
    Marker,
    /// Output bytes that are not text, base64 (`"ob"`, Rampart's own).
    OutputBytes,
    /// Input bytes that are not text, base64 (`"ib"`, Rampart's own).
    InputBytes,
}

/// One event of a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct CastEvent {
    /// Time since the session started.
    pub time: Duration,
    /// What kind of event.
    pub kind: CastEventKind,
    /// The text (output, input, `COLSxROWS`, marker label).
    pub data: String,
}

/// A decoded recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The header.
    pub header: RecordingHeader,
    /// The events, in file order.
    pub events: Vec<CastEvent>,
}

/// The channel a marker label switches to: `Some(Some(n))` for `channel N open: …`
/// and `channel N`, `Some(None)` for `channel N closed: …`, `None` for a marker
/// that is not about channels.
fn marker_channel(label: &str) -> Option<Option<u32>> {
    let rest = label.strip_prefix("channel ")?;
    let (number, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let n: u32 = number.parse().ok()?;
    if after.starts_with("closed:") {
        Some(None)
    } else if after.is_empty() || after.starts_with("open:") {
        Some(Some(n))
    } else {
        None
    }
}

impl Recording {
    /// The events of one channel (see the module docs on channels), markers
    /// excluded.
    pub fn channel_events(&self, channel: u32) -> Vec<&CastEvent> {
        let mut current = None;
        let mut out = Vec::new();
        for event in &self.events {
            if event.kind == CastEventKind::Marker {
                if let Some(c) = marker_channel(&event.data) {
                    current = c;
                }
                continue;
            }
            if current == Some(channel) {
                out.push(event);
            }
        }
        out
    }

    /// The output of one channel, concatenated as bytes (text and exact
    /// bytes alike).
    pub fn channel_output_bytes(&self, channel: u32) -> Vec<u8> {
        self.channel_stream(channel, CastEventKind::Output, CastEventKind::OutputBytes)
    }

    /// The input sent to one channel, concatenated as bytes.
    pub fn channel_input_bytes(&self, channel: u32) -> Vec<u8> {
        self.channel_stream(channel, CastEventKind::Input, CastEventKind::InputBytes)
    }

    /// The output of one channel, as text (bytes that are not UTF-8 as U+FFFD).
    pub fn channel_output(&self, channel: u32) -> String {
        String::from_utf8_lossy(&self.channel_output_bytes(channel)).into_owned()
    }

    /// The input sent to one channel, as text.
    pub fn channel_input(&self, channel: u32) -> String {
        String::from_utf8_lossy(&self.channel_input_bytes(channel)).into_owned()
    }

    fn channel_stream(&self, channel: u32, text: CastEventKind, bytes: CastEventKind) -> Vec<u8> {
        let mut out = Vec::new();
        for e in self.channel_events(channel) {
            if e.kind == text {
                out.extend_from_slice(e.data.as_bytes());
            } else if e.kind == bytes {
                // A line that is not base64 was edited; parse_event checked it.
                out.extend(BASE64.decode(&e.data).unwrap_or_default());
            }
        }
        out
    }

    /// The terminal output alone, concatenated (what `asciinema cat` prints).
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for event in &self.events {
            if event.kind == CastEventKind::Output {
                out.push_str(&event.data);
            }
        }
        out
    }
}

/// Decode a finished `.cast.zst` with the default [`ReadLimits`].
pub fn read_recording(bytes_zst: &[u8]) -> Result<Recording, AuditError> {
    read_recording_with(bytes_zst, &ReadLimits::default())
}

/// Decode a finished `.cast.zst` within `limits`.
pub fn read_recording_with(bytes_zst: &[u8], limits: &ReadLimits) -> Result<Recording, AuditError> {
    parse_cast(&decompress_with(bytes_zst, limits)?, limits)
}

/// Decompress a `.cast.zst` (at most the default [`ReadLimits`] size) without
/// parsing it, e.g. to hand the asciicast to another player.
pub fn decompress(bytes_zst: &[u8]) -> Result<Vec<u8>, AuditError> {
    decompress_with(bytes_zst, &ReadLimits::default())
}

fn decompress_with(bytes_zst: &[u8], limits: &ReadLimits) -> Result<Vec<u8>, AuditError> {
    let decoder = zstd::stream::read::Decoder::new(bytes_zst)
        .map_err(|e| AuditError::Recording(format!("zstd: {e}")))?;
    let mut cast = Vec::new();
    decoder
        .take(limits.max_decompressed_bytes.saturating_add(1))
        .read_to_end(&mut cast)
        .map_err(|e| AuditError::Recording(format!("zstd: {e}")))?;
    if cast.len() as u64 > limits.max_decompressed_bytes {
        return Err(AuditError::Recording(format!(
            "decompresses to more than {} bytes",
            limits.max_decompressed_bytes
        )));
    }
    Ok(cast)
}

/// Decode an uncompressed asciicast v2 recording with Rampart's header keys.
/// Every line must parse: a finished recording has no torn line.
pub fn parse_cast(cast: &[u8], limits: &ReadLimits) -> Result<Recording, AuditError> {
    let mut lines = cast.split(|&b| b == b'\n');
    let header_line = lines.next().unwrap_or_default();
    check_line(header_line, 1, limits)?;
    let header = RecordingHeader::from_line(header_line)?;
    let mut events = Vec::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        if line.is_empty() {
            // The file ends with '\n', which leaves one empty piece after it.
            continue;
        }
        check_line(line, number, limits)?;
        events.push(parse_event(line, number)?);
    }
    Ok(Recording { header, events })
}

fn check_line(line: &[u8], number: usize, limits: &ReadLimits) -> Result<(), AuditError> {
    if line.len() > limits.max_line_bytes {
        return Err(AuditError::Recording(format!(
            "line {number} is longer than {} bytes",
            limits.max_line_bytes
        )));
    }
    Ok(())
}

fn parse_event(line: &[u8], number: usize) -> Result<CastEvent, AuditError> {
    let bad = |why: String| AuditError::Recording(format!("line {number}: {why}"));
    let (time, code, data): (f64, String, String) =
        serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
    let time = Duration::try_from_secs_f64(time).map_err(|e| bad(format!("time: {e}")))?;
    let kind = match code.as_str() {
        "o" => CastEventKind::Output,
        "i" => CastEventKind::Input,
        "r" => CastEventKind::Resize,
        "m" => CastEventKind::Marker,
        "ob" => CastEventKind::OutputBytes,
        "ib" => CastEventKind::InputBytes,
        other => return Err(bad(format!("unknown event code {other:?}"))),
    };
    if matches!(kind, CastEventKind::OutputBytes | CastEventKind::InputBytes)
        && BASE64.decode(&data).is_err()
    {
        return Err(bad("bytes event that is not base64".into()));
    }
    Ok(CastEvent { time, kind, data })
}

/// Read a recording's lines from any reader, stopping at `limits`; used to read
/// a `.cast` still being written (for instance to show it live) where the last
/// line may be torn: it is skipped.
pub fn parse_cast_prefix<R: BufRead>(
    mut reader: R,
    limits: &ReadLimits,
) -> Result<Recording, AuditError> {
    let mut data = Vec::new();
    (&mut reader)
        .take(limits.max_decompressed_bytes)
        .read_to_end(&mut data)?;
    let complete = data
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    data.truncate(complete);
    parse_cast(&data, limits)
}

/// One sealed recording that does not check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingProblem {
    /// The session whose recording it is.
    pub session: String,
    /// Sequence number of its `recording_sealed` event.
    pub seq: u64,
    /// What is wrong, in one sentence.
    pub reason: String,
}

/// What [`verify_recordings`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingsReport {
    /// `recording_sealed` events looked at.
    pub sealed: usize,
    /// Those whose file matched.
    pub matched: usize,
    /// The others.
    pub problems: Vec<RecordingProblem>,
}

/// For every `recording_sealed` event in the audit database `db`, check that
/// `dir/<session>.cast.zst` exists and its SHA-256 is the sealed one. Run
/// [`crate::verify`] first: this trusts the events it reads.
pub fn verify_recordings(db: &Path, dir: &Path) -> Result<RecordingsReport, AuditError> {
    let conn = crate::store::open_read_only(db)?;
    let sealed = crate::store::run_query(
        &conn,
        &crate::Query::all().kind(crate::EventKind::RecordingSealed),
    )?;
    let mut report = RecordingsReport {
        sealed: sealed.len(),
        ..RecordingsReport::default()
    };
    for ev in sealed {
        let session = ev.session.clone().unwrap_or_default();
        let problem = |reason: String| RecordingProblem {
            session: session.clone(),
            seq: ev.seq,
            reason,
        };
        // The session ID becomes a file name: only a plain token may.
        let clean = !session.is_empty()
            && session.len() <= 128
            && session.bytes().all(|b| b.is_ascii_alphanumeric());
        if !clean {
            report.problems.push(problem(format!(
                "session ID {session:?} is not a plain token"
            )));
            continue;
        }
        let Some(want) = ev.details.get("sha256").and_then(|v| v.as_str()) else {
            report
                .problems
                .push(problem("the event carries no sha256".to_owned()));
            continue;
        };
        let path = dir.join(format!("{session}.cast.zst"));
        match digest_file(&path) {
            Ok((have, _)) if have == want => report.matched += 1,
            Ok((have, _)) => report.problems.push(problem(format!(
                "{} has SHA-256 {have}, the audit log sealed {want}",
                path.display()
            ))),
            Err(AuditError::Io(e)) if e.kind() == io::ErrorKind::NotFound => report
                .problems
                .push(problem(format!("{} is missing", path.display()))),
            Err(e) => report
                .problems
                .push(problem(format!("{}: {e}", path.display()))),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn header(record_input: bool) -> RecordingHeader {
        RecordingHeader {
            session_id: "01J0000000000000000000TEST".into(),
            user: "alice".into(),
            login: "root".into(),
            target: "db-1".into(),
            width: 80,
            height: 24,
            started: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            record_input,
            term: Some("xterm-256color".into()),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn roundtrip(h: &RecordingHeader, write: impl FnOnce(&mut RecordingWriter)) -> Recording {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let mut w = RecordingWriter::create(&path, h).unwrap();
        write(&mut w);
        let closed = w.close().unwrap();
        let fin = finish_recording(&closed).unwrap();
        assert!(!path.exists(), "the .cast is removed");
        let bytes = std::fs::read(&fin.path).unwrap();
        assert_eq!(fin.bytes, bytes.len() as u64);
        assert_eq!(fin.sha256, hex::encode(Sha256::digest(&bytes)));
        read_recording(&bytes).unwrap()
    }

    #[test]
    fn header_and_events_roundtrip() {
        let h = header(true);
        let rec = roundtrip(&h, |w| {
            w.output(ms(100), b"$ ");
            w.input(ms(1500), b"ls\r");
            w.resize(ms(2000), 120, 40);
            w.output(ms(2100), b"a\x1b[0m\tb\n");
        });
        assert_eq!(rec.header, h);
        let kinds: Vec<_> = rec
            .events
            .iter()
            .map(|e| (e.kind, e.data.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (CastEventKind::Output, "$ "),
                (CastEventKind::Input, "ls\r"),
                (CastEventKind::Resize, "120x40"),
                (CastEventKind::Output, "a\x1b[0m\tb\n"),
            ]
        );
        assert_eq!(rec.events[1].time, ms(1500));
        assert_eq!(rec.render_text(), "$ a\x1b[0m\tb\n");
    }

    #[test]
    fn header_is_plain_asciicast_v2() {
        let line = header(false).to_line().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["version"], 2);
        assert_eq!(v["width"], 80);
        assert_eq!(v["height"], 24);
        assert_eq!(v["timestamp"], 1_767_323_045i64);
        assert_eq!(v["env"]["TERM"], "xterm-256color");
        assert_eq!(v["title"], "root@db-1");
        assert_eq!(v["rampart"]["session"], "01J0000000000000000000TEST");
        assert_eq!(v["rampart"]["user"], "alice");
        assert!(line.ends_with(b"}\n"));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn channels_are_told_apart_by_markers_and_no_pty_input_is_always_kept() {
        let rec = roundtrip(&header(false), |w| {
            w.channel_opened(ms(1), 0, "shell (pty xterm 80x24)");
            w.channel_output(ms(2), 0, b"$ ");
            w.channel_input(ms(3), 0, b"secret\r", false);
            w.channel_opened(ms(4), 3, "exec \"cat\"");
            w.channel_input(ms(5), 3, b"typed ", true);
            // A multi-byte character split across packets of channel 3, with
            // channel 0's output in between.
            w.channel_output(ms(6), 3, "caf\u{e9}".as_bytes().split_at(4).0);
            w.channel_output(ms(7), 0, b"$ ");
            w.channel_output(ms(8), 3, &[0xa9]);
            w.channel_closed(ms(9), 3, "exit 0");
            w.channel_output(ms(10), 0, b"bye");
        });
        assert_eq!(rec.channel_output(0), "$ $ bye");
        assert_eq!(rec.channel_input(0), "", "pty keystrokes need record_input");
        assert_eq!(rec.channel_output(3), "café");
        assert_eq!(
            rec.channel_input(3),
            "typed ",
            "no-pty input is always kept"
        );
        let markers: Vec<&str> = rec
            .events
            .iter()
            .filter(|e| e.kind == CastEventKind::Marker)
            .map(|e| e.data.as_str())
            .collect();
        assert_eq!(
            markers,
            vec![
                "channel 0 open: shell (pty xterm 80x24)",
                "channel 3 open: exec \"cat\"",
                "channel 0",
                "channel 3",
                "channel 3 closed: exit 0",
                "channel 0",
            ]
        );
        // To a player it is all one terminal, in the order it happened.
        assert_eq!(rec.render_text(), "$ caf$ ébye");
    }

    #[test]
    fn bytes_that_are_not_text_are_kept_exactly_and_text_stays_text() {
        let binary: Vec<u8> = (0u8..=255).collect();
        let rec = roundtrip(&header(false), |w| {
            w.channel_opened(ms(1), 4, "exec \"scp -f x\" (no pty)");
            w.channel_output_exact(ms(2), 4, b"C0644 256 x\n");
            // A text chunk that ends inside a character, then binary: the
            // carried byte goes with the binary chunk, nothing is lost.
            w.channel_output_exact(ms(3), 4, &[b'a', 0xc3]);
            w.channel_output_exact(ms(4), 4, &binary);
            w.channel_input_exact(ms(5), 4, &[0, 0, 0]);
            w.channel_closed(ms(6), 4, "exit 0");
        });
        let mut want = b"C0644 256 x\na\xc3".to_vec();
        want.extend_from_slice(&binary);
        assert_eq!(rec.channel_output_bytes(4), want);
        assert_eq!(rec.channel_input_bytes(4), vec![0, 0, 0]);
        let kinds: Vec<CastEventKind> = rec.events.iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&CastEventKind::Output), "text stays text");
        assert!(kinds.contains(&CastEventKind::OutputBytes));
        // Players print text only; a NUL never became six bytes of escape.
        assert_eq!(rec.render_text(), "C0644 256 x\na");
        assert!(looks_like_text(b"ls -l\r\n\x1b[0m caf\xc3"));
        assert!(!looks_like_text(b"\x00abc") && !looks_like_text(b"\xff"));
    }

    #[test]
    fn a_bytes_event_that_is_not_base64_is_refused() {
        let line = br#"[1.0, "ob", "not base64!"]"#;
        assert!(parse_event(line, 2).is_err());
    }

    #[test]
    fn a_channel_cut_mid_character_is_flushed_at_close() {
        let rec = roundtrip(&header(false), |w| {
            w.channel_opened(ms(1), 2, "exec \"x\"");
            w.channel_output(ms(2), 2, &[b'a', 0xc3]);
        });
        assert_eq!(rec.channel_output(2), "a\u{fffd}");
    }

    #[test]
    fn input_is_dropped_unless_the_header_says_record_input() {
        let rec = roundtrip(&header(false), |w| {
            w.input(ms(1), b"secret\r");
            w.output(ms(2), b"ok");
        });
        assert_eq!(rec.events.len(), 1);
        assert_eq!(rec.events[0].kind, CastEventKind::Output);
    }

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        // "é" = C3 A9, "€" = E2 82 AC, "𝄞" = F0 9D 84 9E, each cut in every place.
        let text = "é€𝄞";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let rec = roundtrip(&header(false), |w| {
                w.output(ms(1), a);
                w.output(ms(2), b);
            });
            assert_eq!(rec.render_text(), text, "cut at {cut}");
        }
        // One byte at a time.
        let rec = roundtrip(&header(false), |w| {
            for (i, b) in bytes.iter().enumerate() {
                w.output(ms(i as u64), &[*b]);
            }
        });
        assert_eq!(rec.render_text(), text);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters_only() {
        let rec = roundtrip(&header(false), |w| {
            w.output(ms(1), b"a\xffb\xc3");
            w.output(ms(2), b"(c");
            // Truncated sequence left at the very end of the session.
            w.output(ms(3), b"d\xe2\x82");
        });
        assert_eq!(rec.render_text(), "a\u{FFFD}b\u{FFFD}(cd\u{FFFD}");
    }

    #[test]
    fn large_chunks_are_split_into_bounded_lines() {
        let big = vec![0x01u8; 200 * 1024]; // every byte escapes to \u0001 (6 bytes)
        let rec = roundtrip(&header(false), |w| w.output(ms(5), &big));
        assert!(rec.events.len() >= 200 * 1024 / MAX_CHUNK);
        assert!(rec.events.iter().all(|e| e.time == ms(5)));
        assert_eq!(rec.render_text().len(), big.len());
    }

    #[test]
    fn times_never_go_backwards() {
        let rec = roundtrip(&header(false), |w| {
            w.output(ms(500), b"a");
            w.output(ms(100), b"b");
        });
        assert_eq!(rec.events[1].time, ms(500));
    }

    #[test]
    fn nothing_is_written_before_the_interval_then_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let mut w = RecordingWriter::create(&path, &header(false)).unwrap();
        let header_len = std::fs::metadata(&path).unwrap().len();
        assert!(header_len > 0, "the header is on disk at once");
        w.output(ms(1), b"hello");
        w.flush_if_due().unwrap();
        // Generous: only a stall of over a second between the two calls could
        // make this flush, and then the assertion below is skipped.
        let quick = w.last_flush.elapsed() < FLUSH_INTERVAL;
        if quick {
            assert_eq!(std::fs::metadata(&path).unwrap().len(), header_len);
        }
        w.last_flush = Instant::now() - FLUSH_INTERVAL;
        w.flush_if_due().unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        let rec = parse_cast(&on_disk, &ReadLimits::default()).unwrap();
        assert_eq!(rec.render_text(), "hello");
        drop(w);
    }

    #[test]
    fn a_crash_leaves_a_torn_line_that_finish_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let mut w = RecordingWriter::create(&path, &header(false)).unwrap();
        w.output(ms(1), b"kept");
        w.last_flush = Instant::now() - FLUSH_INTERVAL;
        w.flush_if_due().unwrap();
        drop(w); // like a kill -9: no close
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"[2.000000, \"o\", \"tor").unwrap();
        drop(f);
        let fin = finish_recording(&path).unwrap();
        let rec = read_recording(&std::fs::read(&fin.path).unwrap()).unwrap();
        assert_eq!(rec.render_text(), "kept");
        // Idempotent after the .cast is gone.
        let again = finish_recording(&path).unwrap();
        assert_eq!(again, fin);
    }

    #[test]
    fn finish_refuses_a_file_without_a_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        std::fs::write(&path, b"{\"version\":2,").unwrap();
        assert!(matches!(
            finish_recording(&path),
            Err(AuditError::Recording(_))
        ));
        let missing = dir.path().join("none.cast");
        assert!(matches!(finish_recording(&missing), Err(AuditError::Io(_))));
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let w = RecordingWriter::create(&path, &header(false)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let fin = finish_recording(&w.close().unwrap()).unwrap();
        let mode = std::fs::metadata(&fin.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(RecordingWriter::create(&path, &header(false)).is_ok());
        assert!(
            RecordingWriter::create(&path, &header(false)).is_err(),
            "create never overwrites"
        );
    }

    fn zst(text: &[u8]) -> Vec<u8> {
        zstd::encode_all(text, 3).unwrap()
    }

    #[test]
    fn reader_refusals() {
        let good_header = header(false).to_line().unwrap();
        let with = |tail: &[u8]| {
            let mut v = good_header.clone();
            v.extend_from_slice(tail);
            v
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not zstd", b"plain text".to_vec()),
            ("empty", zst(b"")),
            ("not json header", zst(b"hello\n")),
            (
                "version 1",
                zst(b"{\"version\":1,\"width\":1,\"height\":1,\"timestamp\":0}\n"),
            ),
            (
                "no rampart keys",
                zst(b"{\"version\":2,\"width\":1,\"height\":1,\"timestamp\":0}\n"),
            ),
            ("torn event", zst(&with(b"[1.0, \"o\", \"ab"))),
            ("bad code", zst(&with(b"[1.0, \"x\", \"ab\"]\n"))),
            ("negative time", zst(&with(b"[-1.0, \"o\", \"ab\"]\n"))),
            ("huge time", zst(&with(b"[1e300, \"o\", \"ab\"]\n"))),
            ("not an array", zst(&with(b"{\"t\":1}\n"))),
            ("extra element", zst(&with(b"[1.0, \"o\", \"ab\", 4]\n"))),
        ];
        for (name, bytes) in cases {
            assert!(
                matches!(read_recording(&bytes), Err(AuditError::Recording(_))),
                "{name} must be refused"
            );
        }
    }

    #[test]
    fn reader_bounds() {
        let mut cast = header(false).to_line().unwrap();
        cast.extend_from_slice(format!("[1.0, \"o\", \"{}\"]\n", "a".repeat(5000)).as_bytes());
        let bytes = zst(&cast);
        assert!(read_recording(&bytes).is_ok());
        let small_lines = ReadLimits {
            max_line_bytes: 1000,
            ..ReadLimits::default()
        };
        assert!(read_recording_with(&bytes, &small_lines).is_err());
        let small_total = ReadLimits {
            max_decompressed_bytes: 2000,
            ..ReadLimits::default()
        };
        assert!(read_recording_with(&bytes, &small_total).is_err());
        // A zstd bomb: 64 MiB of zeros compresses to a few KiB.
        let bomb = zstd::encode_all(std::io::repeat(0).take(64 << 20), 19).unwrap();
        assert!(bomb.len() < 64 * 1024);
        let cap = ReadLimits {
            max_decompressed_bytes: 1 << 20,
            ..ReadLimits::default()
        };
        assert!(read_recording_with(&bomb, &cap).is_err());
    }

    #[test]
    fn prefix_reader_skips_a_torn_line() {
        let mut cast = header(false).to_line().unwrap();
        cast.extend_from_slice(b"[1.0, \"o\", \"x\"]\n[2.0, \"o\", \"y");
        let rec = parse_cast_prefix(&cast[..], &ReadLimits::default()).unwrap();
        assert_eq!(rec.render_text(), "x");
    }

    #[test]
    fn verify_recordings_finds_an_edited_byte_and_a_missing_file() {
        use crate::{AuditConfig, AuditLog, EventKind, NewEvent, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let recs = dir.path().join("recordings");
        std::fs::create_dir(&recs).unwrap();
        let log = AuditLog::open(&db, None, AuditConfig::default()).unwrap();
        let mut sessions = Vec::new();
        for i in 0..3u64 {
            let session = ulid::Ulid::new().to_string();
            let path = recs.join(format!("{session}.cast"));
            let mut w = RecordingWriter::create(&path, &header(false)).unwrap();
            w.output(ms(i), format!("session {i}").as_bytes());
            let fin = finish_recording(&w.close().unwrap()).unwrap();
            log.append(
                NewEvent::new(EventKind::RecordingSealed, Outcome::Success, Utc::now())
                    .session(&session)
                    .detail("sha256", fin.sha256.clone()),
            )
            .unwrap();
            sessions.push((session, fin.path));
        }
        log.close().unwrap();
        let report = verify_recordings(&db, &recs).unwrap();
        assert_eq!((report.sealed, report.matched), (3, 3));
        assert!(report.problems.is_empty());

        let mut bytes = std::fs::read(&sessions[1].1).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&sessions[1].1, &bytes).unwrap();
        std::fs::remove_file(&sessions[2].1).unwrap();
        let report = verify_recordings(&db, &recs).unwrap();
        assert_eq!((report.sealed, report.matched), (3, 1));
        assert_eq!(report.problems.len(), 2);
        assert_eq!(report.problems[0].session, sessions[1].0);
        assert!(
            report.problems[0].reason.contains("sealed"),
            "{:?}",
            report.problems[0]
        );
        assert_eq!(report.problems[1].session, sessions[2].0);
        assert!(report.problems[1].reason.contains("missing"));
    }
}
