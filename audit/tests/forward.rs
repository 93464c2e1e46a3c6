//! Forwarders against receivers this test controls: octet-counted RFC 5424
//! framing, the durable cursor across restarts, resend after a dropped connection,
//! order, backoff while the receiver is down, and TLS with a pinned CA.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rampart_audit::forward::syslog::{
    format_checkpoint_rfc5424, format_rfc5424, frame_octet_counted,
};
use rampart_audit::forward::{
    read_cursor, Forwarder, ForwarderSettings, Record, SyslogOptions, SyslogTcp, SyslogTls,
};
use rampart_audit::witness::{self, Depth};
use rampart_audit::{verify, AuditConfig, AuditLog, EventKind, NewEvent, Outcome, Query};

/// One message as a receiver saw it: which connection, seq and ULID from the SD.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Got {
    conn: usize,
    seq: u64,
    id: String,
    raw: Vec<u8>,
}

fn sd_value(msg: &[u8], key: &str) -> String {
    sd_opt(msg, key).unwrap_or_else(|| panic!("no {key} in {}", String::from_utf8_lossy(msg)))
}

fn sd_opt(msg: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let pat = format!(" {key}=\"");
    let start = text.find(&pat)? + pat.len();
    let end = text[start..].find('"').unwrap() + start;
    Some(text[start..end].to_owned())
}

/// Split a byte stream into octet-counted frames (RFC 6587 §3.4.1); returns the
/// frames and how many bytes were consumed.
fn parse_frames(buf: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(sp) = buf[pos..].iter().position(|&b| b == b' ') {
        let len: usize = std::str::from_utf8(&buf[pos..pos + sp])
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("bad MSG-LEN {:?}", &buf[pos..pos + sp]));
        let start = pos + sp + 1;
        if buf.len() < start + len {
            break;
        }
        out.push(buf[start..start + len].to_vec());
        pos = start + len;
    }
    (out, pos)
}

/// A syslog receiver on 127.0.0.1. `drop_first_after`: close the first
/// connection (abruptly, with unread data) once it has read that many frames.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
    conns: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start(drop_first_after: Option<usize>) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::serve(l, drop_first_after)
    }

    fn serve(l: TcpListener, drop_first_after: Option<usize>) -> Receiver {
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(Mutex::new(0usize));
        let (g, c) = (Arc::clone(&got), Arc::clone(&conns));
        thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(s) = stream else { break };
                let idx = {
                    let mut n = c.lock().unwrap();
                    *n += 1;
                    *n
                };
                let g = Arc::clone(&g);
                let limit = if idx == 1 { drop_first_after } else { None };
                thread::spawn(move || read_conn(s, idx, limit, g));
            }
        });
        Receiver { port, got, conns }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        *self.conns.lock().unwrap()
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn read_conn(mut s: impl Read, idx: usize, limit: Option<usize>, g: Arc<Mutex<Vec<Got>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut seen = 0usize;
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let (frames, used) = parse_frames(&buf);
        buf.drain(..used);
        for f in frames {
            if limit.is_some_and(|l| seen >= l) {
                // Drop the connection with data unread: the kernel answers RST.
                return;
            }
            seen += 1;
            g.lock().unwrap().push(Got {
                conn: idx,
                seq: sd_value(&f, "seq").parse().unwrap(),
                // A checkpoint message has no ULID of its own.
                id: sd_opt(&f, "id").unwrap_or_default(),
                raw: f,
            });
        }
    }
}

fn fast(name: &str) -> ForwarderSettings {
    let mut s = ForwarderSettings::new(name);
    s.batch_size = 7;
    s.retry_initial = Duration::from_millis(20);
    s.retry_max = Duration::from_millis(200);
    s.poll_interval = Duration::from_millis(10);
    s.settle = Duration::from_millis(100);
    s.drain_timeout = Duration::from_secs(3);
    s
}

fn open_log(path: &Path) -> AuditLog {
    AuditLog::open(path, None, AuditConfig::default()).unwrap()
}

