//! Unit tests of the recording format: writer, finish, reader.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use chrono::TimeZone;
use sha2::{Digest, Sha256};

use super::read::parse_event;
use super::writer::{looks_like_text, MAX_CHUNK};
use super::*;

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
    let store = super::RecordingStore::Dir(recs.clone());
    let report = verify_recordings(&db, &store).unwrap();
    assert_eq!((report.sealed, report.matched), (3, 3));
    assert!(report.problems.is_empty());

    let mut bytes = std::fs::read(&sessions[1].1).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&sessions[1].1, &bytes).unwrap();
    std::fs::remove_file(&sessions[2].1).unwrap();
    let report = verify_recordings(&db, &store).unwrap();
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
