//! HTTPS forwarders (webhook, Splunk HEC) against a real HTTPS receiver this test
//! runs (axum over rustls, the receiver's CA pinned): order, batching, the cursor
//! advancing only on a 2xx, resends after 503s and an outage keeping their ULIDs,
//! a 4xx refused as a configuration error and retried, the exact HEC shape and
//! token header, and the token absent from `Debug` and from every log line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::*;
use rampart_audit::forward::{
    read_cursor, Forwarder, ForwarderSettings, HecToken, HttpOptions, HttpTrust, SplunkHec, Webhook,
};
use rampart_audit::witness::{self, Depth};
use rampart_audit::{AuditConfig, AuditLog, Query};

// ---- log capture: the token must never reach a log line ----

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Capture {
    static CAP: OnceLock<Capture> = OnceLock::new();
    CAP.get_or_init(|| {
        let cap = Capture::default();
        let w = cap.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .init();
        cap
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

// ---- the receiver ----

#[derive(Clone, Debug)]
struct Req {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Default)]
struct Shared {
    reqs: Mutex<Vec<Req>>,
    status: AtomicU16,
}

struct Receiver {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: axum_server::tls_rustls::RustlsConfig,
    handle: Option<axum_server::Handle>,
    ca_file: tempfile::NamedTempFile,
}

async fn record(
    State(sh): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = sh.status.load(Ordering::SeqCst);
    sh.reqs.lock().unwrap().push(Req {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        answered: status,
    });
    StatusCode::from_u16(status).unwrap()
}

fn server_tls() -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    (server, ca.pem())
}

impl Receiver {
    fn start() -> Receiver {
        let (server, ca_pem) = server_tls();
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca_pem).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        shared.status.store(200, Ordering::SeqCst);
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server));
        let mut r = Receiver {
            rt,
            addr,
            shared,
            tls,
            handle: None,
            ca_file,
        };
        r.serve(l);
        r
    }

    fn serve(&mut self, l: TcpListener) {
        l.set_nonblocking(true).unwrap();
        let app = axum::Router::new()
            .fallback(axum::routing::post(record))
            .with_state(Arc::clone(&self.shared));
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(l, self.tls.clone()).handle(handle.clone());
        self.rt.spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        self.handle = Some(handle);
    }

    /// Stop listening and drop every connection: connection refused from now on.
    fn down(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(self.addr).is_ok() {
            assert!(Instant::now() < deadline, "receiver did not stop");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn up(&mut self) {
        let l = TcpListener::bind(self.addr).unwrap();
        self.serve(l);
    }

    fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    fn reqs(&self) -> Vec<Req> {
        self.shared.reqs.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn opts(&self) -> HttpOptions {
        HttpOptions {
            trust: HttpTrust::Pinned(self.ca_file.path().to_owned()),
            ..HttpOptions::default()
        }
    }
}

// ---- helpers ----

fn fast(name: &str, batch: u32) -> ForwarderSettings {
    let mut s = ForwarderSettings::new(name);
    s.batch_size = batch;
    s.retry_initial = Duration::from_millis(20);
    s.retry_max = Duration::from_millis(200);
    s.poll_interval = Duration::from_millis(10);
    s.drain_timeout = Duration::from_secs(3);
    s
}

fn open_log(path: &Path) -> AuditLog {
    AuditLog::open(path, Some(key()), config(25)).unwrap()
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

fn log_ids(log: &AuditLog) -> Vec<(u64, String, [u8; 32])> {
    log.query(&Query::all())
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.id.to_string(), e.hash))
        .collect()
}

/// Every object of one webhook body (a JSON array): events and checkpoints.
fn webhook_objects(body: &[u8]) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v.as_array().unwrap().clone()
}

/// The events of one webhook body.
fn webhook_events(body: &[u8]) -> Vec<serde_json::Value> {
    webhook_objects(body)
        .into_iter()
        .filter(|o| o["type"] == "event")
        .collect()
}

