//! Audit events on the bastion's disk while the CA cannot take them.
//!
//! **Owns:** the event spool: a directory of segment files, each one batch of
//! at most [`rampart_api::MAX_EVENTS_PER_BATCH`] events as JSON lines, named by
//! a sequence number so that they are resent in the order they were written.
//! A segment is written to a temporary file, fsynced and renamed into place
//! (then the directory is fsynced), so a crash leaves whole segments or none:
//! `kill -9` loses nothing that reached the spool. A segment is removed only
//! after the CA acknowledged every event in it; a segment resent after a crash
//! is harmless because every event carries the ULID the CA dedups on.
//!
//! The spool is bounded twice. At its size ([`EventSpool::is_full`]) the
//! bastion refuses new sessions rather than lose events (see `crate::audit`);
//! the sessions already live may go on writing up to [`HARD_LIMIT_FACTOR`]
//! times that, so that what they do keeps reaching the disk; past that,
//! appends are refused and events wait in memory (lost only if the bastion
//! dies before the CA is back).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rampart_api::BastionEvent;

/// How far past its size the spool still takes the events of live sessions.
pub const HARD_LIMIT_FACTOR: u64 = 4;

/// Suffix of a segment file.
const SEGMENT_SUFFIX: &str = ".events.jsonl";

/// Largest segment read back (a batch of 256 events of at most ~140 KiB each).
const MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The spool directory and what is in it.
#[derive(Debug)]
pub struct EventSpool {
    dir: PathBuf,
    max_bytes: u64,
    /// Segments by sequence number, with their sizes.
    segments: BTreeMap<u64, u64>,
}

impl EventSpool {
    /// Open (and create) `dir`, holding at most `max_bytes` of segments.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<EventSpool> {
        fs::create_dir_all(dir)?;
        let mut segments = BTreeMap::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            segments.insert(seq, entry.metadata()?.len());
        }
        Ok(EventSpool {
            dir: dir.to_owned(),
            max_bytes,
            segments,
        })
    }

    /// No segment is waiting.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes of segments waiting.
    pub fn bytes(&self) -> u64 {
        self.segments.values().sum()
    }

    /// The spool holds its size: new sessions must be refused.
    pub fn is_full(&self) -> bool {
        self.bytes() >= self.max_bytes
    }

    /// Past the hard limit: no more segments are written.
    fn past_hard_limit(&self) -> bool {
        self.bytes() >= self.max_bytes.saturating_mul(HARD_LIMIT_FACTOR)
    }

    /// Events waiting, counted by segment line (for logs and tests).
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
    }

    /// Write `events` as one new segment, durably, after every existing one.
    /// Refused past the hard limit (the caller keeps the events).
    pub fn append(&mut self, events: &[BastionEvent]) -> io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if self.past_hard_limit() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the audit event spool is full",
            ));
        }
        let seq = self.segments.keys().next_back().map_or(1, |last| last + 1);
        let mut text = Vec::new();
        for e in events {
            serde_json::to_writer(&mut text, e)?;
            text.push(b'\n');
        }
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.segments.insert(seq, text.len() as u64);
        Ok(())
    }

    /// The oldest segment's events, or `None` when the spool is empty. A line
    /// that does not parse (the file was edited) is skipped with an error log:
    /// the rest of the segment is still delivered.
    pub fn oldest(&self) -> Option<io::Result<Vec<BastionEvent>>> {
        let (&seq, _) = self.segments.iter().next()?;
        Some(self.read(seq))
    }

    fn read(&self, seq: u64) -> io::Result<Vec<BastionEvent>> {
        let path = self.path(seq);
        let file = File::open(&path)?;
        let mut events = Vec::new();
        let reader = BufReader::new(io::Read::take(file, MAX_SEGMENT_BYTES));
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<BastionEvent>(&line) {
                Ok(e) => events.push(e),
                Err(e) => tracing::error!(
                    "spooled audit event {}:{} is unreadable and is skipped: {e}",
                    path.display(),
                    i + 1
                ),
            }
        }
        Ok(events)
    }

    /// Remove the oldest segment (the CA acknowledged all of it).
    pub fn pop_oldest(&mut self) -> io::Result<()> {
        let Some((&seq, _)) = self.segments.iter().next() else {
            return Ok(());
        };
        match fs::remove_file(self.path(seq)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        File::open(&self.dir)?.sync_all()?;
        self.segments.remove(&seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::audit::{detail, event};
    use rampart_api::BastionEventKind;

    fn events(from: u32, n: u32) -> Vec<BastionEvent> {
        (from..from + n)
            .map(|i| {
                detail(
                    event(BastionEventKind::FileOp, true, chrono::Utc::now()),
                    "n",
                    i,
                )
            })
            .collect()
    }

    #[test]
    fn segments_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = EventSpool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.is_empty() && spool.oldest().is_none());
        let (a, b) = (events(0, 3), events(3, 2));
        spool.append(&a).unwrap();
        spool.append(&b).unwrap();
        // A crash between segments: reopen and find both, in order, as written.
        let mut spool = EventSpool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.segments(), 2);
        assert_eq!(spool.oldest().unwrap().unwrap(), a);
        spool.pop_oldest().unwrap();
        let second = spool.oldest().unwrap().unwrap();
        assert_eq!(second[0].details["n"], 3);
        spool.append(&events(5, 1)).unwrap();
        spool.pop_oldest().unwrap();
        assert_eq!(spool.oldest().unwrap().unwrap()[0].details["n"], 5);
        spool.pop_oldest().unwrap();
        assert!(spool.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_full_spool_refuses_more_and_an_edited_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = EventSpool::open(dir.path(), 100).unwrap();
        spool.append(&events(0, 2)).unwrap();
        assert!(spool.is_full(), "new sessions are refused");
        // Live sessions still write, up to the hard limit.
        while spool.bytes() < 100 * HARD_LIMIT_FACTOR {
            spool.append(&events(2, 1)).unwrap();
        }
        let err = spool.append(&events(2, 1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        // Someone edits the segment: the good lines still go.
        let path = spool.path(1);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "{not json}\n");
        std::fs::write(&path, text).unwrap();
        let back = spool.oldest().unwrap().unwrap();
        assert_eq!(back.len(), 2);
        // Temporary files of an interrupted write are not segments.
        let segments = spool.segments();
        std::fs::write(dir.path().join("00000000000000000999.events.tmp"), "x").unwrap();
        let reopened = EventSpool::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.segments(), segments);
    }
}
