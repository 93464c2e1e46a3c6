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
//!
//! # Where things are
//!
//! - this file: the header ([`RecordingHeader`]) and the format's constants;
//! - `writer`: [`RecordingWriter`], channels, text and exact bytes;
//! - `finish`: [`finish_recording`] (torn-line repair, zstd, SHA-256);
//! - `read`: the bounded reader ([`read_recording`], [`parse_cast`]);
//! - `store`: where sealed recordings are kept ([`RecordingStore`]: a
//!   directory, or the shared PostgreSQL audit database);
//! - `verify`: recordings against the digests sealed in the chain.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::AuditError;

mod finish;
mod read;
pub mod store;
mod verify;
mod writer;

pub use finish::{digest_file, finish_recording, finished_path, FinishedRecording};
pub use read::{
    decompress, parse_cast, parse_cast_prefix, read_recording, read_recording_with, CastEvent,
    CastEventKind, ReadLimits, Recording,
};
pub use store::{PutOutcome, RecordingChunks, RecordingStore};
pub use verify::{verify_recordings, RecordingProblem, RecordingsReport};
pub use writer::RecordingWriter;

/// Format name of a finished recording, as sealed in `recording_sealed` details.
pub const RECORDING_FORMAT: &str = "asciicast-v2+zstd";

/// Buffered events are written at most this long after they happened (provided
/// [`RecordingWriter::flush_if_due`] is called at least this often).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

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
    pub(super) fn to_line(&self) -> Result<Vec<u8>, AuditError> {
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

    pub(super) fn from_line(line: &[u8]) -> Result<Self, AuditError> {
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

#[cfg(test)]
mod tests;
