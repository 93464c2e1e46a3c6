//! The CA's Prometheus metrics against a real Prometheus (Debian `prometheus`) and
//! `promtool`: a scripted MFA scenario moves M1–M10 by exactly what it implies, in
//! the CA's own `/metrics` and in PromQL answers from a Prometheus that scraped it;
//! the shipped alert rules pass `promtool check rules` and their unit tests; the
//! shipped dashboards reference only series a running CA exports.
//!
//! Counters are compared exactly (each CA is a fresh process); nothing compares a
//! wall-clock value, and every PromQL check polls with a 20-second deadline.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use rampart_api::{
    paths, CertRequest, CertResponse, ClientError, CreateUserRequest, EnrollStartRequest,
    EnrollStartResponse, FactorProof, InviteRequest, InviteResponse, LoginRequest, LoginResponse,
    User,
};
use rampart_e2e::prometheus::{promtool, samples, scrape, series_names, sum, Prometheus};
use rampart_e2e::{api_admin, api_onboard, free_port, workspace_root, ApiUser, Ca, KeyPair};

/// Engineers get `dev` (needs at least TOTP); nothing accepts a recovery code, so
/// a recovery-code session is denied a certificate.
const POLICY: &str = r#"version = 1
[defaults]
min_factor = "recovery"

[roles.dev]
principals = ["{user}"]
min_factor = "otp"

[groups]
engineers = ["dev"]

[users]
"admin" = ["dev"]
"#;

/// A CA with `/metrics` on a free loopback port and three failures to a lockout.
fn metrics_ca() -> (Ca, SocketAddr) {
    let port = free_port();
    let mut ca = Ca::init_with(
        Some(POLICY),
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n[totp]\nmax_failures = 3\n"),
    );
    ca.start();
    (ca, ([127, 0, 0, 1], port).into())
}

fn login(ca: &Ca, user: &str, factor: FactorProof) -> Result<LoginResponse, ClientError> {
    ca.api().post_json(
        paths::LOGIN,
        &LoginRequest {
            user: user.to_owned(),
            factor,
        },
    )
}

fn refused(r: Result<LoginResponse, ClientError>, code: &str) {
    match r {
        Ok(_) => panic!("login should be refused with {code}"),
        Err(e) => assert_eq!(e.api_code(), Some(code), "{e}"),
    }
}

/// What [`run_scenario`] did, for the assertions.
struct Ran {
    _alice: ApiUser,
}

/// The scenario of the issue: 3 TOTP successes (alice) besides the admin's login,
/// 1 replay, 1 wrong code, 1 recovery-code login (a fallback) whose certificate
/// request policy denies, 1 certificate issued, a lockout after 3 wrong codes
/// (mallory) and one attempt while locked, an enrolment started and left open
/// (eve), and a re-invite of an enrolled user (a recovery request).
fn run_scenario(ca: &Ca) -> Ran {
    let (_admin, admin_s) = api_admin(ca); // enrolment 1, TOTP login 1
    let admin = &admin_s.client;
    let mut alice = api_onboard(ca, admin, "alice", &["engineers"]); // enrolment 2
    let mut mallory = api_onboard(ca, admin, "mallory", &["engineers"]); // enrolment 3

    // eve: invited, enrolment started, never confirmed → one open challenge.
    let _: User = admin
        .post_json(
            paths::ADMIN_USERS,
            &CreateUserRequest {
                name: "eve".into(),
                groups: vec!["engineers".into()],
                admin: false,
            },
        )
        .unwrap();
    let inv: InviteResponse = admin
        .post_json(
            paths::ADMIN_INVITES,
            &InviteRequest {
                user: "eve".into(),
                ttl_seconds: None,
            },
        )
        .unwrap();
    let _: EnrollStartResponse = ca
        .api()
        .post_json(
            paths::ENROLL_START,
            &EnrollStartRequest { invite: inv.code },
        )
        .unwrap();

    // Three TOTP successes; the last code is then replayed.
    let mut last = String::new();
    let mut session = None;
    for _ in 0..3 {
        last = alice.totp.fresh_code();
        session = Some(
            login(
                ca,
                "alice",
                FactorProof::Totp {
                    code: last.clone().into(),
                },
            )
            .unwrap(),
        );
    }
    refused(
        login(ca, "alice", FactorProof::Totp { code: last.into() }),
        "factor_replayed",
    );
    refused(
        login(
            ca,
            "alice",
            FactorProof::Totp {
                code: alice.totp.wrong_code().into(),
            },
        ),
        "factor_invalid",
    );

    // A certificate on a TOTP session is issued.
    let dir = rampart_e2e::tempdir("metrics-keys");
    let key = KeyPair::ed25519(dir.path(), "alice");
    let totp_client = ca.api().with_token(session.unwrap().session_token);
    let _: CertResponse = totp_client
        .post_json(
            paths::CERTS,
            &CertRequest {
                public_key: key.public_line(),
                ttl_seconds: None,
            },
        )
        .unwrap();

    // A recovery-code login: a fallback; policy refuses its certificate.
    let rec = login(
        ca,
        "alice",
        FactorProof::Recovery {
            code: alice.recovery_codes[0].clone().into(),
        },
    )
    .unwrap();
    let denied: Result<CertResponse, _> = ca.api().with_token(rec.session_token).post_json(
        paths::CERTS,
        &CertRequest {
            public_key: key.public_line(),
            ttl_seconds: None,
        },
    );
    assert!(denied.is_err(), "a recovery session gets no certificate");

    // mallory: three wrong codes lock the account; one more try while locked.
    for _ in 0..3 {
        refused(
            login(
                ca,
                "mallory",
                FactorProof::Totp {
                    code: mallory.totp.wrong_code().into(),
                },
            ),
            "factor_invalid",
        );
    }
    refused(
        login(
            ca,
            "mallory",
            FactorProof::Totp {
                code: mallory.totp.fresh_code().into(),
            },
        ),
        "user_locked",
    );

    // alice lost her phone: an admin re-invites her (a recovery request).
    let _: InviteResponse = admin
        .post_json(
            paths::ADMIN_INVITES,
            &InviteRequest {
                user: "alice".into(),
                ttl_seconds: None,
            },
        )
        .unwrap();
    Ran { _alice: alice }
}

