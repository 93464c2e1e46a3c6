//! Unit tests of the metrics module. Counters and gauges are process-wide;
//! these tests check shapes and deltas, never absolute values, since other
//! tests in the process also count.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use chrono::Utc;

use super::*;

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn every_factor_appears_at_zero_and_names_carry_the_prefix() {
    let text = metrics().encode();
    for f in Factor::ALL {
        assert!(
            text.contains(&format!(
                "rampart_mfa_challenges_total{{factor=\"{}\",flow=\"login\"}}",
                f.as_str()
            )),
            "{f:?} missing"
        );
    }
    for name in [
        "rampart_mfa_latency_seconds_bucket",
        "rampart_mfa_challenges_abandoned_total",
        "rampart_mfa_bypass_attempts_total",
        "rampart_certificate_issuance_seconds_bucket",
        "rampart_audit_append_failures_total",
        "rampart_krl_version",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}

#[test]
fn a_failure_counts_the_attempt_and_its_reason() {
    let s = "rampart_mfa_errors_total{factor=\"piv\",reason=\"factor_replayed\"}";
    let c = "rampart_mfa_completions_total{factor=\"piv\",flow=\"session\",outcome=\"failure\"}";
    let before = (
        sample(&metrics().encode(), s),
        sample(&metrics().encode(), c),
    );
    mfa_result(
        Factor::Piv,
        Flow::Session,
        Err("factor_replayed"),
        Duration::from_millis(3),
    );
    let text = metrics().encode();
    assert_eq!(sample(&text, s), before.0 + 1.0);
    assert_eq!(sample(&text, c), before.1 + 1.0);
}

#[test]
fn an_expired_challenge_is_abandoned_once_and_an_answered_one_never() {
    let s = "rampart_mfa_challenges_abandoned_total{factor=\"fido2\",flow=\"enrolment\"}";
    let before = sample(&metrics().encode(), s);
    let now = Utc::now();
    challenge_opened(
        Factor::Fido2,
        Flow::Enrolment,
        "unit-a",
        now + chrono::Duration::seconds(60),
    );
    challenge_opened(
        Factor::Fido2,
        Flow::Enrolment,
        "unit-b",
        now + chrono::Duration::seconds(60),
    );
    challenge_answered(Factor::Fido2, Flow::Enrolment, "unit-b", Ok(()));
    expire_challenges(now);
    assert_eq!(sample(&metrics().encode(), s), before, "not yet expired");
    expire_challenges(now + chrono::Duration::seconds(61));
    expire_challenges(now + chrono::Duration::seconds(120));
    assert_eq!(sample(&metrics().encode(), s), before + 1.0);
}

#[test]
fn only_tidy_request_ids_are_kept() {
    assert!(acceptable_request_id("01KB3ZC5W0-abc_1.2"));
    for bad in ["", "a b", "x\ny", "\u{e9}", &"a".repeat(65)] {
        assert!(!acceptable_request_id(bad), "{bad:?}");
    }
}

#[test]
fn a_configured_provider_is_up_until_a_request_fails() {
    provider_configured("unit-idp");
    let up = "rampart_idp_up{provider=\"unit-idp\"}";
    assert_eq!(sample(&metrics().encode(), up), 1.0);
    provider_request("unit-idp", Err("idp_timeout"));
    let text = metrics().encode();
    assert_eq!(sample(&text, up), 0.0);
    assert_eq!(
        sample(
            &text,
            "rampart_idp_requests_total{provider=\"unit-idp\",outcome=\"idp_timeout\"}"
        ),
        1.0
    );
    provider_request("unit-idp", Ok(()));
    assert_eq!(sample(&metrics().encode(), up), 1.0);
}

#[test]
fn session_certificates_count_the_code_only_when_it_was_checked() {
    let ok = "rampart_mfa_completions_total{factor=\"totp\",flow=\"session\",outcome=\"success\"}";
    let bad = "rampart_mfa_completions_total{factor=\"totp\",flow=\"session\",outcome=\"failure\"}";
    let issued = "rampart_certificates_issued_total{kind=\"session\"}";
    let t = metrics().encode();
    let before = (sample(&t, ok), sample(&t, bad), sample(&t, issued));
    session_cert_finished(true, Ok(()), Duration::from_millis(5));
    session_cert_finished(true, Err("factor_invalid"), Duration::from_millis(5));
    session_cert_finished(true, Err("target_denied"), Duration::from_millis(5));
    session_cert_finished(false, Ok(()), Duration::from_millis(5));
    let t = metrics().encode();
    assert_eq!(sample(&t, ok), before.0 + 1.0);
    assert_eq!(
        sample(&t, bad),
        before.1 + 1.0,
        "target_denied is no MFA verdict"
    );
    assert_eq!(sample(&t, issued), before.2 + 2.0);
}

#[test]
fn config_labels_are_bounded() {
    let b = Bounded::default();
    for i in 0..MAX_LABEL_VALUES {
        assert_eq!(b.label(&format!("p{i}")), format!("p{i}"));
    }
    assert_eq!(b.label("one-too-many"), "other");
    assert_eq!(b.label("p3"), "p3");
    assert_eq!(b.label(&"x".repeat(500)).len(), 5, "\"other\"");
}

#[test]
fn metrics_config_is_off_by_default_and_rejects_junk() {
    assert_eq!(
        MetricsConfig::from_raw(&RawMetrics::default()).unwrap(),
        MetricsConfig { listen: None }
    );
    let on = MetricsConfig::from_raw(&RawMetrics {
        listen: Some("127.0.0.1:9464".into()),
    })
    .unwrap();
    assert_eq!(on.listen, Some("127.0.0.1:9464".parse().unwrap()));
    assert!(MetricsConfig::from_raw(&RawMetrics {
        listen: Some("localhost".into())
    })
    .is_err());
}

#[test]
fn forwarder_errors_count_growth_of_consecutive_failures() {
    let s = "rampart_siem_forwarder_errors_total{forwarder=\"unit-fwd\"}";
    let mut st = rampart_audit::forward::ForwarderStatus {
        name: "unit-fwd".into(),
        ..Default::default()
    };
    for cf in [1, 2, 3, 0, 1] {
        st.consecutive_failures = cf;
        forwarder_status(&st, None);
    }
    assert_eq!(sample(&metrics().encode(), s), 4.0);
    // Lag counts from the durable cursor to the log's head, read now.
    st.acked_seq = 7;
    st.head_seq = 9;
    forwarder_status(&st, Some(20));
    let lag = "rampart_siem_forwarder_lag_events{forwarder=\"unit-fwd\"}";
    assert_eq!(sample(&metrics().encode(), lag), 13.0);
}
