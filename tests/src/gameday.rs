//! Game days: rehearse an outage against a real deployment and report what the
//! metrics and the shipped alert rules did. Each scenario stands up its own
//! throwaway deployment — a real `rampart-ca` with `/metrics`, a real Prometheus
//! scraping it every second with `packaging/prometheus/rampart-alerts.yml` loaded,
//! and the peer that fails (a real `rsyslogd`, a real tmpfs) — drives normal
//! traffic, breaks the peer, drives traffic again, and reads `/metrics` and the
//! Prometheus alerts API before and after.
//!
//! An alert whose expression is true shows as `pending` until its `for:` has
//! passed, then `firing`; the report lists both, since a rehearsal of a few
//! seconds cannot wait out a 10-minute `for:`.
//!
//! Run one by hand: `cargo run -p rampart-e2e --example gameday -- siem-outage`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rampart_api::{paths, CreateUserRequest, User};

use crate::prometheus::{samples, scrape, Prometheus};
use crate::rsyslog::Rsyslog;
use crate::{api_admin, free_port, workspace_root, Ca};

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The SIEM receiver goes away while events keep coming.
    SiemOutage,
    /// The audit log's filesystem fills up.
    AuditDiskFull,
    /// The OIDC provider goes away.
    IdpOutage,
}

impl Scenario {
    /// Parse a command-line name.
    pub fn parse(s: &str) -> Option<Scenario> {
        Some(match s {
            "siem-outage" => Scenario::SiemOutage,
            "audit-disk-full" => Scenario::AuditDiskFull,
            "idp-outage" => Scenario::IdpOutage,
            _ => return None,
        })
    }
}

/// What a game day saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Series whose value changed across the fault: (series, before, after).
    pub moved: Vec<(String, f64, f64)>,
    /// Alerts pending or firing after the fault: (alert, state).
    pub alerts: Vec<(String, String)>,
    /// Alerts pending or firing before the fault (should be none).
    pub alerts_before: Vec<(String, String)>,
    /// Free-text notes (what was done, how the CA answered).
    pub notes: Vec<String>,
}

impl Report {
    /// Whether `alert` was pending or firing after the fault.
    pub fn alert_active(&self, alert: &str) -> bool {
        self.alerts.iter().any(|(a, _)| a == alert)
    }

    /// The (before, after) of the first moved series that starts with `prefix`.
    pub fn moved(&self, prefix: &str) -> Option<(f64, f64)> {
        self.moved
            .iter()
            .find(|(s, _, _)| s.starts_with(prefix))
            .map(|(_, b, a)| (*b, *a))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "game day: {}", self.scenario)?;
        for n in &self.notes {
            writeln!(f, "  - {n}")?;
        }
        writeln!(f, "metrics that moved (before → after):")?;
        for (s, b, a) in &self.moved {
            writeln!(f, "  {s}: {b} → {a}")?;
        }
        writeln!(f, "alerts before the fault: {:?}", self.alerts_before)?;
        writeln!(f, "alert conditions true after the fault:")?;
        if self.alerts.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for (a, s) in &self.alerts {
            writeln!(f, "  {a}: {s}")?;
        }
        Ok(())
    }
}

/// Counters and gauges of a scrape (histogram buckets left out), by series.
fn values(text: &str) -> BTreeMap<String, f64> {
    samples(text)
        .into_iter()
        .filter(|s| !s.name.ends_with("_bucket") && !s.name.ends_with("_created"))
        .map(|s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            (format!("{}{{{}}}", s.name, labels.join(",")), s.value)
        })
        .collect()
}

fn diff(before: &str, after: &str) -> Vec<(String, f64, f64)> {
    let (b, a) = (values(before), values(after));
    a.iter()
        .filter_map(|(k, v)| {
            let old = b.get(k).copied().unwrap_or(0.0);
            // Audit append timings move with any traffic; they are not news.
            (old != *v && !k.starts_with("rampart_audit_append_seconds"))
                .then(|| (k.clone(), old, *v))
        })
        .collect()
}

/// The shipped alert rules.
pub fn alert_rules() -> PathBuf {
    workspace_root().join("packaging/prometheus/rampart-alerts.yml")
}

fn metrics_config(port: u16) -> String {
    format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n")
}