/// (seq, id) of every event the receiver answered with a 2xx, in arrival order.
fn accepted(reqs: &[Req], events: impl Fn(&[u8]) -> Vec<serde_json::Value>) -> Vec<(u64, String)> {
    reqs.iter()
        .filter(|r| (200..300).contains(&r.answered))
        .flat_map(|r| events(&r.body))
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every event in the log was accepted, in sequence order, each with the ULID and
/// chain links of the log (resends are the same events, not new ones).
fn assert_all_in_order(got: &[(u64, String)], ids: &[(u64, String, [u8; 32])]) {
    let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
    let want: Vec<u64> = ids.iter().map(|i| i.0).collect();
    assert_eq!(seqs, want, "accepted events are not the log in order");
    for (g, i) in got.iter().zip(ids) {
        assert_eq!(g.1, i.1, "seq {} arrived with another ULID", g.0);
    }
}

// ---- tests ----

#[test]
fn webhook_delivers_in_order_in_batches_with_chain_links() {
    logs();
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 53);
    let rx = Receiver::start();
    let mut opts = rx.opts();
    opts.headers = vec![("X-Api-Key".into(), "hook-SECRET-7".into())];
    let sink = Webhook::new(&rx.url("/ingest/rampart"), opts).unwrap();
    assert!(!format!("{sink:?}").contains("hook-SECRET-7"));
    let fwd = Forwarder::spawn(&f.path, fast("hook", 10), Box::new(sink)).unwrap();
    wait_until("53 events", Duration::from_secs(15), || {
        fwd.status().acked_seq == 53
    });
    let st = fwd.stop();
    assert_eq!(st.acked_seq, 53, "{st:?}");
    assert_eq!(read_cursor(&f.path, "hook").unwrap(), 53);
    let reqs = rx.reqs();
    // 53 events in batches of 10: six requests, the last with 3.
    let sizes: Vec<usize> = reqs.iter().map(|r| webhook_events(&r.body).len()).collect();
    assert_eq!(sizes, vec![10, 10, 10, 10, 10, 3]);
    for r in &reqs {
        assert_eq!(r.path, "/ingest/rampart");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["x-api-key"], "hook-SECRET-7");
    }
    let ids = log_ids(&log);
    assert_all_in_order(&accepted(&reqs, webhook_events), &ids);
    // Every object is a JSON Lines export event line: prev_hash links the chain
    // across batch boundaries, hash and body are the log's.
    let events: Vec<_> = reqs.iter().flat_map(|r| webhook_events(&r.body)).collect();
    let mut prev = [0u8; 32];
    for (e, (seq, _, hash)) in events.iter().zip(&ids) {
        assert_eq!(e["type"], "event");
        assert_eq!(e["prev_hash"], hex::encode(prev), "seq {seq}");
        assert_eq!(e["hash"], hex::encode(hash), "seq {seq}");
        let body: serde_json::Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["seq"], *seq);
        prev = *hash;
    }
    assert!(!log_text().contains("hook-SECRET-7"));

    // The checkpoints (every 25 events) came along, each right after the event it
    // signs, as JSON Lines checkpoint objects: the SIEM holds the signed heads.
    let objects: Vec<_> = reqs.iter().flat_map(|r| webhook_objects(&r.body)).collect();
    let order: Vec<String> = objects
        .iter()
        .map(|o| format!("{}{}", o["type"].as_str().unwrap(), o["seq"]))
        .collect();
    let cp_at: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, o)| o.starts_with("checkpoint"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(cp_at.len(), 2, "{order:?}");
    assert_eq!(order[cp_at[0] - 1], "event25", "{order:?}");
    assert_eq!(order[cp_at[0]], "checkpoint25", "{order:?}");
    assert_eq!(order[cp_at[1] - 1], "event50", "{order:?}");
    assert_eq!(order[cp_at[1]], "checkpoint50", "{order:?}");
    // Copied as they are into a witness file, they check the database (and their
    // signatures verify with the audit key).
    let witness = f.dir.path().join("siem.witness");
    let lines: String = cp_at
        .iter()
        .map(|&i| format!("{}\n", serde_json::to_string(&objects[i]).unwrap()))
        .collect();
    std::fs::write(&witness, lines).unwrap();
    let r = witness::check_file(&f.path, &witness, Some(key().public_key()), Depth::All).unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.lines_checked, 2);
    assert_eq!(r.witnessed_head.unwrap().0.seq, 50);
}

