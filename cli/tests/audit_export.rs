//! `rampart audit export` and `rampart audit verify --export`, run as the real
//! binary over a real signed log written by `rampart-audit`: every format, the
//! filters, the offline proof of a JSON Lines copy and its failure on a tampered
//! copy (exit 6), and the one-line errors with their documented exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{TimeZone, Utc};
use rampart_audit::{AuditConfig, AuditLog, EventKind, NewEvent, Outcome};
use ssh_key::{getrandom::SysRng, rand_core::UnwrapErr, Algorithm, PrivateKey};

fn rampart(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env("RAMPART_HOME", home)
        .env("HOME", home)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_error(o: &Output, code: i32, line: &str) {
    assert_eq!(
        stderr(o),
        format!("rampart: error: {line}\n"),
        "{}",
        stdout(o)
    );
    assert_eq!(o.status.code(), Some(code));
}

struct Setup {
    dir: tempfile::TempDir,
    db: PathBuf,
    pubkey: PathBuf,
}

impl Setup {
    fn s(&self, p: &Path) -> String {
        p.to_str().unwrap().to_owned()
    }
}

/// 45 events (every kind, alternating users alice/bob, one hostile reason),
/// checkpoints every 10 and at close (45).
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = PrivateKey::random(&mut UnwrapErr(SysRng), Algorithm::Ed25519).unwrap();
    let pubkey = dir.path().join("audit.pub");
    std::fs::write(&pubkey, key.public_key().to_openssh().unwrap()).unwrap();
    let cfg = AuditConfig {
        checkpoint_every_events: 10,
        ..AuditConfig::default()
    };
    let log = AuditLog::open(&db, Some(key), cfg).unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    let kinds = EventKind::all();
    for i in 0..45u32 {
        let kind = kinds[i as usize % kinds.len()];
        let mut e = NewEvent::new(
            kind,
            Outcome::Success,
            t0 + chrono::Duration::minutes(i.into()),
        )
        .user(if i % 2 == 0 { "alice" } else { "bob" })
        .source("192.0.2.10");
        if i == 7 {
            e = e.reason("a|b=c\\d\n\"e\" ]f ü");
        }
        log.append(e).unwrap();
    }
    log.close().unwrap();
    Setup { dir, db, pubkey }
}

#[test]
fn export_jsonl_then_verify_offline_and_detect_tampering() {
    let s = setup();
    let home = s.dir.path();
    let out = s.dir.path().join("copy.jsonl");
    let o = rampart(
        home,
        &[
            "audit",
            "export",
            "--db",
            &s.s(&s.db),
            "--format",
            "jsonl",
            "-o",
            &s.s(&out),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "wrote 45 events (sequence 1 to 45, 5 checkpoints) to {}\n",
            out.display()
        )
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 1 + 45 + 5);
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());

    let verify = |file: &Path| {
        rampart(
            home,
            &[
                "audit",
                "verify",
                "--export",
                &s.s(file),
                "--audit-pubkey",
                &s.s(&s.pubkey),
            ],
        )
    };
    let o = verify(&out);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        "OK: events 1 to 45 are complete and unaltered: 45 events, 5 checkpoints verified\n"
    );

    // Edit one byte of event 24's hashed body ("bob" → "bib").
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let i = lines
        .iter()
        .position(|l| l.contains("\"type\":\"event\",\"v\":1,\"seq\":24,"))
        .unwrap();
    let at = lines[i].find("\\\"user\\\":\\\"bob\\\"").unwrap();
    lines[i].replace_range(at + 12..at + 13, "i");
    let bad = s.dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = verify(&bad);
    assert_eq!(o.status.code(), Some(6), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("FAILED at sequence 24: "),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).is_empty());

    // Drop event 31's line.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.retain(|l| !l.contains("\"type\":\"event\",\"v\":1,\"seq\":31,"));
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = verify(&bad);
    assert_eq!(o.status.code(), Some(6));
    assert!(
        stdout(&o).starts_with("FAILED at sequence 31: event 31 is missing"),
        "{}",
        stdout(&o)
    );

    // The wrong key proves nothing.
    let other = PrivateKey::random(&mut UnwrapErr(SysRng), Algorithm::Ed25519).unwrap();
    let other_pub = s.dir.path().join("other.pub");
    std::fs::write(&other_pub, other.public_key().to_openssh().unwrap()).unwrap();
    let o = rampart(
        home,
        &[
            "audit",
            "verify",
            "--export",
            &s.s(&out),
            "--audit-pubkey",
            &s.s(&other_pub),
        ],
    );
    assert_eq!(o.status.code(), Some(6));
    assert!(
        stdout(&o).starts_with("FAILED at sequence 10: checkpoint signature"),
        "{}",
        stdout(&o)
    );

    // Export to stdout is the same bytes.
    let o = rampart(
        home,
        &["audit", "export", "--db", &s.s(&s.db), "--format", "jsonl"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), text);
}

