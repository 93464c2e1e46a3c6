//! Slow and greedy clients against the real CA over HTTPS: connections that
//! trickle a request head are cut at `[http] header_timeout`, one network
//! cannot hold more than `max_connections_per_network`, and a real
//! `rampart login` goes through meanwhile. The CA runs under the file limit its
//! systemd unit sets (`LimitNOFILE`).

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{bootstrap_admin, onboard, workspace_root, Ca};

/// The request-head deadline these tests configure.
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);

/// `LimitNOFILE=` of the CA's systemd unit.
fn unit_file_limit() -> u64 {
    let unit =
        std::fs::read_to_string(workspace_root().join("packaging/systemd/rampart-ca.service"))
            .unwrap();
    unit.lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .expect("rampart-ca.service sets LimitNOFILE")
        .parse()
        .expect("LimitNOFILE is a number")
}

/// Give this process (and so the CA it starts) the unit's file limit.
fn apply_unit_file_limit() -> u64 {
    let limit = unit_file_limit();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit)
        .unwrap_or_else(|e| panic!("cannot set RLIMIT_NOFILE to the unit's {limit}: {e}"));
    limit
}

/// A TCP connection to `to` made from the loopback address `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect(&to.into())?;
    Ok(socket.into())
}

fn ca_addr(ca: &Ca) -> SocketAddr {
    ca.url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// How a slow client's connection ended.
#[derive(Debug)]
enum Ended {
    /// The server closed it this long after the TLS handshake.
    CutAfter(Duration),
    /// Never got through the TLS handshake (the error is shown on failure).
    NoHandshake(#[allow(dead_code)] String),
    /// Still open when the client gave up.
    StillOpen,
}

/// Handshake, then send a request head one header line a second, never the
/// blank line that ends it, until the server closes the connection.
fn trickle(tls: Arc<rustls::ClientConfig>, from: Ipv4Addr, to: SocketAddr) -> Ended {
    let mut tcp = match connect_from(from, to) {
        Ok(t) => t,
        Err(e) => return Ended::NoHandshake(e.to_string()),
    };
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(tls, name).unwrap();
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Ended::NoHandshake(e.to_string());
        }
    }
    let handshaken = Instant::now();
    let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
    if stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n")
        .is_err()
    {
        return Ended::CutAfter(handshaken.elapsed());
    }
    let mut buf = [0u8; 512];
    while handshaken.elapsed() < Duration::from_secs(30) {
        match stream.read(&mut buf) {
            // A clean close, a reset, or a 408 answer: the server cut us.
            Ok(_) => return Ended::CutAfter(handshaken.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Ended::CutAfter(handshaken.elapsed()),
        }
        if stream.write_all(b"X-Slow: 1\r\n").is_err() {
            return Ended::CutAfter(handshaken.elapsed());
        }
    }
    Ended::StillOpen
}

#[test]
fn fifteen_hundred_slow_clients_are_cut_at_the_header_timeout_while_a_login_succeeds() {
    let limit = apply_unit_file_limit();
    assert!(
        limit >= 4096,
        "the unit's LimitNOFILE {limit} is below the connection cap"
    );
    let mut ca = Ca::init_e2e("[http]\nheader_timeout = \"3s\"\n");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut erin = onboard(&ca, &admin, "erin", &[ENGINEERS]);
    let to = ca_addr(&ca);
    let tls = Arc::new(rampart_api::client::pinned_tls_config(ca.pin()).unwrap());

    // 1,500 slow clients from six loopback addresses (250 each: under the
    // per-network cap, so it is the header deadline that must cut them).
    let started = Instant::now();
    let slow: Vec<_> = (0..1500)
        .map(|i| {
            let tls = Arc::clone(&tls);
            let from = Ipv4Addr::new(127, 0, 1, 1 + (i % 6) as u8);
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || trickle(tls, from, to))
                .unwrap()
        })
        .collect();

    // While they hold their connections, a real engineer logs in.
    std::thread::sleep(Duration::from_millis(500));
    let login_started = Instant::now();
    erin.login();
    let login_took = login_started.elapsed();

    let ended: Vec<Ended> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    let cut: Vec<Duration> = ended
        .iter()
        .filter_map(|e| match e {
            Ended::CutAfter(d) => Some(*d),
            _ => None,
        })
        .collect();
    let not_cut: Vec<&Ended> = ended
        .iter()
        .filter(|e| !matches!(e, Ended::CutAfter(_)))
        .collect();
    assert!(
        not_cut.is_empty(),
        "{} of 1500 slow clients were not cut (first: {:?})",
        not_cut.len(),
        not_cut.first()
    );
    let latest = cut.iter().max().unwrap();
    assert!(
        *latest >= HEADER_TIMEOUT - Duration::from_millis(100)
            && *latest <= HEADER_TIMEOUT + Duration::from_secs(4),
        "slow clients must be cut at the {HEADER_TIMEOUT:?} head deadline; the last went after {latest:?}"
    );
    eprintln!(
        "1500 slow clients cut within {latest:?} of their handshakes ({:?} in all); \
         rampart login took {login_took:?} meanwhile",
        started.elapsed()
    );
    assert!(ca.is_running(), "the CA must survive\n{}", ca.log());
}

#[test]
fn one_network_cannot_hold_more_than_its_share_of_connections() {
    apply_unit_file_limit();
    let mut ca = Ca::init_e2e(
        "[http]\nmax_connections = 400\nmax_connections_per_network = 100\nhandshake_timeout = \"60s\"\n",
    );
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut fay = onboard(&ca, &admin, "fay", &[ENGINEERS]);
    let to = ca_addr(&ca);
    let greedy = Ipv4Addr::new(127, 0, 2, 1);

    // 150 idle connections from one address: the first 100 are held (no
    // handshake yet), the other 50 closed at once.
    let mut held = Vec::new();
    let mut closed = 0;
    for _ in 0..150 {
        let s = connect_from(greedy, to).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        held.push(s);
    }
    for s in &mut held {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    assert_eq!(
        closed, 50,
        "connections over the per-network cap must be closed"
    );
    // Everyone else is served: a real login from 127.0.0.1.
    fay.login();
    drop(held);
    assert!(ca.is_running(), "{}", ca.log());
}