#[test]
fn a_checkpoint_signed_after_its_event_went_out_is_sent_on_its_own() {
    logs();
    let f = Fixture::new();
    // No checkpoint by count: the only one is signed on demand, after delivery.
    let log = AuditLog::open(&f.path, Some(key()), config(1000)).unwrap();
    append_n(&log, 0, 7);
    let rx = Receiver::start();
    let sink = Webhook::new(&rx.url("/late"), rx.opts()).unwrap();
    let fwd = Forwarder::spawn(&f.path, fast("late", 10), Box::new(sink)).unwrap();
    wait_until("7 events", Duration::from_secs(10), || {
        fwd.status().acked_seq == 7
    });
    let before = rx.reqs().len();
    let cp = log.checkpoint_now().unwrap().expect("a checkpoint over 7");
    assert_eq!(cp.seq, 7);
    wait_until("the late checkpoint", Duration::from_secs(10), || {
        rx.reqs()[before..]
            .iter()
            .flat_map(|r| webhook_objects(&r.body))
            .any(|o| o["type"] == "checkpoint")
    });
    // It came alone: event 7 was not sent again.
    let late: Vec<_> = rx.reqs()[before..]
        .iter()
        .flat_map(|r| webhook_objects(&r.body))
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["seq"], 7);
    assert_eq!(late[0]["hash"], hex::encode(cp.hash));
    assert_eq!(late[0]["signature"], cp.signature);
    // And only once: the next rounds find nothing new.
    thread::sleep(Duration::from_millis(300));
    let n = rx
        .reqs()
        .iter()
        .flat_map(|r| webhook_objects(&r.body))
        .filter(|o| o["type"] == "checkpoint")
        .count();
    assert_eq!(n, 1);
    let st = fwd.stop();
    assert_eq!(st.events_sent, 7, "a checkpoint is not an event: {st:?}");
}

#[test]
fn cursor_advances_only_on_2xx_and_503s_are_resent_with_the_same_ulids() {
    logs();
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 20);
    let rx = Receiver::start();
    let sink = Webhook::new(&rx.url("/"), rx.opts()).unwrap();
    let fwd = Forwarder::spawn(&f.path, fast("flaky", 8), Box::new(sink)).unwrap();
    wait_until("first 20", Duration::from_secs(10), || {
        fwd.status().acked_seq == 20
    });
    // The receiver fails: new events are sent (and re-sent), never confirmed.
    rx.answer(503);
    append_n(&log, 20, 15);
    wait_until("three refused attempts", Duration::from_secs(10), || {
        rx.reqs().iter().filter(|r| r.answered == 503).count() >= 3
    });
    assert_eq!(read_cursor(&f.path, "flaky").unwrap(), 20);
    let st = fwd.status();
    assert_eq!(st.acked_seq, 20, "{st:?}");
    assert!(st.last_error.as_deref().unwrap().contains("503"), "{st:?}");
    // Every refused attempt re-sent the same first batch (seq 21..28).
    for r in rx.reqs().iter().filter(|r| r.answered == 503) {
        let first = &webhook_events(&r.body)[0];
        assert_eq!(first["seq"], 21);
    }
    rx.answer(200);
    wait_until("all 35", Duration::from_secs(10), || {
        fwd.status().acked_seq == 35
    });
    drop(fwd);
    assert_eq!(read_cursor(&f.path, "flaky").unwrap(), 35);
    let reqs = rx.reqs();
    assert_all_in_order(&accepted(&reqs, webhook_events), &log_ids(&log));
    // Same ULIDs for the refused copies as for the accepted ones.
    let ids = log_ids(&log);
    for r in reqs.iter().filter(|r| r.answered == 503) {
        for e in webhook_events(&r.body) {
            let seq = e["seq"].as_u64().unwrap();
            assert_eq!(e["id"], ids[(seq - 1) as usize].1);
        }
    }
}

