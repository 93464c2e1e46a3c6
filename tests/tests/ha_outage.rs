//! PostgreSQL stopped for 10 s under a CA that keeps its state and audit log
//! there, with a live `ssh -J` session through a bastion: during the outage
//! the CA answers 503 `database_unavailable` (no crash, no hang, no action
//! taken), a new connection through the bastion is refused (fail closed), and
//! the live session goes on; once PostgreSQL is back the same CA serves again
//! without a restart, the session ends normally, its events are in the log,
//! and the chain verifies.
//! Real `rampart-ca`, throwaway PostgreSQL, `rampart-bastion`, `sshd`, `ssh -J`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use rampart_api::{paths, ClientError, FactorProof, LoginRequest, LoginResponse};
use rampart_e2e::bastion::ssh;
use rampart_e2e::ha::{postgres_ca, Scene};
use rampart_e2e::{eventually, AuditDb, Ca};
use rampart_test_postgres::TestPostgres;

/// How long PostgreSQL stays down: the scenario itself, not a wait for
/// something that could be polled.
const OUTAGE: Duration = Duration::from_secs(10);

fn login_attempt(ca: &Ca) -> Result<LoginResponse, ClientError> {
    ca.api().post_json(
        paths::LOGIN,
        &LoginRequest {
            user: "alice".into(),
            factor: FactorProof::Totp {
                code: "000000".into(),
            },
        },
    )
}

#[test]
fn postgres_down_for_ten_seconds_fails_closed_keeps_live_sessions_and_recovers() {
    let pg = TestPostgres::start();
    let mut ca = postgres_ca(&pg.create_database("rampart"));
    ca.start();
    let mut scene = Scene::new(&ca, "ha-outage");
    let (config, target) = (scene.config.clone(), scene.target());
    let (mut live, live_out, live_err) = scene.live_session("sleep 20; echo survived");
    // The bastion dials the target, then awaits the CA's acknowledgement of
    // `session_started` and drops the session if it does not come (fail
    // closed): the session is live once that event is in the chain, not when
    // the target first sees it.
    eventually("the live session's start is in the audit log", || {
        AuditDb::new(ca.audit_db())
            .bodies("bastion_session_started")
            .iter()
            .any(|b| b["user"] == "alice")
    });

    pg.stop();
    let down = Instant::now();
    // The CA answers, quickly, with a clear refusal.
    let asked = Instant::now();
    match login_attempt(&ca) {
        Err(ClientError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (503, "database_unavailable"));
        }
        other => panic!("a login while PostgreSQL is down: {other:?}"),
    }
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the refusal took {:?}",
        asked.elapsed()
    );
    // A new session through the bastion needs the CA: refused.
    let refused = ssh(&config, &[&target, "true"], None, Duration::from_secs(60));
    refused.assert_failure("a new session while PostgreSQL is down");
    assert!(ca.is_running(), "the CA outlives the outage");
    std::thread::sleep(OUTAGE.saturating_sub(down.elapsed()));
    assert!(
        live.try_wait().unwrap().is_none(),
        "the live session went on through the outage"
    );

    pg.restart();
    // The same CA process serves again (its pool reconnects).
    eventually("the CA serves after PostgreSQL is back", || {
        matches!(
            login_attempt(&ca),
            Err(ClientError::Api { status: 401, .. })
        )
    });
    let ok = ssh(
        &config,
        &[&target, "echo again"],
        None,
        Duration::from_secs(60),
    );
    ok.assert_success("a new session after PostgreSQL is back");
    let status = live.wait().unwrap();
    assert!(
        status.success(),
        "the live session: {}",
        std::fs::read_to_string(&live_err).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&live_out).unwrap().trim(),
        "survived"
    );

    // Nothing lost: the live session's start and end are in the one log (the
    // bastion resends what it could not deliver), and the chain verifies.
    eventually("the live session's end reaches the audit log", || {
        AuditDb::new(ca.audit_db())
            .bodies("bastion_session_ended")
            .iter()
            .any(|b| b["user"] == "alice")
    });
    let db = AuditDb::new(ca.audit_db());
    let started = db.bodies("bastion_session_started");
    assert!(
        started.iter().filter(|b| b["user"] == "alice").count() >= 2,
        "{started:?}"
    );
    scene.bastion.stop();
    ca.stop();
    ca.verify_audit()
        .assert_success("rampart audit verify --db postgres://… after the outage");
}
