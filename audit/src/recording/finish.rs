//! Finishing a recording: the torn last line dropped, zstd, SHA-256, fsync.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::AuditError;

/// zstd level for finished recordings: zstd's default, a good speed/ratio point
/// for terminal output.
const ZSTD_LEVEL: i32 = 3;

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