#[test]
fn receiver_down_then_up_resumes_from_the_cursor() {
    logs();
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 10);
    let mut rx = Receiver::start();
    let sink = Webhook::new(&rx.url("/"), rx.opts()).unwrap();
    let fwd = Forwarder::spawn(&f.path, fast("outage", 6), Box::new(sink)).unwrap();
    wait_until("first 10", Duration::from_secs(10), || {
        fwd.status().acked_seq == 10
    });
    rx.down();
    append_n(&log, 10, 30);
    wait_until("failures while down", Duration::from_secs(10), || {
        fwd.status().consecutive_failures >= 2
    });
    assert_eq!(fwd.status().acked_seq, 10);
    rx.up();
    wait_until("all 40 after the outage", Duration::from_secs(15), || {
        fwd.status().acked_seq == 40
    });
    drop(fwd);
    assert_all_in_order(&accepted(&rx.reqs(), webhook_events), &log_ids(&log));
    // A restart resumes from the durable cursor: nothing is re-sent.
    let before = rx.reqs().len();
    let sink = Webhook::new(&rx.url("/"), rx.opts()).unwrap();
    let fwd = Forwarder::spawn(&f.path, fast("outage", 6), Box::new(sink)).unwrap();
    append_n(&log, 40, 2);
    wait_until("2 more", Duration::from_secs(10), || {
        fwd.status().acked_seq == 42
    });
    drop(fwd);
    let after: Vec<_> = rx.reqs()[before..]
        .iter()
        .flat_map(|r| webhook_events(&r.body))
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(after, vec![41, 42]);
}

#[test]
fn a_4xx_is_a_configuration_error_retried_slowly_never_dropped() {
    logs();
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 5);
    let rx = Receiver::start();
    rx.answer(403);
    let sink = Webhook::new(&rx.url("/"), rx.opts()).unwrap();
    let mut s = fast("forbidden", 100);
    s.retry_max = Duration::from_millis(600);
    let fwd = Forwarder::spawn(&f.path, s, Box::new(sink)).unwrap();
    wait_until("two refusals", Duration::from_secs(10), || {
        rx.reqs().len() >= 2
    });
    let st = fwd.status();
    assert_eq!(st.acked_seq, 0);
    assert!(
        st.last_error.as_deref().unwrap().contains("configuration"),
        "{st:?}"
    );
    // Retried at retry_max, not at the 20 ms initial backoff.
    let reqs = rx.reqs();
    thread::sleep(Duration::from_millis(400));
    assert!(rx.reqs().len() <= reqs.len() + 1, "retried too fast");
    assert!(log_text().contains("forwarder configuration error"));
    // 429 is "slow down", not a configuration error.
    rx.answer(429);
    wait_until("a 429", Duration::from_secs(5), || {
        rx.reqs().iter().any(|r| r.answered == 429)
    });
    rx.answer(200);
    wait_until("delivered once fixed", Duration::from_secs(10), || {
        fwd.status().acked_seq == 5
    });
    drop(fwd);
    assert_all_in_order(&accepted(&rx.reqs(), webhook_events), &log_ids(&log));
}

#[test]
fn splunk_hec_shape_token_header_and_redaction() {
    use std::os::unix::fs::PermissionsExt;
    logs();
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 12);
    let rx = Receiver::start();
    let token_text = "5f3c1e9a-HEC-TOKEN-SECRET-0042";
    let token_file = f.dir.path().join("hec.token");
    std::fs::write(&token_file, format!("{token_text}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = HecToken::from_file(&token_file).unwrap();
    assert!(!format!("{token:?}").contains(token_text));
    let sink = SplunkHec::new(&rx.url(""), token, "ca-1.example", rx.opts()).unwrap();
    let dbg = format!("{sink:?}");
    assert!(!dbg.contains(token_text), "{dbg}");
    let fwd = Forwarder::spawn(&f.path, fast("splunk", 5), Box::new(sink)).unwrap();
    assert!(!format!("{fwd:?}").contains(token_text));
    wait_until("12 via HEC", Duration::from_secs(10), || {
        fwd.status().acked_seq == 12
    });
    drop(fwd);
    let reqs = rx.reqs();
    assert_eq!(reqs.len(), 3);
    let events = log.query(&Query::all()).unwrap();
    let mut i = 0;
    for r in &reqs {
        assert_eq!(r.path, "/services/collector/event");
        assert_eq!(r.headers["authorization"], format!("Splunk {token_text}"));
        assert_eq!(r.headers["content-type"], "application/json");
        let text = std::str::from_utf8(&r.body).unwrap();
        assert!(!text.ends_with('\n'));
        for line in text.split('\n') {
            let o: serde_json::Value = serde_json::from_str(line).unwrap();
            let ev = &events[i];
            let keys: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, ["event", "host", "source", "sourcetype", "time"]);
            // time: epoch seconds with milliseconds, as a JSON number.
            let ms = ev.time.timestamp_millis();
            let want = format!("\"time\":{}.{:03},", ms / 1000, ms % 1000);
            assert!(
                line.starts_with(&format!("{{{}", &want[..want.len() - 1])),
                "{line}"
            );
            assert_eq!(o["host"], "ca-1.example");
            assert_eq!(o["source"], "rampart-ca");
            assert_eq!(o["sourcetype"], "rampart:audit");
            assert_eq!(o["event"]["type"], "event");
            assert_eq!(o["event"]["seq"], ev.seq);
            assert_eq!(o["event"]["id"], ev.id.to_string());
            assert_eq!(o["event"]["code"], ev.code);
            assert_eq!(o["event"]["hash"], hex::encode(ev.hash));
            i += 1;
        }
    }
    assert_eq!(i, 12);
    let logs = log_text();
    assert!(logs.contains("splunk-hec"), "forwarder logs were captured");
    assert!(
        !logs.contains(token_text),
        "the HEC token reached a log line"
    );
    assert!(!logs.contains("TOKEN-SECRET"));
}

