//! The witness file: the line format, appending a line (fsynced before the
//! call returns), reading every line strictly, and whether a witness is
//! absent (missing or empty).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::parse_hash;
use crate::checkpoint::Checkpoint;
use crate::event::canonical_time;
use crate::AuditError;

/// What a witness line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessKind {
    /// A signed checkpoint the writer committed.
    Checkpoint,
    /// A checkpoint retention made the anchor (history before it may be pruned).
    Anchor,
}

impl WitnessKind {
    fn as_str(self) -> &'static str {
        match self {
            WitnessKind::Checkpoint => "checkpoint",
            WitnessKind::Anchor => "anchor",
        }
    }
}

/// One parsed witness line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessEntry {
    /// Its line number in the file (from 1).
    pub line: u64,
    /// Checkpoint or anchor.
    pub kind: WitnessKind,
    /// The chain position.
    pub seq: u64,
    /// The chain hash at `seq`.
    pub hash: [u8; 32],
    /// The event's canonical time (part of the signed message).
    pub time: String,
    /// The armored SSHSIG signature by the audit key.
    pub signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    seq: u64,
    hash: String,
    time: String,
    signature: String,
}

/// Longest witness line accepted (a line is a few hundred bytes).
const MAX_LINE: usize = 16 * 1024;

/// Append one line to the witness at `path` (created with mode 0600 if missing)
/// and fsync it before returning.
pub fn append(
    path: &Path,
    kind: WitnessKind,
    seq: u64,
    hash: &[u8; 32],
    time: &str,
    signature: &str,
) -> Result<(), AuditError> {
    append_line(path, kind, seq, hash, time, signature, true)
}

/// [`append`] to a witness that must exist already: a missing file is an
/// error naming it, never a new witness.
pub(crate) fn append_existing(
    path: &Path,
    kind: WitnessKind,
    seq: u64,
    hash: &[u8; 32],
    time: &str,
    signature: &str,
) -> Result<(), AuditError> {
    append_line(path, kind, seq, hash, time, signature, false)
}

/// [`append`], creating the file only when `create` (else a missing file is
/// an error naming it).
fn append_line(
    path: &Path,
    kind: WitnessKind,
    seq: u64,
    hash: &[u8; 32],
    time: &str,
    signature: &str,
    create: bool,
) -> Result<(), AuditError> {
    let mut line = serde_json::to_string(&Line {
        kind: kind.as_str().to_owned(),
        seq,
        hash: hex::encode(hash),
        time: time.to_owned(),
        signature: signature.to_owned(),
    })
    .map_err(|e| AuditError::Witness(format!("encoding a witness line: {e}")))?;
    line.push('\n');
    let existed = path.exists();
    if !existed && !create {
        return Err(AuditError::Witness(format!(
            "{} has disappeared since this log began it; not starting a new one \
             (the CA refuses to start without it: docs/audit.md, \"When the CA \
             refuses to start\")",
            path.display()
        )));
    }
    let mut opts = OpenOptions::new();
    opts.append(true).create(create);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let io = |e: std::io::Error| AuditError::Witness(format!("{}: {e}", path.display()));
    let mut file = opts.open(path).map_err(io)?;
    // One write of the whole line: O_APPEND keeps concurrent lines whole.
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    if !existed {
        // A new file survives a power cut only once its directory entry does.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
    }
    Ok(())
}

/// Append a committed checkpoint.
pub fn append_checkpoint(path: &Path, cp: &Checkpoint) -> Result<(), AuditError> {
    append_checkpoint_to(path, cp, true)
}

/// Append a committed checkpoint, creating the file only when `create`.
pub(crate) fn append_checkpoint_to(
    path: &Path,
    cp: &Checkpoint,
    create: bool,
) -> Result<(), AuditError> {
    append_line(
        path,
        WitnessKind::Checkpoint,
        cp.seq,
        &cp.hash,
        &canonical_time(&cp.time),
        &cp.signature,
        create,
    )
}

/// Read every line of the witness at `path`. Any line that is not a witness
/// line (including a torn last line) is an error naming the line: a witness is
/// evidence, and evidence that does not parse is not silently skipped.
pub fn read(path: &Path) -> Result<Vec<WitnessEntry>, AuditError> {
    let file = File::open(path)
        .map_err(|e| AuditError::Witness(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let got = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| AuditError::Witness(format!("reading {}: {e}", path.display())))?;
        if got == 0 {
            break;
        }
        n += 1;
        let bad = |why: String| AuditError::Witness(format!("{} line {n}: {why}", path.display()));
        if buf.last() != Some(&b'\n') {
            return Err(bad(if buf.len() > MAX_LINE {
                format!("longer than {MAX_LINE} bytes")
            } else {
                "incomplete line (no newline at the end)".into()
            }));
        }
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = std::str::from_utf8(body).map_err(|e| bad(format!("not UTF-8 ({e})")))?;
        let line: Line =
            serde_json::from_str(text).map_err(|e| bad(format!("not a witness line ({e})")))?;
        let kind = match line.kind.as_str() {
            "checkpoint" => WitnessKind::Checkpoint,
            "anchor" => WitnessKind::Anchor,
            other => return Err(bad(format!("unknown type {other:?}"))),
        };
        let hash = parse_hash(&line.hash).ok_or_else(|| bad("hash is not 64 hex digits".into()))?;
        out.push(WitnessEntry {
            line: n,
            kind,
            seq: line.seq,
            hash,
            time: line.time,
            signature: line.signature,
        });
    }
    Ok(out)
}

/// Whether the witness at `path` is missing or empty: either way it records
/// nothing to compare a database with.
pub fn is_absent(path: &Path) -> Result<bool, AuditError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len() == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(AuditError::Witness(format!("{}: {e}", path.display()))),
    }
}