fn create_user(admin: &rampart_api::Client, name: &str) -> Result<User, rampart_api::ClientError> {
    admin.post_json(
        paths::ADMIN_USERS,
        &CreateUserRequest {
            name: name.into(),
            groups: vec!["engineers".into()],
            admin: false,
        },
    )
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "game day: {what} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Run one scenario and report.
pub fn run(scenario: Scenario) -> Report {
    match scenario {
        Scenario::SiemOutage => siem_outage(),
        Scenario::AuditDiskFull => audit_disk_full(),
        Scenario::IdpOutage => idp_outage(),
    }
}

/// Policy for the IdP game day: role `ops` wants an OIDC login (`amr` contains
/// `pwd`) and accepts TOTP as its fallback while no provider answers.
const IDP_POLICY: &str = r#"version = 1
[defaults]
min_factor = "otp"

[roles.ops]
principals = ["{user}"]
oidc_amr = ["pwd"]
fallback_factor = "totp"

[groups]
ops-team = ["ops"]
"#;

/// The OIDC provider (a real node `oidc-provider`) stops: the CA's requests to
/// it fail, `rampart_idp_up` drops to 0 and `RampartIdpDown`'s condition becomes
/// true; an engineer whose role wants the IdP gets a certificate with TOTP
/// instead, counted as a fallback (`rampart_mfa_fallback_logins_total` rises).
/// While the provider is up, the same TOTP request is refused.
fn idp_outage() -> Report {
    use crate::oidc::{account, OidcProvider};
    use rampart_api::{CertRequest, CertResponse};
    use serde_json::json;

    let mut provider = OidcProvider::start(json!({ "alice": account(&["ops-team"], &["pwd"]) }));
    let port = free_port();
    let mut ca = Ca::init_with(Some(IDP_POLICY), &metrics_config(port));
    ca.merge_config(&provider.ca_config(ca.dir(), "corp", "jit_users = true"));
    ca.start();
    let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
    let rules = alert_rules();
    let prom = Prometheus::start(metrics, &[rules.as_path()]);
    prom.wait_for(r#"up{job="rampart-ca"}"#, "1 (target up)", |v| {
        v == Some(1.0)
    });
    let (_admin, session) = api_admin(&ca);
    let mut bob = crate::api_onboard(&ca, &session.client, "bob", &["ops-team"]);
    let bob_session = bob.login(&ca);
    let dir = crate::tempdir("gameday-idp");
    let key = crate::KeyPair::ed25519(dir.path(), "bob").public_line();
    let cert = |c: &rampart_api::Client| -> Result<CertResponse, rampart_api::ClientError> {
        c.post_json(
            paths::CERTS,
            &CertRequest {
                public_key: key.clone(),
                ttl_seconds: None,
            },
        )
    };
    let refused = cert(&bob_session.client).expect_err("provider up: TOTP is not enough");
    assert_eq!(refused.api_code(), Some("oidc_required"), "{refused}");
    prom.wait_for(
        r#"rampart_idp_up{provider="corp"}"#,
        "1 (provider up)",
        |v| v == Some(1.0),
    );
    let mut report = Report {
        scenario: "idp-outage".into(),
        alerts_before: prom.alerts(),
        notes: vec![format!(
            "provider up: bob's TOTP session was refused a certificate ({})",
            refused.api_code().unwrap_or("?")
        )],
        ..Report::default()
    };
    let before = scrape(metrics);

    provider.stop();
    report.notes.push("stopped the OIDC provider".into());
    let issued = cert(&bob_session.client).expect("provider down: TOTP is the fallback");
    report.notes.push(format!(
        "provider down: bob's TOTP session got certificate serial {} as a fallback",
        issued.serial
    ));
    prom.wait_for(
        r#"rampart_idp_up{provider="corp"}"#,
        "0 (provider down)",
        |v| v == Some(0.0),
    );
    wait_until("RampartIdpDown pending", Duration::from_secs(30), || {
        prom.alerts().iter().any(|(a, _)| a == "RampartIdpDown")
    });
    report.moved = diff(&before, &scrape(metrics));
    report.alerts = prom.alerts();
    report
}