#[test]
fn siem_formats_and_filters() {
    let s = setup();
    let home = s.dir.path();
    let db = s.s(&s.db);
    for format in ["cef", "ocsf", "syslog"] {
        let o = rampart(home, &["audit", "export", "--db", &db, "--format", format]);
        assert_eq!(o.status.code(), Some(0), "{format}: {}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(out.lines().count(), 45, "{format}");
        for line in out.lines() {
            match format {
                "cef" => assert!(line.starts_with("CEF:0|Rampart|rampart-ca|"), "{line}"),
                "ocsf" => {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert_eq!(v["metadata"]["product"]["name"], "rampart-ca");
                    assert_eq!(
                        v["type_uid"].as_u64().unwrap(),
                        v["class_uid"].as_u64().unwrap() * 100 + v["activity_id"].as_u64().unwrap()
                    );
                }
                _ => assert!(
                    line.contains(" rampart-ca - RA-") && line.contains("[rampart@32473 "),
                    "{line}"
                ),
            }
        }
    }
    let file = s.dir.path().join("out.syslog");
    let o = rampart(
        home,
        &[
            "audit",
            "export",
            "--db",
            &db,
            "--format",
            "syslog",
            "-o",
            &s.s(&file),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("wrote 45 events (sequence 1 to 45) to {}\n", file.display())
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 45);
    // --kind (by name and by code), --user, --since/--until.
    let o = rampart(
        home,
        &[
            "audit",
            "export",
            "--db",
            &db,
            "--format",
            "cef",
            "--kind",
            "cert_issued",
            "--kind",
            "RA-AUTH-004",
            "--user",
            "alice",
            "--since",
            "2025-03-01T12:00:00Z",
            "--until",
            "2025-03-01T12:40:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Event i (seq i + 1, minute i) has kind kinds[i % kinds.len()] and is
    // alice's when i is even: compute which match, so that adding a kind (which
    // shifts the cycle) does not break the test.
    let kinds = EventKind::all();
    let expected: Vec<String> = (0..45usize)
        .filter(|i| {
            let k = kinds[i % kinds.len()];
            (k == EventKind::CertIssued || k == EventKind::MfaFailed) && i % 2 == 0 && *i < 40
        })
        .map(|i| (i + 1).to_string())
        .collect();
    assert!(!expected.is_empty(), "the filter must match something");
    let out = stdout(&o);
    let seqs: Vec<&str> = out
        .lines()
        .map(|l| l.split(" cn2=").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(seqs, expected, "{out}");
    // Each line is one of the two kinds asked for (which of them fall in the
    // window depends on the kind cycle above), and alice's.
    assert!(
        out.lines().all(
            |l| (l.contains("|RA-AUTH-004|") || l.contains("|RA-CERT-001|"))
                && l.contains("duser=alice")
        ),
        "{out}"
    );
}

#[test]
fn export_errors_are_one_line_with_documented_codes() {
    let s = setup();
    let home = s.dir.path();
    let db = s.s(&s.db);
    let o = rampart(
        home,
        &[
            "audit",
            "export",
            "--db",
            &db,
            "--format",
            "jsonl",
            "--kind",
            "cert_issued",
        ],
    );
    assert_error(
        &o,
        2,
        "--kind and --user cannot be used with --format jsonl: a provable export is a gap-free range (use --since/--until, and filter in the SIEM)",
    );
    let o = rampart(
        home,
        &[
            "audit", "export", "--db", &db, "--format", "cef", "--kind", "nope",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("rampart: error: unknown event kind \"nope\""));
    let o = rampart(
        home,
        &[
            "audit",
            "export",
            "--db",
            &db,
            "--format",
            "cef",
            "--since",
            "yesterday",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("rampart: error: --since \"yesterday\" is not an RFC 3339 time"));
    assert_eq!(stderr(&o).lines().count(), 1);
    let o = rampart(
        home,
        &[
            "audit",
            "export",
            "--db",
            "/nonexistent/a.db",
            "--format",
            "ocsf",
        ],
    );
    assert_error(
        &o,
        9,
        "cannot read /nonexistent/a.db: No such file or directory",
    );
    let o = rampart(home, &["audit", "export", "--db", &db, "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    // verify --export without a key: usage error from the parser.
    let o = rampart(home, &["audit", "verify", "--export", &db]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--audit-pubkey"), "{}", stderr(&o));
    // Both inputs at once.
    let o = rampart(home, &["audit", "verify", "--export", &db, "--db", &db]);
    assert_eq!(o.status.code(), Some(2));
    // An export file that is missing: exit 9; one that is not an export: exit 6.
    let o = rampart(
        home,
        &[
            "audit",
            "verify",
            "--export",
            "/nonexistent/x.jsonl",
            "--audit-pubkey",
            &s.s(&s.pubkey),
        ],
    );
    assert_error(
        &o,
        9,
        "cannot read /nonexistent/x.jsonl: No such file or directory",
    );
    let junk = s.dir.path().join("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    let o = rampart(
        home,
        &[
            "audit",
            "verify",
            "--export",
            &s.s(&junk),
            "--audit-pubkey",
            &s.s(&s.pubkey),
        ],
    );
    assert_eq!(o.status.code(), Some(6));
    assert!(
        stdout(&o).starts_with("FAILED at sequence 0: line 1 is not an export header"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn help_describes_export_and_verify_export() {
    let home = tempfile::tempdir().unwrap();
    let o = rampart(home.path(), &["audit", "export", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for flag in [
        "--db", "--format", "--since", "--until", "--kind", "--user", "--output",
    ] {
        assert!(out.contains(flag), "{flag} missing from: {out}");
    }
    for format in ["jsonl", "cef", "ocsf", "syslog"] {
        assert!(out.contains(format), "{format} missing from: {out}");
    }
    let o = rampart(home.path(), &["audit", "verify", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--export"));
}