fn append_n(log: &AuditLog, from: u64, n: u64) {
    for i in from..from + n {
        log.append(ev(i)).unwrap();
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// IDs of the log, in sequence order.
fn log_ids(log: &AuditLog) -> Vec<(u64, String)> {
    log.query(&Query::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.id.to_string()))
        .collect()
}

/// Every event of the log arrived, in order on each connection, and each
/// duplicate carries the ULID of the original.
fn assert_complete_in_order(got: &[Got], ids: &[(u64, String)]) {
    let mut by_conn: std::collections::BTreeMap<usize, Vec<&Got>> = Default::default();
    for g in got {
        by_conn.entry(g.conn).or_default().push(g);
    }
    for (conn, msgs) in &by_conn {
        for w in msgs.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq + 1,
                "connection {conn}: {} followed by {}",
                w[0].seq,
                w[1].seq
            );
        }
    }
    for g in got {
        let (_, want) = &ids[(g.seq - 1) as usize];
        assert_eq!(&g.id, want, "seq {} arrived with another ULID", g.seq);
    }
    for (seq, _) in ids {
        assert!(got.iter().any(|g| g.seq == *seq), "seq {seq} never arrived");
    }
}

#[test]
fn framing_is_octet_counted_rfc5424_with_escaped_sd() {
    let f = Fixture::new();
    let log = open_log(&f.path);
    log.append(
        NewEvent::new(EventKind::CertDenied, Outcome::Failure, t(1))
            .user("al\"i]c\\e")
            .source("192.0.2.1")
            .serial(42)
            .reason("née"),
    )
    .unwrap();
    let ev = log.query(&Query::all()).unwrap().remove(0);
    let body = rusqlite::Connection::open(&f.path)
        .unwrap()
        .query_row("SELECT body FROM events WHERE seq = 1", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap();
    let rec = Record::event(ev.clone(), body.clone());
    let opts = SyslogOptions {
        hostname: "ca-1 bad\u{7f}".into(),
        ..SyslogOptions::default()
    };
    let msg = format_rfc5424(&opts, &rec);
    let text = String::from_utf8(msg.clone()).unwrap();
    // authpriv (10) × 8 + warning (4) = 84; microseconds; printable hostname.
    let want_head = format!(
        "<84>1 2025-03-01T12:00:00.001000Z ca-1bad rampart - RA-CERT-002 [rampart@32473 id=\"{}\" seq=\"1\" kind=\"cert_denied\" severity=\"warning\" outcome=\"failure\" user=\"al\\\"i\\]c\\\\e\" source=\"192.0.2.1\" serial=\"42\" hash=\"{}\"] \u{feff}",
        ev.id,
        hex::encode(ev.hash)
    );
    assert!(text.starts_with(&want_head), "{text}\n{want_head}");
    assert!(text.ends_with(&body), "MSG must be the canonical body");
    let mut framed = Vec::new();
    frame_octet_counted(&msg, &mut framed);
    frame_octet_counted(b"<14>1 - - - - - -", &mut framed);
    let (frames, used) = parse_frames(&framed);
    assert_eq!(used, framed.len());
    assert_eq!(frames, vec![msg.clone(), b"<14>1 - - - - - -".to_vec()]);
    assert!(framed.starts_with(format!("{} <84>", msg.len()).as_bytes()));
}

#[test]
fn delivers_in_order_and_cursor_survives_reopen() {
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 20);
    let rx = Receiver::start(None);
    let fwd = Forwarder::spawn(
        &f.path,
        fast("siem"),
        Box::new(SyslogTcp::new(&rx.address(), SyslogOptions::default())),
    )
    .unwrap();
    wait_until("20 events", Duration::from_secs(10), || {
        rx.got().len() >= 20
    });
    let st = fwd.stop();
    assert!(st.stopped);
    assert_eq!((st.sent_seq, st.acked_seq, st.lag), (20, 20, 0), "{st:?}");
    assert_eq!(read_cursor(&f.path, "siem").unwrap(), 20);
    assert_eq!(read_cursor(&f.path, "other").unwrap(), 0);
    assert_complete_in_order(&rx.got(), &log_ids(&log));
    assert_eq!(
        rx.got().len(),
        20,
        "a graceful stop proves delivery: no resend"
    );

    // New events while no forwarder runs; a new forwarder of the same name, after
    // the log was closed and reopened, starts from its cursor.
    append_n(&log, 20, 9);
    log.close().unwrap();
    let log = open_log(&f.path);
    let rx2 = Receiver::start(None);
    let fwd = Forwarder::spawn(
        &f.path,
        fast("siem"),
        Box::new(SyslogTcp::new(&rx2.address(), SyslogOptions::default())),
    )
    .unwrap();
    wait_until("9 more", Duration::from_secs(10), || rx2.got().len() >= 9);
    let st = fwd.stop();
    let seqs: Vec<u64> = rx2.got().iter().map(|g| g.seq).collect();
    assert_eq!(seqs, (21..=29).collect::<Vec<_>>());
    assert_eq!(st.acked_seq, 29);

    // The cursor table sits outside the chain: the log still verifies, and the
    // chain tables are still append-only.
    log.close().unwrap();
    let r = verify(&f.path, None).unwrap();
    assert!(r.is_ok() && r.events == 29, "{r:?}");
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    let err = conn
        .execute("DELETE FROM events WHERE seq = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let names: Vec<String> = conn
        .prepare("SELECT name FROM forwarder_cursors ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, vec!["siem".to_owned()]);
}

#[test]
fn checkpoints_follow_their_events_as_messages_a_witness_can_hold() {
    let f = Fixture::new();
    let log = AuditLog::open(&f.path, Some(key()), config(5)).unwrap();
    append_n(&log, 0, 12);
    let rx = Receiver::start(None);
    let fwd = Forwarder::spawn(
        &f.path,
        fast("cp"),
        Box::new(SyslogTcp::new(&rx.address(), SyslogOptions::default())),
    )
    .unwrap();
    // Closing the log signs a last checkpoint over 12, after it was sent.
    wait_until("12 events", Duration::from_secs(10), || {
        rx.got().len() >= 14
    });
    log.close().unwrap();
    wait_until("the closing checkpoint", Duration::from_secs(10), || {
        rx.got().len() >= 15
    });
    let st = fwd.stop();
    assert_eq!(st.events_sent, 12, "{st:?}");
    let got = rx.got();
    let order: Vec<String> = got
        .iter()
        .map(|g| {
            let kind = if sd_value(&g.raw, "kind") == "checkpoint" {
                "cp"
            } else {
                "ev"
            };
            format!("{kind}{}", g.seq)
        })
        .collect();
    let want: Vec<String> = (1..=12)
        .flat_map(|i| {
            let mut v = vec![format!("ev{i}")];
            if i % 5 == 0 || i == 12 {
                v.push(format!("cp{i}"));
            }
            v
        })
        .collect();
    assert_eq!(order, want);
    // The checkpoint message: informational (authpriv × 8 + 6), its own MSGID,
    // the event's seq and hash in the SD, the JSON Lines checkpoint line as MSG.
    let cps: Vec<&Got> = got.iter().filter(|g| g.id.is_empty()).collect();
    let ids = log_ids(&log);
    let mut witness_text = String::new();
    for g in &cps {
        let text = String::from_utf8(g.raw.clone()).unwrap();
        assert!(text.starts_with("<86>1 "), "{text}");
        assert!(
            text.contains(" - RA-AUDIT-CHECKPOINT [rampart@32473 seq=\""),
            "{text}"
        );
        let (_, msg) = text.split_once("] \u{feff}").unwrap();
        let line: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(line["type"], "checkpoint");
        assert_eq!(line["seq"], g.seq);
        assert_eq!(line["hash"].as_str().unwrap(), sd_value(&g.raw, "hash"));
        assert!(!msg.contains('\n'), "one line per message");
        witness_text.push_str(msg);
        witness_text.push('\n');
    }
    assert_eq!(ids.len(), 12);
    // The SIEM's copies, as they came, are a witness that checks the database.
    let w = f.dir.path().join("siem.witness");
    std::fs::write(&w, witness_text).unwrap();
    let r = witness::check_file(&f.path, &w, Some(key().public_key()), Depth::All).unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.lines_checked, 3);
    assert_eq!(r.witnessed_head.unwrap().0.seq, 12);
}

#[test]
fn format_checkpoint_escapes_nothing_into_a_second_line() {
    let cp = rampart_audit::Checkpoint::sign(&key(), 3, [9; 32], t(3)).unwrap();
    let msg = format_checkpoint_rfc5424(&SyslogOptions::default(), &cp).unwrap();
    let text = String::from_utf8(msg).unwrap();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.starts_with("<86>1 2025-03-01T12:00:00.003000Z - rampart - RA-AUDIT-CHECKPOINT [rampart@32473 seq=\"3\" kind=\"checkpoint\" hash=\""), "{text}");
}