/// (PromQL, the value the scenario implies), M1–M10 and the extras. The same
/// expectations are checked on the CA's own exposition and through Prometheus.
fn expectations() -> Vec<(&'static str, f64)> {
    vec![
        // M1: challenges and completions (admin 1 + alice 3 TOTP successes).
        (
            r#"sum(rampart_mfa_completions_total{factor="totp",flow="login",outcome="success"})"#,
            4.0,
        ),
        // 1 replay + 1 wrong (alice) + 3 wrong + 1 locked (mallory).
        (
            r#"sum(rampart_mfa_completions_total{factor="totp",flow="login",outcome="failure"})"#,
            6.0,
        ),
        (
            r#"sum(rampart_mfa_challenges_total{factor="totp",flow="login"})"#,
            10.0,
        ),
        (
            r#"sum(rampart_mfa_completions_total{factor="totp",flow="enrolment",outcome="success"})"#,
            3.0,
        ),
        (
            r#"sum(rampart_mfa_challenges_total{factor="totp",flow="enrolment"})"#,
            4.0,
        ),
        // M2: one latency observation per checked login answer.
        (
            r#"sum(rampart_mfa_latency_seconds_count{factor="totp",flow="login"})"#,
            10.0,
        ),
        // M3: the recovery-code login fell back from TOTP.
        (
            r#"sum(rampart_mfa_fallback_logins_total{factor="recovery",primary="totp"})"#,
            1.0,
        ),
        // M4.
        ("sum(rampart_mfa_recovery_logins_total)", 1.0),
        ("sum(rampart_mfa_recovery_requests_total)", 1.0),
        // M5: failures by reason.
        (
            r#"sum(rampart_mfa_errors_total{factor="totp",reason="factor_replayed"})"#,
            1.0,
        ),
        (
            r#"sum(rampart_mfa_errors_total{factor="totp",reason="factor_invalid"})"#,
            4.0,
        ),
        (
            r#"sum(rampart_mfa_errors_total{factor="totp",reason="user_locked"})"#,
            1.0,
        ),
        // M7: bypass attempts.
        (
            r#"sum(rampart_mfa_bypass_attempts_total{kind="replay"})"#,
            1.0,
        ),
        (
            r#"sum(rampart_mfa_bypass_attempts_total{kind="lockout"})"#,
            1.0,
        ),
        (
            r#"sum(rampart_mfa_bypass_attempts_total{kind="locked_out_attempt"})"#,
            1.0,
        ),
        // M8: admin, alice, mallory enrolled; eve not (yet).
        (r#"sum(rampart_enrolment_users{role="all"})"#, 4.0),
        (
            r#"sum(rampart_enrolment_users_with_factor{role="all"})"#,
            3.0,
        ),
        (
            r#"sum(rampart_enrolment_users_with_factor{role="dev"})"#,
            3.0,
        ),
        (
            r#"sum(rampart_enrolment_users_phishing_resistant{role="all"})"#,
            0.0,
        ),
        // M9: no approval flow ran: the series exist at zero.
        ("sum(rampart_mfa_approval_latency_seconds_count)", 0.0),
        // M10: eve's enrolment is open, not yet abandoned (it expires in 15 min).
        (
            r#"sum(rampart_mfa_challenges_open{factor="totp",flow="enrolment"})"#,
            1.0,
        ),
        ("sum(rampart_mfa_challenges_abandoned_total)", 0.0),
        // Certificates and audit.
        (
            r#"sum(rampart_certificates_issued_total{kind="user"})"#,
            1.0,
        ),
        (
            r#"sum(rampart_certificates_denied_total{kind="user"})"#,
            1.0,
        ),
        (
            r#"sum(rampart_certificate_issuance_seconds_count{kind="user"})"#,
            1.0,
        ),
        ("sum(rampart_audit_append_failures_total)", 0.0),
        (
            r#"sum(rampart_api_requests_total{endpoint="/v1/login",code="2xx"})"#,
            5.0,
        ),
        (
            r#"sum(rampart_api_requests_total{endpoint="/v1/login",code="4xx"})"#,
            6.0,
        ),
    ]
}

/// Evaluate the tiny `sum(name{k="v",…})` subset of PromQL that [`expectations`]
/// uses against an exposition, so the same table checks the raw scrape.
fn eval_on_scrape(text: &str, promql: &str) -> f64 {
    let inner = promql
        .strip_prefix("sum(")
        .and_then(|s| s.strip_suffix(')'))
        .expect("sum(...)");
    let (name, labels) = match inner.split_once('{') {
        Some((n, l)) => (n, l.trim_end_matches('}')),
        None => (inner, ""),
    };
    let want: Vec<(&str, &str)> = labels
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k, v.trim_matches('"'))
        })
        .collect();
    sum(text, name, &want)
}

