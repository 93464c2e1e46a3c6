//! Durable-append and verify throughput of the audit log, against a plain-SQLite
//! baseline in the same run.
//!
//! ```sh
//! cargo run --release -p rampart-audit --example audit_bench -- --events 1000000 --threads 32
//! ```
//!
//! * chain: `--threads` threads call `AuditLog::append` (blocking, durable) in a
//!   loop; the writer group-commits whatever is queued into one transaction.
//! * baseline: one thread, the same file settings (WAL, `synchronous=FULL`), the
//!   same columns and indexes, one `INSERT` per transaction (autocommit) — what a
//!   naive "fsync every event" audit table does. Run for `--baseline-events`.
//! * verify: `rampart_audit::verify` over the chain that was just built.
//!
//! Every figure is for durable writes: each acknowledged event was fsynced.
//!
//! With `--postgres URL` (an empty database) the same runs go to PostgreSQL:
//! the chain through `--writers` logs at once (as many CAs appending to one
//! chain), the baseline as one `INSERT` per autocommitted statement, and
//! verify on a byte-for-byte SQLite copy. `scripts/bench-ha` runs it on a
//! throwaway cluster with PostgreSQL's durable defaults (`fsync`,
//! `synchronous_commit = on`).

// A benchmark binary: panicking on a setup error is the right behaviour.
// A benchmark stamps its events and codes with the real time.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Instant;

use rampart_audit::{verify, AuditConfig, AuditLog, EventKind, NewEvent, Outcome};
use ssh_key::private::Ed25519Keypair;
use ssh_key::PrivateKey;

struct Args {
    events: u64,
    threads: u64,
    baseline_events: u64,
    dir: Option<std::path::PathBuf>,
    keep: bool,
    verify_only: Option<std::path::PathBuf>,
    postgres: Option<String>,
    writers: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 100_000,
        threads: 32,
        baseline_events: 1_000,
        dir: None,
        keep: false,
        verify_only: None,
        postgres: None,
        writers: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => a.events = val().parse().expect("--events N"),
            "--threads" => a.threads = val().parse().expect("--threads N"),
            "--baseline-events" => a.baseline_events = val().parse().expect("--baseline-events N"),
            "--dir" => a.dir = Some(val().into()),
            "--keep" => a.keep = true,
            "--verify-only" => a.verify_only = Some(val().into()),
            "--postgres" => a.postgres = Some(val()),
            "--writers" => a.writers = val().parse().expect("--writers N"),
            "-h" | "--help" => {
                println!("audit_bench [--events N] [--threads N] [--baseline-events N] [--dir PATH] [--keep] [--verify-only DB] [--postgres URL [--writers N]]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.threads >= 1 && a.events >= a.threads,
        "need at least one event per thread"
    );
    a
}

fn event(i: u64) -> NewEvent {
    let kinds = EventKind::all();
    NewEvent::new(
        kinds[(i as usize) % kinds.len()],
        Outcome::Success,
        chrono::Utc::now(),
    )
    .user(&format!("user{}", i % 1000))
    .source("192.0.2.44")
    .target("root@db-1.prod")
    .session("01JN8W1M3V3ZQ8Y1R7V9X2K4TB")
    .serial(1_000_000 + i)
    .mfa_method("totp")
    .mfa_age_seconds(42)
    .detail("principals", serde_json::json!(["root", "deploy"]))
    .detail("ttl_seconds", 3600)
}

fn rate(n: u64, secs: f64) -> f64 {
    n as f64 / secs
}

fn main() {
    let args = parse_args();
    if let Some(db) = &args.verify_only {
        let start = Instant::now();
        let report = verify(db, None).unwrap();
        let vsecs = start.elapsed().as_secs_f64();
        println!(
            "verify   : {} events in {vsecs:.2} s = {:.0} events/s ({:?})",
            report.events,
            rate(report.events, vsecs),
            report.problem
        );
        return;
    }
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap(),
    };
    if let Some(url) = &args.postgres {
        return postgres_bench(&args, url, tmp.path());
    }
    println!(
        "audit_bench: {} events, {} threads, baseline {} events, in {}",
        args.events,
        args.threads,
        args.baseline_events,
        tmp.path().display()
    );

