//! Two CAs on one PostgreSQL, one killed -9 in the middle of a burst of 2,000
//! certificate issuances from 16 clients that were given both URLs: no serial
//! is issued twice, every certificate a client received has its `cert_issued`
//! event in the one shared audit chain, the chain verifies, and the clients
//! finish on the CA that is left.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rampart_api::{paths, CertRequest, CertResponse, Client, ClientError};
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{api_admin, api_onboard, AuditDb, Ca, KeyPair};
use rampart_test_postgres::TestPostgres;

const CLIENTS: usize = 16;
const TOTAL: usize = 2_000;
/// Certificates issued before CA 1 is killed.
const KILL_AFTER: usize = 300;

/// What one client got: its certificates, and the failed requests it retried.
struct ClientRun {
    certs: Vec<CertResponse>,
    retried: Vec<String>,
}

/// Issue `per_client` certificates through `client`, retrying a request that
/// failed (a CA killed mid-request answers nothing; the retry goes to the CA
/// that is left once the dead one refuses connections).
fn issue(client: Client, key: String, per_client: usize, issued: Arc<AtomicUsize>) -> ClientRun {
    let mut run = ClientRun {
        certs: Vec::with_capacity(per_client),
        retried: Vec::new(),
    };
    while run.certs.len() < per_client {
        let r: Result<CertResponse, ClientError> = client.post_json(
            paths::CERTS,
            &CertRequest {
                public_key: key.clone(),
                ttl_seconds: Some(300),
            },
        );
        match r {
            Ok(c) => {
                run.certs.push(c);
                issued.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                run.retried.push(e.to_string());
                assert!(
                    run.retried.len() <= 20,
                    "a client keeps failing: {:?}",
                    run.retried
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
    run
}

#[test]
fn kill9_of_one_ca_during_a_burst_loses_no_serial_and_no_event() {
    let pg = TestPostgres::start();
    let url = pg.create_database("rampart");
    let mut ca1 = Ca::init_postgres(&url, "");
    ca1.start();
    let (_admin, admin_session) = api_admin(&ca1);
    let mut user = api_onboard(&ca1, &admin_session.client, "burst", &[ENGINEERS]);
    ca1.stop();
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();
    let session = user.login(&ca1);
    let both = Client::new(&format!("{},{}", ca1.url(), ca2.url()), ca1.pin())
        .unwrap()
        .with_token(session.token());

    let issued = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = both.clone();
            let key = KeyPair::ed25519(ca1.root(), &format!("k{i}")).public_line();
            let (issued, runs) = (Arc::clone(&issued), Arc::clone(&runs));
            thread::spawn(move || {
                let run = issue(client, key, TOTAL / CLIENTS, issued);
                runs.lock().unwrap().push(run);
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    while issued.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} certificates in 180 s",
            issued.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(2));
    }
    let killed_at = issued.load(Ordering::SeqCst);
    ca1.kill9();
    let killed = Instant::now();
    // Every client was on CA 1 (the first URL): the next certificate comes
    // from CA 2. Printed as a measurement (failover time), not asserted.
    while issued.load(Ordering::SeqCst) == killed_at && killed.elapsed() < Duration::from_secs(60) {
        thread::sleep(Duration::from_millis(1));
    }
    eprintln!(
        "failover: first certificate from CA 2 {} ms after kill -9 of CA 1",
        killed.elapsed().as_millis()
    );
    for h in handles {
        h.join().unwrap();
    }
    let runs = std::mem::take(&mut *runs.lock().unwrap());
    let certs: Vec<&CertResponse> = runs.iter().flat_map(|r| &r.certs).collect();
    let retried: usize = runs.iter().map(|r| r.retried.len()).sum();
    eprintln!("killed after {killed_at} certificates; {retried} requests retried");
    assert!(
        retried > 0,
        "the kill interrupted no request: it tested nothing"
    );
    assert_eq!(certs.len(), TOTAL, "every client finished");
    assert!(
        killed_at < TOTAL - 500,
        "the kill came too late to matter ({killed_at} of {TOTAL})"
    );
    assert_eq!(
        both.base_url(),
        ca2.url(),
        "the clients finished on the CA that is left"
    );

    let serials: Vec<u64> = certs.iter().map(|c| c.serial).collect();
    let unique: HashSet<u64> = serials.iter().copied().collect();
    assert_eq!(unique.len(), serials.len(), "a serial was issued twice");

    // One chain for both CAs: every certificate a client received has its
    // event, whichever CA signed it, and the chain verifies.
    ca2.stop();
    let db = AuditDb::new(ca2.audit_db());
    // The serial column of each cert_issued row (indexed, like the log's own).
    let audited: HashSet<u64> = db
        .events_of_kind("cert_issued")
        .iter()
        .filter_map(|r| {
            let v = r.get("serial")?;
            // Stored bit for bit in SQLite's signed integer.
            v.as_u64()
                .or_else(|| v.as_i64().map(|i| u64::from_ne_bytes(i.to_ne_bytes())))
        })
        .collect();
    let missing: Vec<u64> = serials
        .iter()
        .copied()
        .filter(|s| !audited.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "serials returned to clients without a cert_issued event: {missing:?}"
    );
    let started: Vec<String> = db
        .bodies("ca_started")
        .iter()
        .filter_map(|b| b["details"]["listen"].as_str().map(str::to_owned))
        .collect();
    for ca in [&ca1, &ca2] {
        let port = ca.url().rsplit(':').next().unwrap();
        assert!(
            started.iter().any(|l| l.ends_with(&format!(":{port}"))),
            "{} started on {port} is in the shared chain: {started:?}",
            ca.url()
        );
    }
    ca2.verify_audit()
        .assert_success("rampart audit verify --db postgres://… after the kill");
}
