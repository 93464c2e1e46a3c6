//! A real Prometheus scrapes the CA *and* the bastion while stock `ssh` goes
//! through the bastion: the bastion's series (docs/metrics.md, "Bastion
//! series") say what the scenario did — one accepted session, one refused
//! connection, bytes both ways, no session left open, a fresh revocation list —
//! and the CA's side counts the per-session certificate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use rampart_e2e::bastion::{host_ca_target, scratch, ssh, Bastion, TargetSpec};
use rampart_e2e::prometheus::{scrape, Prometheus};
use rampart_e2e::{bootstrap_admin, free_port, onboard, Ca, TEST_ACCOUNT};
use std::time::Duration;

fn policy(admin: &str) -> String {
    rampart_e2e::policy::bastion_policy(admin, "bastion-1")
}

#[test]
fn prometheus_scrapes_the_bastion_and_its_series_follow_the_sessions() {
    let ca_metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut ca = Ca::init_with(None, &format!("[metrics]\nlisten = \"{ca_metrics}\"\n"));
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();

    // A target whose host key the Rampart host CA certified for 127.0.0.1.
    let sshd = host_ca_target(&ca, &admin, Vec::new());

    let mut bastion = Bastion::join(
        &ca,
        &admin,
        "bastion-1",
        &[TargetSpec::host_ca("db-1", sshd.port())],
    );
    let bastion_metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = bastion.config_path();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("# listen = \"127.0.0.1:9465\""), "{text}");
    std::fs::write(
        &config,
        text.replace(
            "# listen = \"127.0.0.1:9465\"",
            &format!("listen = \"{bastion_metrics}\""),
        ),
    )
    .unwrap();
    bastion.check().assert_success("rampart-bastion check");
    bastion.start();

    let prom = Prometheus::start_jobs(
        &[
            ("rampart-ca", ca_metrics),
            ("rampart-bastion", bastion_metrics),
        ],
        &[],
    );
    for job in ["rampart-ca", "rampart-bastion"] {
        prom.wait_for(&format!("up{{job=\"{job}\"}}"), "target up", |v| {
            v == Some(1.0)
        });
    }
    prom.wait_for(
        r#"rampart_bastion_session_starts_total{outcome="accepted"}"#,
        "zero before any session",
        |v| v == Some(0.0),
    );

    // The scenario: one session that runs a command, one unknown target.
    let dir = scratch("metrics-bastion");
    let ssh_config = bastion.ssh_config(&alice, dir.path(), &["db-1", "db-9"]);
    let out = ssh(
        &ssh_config,
        &[&format!("{TEST_ACCOUNT}@db-1"), "head -c 100000 /dev/zero"],
        None,
        Duration::from_secs(60),
    );
    out.assert_success("ssh -J … through the bastion");
    assert_eq!(out.stdout.len(), 100_000);
    let refused = ssh(
        &ssh_config,
        &[&format!("{TEST_ACCOUNT}@db-9"), "true"],
        None,
        Duration::from_secs(60),
    );
    refused.assert_failure("an unknown target is refused");

    let accepted = prom.wait_for(
        r#"rampart_bastion_session_starts_total{outcome="accepted"}"#,
        "one accepted session",
        |v| v == Some(1.0),
    );
    assert_eq!(accepted, 1.0);
    prom.wait_for(
        r#"sum(rampart_bastion_session_starts_total{outcome="refused",reason="connection"})"#,
        "the unknown target counted as a refusal",
        |v| v.is_some_and(|v| v >= 1.0),
    );
    prom.wait_for(
        r#"rampart_bastion_bytes_proxied_total{direction="to_client"}"#,
        "the command's output counted",
        |v| v.is_some_and(|v| v >= 100_000.0),
    );
    prom.wait_for(
        "rampart_bastion_sessions_active",
        "no session left open",
        |v| v == Some(0.0),
    );
    let age = prom
        .value("rampart_bastion_krl_age_seconds")
        .expect("krl age");
    assert!(age < 60.0, "the revocation list is polled: age {age}");
    // The CA counted the per-session certificate it issued for that session.
    prom.wait_for(
        r#"sum(rampart_certificates_issued_total{kind="session"})"#,
        "one per-session certificate",
        |v| v == Some(1.0),
    );

    // No user, target or address is a label value.
    let text = scrape(bastion_metrics);
    for leak in ["alice", "db-1", "db-9", "127.0.0.1"] {
        assert!(!text.contains(leak), "{leak} in /metrics:\n{text}");
    }
}
