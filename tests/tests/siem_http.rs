//! A real `rampart-ca` with a `kind = "webhook"` forwarder delivers every event of
//! a scripted scenario to an HTTPS receiver (axum over rustls, its CA pinned in
//! the CA's config): complete, in order, each with the ULID of the database; while
//! the receiver answers 503 issuance goes on and nothing is confirmed; once it
//! recovers everything arrives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use rampart_api::{paths, CertRequest, CertResponse};
use rampart_e2e::{api_admin, tempdir, AuditDb, Ca, KeyPair};

#[derive(Default)]
struct Shared {
    /// (status answered, events of the body)
    reqs: Mutex<Vec<(u16, Vec<serde_json::Value>)>>,
    status: AtomicU16,
}

async fn record(State(sh): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let status = sh.status.load(Ordering::SeqCst);
    let events: serde_json::Value = serde_json::from_slice(&body).unwrap();
    sh.reqs
        .lock()
        .unwrap()
        .push((status, events.as_array().unwrap().clone()));
    StatusCode::from_u16(status).unwrap()
}

/// Start the receiver; returns its URL, the CA PEM and the shared record.
fn receiver(rt: &tokio::runtime::Runtime) -> (String, String, Arc<Shared>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair as RcKey};
    let ca_key = RcKey::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = RcKey::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
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
    let shared = Arc::new(Shared::default());
    shared.status.store(200, Ordering::SeqCst);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let app = axum::Router::new()
        .fallback(axum::routing::post(record))
        .with_state(Arc::clone(&shared));
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server));
    let srv = axum_server::from_tcp_rustls(l, tls);
    rt.spawn(async move {
        let _ = srv.serve(app.into_make_service()).await;
    });
    (format!("https://{addr}/rampart"), ca.pem(), shared)
}

fn db_events(ca: &Ca) -> Vec<(u64, String)> {
    AuditDb::new(ca.audit_db())
        .events()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Events the receiver accepted (2xx), in arrival order.
fn accepted(sh: &Shared) -> Vec<(u64, String)> {
    sh.reqs
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == 200)
        .flat_map(|(_, evs)| evs.iter())
        .filter(|e| e["type"] == "event")
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn wait_delivered(ca: &Ca, sh: &Shared, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let db = db_events(ca);
        let got = accepted(sh);
        if got == db {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {} in the database, {} accepted",
            db.len(),
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn webhook_forwarder_delivers_a_scripted_scenario_across_503s() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempdir("siem-http");
    let (url, ca_pem, shared) = receiver(&rt);
    let ca_file = dir.path().join("receiver-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut ca = Ca::init_e2e(&format!(
        "[[audit.forwarders]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\n\
         ca_file = \"{}\"\nbatch_size = 7\nretry_max = \"1s\"\n",
        ca_file.display()
    ));
    ca.start();

    // Scenario: admin enrolment and login, certificates issued.
    let (_admin, session) = api_admin(&ca);
    let admin = session.client.clone();
    let key = KeyPair::ed25519(ca.root(), "k").public_line();
    let issue = || -> CertResponse {
        admin
            .post_json(
                paths::CERTS,
                &CertRequest {
                    public_key: key.clone(),
                    ttl_seconds: Some(300),
                },
            )
            .unwrap()
    };
    for _ in 0..10 {
        issue();
    }
    wait_delivered(&ca, &shared, Duration::from_secs(30));
    let codes: Vec<String> = shared
        .reqs
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, e)| {
            e.iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
        })
        .collect();
    for want in ["RA-CA-002", "RA-AUTH-003", "RA-CERT-001"] {
        assert!(codes.iter().any(|c| c == want), "{want} missing: {codes:?}");
    }

    // The receiver fails: issuance is not held up, nothing new is accepted.
    shared.status.store(503, Ordering::SeqCst);
    let before = accepted(&shared).len();
    let t0 = Instant::now();
    for _ in 0..10 {
        issue();
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "issuance held up");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(accepted(&shared).len(), before);
    assert!(shared.reqs.lock().unwrap().iter().any(|(s, _)| *s == 503));

    // Recovery: every event arrives, in order, with the database's ULIDs, and
    // the refused copies carried the same ULIDs.
    shared.status.store(200, Ordering::SeqCst);
    wait_delivered(&ca, &shared, Duration::from_secs(30));
    let db: std::collections::BTreeMap<u64, String> = db_events(&ca).into_iter().collect();
    for (_, evs) in shared.reqs.lock().unwrap().iter() {
        for e in evs.iter().filter(|e| e["type"] == "event") {
            assert_eq!(e["id"], db[&e["seq"].as_u64().unwrap()]);
        }
    }
    ca.stop();

    // Every signed checkpoint reached the receiver too, the last one sealing the
    // head at stop: copied into a file as they came, they are a witness that
    // `rampart audit verify` checks the CA's database with.
    let cps: Vec<serde_json::Value> = shared
        .reqs
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == 200)
        .flat_map(|(_, o)| o.iter().filter(|o| o["type"] == "checkpoint").cloned())
        .collect();
    let db_cps = AuditDb::new(ca.audit_db()).checkpoint_seqs();
    let mut got: Vec<u64> = cps.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    got.dedup();
    assert_eq!(got, db_cps, "every checkpoint, in order");
    let head = db_events(&ca).last().unwrap().0;
    assert_eq!(
        got.last(),
        Some(&head),
        "the closing checkpoint was forwarded"
    );
    let witness = dir.path().join("siem.witness");
    let text: String = cps
        .iter()
        .map(|c| format!("{}\n", serde_json::to_string(c).unwrap()))
        .collect();
    std::fs::write(&witness, text).unwrap();
    let out = rampart_e2e::audit_verify_args(&[
        "--db".as_ref(),
        ca.audit_db().as_os_str(),
        "--audit-pubkey".as_ref(),
        ca.audit_pubkey().as_os_str(),
        "--witness".as_ref(),
        witness.as_os_str(),
    ]);
    out.assert_success("verify against the SIEM's checkpoints");
    assert!(
        out.stdout.contains(&format!("witnessed head {head}:")),
        "{out}"
    );
}