#[test]
fn prometheus_scrapes_the_ca_and_promql_returns_what_the_mfa_scenario_implies() {
    let (ca, metrics) = metrics_ca();
    let prom = Prometheus::start(metrics, &[]);
    prom.wait_for(r#"up{job="rampart-ca"}"#, "1 (target up)", |v| {
        v == Some(1.0)
    });
    // Before anything happened every factor's series exists at zero.
    prom.wait_for(
        r#"count(rampart_mfa_challenges_total{flow="login"})"#,
        "6 (one series per factor)",
        |v| v == Some(6.0),
    );

    let _ran = run_scenario(&ca);

    let text = scrape(metrics);
    let mut wrong = Vec::new();
    for (q, want) in expectations() {
        let got = eval_on_scrape(&text, q);
        if got != want {
            wrong.push(format!("{q}: scrape says {got}, scenario implies {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}\n\n{text}", wrong.join("\n"));

    for (q, want) in expectations() {
        prom.wait_for(q, &want.to_string(), |v| v == Some(want));
    }
    // Success rate as the dashboards compute it: 4 + 1 recovery of 11 login answers.
    let rate = prom.wait_for(
        r#"sum(rampart_mfa_completions_total{flow="login",outcome="success"}) / sum(rampart_mfa_completions_total{flow="login"})"#,
        "5/11",
        |v| v.is_some_and(|v| (v - 5.0 / 11.0).abs() < 1e-9),
    );
    assert!(rate > 0.45 && rate < 0.46);
    // No label carries a user name or an address.
    for s in samples(&text) {
        for v in s.labels.values() {
            for user in ["alice", "mallory", "eve", "admin"] {
                assert_ne!(v, user, "{} has a user name as a label value", s.name);
            }
            assert!(!v.contains("127.0.0.1"), "{} has label value {v:?}", s.name);
        }
    }
}

#[test]
fn the_metrics_listener_is_off_by_default_and_separate_from_the_api() {
    let mut ca = Ca::init_with(Some(POLICY), "");
    ca.start();
    let cfg: toml::Table = std::fs::read_to_string(ca.config_path())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        cfg.get("metrics").and_then(|m| m.get("listen")).is_none(),
        "init must not turn metrics on"
    );
    // The API does not serve /metrics.
    let r = ca.raw_http().get("/metrics");
    assert_eq!(r.status, 404, "the API must not expose /metrics");
    ca.stop();

    // A taken port fails start-up with a clear reason.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ca = Ca::init_with(
        Some(POLICY),
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut serve = std::process::Command::new(rampart_e2e::bin("rampart-ca"));
    serve.arg("serve").arg("--config").arg(ca.config_path());
    let out = rampart_e2e::process::run_timeout(serve, None, std::time::Duration::from_secs(60));
    out.assert_failure("serve with a taken metrics port");
    assert!(
        out.stderr.contains("[metrics] cannot listen"),
        "start-up should fail naming [metrics]:\n{out}"
    );
    drop(taken);
}

fn packaging(path: &str) -> PathBuf {
    workspace_root().join("packaging").join(path)
}

#[test]
fn promtool_checks_the_alert_rules_and_their_unit_tests_pass() {
    let rules = packaging("prometheus/rampart-alerts.yml");
    let check = promtool(&["check", "rules", rules.to_str().unwrap()]);
    check.assert_success("promtool check rules");
    assert!(check.combined().contains("SUCCESS"), "{check}");
    let tests_dir = packaging("prometheus/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no promtool unit tests in {tests_dir:?}");
    let mut args = vec!["test", "rules"];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = promtool(&args);
    out.assert_success("promtool test rules");
    // Every alert of the rules file has at least one unit test that expects it.
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    let alerts: BTreeSet<&str> = rules_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::trim)
        .collect();
    let tests_text: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for a in &alerts {
        assert!(
            tests_text.contains(&format!("alertname: {a}")),
            "alert {a} has no promtool unit test"
        );
        let runbook = workspace_root()
            .join("docs/runbooks")
            .join(format!("{a}.md"));
        assert!(runbook.is_file(), "alert {a} has no runbook {runbook:?}");
    }
    assert!(alerts.len() >= 8, "{alerts:?}");
}