#[test]
fn dropped_connection_is_resent_from_the_cursor() {
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 200);
    // The first connection dies after 30 frames, with more unread.
    let rx = Receiver::start(Some(30));
    let fwd = Forwarder::spawn(
        &f.path,
        fast("drop"),
        Box::new(SyslogTcp::new(&rx.address(), SyslogOptions::default())),
    )
    .unwrap();
    wait_until(
        "every event after the drop",
        Duration::from_secs(20),
        || {
            let got = rx.got();
            (1..=200).all(|s| got.iter().any(|g| g.seq == s))
        },
    );
    // More events while connected keep flowing on the new connection.
    append_n(&log, 200, 50);
    wait_until("250", Duration::from_secs(10), || {
        rx.got().iter().any(|g| g.seq == 250)
    });
    let st = fwd.stop();
    assert!(rx.connections() >= 2, "the forwarder must reconnect");
    assert!(st.connects >= 2 && st.last_error.is_some(), "{st:?}");
    let got = rx.got();
    assert_complete_in_order(&got, &log_ids(&log));
    // The second connection resumed at or before the first frame the first one lost.
    let first_on_2 = got.iter().find(|g| g.conn == 2).unwrap().seq;
    assert!(
        first_on_2 <= 31,
        "resumed at {first_on_2}, after a lost event"
    );
    assert_eq!(st.acked_seq, 250);
}