/// rsyslog stops while the CA keeps writing events: the forwarder's lag and
/// errors rise, it shows disconnected, and `RampartSiemForwarderFailing`'s
/// condition becomes true. Nothing is refused: a SIEM outage never blocks the CA.
fn siem_outage() -> Report {
    let dir = crate::tempdir("gameday-siem");
    let mut rs = Rsyslog::start(dir.path(), None);
    let port = free_port();
    let mut ca = Ca::init_e2e(&format!(
        "{}{}",
        rs.forwarder_toml("siem", "1s"),
        metrics_config(port)
    ));
    ca.start();
    let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
    let rules = alert_rules();
    let prom = Prometheus::start(metrics, &[rules.as_path()]);
    prom.wait_for(
        r#"rampart_siem_forwarder_connected{forwarder="siem"}"#,
        "1 (forwarder connected)",
        |v| v == Some(1.0),
    );
    let (_admin, session) = api_admin(&ca);
    let admin = session.client.clone();
    prom.wait_for(
        r#"rampart_siem_forwarder_lag_events{forwarder="siem"}"#,
        "0 (caught up)",
        |v| v == Some(0.0),
    );
    let mut report = Report {
        scenario: "siem-outage".into(),
        alerts_before: prom.alerts(),
        ..Report::default()
    };
    let before = scrape(metrics);

    rs.stop();
    report
        .notes
        .push("stopped rsyslogd (the SIEM receiver)".into());
    let started = Instant::now();
    let mut created = 0;
    // Keep acting until the forwarder has noticed: it only learns of the outage
    // when it writes (or reconnects) and fails.
    wait_until(
        "the forwarder reports errors",
        Duration::from_secs(60),
        || {
            for _ in 0..10 {
                create_user(&admin, &format!("outage{created}"))
                    .unwrap_or_else(|e| panic!("a SIEM outage must not refuse actions: {e}"));
                created += 1;
            }
            prom.value(r#"increase(rampart_siem_forwarder_errors_total{forwarder="siem"}[1m])"#)
                .is_some_and(|v| v > 0.0)
        },
    );
    report.notes.push(format!(
        "created {created} users during the outage, none refused ({:?})",
        started.elapsed()
    ));
    prom.wait_for(
        r#"rampart_siem_forwarder_lag_events{forwarder="siem"}"#,
        "above 0",
        |v| v.is_some_and(|v| v > 0.0),
    );
    wait_until(
        "RampartSiemForwarderFailing pending",
        Duration::from_secs(30),
        || {
            prom.alerts()
                .iter()
                .any(|(a, _)| a == "RampartSiemForwarderFailing")
        },
    );
    report.moved = diff(&before, &scrape(metrics));
    report.alerts = prom.alerts();

    rs.restart();
    prom.wait_for(
        r#"rampart_siem_forwarder_lag_events{forwarder="siem"}"#,
        "0 again after rsyslog is back",
        |v| v == Some(0.0),
    );
    report
        .notes
        .push("restarted rsyslogd: the forwarder caught up (lag back to 0)".into());
    report
}

/// The audit log's disk fills: appends fail, the CA refuses actions with 503
/// (fail closed), `rampart_audit_append_failures_total` and the 5xx share rise,
/// `RampartAuditWriteFailures` fires and the fast burn-rate condition turns true.
/// Freeing the space brings service back.
fn audit_disk_full() -> Report {
    let port = free_port();
    let mut ca = Ca::init_e2e(&metrics_config(port));
    let disk = crate::small_disk::SmallDisk::mount(&ca.root().join("auditfs"), "4m");
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", ca.audit_db().display()));
        if from.exists() {
            std::fs::copy(&from, disk.dir().join(format!("audit.db{suffix}"))).expect("copy");
            std::fs::remove_file(&from).expect("rm");
        }
    }
    // The witness stays where init wrote it (off the small disk): the CA refuses
    // a database with checkpoints whose witness is missing.
    ca.merge_config(&format!(
        "[audit]\ndatabase = {:?}\nwitness_file = {:?}\n",
        disk.dir().join("audit.db").display().to_string(),
        ca.dir().join("audit.witness").display().to_string()
    ));
    ca.start();
    let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
    let rules = alert_rules();
    let prom = Prometheus::start(metrics, &[rules.as_path()]);
    prom.wait_for(r#"up{job="rampart-ca"}"#, "1 (target up)", |v| {
        v == Some(1.0)
    });
    let (_admin, session) = api_admin(&ca);
    let admin = session.client.clone();
    for i in 0..20 {
        create_user(&admin, &format!("before{i}")).expect("works while there is space");
    }
    prom.wait_for("sum(rampart_api_requests_total)", "counting", |v| {
        v.is_some_and(|v| v >= 20.0)
    });
    let mut report = Report {
        scenario: "audit-disk-full".into(),
        alerts_before: prom.alerts(),
        ..Report::default()
    };
    let before = scrape(metrics);

    let filler = disk.fill();
    report
        .notes
        .push("filled the audit log's filesystem (tmpfs, 4 MiB)".into());
    let (mut ok, mut refused) = (0, 0);
    for i in 0..500 {
        match create_user(&admin, &format!("during{i}")) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.api_code(), Some("audit_unavailable"), "{e}");
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
        }
    }
    report.notes.push(format!(
        "then {ok} actions succeeded (pages SQLite already owned) and {refused} were refused \
         with 503 audit_unavailable"
    ));
    assert!(refused > 0, "a full audit disk must refuse actions");
    wait_until(
        "RampartAuditWriteFailures firing",
        Duration::from_secs(30),
        || {
            prom.alerts()
                .iter()
                .any(|(a, s)| a == "RampartAuditWriteFailures" && s == "firing")
        },
    );
    wait_until(
        "RampartAvailabilityBurnRateFast pending",
        Duration::from_secs(30),
        || {
            prom.alerts()
                .iter()
                .any(|(a, _)| a == "RampartAvailabilityBurnRateFast")
        },
    );
    report.moved = diff(&before, &scrape(metrics));
    report.alerts = prom.alerts();

    std::fs::remove_file(&filler).expect("free the space");
    let mut n = 0;
    wait_until(
        "service back after freeing space",
        Duration::from_secs(30),
        || {
            n += 1;
            create_user(&admin, &format!("after{n}")).is_ok()
        },
    );
    report
        .notes
        .push("removed the filler: actions succeed again without a restart".into());
    drop(ca);
    drop(disk);
    report
}