    // ---- chain (group commit) ----
    let path = tmp.path().join("audit.db");
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[42; 32]));
    let pubkey = key.public_key().clone();
    let log = AuditLog::open(&path, Some(key), AuditConfig::default()).unwrap();
    let per = args.events / args.threads;
    let total = per * args.threads;
    let start = Instant::now();
    let handles: Vec<_> = (0..args.threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    log.append(event(t * per + i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let chain_secs = start.elapsed().as_secs_f64();
    log.close().unwrap();
    let chain_rate = rate(total, chain_secs);
    println!("chain    : {total} durable appends in {chain_secs:.2} s = {chain_rate:.0} appends/s ({} threads, group commit)", args.threads);

    // ---- baseline: one INSERT per transaction ----
    let bpath = tmp.path().join("baseline.db");
    let conn = rusqlite::Connection::open(&bpath).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, time TEXT NOT NULL,
            kind TEXT NOT NULL, user TEXT, serial INTEGER, body TEXT NOT NULL, hash BLOB NOT NULL);
         CREATE UNIQUE INDEX events_id ON events(id);
         CREATE INDEX events_time ON events(time);
         CREATE INDEX events_kind_time ON events(kind, time);
         CREATE INDEX events_user_time ON events(user, time) WHERE user IS NOT NULL;
         CREATE INDEX events_serial ON events(serial) WHERE serial IS NOT NULL;",
    )
    .unwrap();
    let mut ins = conn
        .prepare("INSERT INTO events (seq, id, time, kind, user, serial, body, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .unwrap();
    let start = Instant::now();
    for i in 1..=args.baseline_events {
        let now = chrono::Utc::now();
        let body = serde_json::json!({
            "seq": i, "time": now.to_rfc3339(), "kind": "cert_issued", "user": format!("user{}", i % 1000),
            "source": "192.0.2.44", "target": "root@db-1.prod", "serial": 1_000_000 + i,
            "mfa_method": "totp", "mfa_age_seconds": 42, "details": {"principals": ["root", "deploy"], "ttl_seconds": 3600}
        })
        .to_string();
        ins.execute(rusqlite::params![
            i as i64,
            ulid::Ulid::new().to_string(),
            now.to_rfc3339(),
            "cert_issued",
            format!("user{}", i % 1000),
            (1_000_000 + i) as i64,
            body,
            &[0u8; 32][..],
        ])
        .unwrap();
    }
    let base_secs = start.elapsed().as_secs_f64();
    let base_rate = rate(args.baseline_events, base_secs);
    println!(
        "baseline : {} durable inserts in {base_secs:.2} s = {base_rate:.0} inserts/s (1 thread, 1 INSERT per transaction, WAL, synchronous=FULL)",
        args.baseline_events
    );
    println!(
        "ratio    : chain / baseline = {:.1}x",
        chain_rate / base_rate
    );

    // ---- verify ----
    let start = Instant::now();
    let report = verify(&path, Some(&pubkey)).unwrap();
    let vsecs = start.elapsed().as_secs_f64();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    println!(
        "verify   : {} events, {} checkpoints in {vsecs:.2} s = {:.0} events/s",
        report.events,
        report.checkpoints,
        rate(report.events, vsecs)
    );
    if args.keep {
        println!("kept     : {}", tmp.keep().display());
    }
}

/// Append `per` events from each of `threads` threads, thread `t` through
/// `logs[t % logs.len()]`; the rate in appends per second.
fn run_chain(logs: &[AuditLog], threads: u64, per: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = logs[(t as usize) % logs.len()].clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    log.append(event(t * per + i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    rate(per * threads, start.elapsed().as_secs_f64())
}

fn postgres_bench(args: &Args, url: &str, tmp: &std::path::Path) {
    use std::sync::Arc;
    let db = rampart_audit::pg_config(url, None).unwrap();
    println!(
        "audit_bench (PostgreSQL): {} events, {} threads over {} writers, baseline {} events",
        args.events, args.threads, args.writers, args.baseline_events
    );
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[42; 32]));
    let pubkey = key.public_key().clone();
    let signer: Arc<dyn rampart_audit::CheckpointSigner> = Arc::new(key);
    let logs: Vec<AuditLog> = (0..args.writers.max(1))
        .map(|_| {
            AuditLog::open_postgres(&db, Some(Arc::clone(&signer)), AuditConfig::default()).unwrap()
        })
        .collect();
    let per = args.events / args.threads;
    let chain_rate = run_chain(&logs, args.threads, per);
    for log in &logs {
        log.close().unwrap();
    }
    println!(
        "chain    : {} durable appends = {chain_rate:.0} appends/s ({} threads, {} writers, group commit)",
        per * args.threads,
        args.threads,
        args.writers
    );

    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(
        "CREATE TABLE bench_baseline (seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            time TEXT NOT NULL, kind TEXT NOT NULL, \"user\" TEXT, serial BIGINT,
            body TEXT NOT NULL, hash BYTEA NOT NULL)",
    )
    .unwrap();
    let ins = c
        .prepare("INSERT INTO bench_baseline VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .unwrap();
    let start = Instant::now();
    for i in 1..=args.baseline_events {
        let now = chrono::Utc::now().to_rfc3339();
        let user = format!("user{}", i % 1000);
        let body = serde_json::json!({"seq": i, "time": now, "kind": "cert_issued", "user": user})
            .to_string();
        c.execute(
            &ins,
            &[
                &(i as i64),
                &ulid::Ulid::new().to_string(),
                &now,
                &"cert_issued",
                &user,
                &((1_000_000 + i) as i64),
                &body,
                &&[0u8; 32][..],
            ],
        )
        .unwrap();
    }
    let base_rate = rate(args.baseline_events, start.elapsed().as_secs_f64());
    println!(
        "baseline : {} durable inserts = {base_rate:.0} inserts/s (1 thread, 1 INSERT per transaction)",
        args.baseline_events
    );
    println!(
        "ratio    : chain / baseline = {:.1}x",
        chain_rate / base_rate
    );

    let copy = tmp.join("copy.db");
    let start = Instant::now();
    let copied = rampart_audit::copy_to_sqlite(&db, &copy).unwrap();
    let csecs = start.elapsed().as_secs_f64();
    let report = verify(&copy, Some(&pubkey)).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    println!(
        "copy     : {copied} events to SQLite in {csecs:.2} s; verify: {} events, {} checkpoints OK",
        report.events, report.checkpoints
    );
}