#[test]
fn receiver_down_then_up_backs_off_and_delivers() {
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 12);
    // Reserve a port, then close it: connections are refused until we listen.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fwd = Forwarder::spawn(
        &f.path,
        fast("late"),
        Box::new(SyslogTcp::new(
            &format!("127.0.0.1:{port}"),
            SyslogOptions::default(),
        )),
    )
    .unwrap();
    wait_until("failures", Duration::from_secs(5), || {
        fwd.status().consecutive_failures >= 3
    });
    let st = fwd.status();
    assert!(!st.connected && st.acked_seq == 0 && st.lag == 12, "{st:?}");
    assert!(
        st.last_error.as_deref().unwrap().contains("refused"),
        "{st:?}"
    );
    // Appending never waits for the forwarder.
    let t0 = Instant::now();
    append_n(&log, 12, 3);
    assert!(t0.elapsed() < Duration::from_secs(2));
    let rx = Receiver::serve(TcpListener::bind(("127.0.0.1", port)).unwrap(), None);
    wait_until("15 events", Duration::from_secs(10), || {
        rx.got().len() >= 15
    });
    let st = fwd.stop();
    assert_eq!(st.consecutive_failures, 0);
    assert_complete_in_order(&rx.got(), &log_ids(&log));
}

#[test]
fn a_database_that_is_not_an_audit_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.db");
    rusqlite::Connection::open(&p)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let err = Forwarder::spawn(
        &p,
        fast("x"),
        Box::new(SyslogTcp::new("127.0.0.1:1", SyslogOptions::default())),
    )
    .unwrap_err();
    assert!(err.to_string().contains("application_id"), "{err}");
    let err = Forwarder::spawn(
        &dir.path().join("missing.db"),
        fast("x"),
        Box::new(SyslogTcp::new("127.0.0.1:1", SyslogOptions::default())),
    )
    .unwrap_err();
    // The I/O error is the cause, not part of the top line.
    let line = rampart_api::report::one_line(&err);
    assert!(line.contains("does not exist"), "{line}");
}

// ---- TLS ----

struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn pki(name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server,
    }
}

/// A TLS syslog receiver (RFC 5425) with `server`'s certificate.
fn tls_receiver(server: rustls::ServerConfig) -> Receiver {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let conns = Arc::new(Mutex::new(0usize));
    let (g, c) = (Arc::clone(&got), Arc::clone(&conns));
    let server = Arc::new(server);
    thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(s) = stream else { break };
            let idx = {
                let mut n = c.lock().unwrap();
                *n += 1;
                *n
            };
            let (g, server) = (Arc::clone(&g), Arc::clone(&server));
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(server).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                read_conn(&mut tls, idx, None, g);
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.sock.shutdown(Shutdown::Both);
            });
        }
    });
    Receiver { port, got, conns }
}