/// Metric names used by a PromQL expression: identifiers followed by `{`, `[`,
/// `)` or whitespace that start with `rampart_` (every series of ours does).
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("rampart_") {
        let start = i + pos;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b'"' || b == b':')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.insert(expr[start..end].to_owned());
        }
        i = end;
    }
    out
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "expr" {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                }
                collect_exprs(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

/// Families that exist only once an OIDC provider is configured (M6); the unit
/// test `a_configured_provider_is_up_until_a_request_fails` in `ca/src/metrics/tests.rs`
/// shows them.
const NEEDS_AN_IDP: &[&str] = &["rampart_idp_up", "rampart_idp_requests_total"];

#[test]
fn every_dashboard_expression_uses_only_series_the_ca_exports() {
    // A CA with a forwarder (to a closed port: it fails and retries), one
    // refused login and one denied certificate, so that every family the
    // dashboards use has a series; the IdP families need an OIDC provider.
    let port = free_port();
    let siem = free_port();
    let mut ca = Ca::init_with(
        Some(POLICY),
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\
             [[audit.forwarders]]\nname = \"siem\"\nkind = \"syslog-tcp\"\n\
             address = \"127.0.0.1:{siem}\"\n"
        ),
    );
    ca.start();
    let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
    let (admin, _) = api_admin(&ca);
    let rec = login(
        &ca,
        &admin.name,
        FactorProof::Recovery {
            code: admin.recovery_codes[0].clone().into(),
        },
    )
    .unwrap();
    let dir = rampart_e2e::tempdir("metrics-dash");
    let key = KeyPair::ed25519(dir.path(), "k");
    let denied: Result<CertResponse, _> = ca.api().with_token(rec.session_token).post_json(
        paths::CERTS,
        &CertRequest {
            public_key: key.public_line(),
            ttl_seconds: None,
        },
    );
    assert!(denied.is_err());
    let mut names = series_names(&scrape(metrics));
    for n in NEEDS_AN_IDP {
        assert!(!names.contains(*n), "{n} appeared without a provider");
        names.insert((*n).to_owned());
    }
    // A real Prometheus parses every expression (a syntax error fails the query).
    let prom = Prometheus::start(metrics, &[]);
    prom.wait_for(r#"up{job="rampart-ca"}"#, "1 (target up)", |v| {
        v == Some(1.0)
    });
    let dir = packaging("grafana");
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    dashboards.sort();
    let titles: Vec<String> = dashboards
        .iter()
        .map(|p| {
            let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap())
                .unwrap_or_else(|e| panic!("{p:?} is not JSON: {e}"));
            // The fields Grafana needs to import a dashboard.
            assert!(d["title"].is_string(), "{p:?}: title");
            assert!(d["uid"].is_string(), "{p:?}: uid");
            assert!(d["schemaVersion"].is_u64(), "{p:?}: schemaVersion");
            let panels = d["panels"].as_array().expect("panels");
            assert!(!panels.is_empty(), "{p:?} has no panels");
            let mut exprs = Vec::new();
            collect_exprs(&d, &mut exprs);
            assert!(!exprs.is_empty(), "{p:?} has no queries");
            for e in &exprs {
                prom.query(e);
                let used = promql_metric_names(e);
                assert!(!used.is_empty(), "{p:?}: `{e}` uses none of our series");
                for n in used {
                    assert!(
                        names.contains(&n),
                        "{p:?}: `{e}` uses {n}, which the CA does not export"
                    );
                }
            }
            d["title"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(dashboards.len(), 3, "executive, on-call, debug: {titles:?}");
}

#[test]
fn promql_name_extraction_finds_series_and_ignores_label_values() {
    let n = promql_metric_names(
        r#"sum(rate(rampart_mfa_completions_total{outcome="success"}[5m])) / histogram_quantile(0.95, rampart_mfa_latency_seconds_bucket{job="rampart_x"})"#,
    );
    assert_eq!(
        n.into_iter().collect::<Vec<_>>(),
        [
            "rampart_mfa_completions_total",
            "rampart_mfa_latency_seconds_bucket"
        ]
    );
}

/// `GET path` on the CA's API with an optional `x-request-id`; returns the
/// response's `x-request-id`.
fn request_id_echo(ca: &Ca, path: &str, sent: Option<&str>) -> String {
    let tls = rampart_api::client::pinned_tls_config(ca.pin()).unwrap();
    let http = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let mut rb = http.get(format!("{}{path}", ca.url()));
    if let Some(id) = sent {
        rb = rb.header("x-request-id", id);
    }
    let resp = rb.send().unwrap();
    resp.headers()
        .get("x-request-id")
        .expect("every response carries x-request-id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn json_logs_carry_the_request_id_the_session_and_the_event_code() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let ca = Ca::init_with(Some(POLICY), "");
    let log = ca.root().join("json.log");
    let mut child = Command::new(rampart_e2e::bin("rampart-ca"))
        .arg("serve")
        .arg("--config")
        .arg(ca.config_path())
        .env("RAMPART_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("rampart-ca listening on "));
    assert!(
        ready,
        "no readiness line:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    std::thread::spawn(move || lines.for_each(drop));

    // A tidy client ID is echoed; junk is replaced by a fresh ULID.
    assert_eq!(
        request_id_echo(&ca, paths::HEALTH, Some("gameday-42.a_b")),
        "gameday-42.a_b"
    );
    let replaced = request_id_echo(&ca, paths::HEALTH, Some("bad id; with spaces"));
    assert_eq!(replaced.len(), 26, "{replaced:?}");
    assert_ne!(request_id_echo(&ca, paths::HEALTH, None), replaced);

    // A login's lines carry its request ID, its session ID and the event codes.
    let (admin, _session) = api_admin(&ca);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let login = events
        .iter()
        .find(|e| e["event_code"] == "RA-AUTH-003" && e["span"]["endpoint"] == paths::LOGIN)
        .unwrap_or_else(|| panic!("no mfa_succeeded line for the login:\n{text}"));
    let rid = login["span"]["request_id"].as_str().expect("request_id");
    assert_eq!(rid.len(), 26, "{login}");
    let sid = login["span"]["session_id"].as_str().expect("session_id");
    assert!(!sid.is_empty(), "{login}");
    assert!(login["event_id"].is_string(), "{login}");
    // No line names a secret or the user's codes.
    for code in &admin.recovery_codes {
        assert!(
            !text.contains(code.as_str()),
            "a recovery code is in the log"
        );
    }
}