/// The CA's `ca_config_reloaded` events, their bodies as JSON.
fn reloads(ca: &Ca) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db())
        .events_of_kind("ca_config_reloaded")
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn a_reload_adds_a_forwarder_and_a_broken_one_is_refused_while_the_running_one_goes_on() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempdir("siem-reload");
    let (url, ca_pem, shared) = receiver(&rt);
    let ca_file = dir.path().join("receiver-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut ca = Ca::init_e2e("");
    ca.start();
    let (_admin, session) = api_admin(&ca);
    let key = KeyPair::ed25519(ca.root(), "k").public_line();
    let issue = || {
        let _: CertResponse = session
            .client
            .post_json(
                paths::CERTS,
                &CertRequest {
                    public_key: key.clone(),
                    ttl_seconds: Some(300),
                },
            )
            .unwrap();
    };

    // A forwarder added to config.toml starts at SIGHUP, from the first event.
    let forwarder = |name: &str, ca_file: &std::path::Path| {
        format!(
            "[[audit.forwarders]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n\
             ca_file = \"{}\"\nretry_max = \"1s\"\n",
            ca_file.display()
        )
    };
    ca.merge_config(&forwarder("hook", &ca_file));
    ca.reload();
    wait_delivered(&ca, &shared, Duration::from_secs(30));
    let r = reloads(&ca);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["outcome"], "success");
    assert_eq!(r[0]["details"]["forwarders"], serde_json::json!(["hook"]));
    assert_eq!(r[0]["details"]["restart_needed"], false);

    // A forwarder whose CA file is missing: refused, audited, and the running
    // one keeps delivering.
    ca.merge_config(&forwarder("hook", &dir.path().join("no-such-ca.pem")));
    ca.reload();
    rampart_e2e::eventually("the refused reload is audited", || reloads(&ca).len() == 2);
    let r = reloads(&ca);
    assert_eq!(r[1]["outcome"], "failure");
    assert!(
        r[1]["reason"].as_str().unwrap().contains("no-such-ca.pem"),
        "{r:?}"
    );
    issue();
    wait_delivered(&ca, &shared, Duration::from_secs(30));
    ca.stop();
}
