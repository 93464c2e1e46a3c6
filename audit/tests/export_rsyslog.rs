//! The RFC 5424 encoder against a real receiver: a private `rsyslogd` on
//! loopback TCP parses one line per event kind (octet-counted, RFC 6587) with
//! `mmpstrucdata`, and every header field and SD-PARAM it reports must be the
//! event's own value — hostile characters included — so the escaping is what
//! rsyslog, not just our own parser, understands.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, TimeZone, Utc};
use rampart_audit::export::{kind_title, syslog_severity, to_syslog};
use rampart_audit::{Event, EventKind, Outcome};
use serde_json::Value;

/// rsyslogd in the foreground with a private config, killed on drop.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        // Pick a free port and hand it to rsyslog; if it loses the race for the
        // port (or exits), try again with another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let d = dir.path().display();
            let conf = format!(
                r#"global(workDirectory="{d}")
module(load="imtcp")
module(load="mmpstrucdata")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="t" type="string" string="%pri%\t%timereported:::date-rfc3339%\t%hostname%\t%app-name%\t%procid%\t%msgid%\t%$!rfc5424-sd%\t%msg%\n")
*.* action(type="mmpstrucdata")
*.* action(type="omfile" file="{d}/out.log" template="t")
"#
            );
            std::fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
            let mut child = Command::new("rsyslogd")
                .args(["-n", "-f"])
                .arg(dir.path().join("rsyslog.conf"))
                .arg("-i")
                .arg(dir.path().join("pid"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("rsyslogd (Debian package rsyslog; scripts/test installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Rsyslog { child, dir, port };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("rsyslogd did not listen on loopback after 5 attempts");
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.log")
    }

    fn wait_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(self.out()).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn event(i: usize, kind: EventKind) -> Event {
    Event {
        seq: i as u64 + 1,
        id: ulid::Ulid::from_parts(1_700_000_000_000 + i as u64, i as u128),
        time: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789 + i as i64),
        kind,
        code: kind.code().to_owned(),
        severity: kind.severity(),
        outcome: Outcome::Failure,
        actor: Some(format!("admin{i}=x|y")),
        user: Some(format!("u{i} a|b=c\\d \"q\" ]x ü€")),
        source: Some("192.0.2.9".to_owned()),
        target: Some("host] \"quoted\" \\".to_owned()),
        session: None,
        serial: Some(u64::MAX - i as u64),
        mfa_method: Some("totp".to_owned()),
        mfa_age_seconds: None,
        reason: Some(format!("why ] \" \\ ü #{i}")),
        details: [("k".to_owned(), serde_json::json!({"a": "]\""}))].into(),
        hash: [1; 32],
    }
}

#[test]
fn rsyslog_parses_every_kind_exactly() {
    let rs = Rsyslog::start();
    let events: Vec<Event> = EventKind::all()
        .iter()
        .enumerate()
        .map(|(i, k)| event(i, *k))
        .collect();
    let mut frames = Vec::new();
    for ev in &events {
        let line = to_syslog(ev, "ca-1.example");
        // RFC 6587 §3.4.1 octet counting: "MSG-LEN SP SYSLOG-MSG".
        write!(frames, "{} {line}", line.len()).unwrap();
    }
    let mut s = TcpStream::connect(("127.0.0.1", rs.port)).unwrap();
    s.write_all(&frames).unwrap();
    drop(s);
    let lines = rs.wait_lines(events.len());
    assert_eq!(lines.len(), events.len(), "rsyslog wrote: {lines:#?}");

    for (ev, line) in events.iter().zip(&lines) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 8, "{line}");
        let pri = 10 * 8 + u32::from(syslog_severity(ev.kind.severity()));
        assert_eq!(f[0], pri.to_string(), "{line}");
        assert_eq!(
            f[1],
            ev.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            "{line}"
        );
        assert_eq!(f[2], "ca-1.example");
        assert_eq!(f[3], "rampart-ca");
        assert_eq!(f[4], "-");
        assert_eq!(f[5], ev.kind.code());
        let sd: Value = serde_json::from_str(f[6]).unwrap_or_else(|e| panic!("{e}: {line}"));
        let params: BTreeMap<String, String> =
            serde_json::from_value(sd["rampart@32473"].clone()).unwrap();
        let want: BTreeMap<String, String> = [
            ("id", ev.id.to_string()),
            ("seq", ev.seq.to_string()),
            ("kind", ev.kind.as_str().to_owned()),
            ("severity", ev.kind.severity().as_str().to_owned()),
            ("outcome", "failure".to_owned()),
            ("actor", ev.actor.clone().unwrap()),
            ("user", ev.user.clone().unwrap()),
            ("src", "192.0.2.9".to_owned()),
            ("target", ev.target.clone().unwrap()),
            ("mfa_method", "totp".to_owned()),
            ("serial", ev.serial.unwrap().to_string()),
            ("reason", ev.reason.clone().unwrap()),
            ("details", r#"{"k":{"a":"]\""}}"#.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(params, want, "{line}");
        // MSG: BOM (non-ASCII), title and reason; backslashes doubled by design.
        let msg = f[7].trim_start();
        let reason = ev.reason.as_deref().unwrap().replace('\\', "\\\\");
        assert_eq!(
            msg,
            format!("\u{feff}{}: {reason}", kind_title(ev.kind)),
            "{line}"
        );
    }
}
