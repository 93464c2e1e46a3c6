//! The CA's SIEM forwarders against a real rsyslog (Debian `rsyslogd`, `imtcp`,
//! and the gtls driver for RFC 5425): every event of a scripted scenario reaches
//! rsyslog's file in order; rsyslog stopped for 30 s while events keep coming loses
//! nothing (duplicates carry the original ULID); a `kill -9` of the CA during a
//! burst loses no committed event; TLS with the receiver's CA pinned does the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rampart_api::{
    paths, CertRequest, CertResponse, Client, CreateUserRequest, FactorProof, InviteRequest,
    InviteResponse, LoginRequest, LoginResponse, User,
};
use rampart_e2e::rsyslog::{Received, Rsyslog, TlsFiles};
use rampart_e2e::{api_admin, tempdir, AuditDb, Ca, KeyPair};

/// `(seq, ULID)` of every event in the CA's audit database, in order (sqlite3).
fn db_events(ca: &Ca) -> Vec<(u64, String)> {
    AuditDb::new(ca.audit_db())
        .events()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().expect("seq"),
                r["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

/// Why `got` is not yet a complete, in-order, at-least-once copy of `db`; or a
/// violation that can never heal (a skipped sequence, a duplicate with another ULID).
enum Gap {
    Missing(usize),
    Broken(String),
}

fn check(db: &[(u64, String)], got: &[Received]) -> Result<usize, Gap> {
    let ids: BTreeMap<u64, &str> = db.iter().map(|(s, i)| (*s, i.as_str())).collect();
    let mut max_seen = 0u64;
    let mut dups = 0usize;
    for (n, r) in got.iter().enumerate() {
        // In order: a resend may go back, but nothing is ever skipped.
        if r.seq > max_seen + 1 {
            return Err(Gap::Broken(format!(
                "line {n}: seq {} after at most {max_seen} (events skipped)",
                r.seq
            )));
        }
        if r.seq <= max_seen {
            dups += 1;
        }
        max_seen = max_seen.max(r.seq);
        match ids.get(&r.seq) {
            Some(id) if *id == r.id => {}
            Some(id) => {
                return Err(Gap::Broken(format!(
                    "line {n}: seq {} arrived with ULID {} but the log has {id}",
                    r.seq, r.id
                )))
            }
            // Newer than our snapshot of the database.
            None => {}
        }
    }
    let missing = db.iter().filter(|(s, _)| *s > max_seen).count();
    if missing > 0 {
        return Err(Gap::Missing(missing));
    }
    Ok(dups)
}

/// Wait until rsyslog's file holds every event of the audit log; returns the
/// number of duplicates and how long it took.
fn wait_delivered(ca: &Ca, rs: &Rsyslog, timeout: Duration, what: &str) -> (usize, Duration) {
    let t0 = Instant::now();
    loop {
        let db = db_events(ca);
        match check(&db, &rs.received()) {
            Ok(dups) => return (dups, t0.elapsed()),
            Err(Gap::Broken(why)) => panic!("{what}: {why}\n{}", ca.log()),
            Err(Gap::Missing(n)) if t0.elapsed() > timeout => panic!(
                "{what}: {n} of {} events never reached rsyslog within {timeout:?}\n\
                 rsyslogd stderr:\n{}\nCA log:\n{}",
                db.len(),
                rs.stderr(),
                ca.log()
            ),
            Err(Gap::Missing(_)) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn issue(client: &Client, key: &str) -> Result<CertResponse, rampart_api::ClientError> {
    client.post_json(
        paths::CERTS,
        &CertRequest {
            public_key: key.to_owned(),
            ttl_seconds: Some(300),
        },
    )
}

/// Admin enrolment and login, a user created and invited, a failed login, some
/// certificates: a bit of every family of events.
fn scenario(ca: &Ca) -> (Client, String) {
    let (_admin, session) = api_admin(ca);
    let admin = session.client.clone();
    let _: User = admin
        .post_json(
            paths::ADMIN_USERS,
            &CreateUserRequest {
                name: "alice".into(),
                groups: vec![rampart_e2e::policy::ENGINEERS.into()],
                admin: false,
            },
        )
        .unwrap();
    let _: InviteResponse = admin
        .post_json(
            paths::ADMIN_INVITES,
            &InviteRequest {
                user: "alice".into(),
                ttl_seconds: None,
            },
        )
        .unwrap();
    let refused: Result<LoginResponse, _> = ca.api().post_json(
        paths::LOGIN,
        &LoginRequest {
            user: "alice".into(),
            factor: FactorProof::Totp {
                code: "000000".into(),
            },
        },
    );
    assert!(refused.is_err(), "a login without enrolment must fail");
    let key = KeyPair::ed25519(ca.root(), "k").public_line();
    for _ in 0..20 {
        issue(&admin, &key).unwrap();
    }
    (admin, key)
}

/// Issue certificates for `dur`; every one must succeed, and promptly: the
/// forwarder must never hold issuance up. Returns how many and the slowest.
fn issue_for(client: &Client, key: &str, dur: Duration) -> (usize, Duration) {
    let t0 = Instant::now();
    let (mut n, mut slowest) = (0, Duration::ZERO);
    while t0.elapsed() < dur {
        let t = Instant::now();
        issue(client, key).unwrap_or_else(|e| panic!("issuance during the outage: {e}"));
        slowest = slowest.max(t.elapsed());
        n += 1;
    }
    (n, slowest)
}

fn kinds(rs: &Rsyslog) -> Vec<String> {
    let mut k: Vec<String> = rs.received().into_iter().map(|r| r.code).collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn rsyslog_over_tcp_gets_every_event_across_an_outage_and_a_crash() {
    let dir = tempdir("siem-tcp");
    let mut rs = Rsyslog::start(dir.path(), None);
    let mut ca = Ca::init_e2e(&rs.forwarder_toml("rsyslog", "2s"));
    ca.start();

    // 1. The scripted scenario arrives complete and in order.
    let (admin, key) = scenario(&ca);
    let (dups, took) = wait_delivered(&ca, &rs, Duration::from_secs(30), "scenario");
    assert_eq!(dups, 0, "no duplicates without a failure");
    eprintln!(
        "scenario: {} events delivered in {took:?}",
        db_events(&ca).len()
    );
    let codes = kinds(&rs);
    for want in [
        "RA-CA-002",
        "RA-ADM-001",
        "RA-ADM-005",
        "RA-AUTH-003",
        "RA-CERT-001",
    ] {
        assert!(codes.iter().any(|c| c == want), "{want} missing: {codes:?}");
    }

    // 2. rsyslog down for 30 s while issuance goes on.
    let before = db_events(&ca).len();
    rs.stop();
    let (n, slowest) = issue_for(&admin, &key, Duration::from_secs(30));
    assert!(n >= 100, "only {n} certificates in 30 s");
    assert!(
        slowest < Duration::from_secs(2),
        "issuance stalled {slowest:?} during the SIEM outage"
    );
    rs.restart();
    let (dups, took) = wait_delivered(&ca, &rs, Duration::from_secs(60), "after the outage");
    eprintln!(
        "outage: {} events while rsyslog was down ({n} certificates, slowest {slowest:?}); \
         all delivered {took:?} after restart, {dups} duplicates",
        db_events(&ca).len() - before
    );
    assert!(
        ca.log().contains("forwarder error"),
        "the outage must be logged by the forwarder"
    );

    // 3. kill -9 in the middle of a burst of 10,000 certificate events: every
    //    committed (so every acknowledged) event still reaches rsyslog after the
    //    restart, and the rest of the burst follows it.
    const BURST: usize = 10_000;
    const KILL_AT: usize = 4_000;
    const THREADS: usize = 4;
    let acked = Arc::new(AtomicUsize::new(0));
    let burst = |limit: usize| {
        (0..THREADS)
            .map(|_| {
                let (client, key, acked) = (admin.clone(), key.clone(), Arc::clone(&acked));
                thread::spawn(move || {
                    let mut serials = Vec::new();
                    while acked.load(Ordering::SeqCst) < limit {
                        match issue(&client, &key) {
                            Ok(c) => {
                                serials.push(c.serial);
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            // The CA was killed under us: stop this half of the burst.
                            Err(_) => break,
                        }
                    }
                    serials
                })
            })
            .collect::<Vec<_>>()
    };
    let first_half = burst(BURST);
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < KILL_AT {
        assert!(Instant::now() < deadline, "burst too slow");
        thread::sleep(Duration::from_millis(5));
    }
    ca.kill9();
    let mut serials: Vec<u64> = first_half
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let killed_after = serials.len();
    ca.start();
    serials.extend(burst(BURST).into_iter().flat_map(|h| h.join().unwrap()));
    assert!(
        serials.len() >= BURST,
        "the burst completed after the restart"
    );
    let (dups, took) = wait_delivered(&ca, &rs, Duration::from_secs(120), "after kill -9");
    eprintln!(
        "kill -9 after {killed_after} acknowledged certificates, {} in the whole burst: all \
         delivered {took:?} after the burst, {dups} duplicates in total",
        serials.len()
    );
    // Every acknowledged certificate's event is among those delivered.
    let db = AuditDb::new(ca.audit_db());
    let by_serial: std::collections::HashMap<u64, String> = db
        .events_of_kind("cert_issued")
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get("serial")?.as_u64()?,
                r.get("id")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let got: std::collections::HashSet<String> = rs.received().into_iter().map(|r| r.id).collect();
    for s in &serials {
        let id = by_serial
            .get(s)
            .unwrap_or_else(|| panic!("no cert_issued event for acknowledged serial {s}"));
        assert!(got.contains(id), "serial {s} not in rsyslog");
    }
    ca.verify_audit()
        .assert_success("the chain verifies after kill -9");

    // The CA's graceful stop forwards its own ca_stopped event before closing.
    ca.stop();
    wait_delivered(&ca, &rs, Duration::from_secs(10), "after stop");
    assert_eq!(
        rs.received().last().map(|r| r.code.as_str()),
        Some("RA-CA-003")
    );
    // And the checkpoint that closing the log signed over it: rsyslog holds the
    // final signed head, with the database's hash, as the newest checkpoint.
    let head = db_events(&ca).last().map(|e| e.0).unwrap();
    let head_hash = rampart_e2e::audit_db::sqlite3(
        &ca.audit_db(),
        &format!("SELECT lower(hex(hash)) FROM events WHERE seq = {head}"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while rs.checkpoints().last().map(|c| c.0) != Some(head) {
        assert!(
            Instant::now() < deadline,
            "the closing checkpoint over {head} never reached rsyslog: {:?}",
            rs.checkpoints()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let (_, hash) = rs.checkpoints().last().cloned().unwrap();
    assert_eq!(hash, head_hash.trim());
}

#[test]
fn rsyslog_over_tls_with_a_pinned_ca_gets_every_event_across_an_outage() {
    let dir = tempdir("siem-tls");
    let tls = TlsFiles::generate(dir.path(), "syslog.rampart.test");
    let mut rs = Rsyslog::start(dir.path(), Some(tls));
    let mut ca = Ca::init_e2e(&rs.forwarder_toml("rsyslog-tls", "1s"));
    ca.start();
    let (admin, key) = scenario(&ca);
    let (dups, _) = wait_delivered(&ca, &rs, Duration::from_secs(30), "TLS scenario");
    assert_eq!(dups, 0);

    rs.stop();
    let (n, slowest) = issue_for(&admin, &key, Duration::from_secs(8));
    assert!(
        slowest < Duration::from_secs(2),
        "issuance stalled {slowest:?}"
    );
    rs.restart();
    let (dups, took) = wait_delivered(&ca, &rs, Duration::from_secs(60), "TLS after outage");
    eprintln!("TLS outage: {n} certificates while down, delivered {took:?} after restart, {dups} duplicates");
    ca.stop();
    wait_delivered(&ca, &rs, Duration::from_secs(10), "TLS after stop");
}

#[test]
fn tls_forwarder_refuses_a_receiver_outside_its_pinned_ca() {
    let dir = tempdir("siem-pin");
    let real = TlsFiles::generate(dir.path(), "syslog.rampart.test");
    // rsyslog presents a certificate from another CA with the same name.
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let impostor = TlsFiles::generate(&other_dir, "syslog.rampart.test");
    let rs = Rsyslog::start(&other_dir, Some(impostor));
    let toml = rs.forwarder_toml("pinned", "1s").replace(
        &rs.tls().unwrap().ca.display().to_string(),
        &real.ca.display().to_string(),
    );
    let mut ca = Ca::init_e2e(&toml);
    ca.start();
    let _ = scenario(&ca);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ca.log().contains("forwarder error") {
        assert!(
            Instant::now() < deadline,
            "no forwarder error logged\n{}",
            ca.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let log = ca.log();
    assert!(log.contains("TLS:") && log.contains("certificate"), "{log}");
    assert!(
        rs.received().is_empty(),
        "events reached an unpinned receiver"
    );
    ca.stop();
}
