//! Crash safety: SIGKILL the CA in the middle of a burst of concurrent certificate
//! issuances, restart it, issue more. Every serial ever handed to a client is
//! unique, has its `cert_issued` event in the audit log (the event is written
//! before the certificate is returned: fail closed), and the chain verifies.

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
use rampart_e2e::audit_db::row_mentions_serial;
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{api_admin, api_onboard, AuditDb, Ca, KeyPair};

const THREADS: usize = 8;

/// Issue certificates from `THREADS` threads until each has `per_thread` or the CA
/// stops answering. Returns the certificates obtained and the errors seen.
fn burst(
    client: &Client,
    keys: &[String],
    per_thread: usize,
    issued: &Arc<AtomicUsize>,
) -> (Vec<CertResponse>, Vec<String>) {
    let certs = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let client = client.clone();
            let key = keys[i % keys.len()].clone();
            let certs = Arc::clone(&certs);
            let errors = Arc::clone(&errors);
            let issued = Arc::clone(issued);
            thread::spawn(move || {
                for _ in 0..per_thread {
                    let r: Result<CertResponse, ClientError> = client.post_json(
                        paths::CERTS,
                        &CertRequest {
                            public_key: key.clone(),
                            ttl_seconds: Some(300),
                        },
                    );
                    match r {
                        Ok(c) => {
                            certs.lock().unwrap().push(c);
                            issued.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            errors.lock().unwrap().push(e.to_string());
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let certs = std::mem::take(&mut *certs.lock().unwrap());
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    (certs, errors)
}

#[test]
fn kill9_during_issuance_loses_no_serial_and_no_event() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let (_admin, admin_session) = api_admin(&ca);
    let mut user = api_onboard(&ca, &admin_session.client, "burst", &[ENGINEERS]);
    let session = user.login(&ca);

    let keys: Vec<String> = (0..THREADS)
        .map(|i| KeyPair::ed25519(ca.root(), &format!("k{i}")).public_line())
        .collect();

    // Phase 1: a long burst, killed -9 once some certificates have gone out.
    let issued = Arc::new(AtomicUsize::new(0));
    let runner = {
        let client = session.client.clone();
        let keys = keys.clone();
        let issued = Arc::clone(&issued);
        thread::spawn(move || burst(&client, &keys, 10_000, &issued))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while issued.load(Ordering::SeqCst) < 40 {
        assert!(
            Instant::now() < deadline,
            "only {} certificates in 120 s",
            issued.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(5));
    }
    ca.kill9();
    let (before, errors) = runner.join().unwrap();
    assert!(
        before.len() >= 40,
        "{} certificates before the kill",
        before.len()
    );
    assert!(
        errors.len() == THREADS,
        "every thread should have stopped on an error after the kill: {errors:?}"
    );

    // Phase 2: restart on the same directory, log in again, issue more.
    ca.start();
    let session2 = user.login(&ca);
    let (after, errors) = burst(&session2.client, &keys, 5, &Arc::new(AtomicUsize::new(0)));
    assert!(
        errors.is_empty(),
        "issuance after restart failed: {errors:?}"
    );
    assert_eq!(after.len(), THREADS * 5);

    // Unique serials across the crash.
    let all: Vec<&CertResponse> = before.iter().chain(after.iter()).collect();
    let serials: Vec<u64> = all.iter().map(|c| c.serial).collect();
    let unique: HashSet<u64> = serials.iter().copied().collect();
    assert_eq!(
        unique.len(),
        serials.len(),
        "duplicate serials: {serials:?}"
    );

    // Each response tells the truth about its certificate (spot-check with
    // ssh-keygen: the last one before the kill, the first after).
    for c in [before.last().unwrap(), after.first().unwrap()] {
        let f = ca.root().join(format!("cert-{}.pub", c.serial));
        std::fs::write(&f, format!("{}\n", c.certificate)).unwrap();
        let info = inspect_cert(&f);
        assert_eq!(info.serial, c.serial);
        assert_eq!(info.key_id, c.key_id);
        assert_eq!(info.principals, c.principals);
    }

    // Every certificate a client received is in the audit log, and the chain holds.
    ca.stop();
    let db = AuditDb::new(ca.audit_db());
    let issued_events = db.events_of_kind("cert_issued");
    let missing: Vec<u64> = serials
        .iter()
        .copied()
        .filter(|s| !issued_events.iter().any(|r| row_mentions_serial(r, *s)))
        .collect();
    assert!(
        missing.is_empty(),
        "serials returned to clients without a cert_issued event: {missing:?}"
    );
    ca.verify_audit()
        .assert_success("audit verify after kill -9 and restart");
}
