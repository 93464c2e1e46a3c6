//! Reading (and, for tamper tests, vandalising) the audit database with the real
//! `sqlite3` shell, independently of Rampart's own code.
//!
//! The harness does not assume the audit schema beyond this: one table holds the
//! events, has a `kind` column, and an integer sequence column (`seq`, `sequence`,
//! `seq_no` or `id`, else SQLite's `rowid`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

use crate::process::{run, CmdOutput};
use crate::{bin, require_peer};

/// Run SQL with `sqlite3 -batch -bail DB`, returning the output (not judged).
pub fn sqlite3_raw(db: &Path, sql: &str) -> CmdOutput {
    let mut c = Command::new(require_peer("sqlite3"));
    c.args(["-batch", "-bail"]).arg(db).arg(sql);
    run(c)
}

/// Run SQL, asserting success; returns stdout.
pub fn sqlite3(db: &Path, sql: &str) -> String {
    let out = sqlite3_raw(db, sql);
    out.assert_success("sqlite3");
    out.stdout
}

/// Run a query and return its rows as JSON objects (`sqlite3 -json`).
pub fn sqlite3_json(db: &Path, sql: &str) -> Vec<Map<String, Value>> {
    let mut c = Command::new(require_peer("sqlite3"));
    c.args(["-batch", "-bail", "-json"]).arg(db).arg(sql);
    let out = run(c);
    out.assert_success("sqlite3 -json");
    if out.stdout.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("sqlite3 -json: {e}\n{out}"))
}

/// An audit database file.
#[derive(Debug, Clone)]
pub struct AuditDb {
    /// The file.
    pub path: PathBuf,
}

impl AuditDb {
    /// Wrap a path.
    pub fn new(path: impl Into<PathBuf>) -> AuditDb {
        AuditDb { path: path.into() }
    }

    /// A consistent copy made with sqlite3's online backup (safe while the CA is
    /// running and with WAL files present).
    pub fn backup_to(&self, dest: &Path) -> AuditDb {
        sqlite3(
            &self.path,
            &format!(
                ".backup '{}'",
                dest.display().to_string().replace('\'', "''")
            ),
        );
        AuditDb::new(dest)
    }

    /// Names of user tables.
    pub fn tables(&self) -> Vec<String> {
        sqlite3_json(
            &self.path,
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'",
        )
        .into_iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
    }

    /// Column names of `table`, in order.
    pub fn columns(&self, table: &str) -> Vec<String> {
        sqlite3_json(&self.path, &format!("PRAGMA table_info(\"{table}\")"))
            .into_iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// The events table: the one with a `kind` column (the one with most rows if
    /// several have one).
    pub fn events_table(&self) -> String {
        let mut best: Option<(String, i64)> = None;
        for t in self.tables() {
            if self.columns(&t).iter().any(|c| c == "kind") {
                let n = sqlite3(&self.path, &format!("SELECT count(*) FROM \"{t}\""))
                    .trim()
                    .parse::<i64>()
                    .unwrap_or(0);
                if best.as_ref().is_none_or(|(_, m)| n > *m) {
                    best = Some((t, n));
                }
            }
        }
        best.map(|(t, _)| t).unwrap_or_else(|| {
            panic!(
                "no table with a `kind` column in {}: tables {:?}",
                self.path.display(),
                self.tables()
            )
        })
    }

    /// The sequence column of the events table.
    pub fn seq_column(&self) -> String {
        let cols = self.columns(&self.events_table());
        ["seq", "sequence", "seq_no", "seqno", "id"]
            .iter()
            .find(|c| cols.iter().any(|x| x == *c))
            .map(|c| (*c).to_owned())
            .unwrap_or_else(|| "rowid".to_owned())
    }

    /// Every event row, in sequence order.
    pub fn events(&self) -> Vec<Map<String, Value>> {
        let t = self.events_table();
        let s = self.seq_column();
        sqlite3_json(
            &self.path,
            &format!("SELECT * FROM \"{t}\" ORDER BY \"{s}\""),
        )
    }

    /// The sequence numbers of the signed checkpoints, in order.
    pub fn checkpoint_seqs(&self) -> Vec<u64> {
        sqlite3(&self.path, "SELECT seq FROM checkpoints ORDER BY seq")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The `kind` of every event, in order.
    pub fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|r| r.get("kind").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// Events of one kind.
    pub fn events_of_kind(&self, kind: &str) -> Vec<Map<String, Value>> {
        self.events()
            .into_iter()
            .filter(|r| r.get("kind").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    /// The JSON bodies of the events of one kind, in order.
    pub fn bodies(&self, kind: &str) -> Vec<Value> {
        self.events_of_kind(kind)
            .iter()
            .map(|r| {
                let body = r
                    .get("body")
                    .and_then(Value::as_str)
                    .expect("an event body");
                serde_json::from_str(body).expect("an event body is JSON")
            })
            .collect()
    }

    /// The sequence numbers of all events, in order.
    pub fn seqs(&self) -> Vec<i64> {
        let t = self.events_table();
        let s = self.seq_column();
        sqlite3_json(
            &self.path,
            &format!("SELECT \"{s}\" AS s FROM \"{t}\" ORDER BY \"{s}\""),
        )
        .iter()
        .filter_map(|r| r.get("s").and_then(Value::as_i64))
        .collect()
    }

    /// Names of all triggers (the append-only guards a tamperer drops first).
    pub fn triggers(&self) -> Vec<String> {
        sqlite3_json(
            &self.path,
            "SELECT name FROM sqlite_master WHERE type='trigger'",
        )
        .into_iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
    }

    /// Drop every trigger.
    pub fn drop_triggers(&self) {
        for t in self.triggers() {
            sqlite3(&self.path, &format!("DROP TRIGGER \"{t}\""));
        }
        assert!(self.triggers().is_empty(), "triggers survived DROP TRIGGER");
    }
}

/// Whether an event row mentions certificate serial `serial`: in a column named
/// like `serial`, or inside any JSON-text column as `"serial":N` / `"serial":"N"`.
pub fn row_mentions_serial(row: &Map<String, Value>, serial: u64) -> bool {
    let want = serial.to_string();
    row.iter().any(|(k, v)| {
        let direct = k.contains("serial")
            && match v {
                Value::Number(n) => n.as_u64() == Some(serial),
                Value::String(s) => s.trim() == want,
                _ => false,
            };
        direct
            || v.as_str().is_some_and(|s| {
                serde_json::from_str::<Value>(s)
                    .ok()
                    .is_some_and(|j| json_has_serial(&j, serial))
            })
    })
}

fn json_has_serial(v: &Value, serial: u64) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            (k.contains("serial")
                && (v.as_u64() == Some(serial) || v.as_str() == Some(&serial.to_string())))
                || json_has_serial(v, serial)
        }),
        Value::Array(a) => a.iter().any(|v| json_has_serial(v, serial)),
        _ => false,
    }
}

