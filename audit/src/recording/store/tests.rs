#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

/// `len` bytes that differ from chunk to chunk, in a file under `dir`.
fn spooled(dir: &Path, name: &str, len: usize, seed: u8) -> (PathBuf, String) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 20) as u8)
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    let (sha, _) = crate::recording::digest_file(&path).unwrap();
    (path, sha)
}

fn read_all(store: &RecordingStore, session: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in store.open(session).unwrap().expect("stored") {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= CHUNK_BYTES);
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn a_directory_stores_a_session_once_and_reads_it_back_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordingStore::Dir(dir.path().to_path_buf());
    let session = "01JCV8S3V6Q6M9YB8J4A0Z2XKW";
    let len = 2 * CHUNK_BYTES + 17;
    let (first, sha) = spooled(dir.path(), ".up1", len, 1);
    assert!(store.open(session).unwrap().is_none());
    assert!(store.digest(session).unwrap().is_none());

    let outcome = store.put_once(session, &first, &sha, len as u64).unwrap();
    assert_eq!(outcome, PutOutcome::Stored);
    assert_eq!(read_all(&store, session), std::fs::read(&first).unwrap());
    assert_eq!(
        store.digest(session).unwrap(),
        Some((sha.clone(), len as u64))
    );

    // The same bytes again: a retried upload.
    let (again, _) = spooled(dir.path(), ".up2", len, 1);
    let outcome = store.put_once(session, &again, &sha, len as u64).unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyStored);
    // Other bytes for that session: refused, the stored ones stay.
    let (other, other_sha) = spooled(dir.path(), ".up3", 10, 2);
    let outcome = store.put_once(session, &other, &other_sha, 10).unwrap();
    assert_eq!(outcome, PutOutcome::OtherStored);
    assert_eq!(store.digest(session).unwrap(), Some((sha, len as u64)));
}

#[test]
fn a_session_id_that_is_not_a_plain_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordingStore::Dir(dir.path().to_path_buf());
    let (file, sha) = spooled(dir.path(), ".up", 10, 0);
    for bad in ["", "../etc/passwd", "a/b", "é", &"A".repeat(129)] {
        assert!(store.put_once(bad, &file, &sha, 10).is_err(), "{bad:?}");
        assert!(store.open(bad).is_err(), "{bad:?}");
    }
    // Nothing was linked anywhere: the spooled file is the only entry.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(!dir.path().join("../etc/passwd.cast.zst").exists());
}

#[test]
fn an_empty_recording_is_stored_and_read_back_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordingStore::Dir(dir.path().to_path_buf());
    let (file, sha) = spooled(dir.path(), ".up", 0, 0);
    assert_eq!(
        store.put_once("S1", &file, &sha, 0).unwrap(),
        PutOutcome::Stored
    );
    assert!(read_all(&store, "S1").is_empty());
}