#[test]
fn tls_with_the_pinned_ca_delivers() {
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 40);
    let pki = pki("siem.test");
    let rx = tls_receiver(pki.server);
    let sink = SyslogTls::with_ca_pem(
        &rx.address(),
        "siem.test",
        pki.ca_pem.as_bytes(),
        SyslogOptions::default(),
    )
    .unwrap();
    let fwd = Forwarder::spawn(&f.path, fast("tls"), Box::new(sink)).unwrap();
    wait_until("40 over TLS", Duration::from_secs(10), || {
        rx.got().len() >= 40
    });
    let st = fwd.stop();
    assert_eq!(st.acked_seq, 40, "{st:?}");
    assert_complete_in_order(&rx.got(), &log_ids(&log));
}

#[test]
fn tls_refuses_a_receiver_outside_the_pinned_ca_or_name() {
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 5);
    let good = pki("siem.test");
    let impostor = pki("siem.test");
    let cases = [
        (
            impostor.server,
            "siem.test",
            "a certificate from another CA",
        ),
        (good.server, "other.test", "a certificate for another name"),
    ];
    for (server, name, what) in cases {
        let rx = tls_receiver(server);
        let sink = SyslogTls::with_ca_pem(
            &rx.address(),
            name,
            good.ca_pem.as_bytes(),
            SyslogOptions::default(),
        )
        .unwrap();
        let fwd = Forwarder::spawn(&f.path, fast("pinned"), Box::new(sink)).unwrap();
        wait_until("a refused handshake", Duration::from_secs(5), || {
            fwd.status().consecutive_failures >= 2
        });
        let st = fwd.stop();
        let err = st.last_error.clone().unwrap_or_default();
        assert!(
            err.starts_with("TLS:") && err.contains("certificate"),
            "{what}: {err}"
        );
        assert!(
            rx.got().is_empty(),
            "{what}: events went to an unpinned receiver"
        );
        assert_eq!(st.acked_seq, 0, "{what}");
    }
    let err = SyslogTls::with_ca_pem("h:1", "h", b"not pem", SyslogOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

/// Two CAs on one PostgreSQL log each run a forwarder named `siem`: one sends,
/// the other stands by; when the sender stops, the other takes over from the
/// shared cursor, and every event reaches the receiver with its own ULID.
#[test]
fn on_a_shared_postgres_log_one_forwarder_of_a_name_sends_and_another_takes_over() {
    let pg = rampart_test_postgres::TestPostgres::start();
    let db = rampart_audit::pg_config(&pg.create_database("audit"), None).unwrap();
    let log = AuditLog::open_postgres(&db, None, AuditConfig::default()).unwrap();
    append_n(&log, 0, 40);
    let rx = Receiver::start(None);
    let spawn = || {
        Forwarder::spawn_postgres(
            &db,
            fast("siem"),
            Box::new(SyslogTcp::new(&rx.address(), SyslogOptions::default())),
        )
        .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    wait_until("40 events", Duration::from_secs(10), || {
        rx.got().len() >= 40
    });
    wait_until("one standing by", Duration::from_secs(5), || {
        first.status().standby != second.status().standby
    });
    let (active, standby) = if first.status().standby {
        (second, first)
    } else {
        (first, second)
    };
    assert_eq!(rx.connections(), 1, "only the lease holder connected");
    let stopped = active.stop();
    assert_eq!(stopped.acked_seq, 40, "{stopped:?}");

    append_n(&log, 40, 25);
    wait_until("the other takes over", Duration::from_secs(10), || {
        rx.got().iter().any(|g| g.seq == 65)
    });
    assert!(!standby.status().standby);
    let st = standby.stop();
    assert_eq!(st.acked_seq, 65, "{st:?}");
    assert_eq!(
        pg.psql(
            "audit",
            "SELECT last_seq FROM audit_forwarder_cursors WHERE name = 'siem'"
        ),
        "65"
    );
    let got = rx.got();
    assert_complete_in_order(&got, &log_ids(&log));
    let resent = got.iter().filter(|g| g.seq <= 40).count();
    assert_eq!(
        resent, 40,
        "the take-over resumed after the confirmed cursor"
    );
}
