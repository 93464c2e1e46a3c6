//! [`RecordingWriter`]: a session's recording written as it happens, its
//! channels told apart by markers, text as text and other bytes exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::{RecordingHeader, FLUSH_INTERVAL};
use crate::AuditError;

/// Buffered bytes that force a write regardless of [`FLUSH_INTERVAL`], so that
/// bulk output through a pty does not pile up in memory.
const FLUSH_BYTES: usize = 1024 * 1024;

/// Longest data chunk that goes into one event. Larger writes become several
/// events with the same time, which keeps every line well under
/// [`ReadLimits::max_line_bytes`] even when every byte needs a `\u00XX` escape.
pub(super) const MAX_CHUNK: usize = 32 * 1024;

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
    /// Tests move it back to force a flush.
    pub(super) last_flush: Instant,
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
pub(super) fn looks_like_text(data: &[u8]) -> bool {
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
