//! Throughput of session recording: how fast `RecordingWriter` takes terminal
//! output (the bastion calls it on every SSH data packet of a pty session), and how
//! fast `finish_recording` compresses and hashes the result.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-release cargo run --release -p rampart-audit \
//!     --example recording_bench -- [MIB] [CHUNK_BYTES]
//! ```
//!
//! Output is a mix of plain text, ANSI colour sequences and multi-byte UTF-8 cut at
//! arbitrary chunk boundaries (like `ls --color`, `top`, a log tail), defaults
//! 512 MiB in 32 KiB chunks (the SSH channel's usual packet size). The input is a
//! repeated 1 MiB pattern, so the compression ratio printed says nothing about real
//! sessions; the throughputs are the point.
//!
//! One run on the 2-core development machine: 447 MB/s into the `.cast` with 32 KiB
//! chunks (412 MB/s with 4 KiB chunks), `finish_recording` 1.0-1.3 GB/s of `.cast`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use rampart_audit::recording::{finish_recording, RecordingHeader, RecordingWriter};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(512, |a| a.parse().expect("MIB"));
    let chunk: usize = args
        .next()
        .map_or(32 * 1024, |a| a.parse().expect("CHUNK_BYTES"));

    let line = "drwxr-xr-x  2 root root 4096 \x1b[01;34mrésumé-€-日本\x1b[0m \t 12:34 file.txt\r\n";
    let mut pattern = Vec::new();
    while pattern.len() < 1024 * 1024 {
        pattern.extend_from_slice(line.as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.cast");
    let header = RecordingHeader {
        session_id: "01J0000000000000000000BENCH".into(),
        user: "alice".into(),
        login: "root".into(),
        target: "db-1".into(),
        width: 120,
        height: 40,
        started: chrono::DateTime::UNIX_EPOCH,
        record_input: false,
        term: Some("xterm-256color".into()),
    };
    let total = mib * 1024 * 1024;
    let mut w = RecordingWriter::create(&path, &header).unwrap();
    let started = Instant::now();
    let mut written = 0usize;
    let mut offset = 0usize;
    while written < total {
        let n = chunk.min(total - written);
        let start = offset % (pattern.len() - n);
        w.output(
            Duration::from_micros(written as u64 / 64),
            &pattern[start..start + n],
        );
        w.flush_if_due().unwrap();
        written += n;
        offset += n + 7; // a different cut each time, through UTF-8 sequences
    }
    let cast = w.close().unwrap();
    let write_secs = started.elapsed().as_secs_f64();
    let cast_bytes = std::fs::metadata(&cast).unwrap().len();
    let started = Instant::now();
    let fin = finish_recording(&cast).unwrap();
    let finish_secs = started.elapsed().as_secs_f64();
    let mb = total as f64 / 1e6;
    println!(
        "recorded {mib} MiB of terminal output in {chunk}-byte chunks: {:.0} MB/s into the .cast ({:.2} s, .cast {} MB)",
        mb / write_secs,
        write_secs,
        cast_bytes / 1_000_000
    );
    println!(
        "finish (repair, zstd level 3, SHA-256, fsync): {:.0} MB/s of .cast ({:.2} s), .cast.zst {} KB ({:.1}x smaller)",
        cast_bytes as f64 / 1e6 / finish_secs,
        finish_secs,
        fin.bytes / 1000,
        cast_bytes as f64 / fin.bytes as f64
    );
}
