//! Recordings as files in one directory (the SQLite default).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{PutOutcome, CHUNK_BYTES};
use crate::recording::digest_file;
use crate::AuditError;

fn path_of(dir: &Path, session: &str) -> PathBuf {
    dir.join(format!("{session}.cast.zst"))
}

pub(super) fn put_once(
    dir: &Path,
    session: &str,
    spooled: &Path,
    sha256: &str,
) -> Result<PutOutcome, AuditError> {
    let path = path_of(dir, session);
    let compare = |path: &Path| -> Result<PutOutcome, AuditError> {
        let (have, _) = digest_file(path)?;
        Ok(if have == sha256 {
            PutOutcome::AlreadyStored
        } else {
            PutOutcome::OtherStored
        })
    };
    // A hard link never replaces an existing file, unlike rename: of two
    // concurrent uploads exactly one lands, the other compares.
    match std::fs::hard_link(spooled, &path) {
        Ok(()) => {
            File::open(dir)?.sync_all()?;
            Ok(PutOutcome::Stored)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => compare(&path),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn open(dir: &Path, session: &str) -> Result<Option<File>, AuditError> {
    match File::open(path_of(dir, session)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn next_chunk(file: &mut File) -> Option<Result<Vec<u8>, AuditError>> {
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    match file
        .by_ref()
        .take(CHUNK_BYTES as u64)
        .read_to_end(&mut chunk)
    {
        Ok(0) => None,
        Ok(_) => Some(Ok(chunk)),
        Err(e) => Some(Err(e.into())),
    }
}
