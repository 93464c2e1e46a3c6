//! SIEM forwarding throughput and lag against a real rsyslog (Debian `rsyslogd`,
//! `imtcp`, and the gtls driver for RFC 5425), with a raw-writer baseline in the
//! same run.
//!
//! ```sh
//! cargo run --release -p rampart-audit --example forward_bench -- --events 200000
//! ```
//!
//! * build: `--threads` threads append `--events` durable events (group commit).
//! * receivers: two private rsyslogd instances on loopback (plain TCP; TLS with a
//!   CA and server certificate made here), each writing one line per message
//!   (`MSGID STRUCTURED-DATA`) to its own file.
//! * baseline: the same RFC 5424 frames, formatted up front, written as fast as
//!   possible over one connection (no database, no cursor): the receiver's ceiling.
//! * forwarder: a `Forwarder` (default settings but `--batch`) starting from an
//!   empty cursor; the time until rsyslog's file holds the whole backlog (for TLS
//!   that includes the TCP lag phase's events).
//! * lag: with that forwarder caught up, events are appended at a steady `--rate`
//!   events/s for `--lag-seconds` (event i due at start + i/rate; `--lag-threads`
//!   threads take turns, since one thread waiting on each fsync cannot keep
//!   1,000/s on a slow disk); each event's lag is from the moment its append
//!   returned (committed) to the moment its line (found by ULID) appeared in
//!   rsyslog's file.
//!
//! Throughput figures are end to end: every event was written to rsyslog's file.
//! rsyslogd is killed when the benchmark ends (or panics); `--keep` keeps the
//! directory with the database, the configs and rsyslog's files.

// A benchmark binary: panicking on a setup error is the right behaviour.
// A benchmark stamps its events and codes with the real time.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_audit::export::canonical_body;
use rampart_audit::forward::syslog::{format_rfc5424, frame_octet_counted};
use rampart_audit::forward::{
    Forwarder, ForwarderSettings, Record, Sink, SyslogOptions, SyslogTcp, SyslogTls,
};
use rampart_audit::{AuditConfig, AuditLog, EventKind, NewEvent, Outcome, Query};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use ssh_key::private::Ed25519Keypair;
use ssh_key::PrivateKey;

const SERVER_NAME: &str = "syslog.bench.test";

