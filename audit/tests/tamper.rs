//! Tampering with the database file, as an attacker holding `sqlite3` and write
//! access would (triggers dropped first), must make `verify` name the first bad
//! sequence number and say why.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use rampart_audit::{verify, Checkpoint};
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

const N: u64 = 50;
const EVERY: u64 = 10;

fn sha(prev: &[u8], body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().to_vec()
}

fn body_of(c: &Connection, seq: i64) -> String {
    c.query_row("SELECT body FROM events WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Recompute every hash from `from` on, as a careful attacker would after an edit.
fn rechain(c: &Connection, from: i64) {
    let mut prev: Vec<u8> = if from == 1 {
        vec![0; 32]
    } else {
        c.query_row("SELECT hash FROM events WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let rows: Vec<(i64, String)> = c
        .prepare("SELECT seq, body FROM events WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, body) in rows {
        let h = sha(&prev, body.as_bytes());
        c.execute(
            "UPDATE events SET hash = ?1 WHERE seq = ?2",
            params![h, seq],
        )
        .unwrap();
        prev = h;
    }
}

type Tamper = fn(&Connection);

fn cases() -> Vec<(&'static str, Tamper, u64, &'static str)> {
    vec![
        (
            "alter a field inside the body",
            |c| {
                let b = body_of(c, 17).replace("\"user\":\"user3\"", "\"user\":\"userX\"");
                assert!(b.contains("userX"));
                c.execute("UPDATE events SET body = ?1 WHERE seq = 17", [b])
                    .unwrap();
            },
            17,
            "hash mismatch (event altered)",
        ),
        (
            "alter the outcome in the body",
            |c| {
                let b =
                    body_of(c, 25).replace("\"outcome\":\"failure\"", "\"outcome\":\"success\"");
                c.execute("UPDATE events SET body = ?1 WHERE seq = 25", [b])
                    .unwrap();
            },
            25,
            "hash mismatch",
        ),
        (
            "alter the body and fix up that row's hash only",
            |c| {
                let b = body_of(c, 17).replace("\"i\":17", "\"i\":99");
                let prev: Vec<u8> = c
                    .query_row("SELECT hash FROM events WHERE seq = 16", [], |r| r.get(0))
                    .unwrap();
                let h = sha(&prev, b.as_bytes());
                c.execute(
                    "UPDATE events SET body = ?1, hash = ?2 WHERE seq = 17",
                    params![b, h],
                )
                .unwrap();
            },
            18,
            "hash mismatch",
        ),
        (
            "alter the body and re-chain everything after it",
            |c| {
                let b = body_of(c, 17).replace("\"i\":17", "\"i\":99");
                c.execute("UPDATE events SET body = ?1 WHERE seq = 17", [b])
                    .unwrap();
                rechain(c, 17);
            },
            20,
            "checkpoint hash does not match the chain",
        ),
        (
            "alter the stored hash",
            |c| {
                c.execute("UPDATE events SET hash = zeroblob(32) WHERE seq = 9", [])
                    .unwrap();
            },
            9,
            "hash mismatch",
        ),
        (
            "store the hash as text",
            |c| {
                c.execute_batch("PRAGMA ignore_check_constraints = ON")
                    .unwrap();
                c.execute("UPDATE events SET hash = hex(hash) WHERE seq = 9", [])
                    .unwrap_or_else(|_| {
                        // STRICT tables refuse a TEXT hash outright; alter it another way.
                        c.execute("UPDATE events SET hash = X'00' WHERE seq = 9", [])
                            .unwrap()
                    });
            },
            9,
            "hash mismatch",
        ),
        (
            "alter the indexed user column",
            |c| {
                c.execute("UPDATE events SET user = 'mallory' WHERE seq = 23", [])
                    .unwrap();
            },
            23,
            "indexed column `user`",
        ),
        (
            "null the indexed user column",
            |c| {
                c.execute("UPDATE events SET user = NULL WHERE seq = 24", [])
                    .unwrap();
            },
            24,
            "indexed column `user`",
        ),
        (
            "alter the indexed time column",
            |c| {
                c.execute(
                    "UPDATE events SET time = '2020-01-01T00:00:00.000000000Z' WHERE seq = 31",
                    [],
                )
                .unwrap();
            },
            31,
            "indexed column `time`",
        ),
        (
            "alter the indexed kind column",
            |c| {
                c.execute("UPDATE events SET kind = 'ca_started' WHERE seq = 8", [])
                    .unwrap();
            },
            8,
            "indexed column `kind`",
        ),
        (
            "alter the indexed serial column",
            |c| {
                c.execute("UPDATE events SET serial = 1 WHERE seq = 33", [])
                    .unwrap();
            },
            33,
            "indexed column `serial`",
        ),
        (
            "add a serial where there was none",
            |c| {
                c.execute("UPDATE events SET serial = 1 WHERE seq = 34", [])
                    .unwrap();
            },
            34,
            "indexed column `serial`",
        ),
        (
            "alter the indexed id column",
            |c| {
                c.execute(
                    "UPDATE events SET id = '01ARZ3NDEKTSV4RRFFQ69G5FAV' WHERE seq = 2",
                    [],
                )
                .unwrap();
            },
            2,
            "indexed column `id`",
        ),
        (
            "delete a row in the middle",
            |c| {
                c.execute("DELETE FROM events WHERE seq = 30", []).unwrap();
            },
            30,
            "missing (row deleted",
        ),
        (
            "delete the first row",
            |c| {
                c.execute("DELETE FROM events WHERE seq = 1", []).unwrap();
            },
            1,
            "missing",
        ),
        (
            "swap two whole rows (body and hash)",
            |c| {
                c.execute_batch(
                    "CREATE TEMP TABLE s AS SELECT * FROM events WHERE seq IN (12, 15);
                     UPDATE events SET id = 'tmp12', body = (SELECT body FROM s WHERE seq = 15),
                         hash = (SELECT hash FROM s WHERE seq = 15) WHERE seq = 12;
                     UPDATE events SET id = (SELECT id FROM s WHERE seq = 12),
                         body = (SELECT body FROM s WHERE seq = 12),
                         hash = (SELECT hash FROM s WHERE seq = 12) WHERE seq = 15;
                     UPDATE events SET id = (SELECT id FROM s WHERE seq = 15) WHERE seq = 12;",
                )
                .unwrap();
            },
            12,
            "event body belongs at sequence 15",
        ),
        (
            "exchange the bodies of two rows",
            |c| {
                let (a, b) = (body_of(c, 12), body_of(c, 15));
                c.execute("UPDATE events SET body = ?1 WHERE seq = 12", [b])
                    .unwrap();
                c.execute("UPDATE events SET body = ?1 WHERE seq = 15", [a])
                    .unwrap();
            },
            12,
            "event body belongs at sequence 15",
        ),
        (
            "renumber two rows",
            |c| {
                c.execute_batch(
                    "UPDATE events SET seq = 1000012 WHERE seq = 12;
                     UPDATE events SET seq = 12 WHERE seq = 15;
                     UPDATE events SET seq = 15 WHERE seq = 1000012;",
                )
                .unwrap();
            },
            12,
            "event body belongs at sequence 15",
        ),
        (
            "duplicate a row at the end",
            |c| {
                c.execute_batch(
                    "DROP INDEX events_id;
                     INSERT INTO events SELECT 51, id, time, kind, user, serial, body, hash FROM events WHERE seq = 5;",
                )
                .unwrap();
            },
            51,
            "event body belongs at sequence 5",
        ),
        (
            "cut the tail before the last checkpoint",
            |c| {
                c.execute("DELETE FROM events WHERE seq > 44", []).unwrap();
            },
            45,
            "log ends at sequence 44 but a checkpoint was signed at sequence 50 (tail removed)",
        ),
        (
            "cut the tail and the checkpoints after it but not the checkpoints table's last one",
            |c| {
                c.execute("DELETE FROM events WHERE seq > 35", []).unwrap();
                c.execute("DELETE FROM checkpoints WHERE seq = 40", [])
                    .unwrap();
            },
            36,
            "tail removed",
        ),
        (
            "forge a checkpoint signature with another key",
            |c| {
                let (hash, time): (Vec<u8>, String) = c
                    .query_row(
                        "SELECT hash, time FROM checkpoints WHERE seq = 30",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                let t = chrono::DateTime::parse_from_rfc3339(&time)
                    .unwrap()
                    .with_timezone(&chrono::Utc);
                let cp = Checkpoint::sign(&other_key(), 30, hash.try_into().unwrap(), t).unwrap();
                c.execute(
                    "UPDATE checkpoints SET signature = ?1 WHERE seq = 30",
                    [cp.signature],
                )
                .unwrap();
            },
            30,
            "checkpoint signature invalid",
        ),
        (
            "garble a checkpoint signature",
            |c| {
                c.execute(
                    "UPDATE checkpoints SET signature = 'not a signature' WHERE seq = 10",
                    [],
                )
                .unwrap();
            },
            10,
            "checkpoint signature invalid",
        ),
        (
            "move a checkpoint's hash",
            |c| {
                c.execute("UPDATE checkpoints SET hash = (SELECT hash FROM events WHERE seq = 19) WHERE seq = 20", [])
                    .unwrap();
            },
            20,
            "checkpoint hash does not match the chain",
        ),
        (
            "alter a checkpoint's time",
            |c| {
                c.execute(
                    "UPDATE checkpoints SET time = '2030-01-01T00:00:00.000000000Z' WHERE seq = 40",
                    [],
                )
                .unwrap();
            },
            40,
            "checkpoint time does not match the event",
        ),
        (
            "re-sign a rewritten chain with the attacker's key",
            |c| {
                let b = body_of(c, 3).replace("\"i\":3", "\"i\":99");
                c.execute("UPDATE events SET body = ?1 WHERE seq = 3", [b])
                    .unwrap();
                rechain(c, 3);
                let rows: Vec<(i64, Vec<u8>, String)> = c
                    .prepare(
                        "SELECT c.seq, e.hash, e.time FROM checkpoints c JOIN events e USING (seq)",
                    )
                    .unwrap()
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                for (seq, hash, time) in rows {
                    let t = chrono::DateTime::parse_from_rfc3339(&time)
                        .unwrap()
                        .with_timezone(&chrono::Utc);
                    let cp = Checkpoint::sign(
                        &other_key(),
                        seq as u64,
                        hash.clone().try_into().unwrap(),
                        t,
                    )
                    .unwrap();
                    c.execute(
                        "UPDATE checkpoints SET hash = ?1, signature = ?2 WHERE seq = ?3",
                        params![hash, cp.signature, seq],
                    )
                    .unwrap();
                }
            },
            10,
            "checkpoint signature invalid",
        ),
    ]
}

#[test]
fn every_tampering_is_detected_at_the_right_sequence() {
    let pristine = Fixture::new();
    build(&pristine.path, N, EVERY);
    let clean = verify(&pristine.path, Some(key().public_key())).unwrap();
    assert_eq!(clean.problem, None);
    assert_eq!((clean.events, clean.checkpoints), (N, N / EVERY));

    for (name, tamper, seq, reason) in cases() {
        let f = Fixture::new();
        std::fs::copy(&pristine.path, &f.path).unwrap();
        let c = attacker(&f.path);
        tamper(&c);
        drop(c);
        let r = verify(&f.path, Some(key().public_key())).unwrap();
        let p = r
            .problem
            .clone()
            .unwrap_or_else(|| panic!("{name}: not detected"));
        assert_eq!(p.seq, seq, "{name}: {p}");
        assert!(
            p.reason.contains(reason),
            "{name}: got {p:?}, want {reason:?}"
        );
        assert_eq!(p.to_string(), format!("sequence {}: {}", p.seq, p.reason));
        assert!(r.last_seq < seq, "{name}: report counts only good events");
    }
}

#[test]
fn problem_display_matches_contract() {
    let f = Fixture::new();
    build(&f.path, 50, 10);
    let c = attacker(&f.path);
    let b = body_of(&c, 42).replace("\"i\":42", "\"i\":43");
    c.execute("UPDATE events SET body = ?1 WHERE seq = 42", [b])
        .unwrap();
    drop(c);
    let p = verify(&f.path, None).unwrap().problem.unwrap();
    assert_eq!(p.to_string(), "sequence 42: hash mismatch (event altered)");
}

#[test]
fn verify_works_while_the_writer_is_running() {
    let f = Fixture::new();
    let log = f.open(config(10));
    for i in 1..=30 {
        log.append(ev(i)).unwrap();
    }
    let r = verify(&f.path, Some(key().public_key())).unwrap();
    assert_eq!((r.events, r.problem), (30, None));
    log.close().unwrap();
}

#[test]
fn a_corrupt_file_is_an_error_not_a_pass() {
    let f = Fixture::new();
    build(&f.path, 20, 10);
    let mut bytes = std::fs::read(&f.path).unwrap();
    for b in bytes.iter_mut().skip(100) {
        *b = 0xff;
    }
    std::fs::write(&f.path, bytes).unwrap();
    assert!(verify(&f.path, Some(key().public_key())).is_err());
}

/// Fill a log quickly from many threads (verify's chunking needs a few thousand rows).
fn build_concurrently(path: &std::path::Path, n: u64) {
    let log = rampart_audit::AuditLog::open(path, Some(key()), config(1000)).unwrap();
    let threads = 32;
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..n / threads {
                    log.append(ev(t * (n / threads) + i)).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    log.close().unwrap();
}

#[test]
fn first_problem_wins_across_verify_chunks() {
    const BIG: u64 = 6400; // several verify chunks (2048 rows each)
    let pristine = Fixture::new();
    build_concurrently(&pristine.path, BIG);
    let clean = verify(&pristine.path, Some(key().public_key())).unwrap();
    assert_eq!(clean.problem, None);
    assert_eq!(clean.events, BIG);
    assert_eq!(clean.last_checkpoint_seq, BIG);

    let cases: Vec<(&str, &str, u64, &str)> = vec![
        (
            "body in chunk 2",
            "UPDATE events SET body = replace(body, '\"v\":1', '\"v\":1 ') WHERE seq = 3000",
            3000,
            "hash mismatch",
        ),
        (
            "delete first row of chunk 2",
            "DELETE FROM events WHERE seq = 2049",
            2049,
            "missing",
        ),
        (
            "delete last row of chunk 1",
            "DELETE FROM events WHERE seq = 2048",
            2048,
            "missing",
        ),
        (
            "indexed column in chunk 3",
            // Events are built concurrently, so which kind sits at 4097 varies: flip it
            // to a kind it is not.
            "UPDATE events SET kind = CASE kind WHEN 'revoked' THEN 'cert_issued' ELSE 'revoked' END WHERE seq = 4097",
            4097,
            "indexed column `kind`",
        ),
        (
            "two edits: the earlier one is reported",
            "UPDATE events SET user = 'x' WHERE seq IN (2100, 6000)",
            2100,
            "indexed column `user`",
        ),
        (
            "cut tail before last checkpoint",
            "DELETE FROM events WHERE seq > 4500",
            4501,
            "tail removed",
        ),
        (
            "checkpoint in a later chunk",
            "UPDATE checkpoints SET signature = 'bad' WHERE seq = 4000",
            4000,
            "checkpoint signature invalid",
        ),
    ];
    for (name, sql, seq, reason) in cases {
        let f = Fixture::new();
        std::fs::copy(&pristine.path, &f.path).unwrap();
        let c = attacker(&f.path);
        assert!(c.execute(sql, []).unwrap() >= 1, "{name}: no row changed");
        drop(c);
        let r = verify(&f.path, Some(key().public_key())).unwrap();
        let p = r
            .problem
            .clone()
            .unwrap_or_else(|| panic!("{name}: not detected"));
        assert_eq!(p.seq, seq, "{name}: {p}");
        assert!(p.reason.contains(reason), "{name}: {p}");
        assert_eq!(
            r.events,
            seq - 1,
            "{name}: good events counted up to the problem"
        );
        assert_eq!(r.last_seq, seq - 1, "{name}");
        assert_eq!(r.last_checkpoint_seq, (seq - 1) / 1000 * 1000, "{name}");
    }
}