#[test]
fn refuses_plain_http_bad_ca_and_loose_token_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let e = Webhook::new("http://127.0.0.1:1/", HttpOptions::default()).unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");
    let missing = HttpOptions {
        trust: HttpTrust::Pinned(dir.path().join("nope.pem")),
        ..HttpOptions::default()
    };
    assert!(Webhook::new("https://127.0.0.1:1/", missing).is_err());
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let e = Webhook::new(
        "https://127.0.0.1:1/",
        HttpOptions {
            trust: HttpTrust::Pinned(empty),
            ..HttpOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("no usable"), "{e}");
    let t = dir.path().join("tok");
    std::fs::write(&t, "SECRET").unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = HecToken::from_file(&t).unwrap_err().to_string();
    assert!(e.contains("chmod 600") && !e.contains("SECRET"), "{e}");
}

#[test]
fn a_receiver_outside_the_pinned_ca_is_refused() {
    logs();
    let f = Fixture::new();
    let log = open_log(&f.path);
    append_n(&log, 0, 3);
    let rx = Receiver::start();
    let other = Receiver::start(); // another CA
    let sink = Webhook::new(&rx.url("/"), other.opts()).unwrap();
    let fwd = Forwarder::spawn(&f.path, fast("impostor", 10), Box::new(sink)).unwrap();
    wait_until("a TLS failure", Duration::from_secs(10), || {
        fwd.status().consecutive_failures >= 1
    });
    let st = fwd.stop();
    assert_eq!(st.acked_seq, 0);
    assert!(rx.reqs().is_empty());
    let err = st.last_error.unwrap();
    assert!(err.contains("TLS") || err.contains("certificate"), "{err}");
}

/// Throughput of the webhook sink into the local receiver (printed; asserted
/// only loosely so that a slow CI machine does not fail it).
#[test]
fn webhook_throughput() {
    logs();
    let f = Fixture::new();
    let n = 20_000u64;
    {
        let log = AuditLog::open(&f.path, None, AuditConfig::default()).unwrap();
        // Many appenders at once: the writer's group commit fills the log fast.
        thread::scope(|s| {
            for t in 0..16u64 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..n / 16 {
                        log.append(ev(t * n + i)).unwrap();
                    }
                });
            }
        });
        log.close().unwrap();
    }
    let rx = Receiver::start();
    let sink = Webhook::new(&rx.url("/"), rx.opts()).unwrap();
    let t0 = Instant::now();
    let fwd = Forwarder::spawn(&f.path, fast("bench", 500), Box::new(sink)).unwrap();
    wait_until("all delivered", Duration::from_secs(120), || {
        fwd.status().acked_seq == n
    });
    let dt = t0.elapsed();
    drop(fwd);
    let rate = n as f64 / dt.as_secs_f64();
    println!("webhook: {n} events in {dt:?} = {rate:.0} events/s (batch 500)");
    assert!(rate > 1_000.0, "{rate:.0} events/s");
}