struct Args {
    events: u64,
    threads: u64,
    batch: u32,
    rate: u64,
    lag_seconds: u64,
    lag_threads: u64,
    dir: Option<PathBuf>,
    keep: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 200_000,
        threads: 32,
        batch: ForwarderSettings::new("x").batch_size,
        rate: 1_000,
        lag_seconds: 10,
        lag_threads: 4,
        dir: None,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => a.events = val().parse().expect("--events N"),
            "--threads" => a.threads = val().parse().expect("--threads N"),
            "--batch" => a.batch = val().parse().expect("--batch N"),
            "--rate" => a.rate = val().parse().expect("--rate N"),
            "--lag-seconds" => a.lag_seconds = val().parse().expect("--lag-seconds N"),
            "--lag-threads" => a.lag_threads = val().parse().expect("--lag-threads N"),
            "--dir" => a.dir = Some(val().into()),
            "--keep" => a.keep = true,
            "-h" | "--help" => {
                println!("forward_bench [--events N] [--threads N] [--batch N] [--rate N] [--lag-seconds N] [--lag-threads N] [--dir PATH] [--keep]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.threads >= 1 && a.events >= a.threads,
        "need at least one event per thread"
    );
    assert!(
        a.rate >= 1 && a.batch >= 1 && a.lag_threads >= 1,
        "--rate, --batch and --lag-threads must be positive"
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a server certificate for rsyslog's gtls driver.
struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    fn generate(dir: &Path) -> TlsFiles {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart forward_bench CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![SERVER_NAME.to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        fs::write(&files.ca, ca.pem()).unwrap();
        fs::write(&files.cert, cert.pem()).unwrap();
        fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}

/// A private rsyslogd in the foreground; killed on drop.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    out: PathBuf,
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path, tls: Option<&TlsFiles>) -> Rsyslog {
        fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let work = dir.join("work");
        fs::create_dir_all(&work).unwrap();
        let out = dir.join("out.log");
        let module = match tls {
            None => "module(load=\"imtcp\")".to_owned(),
            Some(t) => format!(
                "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" \
                 DefaultNetstreamDriverKeyFile=\"{}\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
                 StreamDriver.AuthMode=\"anon\")",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ),
        };
        let conf = dir.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"64k\")\n\
                 {module}\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"rampart\" type=\"string\" string=\"%msgid% %structured-data%\\n\")\n\
                 action(type=\"omfile\" file=\"{out}\" template=\"rampart\")\n",
                work = work.display(),
                out = out.display(),
            ),
        )
        .unwrap();
        let stderr = fs::File::create(dir.join("rsyslogd.stderr")).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn rsyslogd (apt-get install rsyslog rsyslog-gnutls)");
        let mut me = Rsyslog {
            dir: dir.to_owned(),
            port,
            out,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = me.child.try_wait() {
                panic!("rsyslogd exited at start ({st})\n{}", me.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd not listening within 20 s\n{}",
                me.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Follows rsyslog's output file as it grows, line by line.
struct Tail {
    path: PathBuf,
    file: Option<fs::File>,
    partial: Vec<u8>,
    lines: u64,
}

impl Tail {
    /// Start at the current end of `path` (earlier lines are not counted).
    fn from_end(path: &Path) -> Tail {
        let mut t = Tail {
            path: path.to_owned(),
            file: None,
            partial: Vec::new(),
            lines: 0,
        };
        t.poll(|_| {});
        t.lines = 0;
        t
    }

    /// Read what was appended; call `f` for each complete Rampart line. Returns
    /// whether anything new was read.
    fn poll(&mut self, mut f: impl FnMut(&[u8])) -> bool {
        if self.file.is_none() {
            self.file = fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return false;
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut any = false;
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                return any;
            }
            any = true;
            self.partial.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(i) = self.partial[start..].iter().position(|&b| b == b'\n') {
                let line = &self.partial[start..start + i];
                if memfind(line, b"[rampart@") {
                    self.lines += 1;
                    f(line);
                }
                start += i + 1;
            }
            self.partial.drain(..start);
        }
    }

    /// Poll until `n` lines have been seen since the start; panics after `timeout`.
    fn wait_lines(&mut self, n: u64, timeout: Duration, what: &str, rs: &Rsyslog) {
        let deadline = Instant::now() + timeout;
        while self.lines < n {
            if !self.poll(|_| {}) {
                assert!(
                    Instant::now() < deadline,
                    "{what}: only {} of {n} lines within {timeout:?}\n{}",
                    self.lines,
                    rs.stderr()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The ULID in a line's `id="…"` parameter.
fn line_id(line: &[u8]) -> Option<String> {
    let pat = b" id=\"";
    let i = line.windows(pat.len()).position(|w| w == pat)? + pat.len();
    line.get(i..i + 26)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The `seq="…"` parameter of a line (0 when absent).
fn line_seq(line: &[u8]) -> u64 {
    let pat = b" seq=\"";
    line.windows(pat.len())
        .position(|w| w == pat)
        .and_then(|i| {
            let rest = &line[i + pat.len()..];
            let end = rest.iter().position(|&b| b == b'"')?;
            std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
        })
        .unwrap_or(0)
}

fn tls_client_config(ca_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Write every frame over one connection, `chunk` frames per write, as fast as
/// the receiver reads.
fn raw_send(address: &str, tls: Option<&[u8]>, frames: &[Vec<u8>], chunk: usize) {
    fn write_all(out: &mut impl Write, frames: &[Vec<u8>], chunk: usize) {
        let mut buf = Vec::new();
        for c in frames.chunks(chunk) {
            buf.clear();
            for f in c {
                buf.extend_from_slice(f);
            }
            out.write_all(&buf).unwrap();
        }
        out.flush().unwrap();
    }
    let mut sock = TcpStream::connect(address).unwrap();
    sock.set_nodelay(true).unwrap();
    // Closing right after the last write is fine: our FIN follows the data and
    // the receiver reads everything before it.
    match tls {
        None => write_all(&mut sock, frames, chunk),
        Some(ca) => {
            let conn = rustls::ClientConnection::new(
                tls_client_config(ca),
                ServerName::try_from(SERVER_NAME).unwrap(),
            )
            .unwrap();
            let mut s = rustls::StreamOwned::new(conn, sock);
            write_all(&mut s, frames, chunk);
            s.conn.send_close_notify();
            s.flush().unwrap();
        }
    }
}

struct Figures {
    transport: &'static str,
    base_rate: f64,
    fwd_rate: f64,
    achieved_rate: f64,
    lag: Vec<Duration>,
    lag_missing: usize,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[allow(clippy::too_many_arguments)]
fn run_transport(
    transport: &'static str,
    args: &Args,
    log: &AuditLog,
    db: &Path,
    frames: &[Vec<u8>],
    rs: &Rsyslog,
    sink: Box<dyn Sink>,
    tls_ca: Option<&[u8]>,
) -> Figures {
    let n = frames.len() as u64;

    // ---- baseline: raw frames over one connection ----
    let mut tail = Tail::from_end(&rs.out);
    let t0 = Instant::now();
    raw_send(&rs.address(), tls_ca, frames, args.batch as usize);
    tail.wait_lines(n, Duration::from_secs(600), "baseline", rs);
    let base_secs = t0.elapsed().as_secs_f64();
    let base_rate = n as f64 / base_secs;
    println!(
        "{transport:<4} baseline : {n} events in {base_secs:.2} s = {base_rate:.0} events/s (raw frames, one connection)"
    );

    // ---- forwarder: the whole backlog from an empty cursor ----
    // The whole backlog: the log also holds the events of earlier lag phases.
    let backlog = log.head().unwrap().0;
    let mut tail = Tail::from_end(&rs.out);
    let mut settings = ForwarderSettings::new(&format!("bench-{transport}"));
    settings.batch_size = args.batch;
    let t0 = Instant::now();
    let fwd = Forwarder::spawn(db, settings, sink).unwrap();
    tail.wait_lines(backlog, Duration::from_secs(600), "forwarder", rs);
    let fwd_secs = t0.elapsed().as_secs_f64();
    let fwd_rate = backlog as f64 / fwd_secs;
    println!(
        "{transport:<4} forwarder: {backlog} events in {fwd_secs:.2} s = {fwd_rate:.0} events/s (batch {}), {:.0}% of baseline",
        args.batch,
        100.0 * fwd_rate / base_rate
    );

    // ---- lag at a steady rate, forwarder caught up ----
    let total = args.rate * args.lag_seconds;
    // Event i is due at start + i/rate. One thread cannot keep that pace when a
    // durable append (an fsync) takes longer than 1/rate, so `--lag-threads`
    // threads take turns (thread t appends events t, t+K, t+2K…, each at its due
    // time) and the writer group-commits whatever overlaps.
    let k = args.lag_threads;
    let start = Instant::now();
    let appenders: Vec<_> = (0..k)
        .map(|t| {
            let log = log.clone();
            let rate = args.rate;
            std::thread::spawn(move || {
                let mut committed = Vec::new();
                for i in (t..total).step_by(k as usize) {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let a = log.append(event(i)).unwrap();
                    committed.push((a.id.to_string(), Instant::now()));
                }
                committed
            })
        })
        .collect();
    // This phase's events are the ones after `backlog`; stop when every one of
    // them has arrived (duplicates count once).
    let mut arrived: HashMap<String, Instant> = HashMap::with_capacity(total as usize);
    let mut fresh = 0u64;
    let deadline = Instant::now() + Duration::from_secs(args.lag_seconds + 30);
    while fresh < total && Instant::now() < deadline {
        let now = Instant::now();
        let got = tail.poll(|line| {
            if let Some(id) = line_id(line) {
                if line_seq(line) > backlog && !arrived.contains_key(&id) {
                    fresh += 1;
                    arrived.insert(id, now);
                }
            }
        });
        if !got {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let mut committed = Vec::new();
    let mut last_commit = start;
    for h in appenders {
        let c = h.join().unwrap();
        if let Some((_, at)) = c.last() {
            last_commit = last_commit.max(*at);
        }
        committed.extend(c);
    }
    let achieved_rate = total as f64 / last_commit.duration_since(start).as_secs_f64();
    let mut lag: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, at)| arrived.get(id).map(|t| t.saturating_duration_since(*at)))
        .collect();
    let lag_missing = committed.len() - lag.len();
    // When the slow ones were committed (seconds into the phase): spikes at the
    // start, or spread out, tell different stories.
    let mut slow: Vec<String> = committed
        .iter()
        .filter_map(|(id, at)| {
            let l = arrived.get(id)?.saturating_duration_since(*at);
            (l > Duration::from_millis(250)).then(|| at.duration_since(start).as_secs())
        })
        .fold(
            std::collections::BTreeMap::<u64, u64>::new(),
            |mut m, sec| {
                *m.entry(sec).or_default() += 1;
                m
            },
        )
        .into_iter()
        .map(|(sec, count)| format!("{count}@{sec}s"))
        .collect();
    slow.truncate(12);
    lag.sort();
    let st = fwd.stop();
    if st.connects != 1 || st.last_error.is_some() {
        println!(
            "{transport:<4} forwarder: {} connections, last error {:?}",
            st.connects, st.last_error
        );
    }
    println!(
        "{transport:<4} lag      : {total} events at {achieved_rate:.0}/s: p50 {} p99 {} max {}{}",
        ms(pct(&lag, 0.50)),
        ms(pct(&lag, 0.99)),
        ms(lag.last().copied().unwrap_or_default()),
        if lag_missing > 0 {
            format!(" ({lag_missing} never arrived)")
        } else {
            String::new()
        }
    );
    if !slow.is_empty() {
        println!(
            "{transport:<4} lag      : over 250 ms, by second of commit: {}",
            slow.join(" ")
        );
    }
    Figures {
        transport,
        base_rate,
        fwd_rate,
        achieved_rate,
        lag,
        lag_missing,
    }
}

fn main() {
    let args = parse_args();
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap(),
    };
    println!(
        "forward_bench: {} events, batch {}, lag at {}/s for {} s, in {}",
        args.events,
        args.batch,
        args.rate,
        args.lag_seconds,
        tmp.path().display()
    );

    // ---- the log ----
    let db = tmp.path().join("audit.db");
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[42; 32]));
    let log = AuditLog::open(&db, Some(key), AuditConfig::default()).unwrap();
    let per = args.events / args.threads;
    let n = per * args.threads;
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
    println!(
        "log      : {n} events appended in {:.2} s ({} threads)",
        start.elapsed().as_secs_f64(),
        args.threads
    );

    // The baseline's frames, formatted up front exactly as the sink formats them.
    let opts = SyslogOptions::default();
    let frames: Vec<Vec<u8>> = log
        .query(&Query::all())
        .unwrap()
        .into_iter()
        .map(|event| {
            let body = canonical_body(&event).unwrap();
            let mut f = Vec::new();
            frame_octet_counted(&format_rfc5424(&opts, &Record::event(event, body)), &mut f);
            f
        })
        .collect();
    assert_eq!(frames.len() as u64, n);
    let avg = frames.iter().map(Vec::len).sum::<usize>() / frames.len();

    // ---- receivers ----
    let tls = TlsFiles::generate(tmp.path());
    let ca_pem = fs::read(&tls.ca).unwrap();
    let rs_tcp = Rsyslog::start(&tmp.path().join("rsyslog-tcp"), None);
    let rs_tls = Rsyslog::start(&tmp.path().join("rsyslog-tls"), Some(&tls));

    let tcp = run_transport(
        "tcp",
        &args,
        &log,
        &db,
        &frames,
        &rs_tcp,
        Box::new(SyslogTcp::new(&rs_tcp.address(), opts.clone())),
        None,
    );
    let tls_fig = run_transport(
        "tls",
        &args,
        &log,
        &db,
        &frames,
        &rs_tls,
        Box::new(
            SyslogTls::with_ca_pem(&rs_tls.address(), SERVER_NAME, &ca_pem, opts.clone()).unwrap(),
        ),
        Some(&ca_pem),
    );
    log.close().unwrap();

    let version = Command::new("rsyslogd")
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .split(" compiled")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    println!();
    println!("```text");
    println!(
        "$ cargo run --release -p rampart-audit --example forward_bench -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!(
        "{n} events (~{avg} bytes per frame), forwarder batch {}, poll 100 ms, {version} on loopback, {} cores",
        args.batch,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "transport   forwarder      raw baseline   ratio   lag at {}/s: p50 / p99 / max",
        args.rate
    );
    for f in [&tcp, &tls_fig] {
        println!(
            "{:<10}  {:>7.0} ev/s   {:>7.0} ev/s   {:>4.0}%   {} / {} / {} ({} events at {:.0}/s{})",
            format!("syslog-{}", f.transport),
            f.fwd_rate,
            f.base_rate,
            100.0 * f.fwd_rate / f.base_rate,
            ms(pct(&f.lag, 0.50)),
            ms(pct(&f.lag, 0.99)),
            ms(f.lag.last().copied().unwrap_or_default()),
            f.lag.len(),
            f.achieved_rate,
            if f.lag_missing > 0 {
                format!(", {} missing", f.lag_missing)
            } else {
                String::new()
            }
        );
    }
    println!("```");
    drop(rs_tls);
    drop(rs_tcp);
    if args.keep {
        println!("kept     : {}", tmp.keep().display());
    }
}
