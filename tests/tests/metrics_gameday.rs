//! Game days (tests/src/gameday.rs) as tests: each rehearsed outage moves the
//! metrics it should and makes the matching alert condition true, and the CA
//! recovers by itself once the fault is gone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rampart_e2e::gameday::{run, Scenario};

#[test]
fn siem_outage_raises_lag_and_errors_and_the_forwarder_alert() {
    let r = run(Scenario::SiemOutage);
    eprintln!("{r}");
    assert!(r.alerts_before.is_empty(), "{r}");
    let (b, a) = r
        .moved(r#"rampart_siem_forwarder_lag_events{forwarder="siem"}"#)
        .expect("lag moved");
    assert!(a > b, "{r}");
    let (b, a) = r
        .moved(r#"rampart_siem_forwarder_errors_total{forwarder="siem"}"#)
        .expect("errors moved");
    assert!(a > b, "{r}");
    assert!(r.alert_active("RampartSiemForwarderFailing"), "{r}");
    // A SIEM outage is not an availability or audit problem.
    assert!(!r.alert_active("RampartAuditWriteFailures"), "{r}");
    assert!(!r.alert_active("RampartAvailabilityBurnRateFast"), "{r}");
}

#[test]
fn audit_disk_full_fails_closed_and_pages() {
    let r = run(Scenario::AuditDiskFull);
    eprintln!("{r}");
    assert!(r.alerts_before.is_empty(), "{r}");
    let (b, a) = r
        .moved("rampart_audit_append_failures_total")
        .expect("failures moved");
    assert!(b == 0.0 && a > 0.0, "{r}");
    let (_, a) = r
        .moved(r#"rampart_api_requests_total{code="5xx""#)
        .expect("5xx moved");
    assert!(a > 0.0, "{r}");
    assert!(r.alert_active("RampartAuditWriteFailures"), "{r}");
    assert!(r.alert_active("RampartAvailabilityBurnRateFast"), "{r}");
}

#[test]
fn idp_outage_makes_the_provider_alert_true_and_fallbacks_rise() {
    let r = run(Scenario::IdpOutage);
    eprintln!("{r}");
    assert!(r.alerts_before.is_empty(), "{r}");
    let (b, a) = r
        .moved(r#"rampart_idp_up{provider="corp"}"#)
        .expect("idp_up moved");
    assert!(b == 1.0 && a == 0.0, "{r}");
    let (b, a) = r
        .moved(r#"rampart_mfa_fallback_logins_total{factor="totp",primary="oidc"}"#)
        .expect("fallbacks moved");
    assert!(a > b, "{r}");
    assert!(r.alert_active("RampartIdpDown"), "{r}");
}