/// `rampart audit verify --db DB` with a throw-away home (hash chain only).
pub fn audit_verify(db: &Path) -> CmdOutput {
    audit_verify_with(db, None)
}

/// `rampart audit verify --db DB [--audit-pubkey KEY]`: with the CA's
/// `keys/audit.pub`, the signed checkpoints are checked too.
pub fn audit_verify_with(db: &Path, audit_pubkey: Option<&Path>) -> CmdOutput {
    let home = crate::tempdir("verify-home");
    let mut c = Command::new(bin("rampart"));
    c.env("RAMPART_HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .env("NO_COLOR", "1")
        .args(["audit", "verify", "--db"])
        .arg(db);
    if let Some(k) = audit_pubkey {
        c.arg("--audit-pubkey").arg(k);
    }
    run(c)
}

/// `rampart audit verify ARGS…` (`--witness`, `--expect-head` and the like), with
/// a fresh home and no agent.
pub fn audit_verify_args(args: &[&std::ffi::OsStr]) -> CmdOutput {
    let home = crate::tempdir("verify-home");
    let mut c = Command::new(bin("rampart"));
    c.env("RAMPART_HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .env("NO_COLOR", "1")
        .args(["audit", "verify"])
        .args(args);
    run(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_serials_in_columns_and_json() {
        let row: Map<String, Value> =
            serde_json::from_str(r#"{"seq":3,"kind":"cert_issued","serial":17}"#).unwrap();
        assert!(row_mentions_serial(&row, 17));
        assert!(!row_mentions_serial(&row, 3));
        let row: Map<String, Value> = serde_json::from_str(
            r#"{"seq":4,"kind":"cert_issued","detail":"{\"cert\":{\"serial\":\"18\"}}"}"#,
        )
        .unwrap();
        assert!(row_mentions_serial(&row, 18));
        assert!(!row_mentions_serial(&row, 4));
    }

    #[test]
    fn sqlite3_shell_round_trip() {
        let d = crate::tempdir("sqlite");
        let db = d.path().join("t.db");
        sqlite3(
            &db,
            "CREATE TABLE ev(seq INTEGER PRIMARY KEY, kind TEXT); \
             INSERT INTO ev(kind) VALUES ('a'),('b'); \
             CREATE TRIGGER no_del BEFORE DELETE ON ev BEGIN SELECT RAISE(ABORT,'append-only'); END;",
        );
        let a = AuditDb::new(&db);
        assert_eq!(a.events_table(), "ev");
        assert_eq!(a.seq_column(), "seq");
        assert_eq!(a.kinds(), ["a", "b"]);
        assert_eq!(a.seqs(), [1, 2]);
        assert!(!sqlite3_raw(&db, "DELETE FROM ev WHERE seq=1").success());
        a.drop_triggers();
        sqlite3(&db, "DELETE FROM ev WHERE seq=1");
        assert_eq!(a.seqs(), [2]);
    }
}
