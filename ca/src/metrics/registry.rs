//! The process-wide registry: every series, its name, help text and buckets.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::*;

pub(super) type Hist = Family<FactorFlow, Histogram, fn() -> Histogram>;

pub(super) fn human_latency() -> Histogram {
    // From a fast TOTP check (ms) to a person fetching a hardware key (minutes).
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

pub(super) fn server_latency() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// Every series of the CA. Field docs name the exported series.
#[derive(Debug)]
pub struct Metrics {
    pub(super) registry: Registry,
    /// M1 `rampart_mfa_challenges_total{factor,flow}`.
    pub challenges: Family<FactorFlow, Counter>,
    /// M1 `rampart_mfa_completions_total{factor,flow,outcome}`.
    pub completions: Family<FactorFlowOutcome, Counter>,
    /// M2 `rampart_mfa_latency_seconds{factor,flow}`.
    pub latency: Hist,
    /// M3 `rampart_mfa_fallback_logins_total{factor,primary}`.
    pub fallbacks: Family<Fallback, Counter>,
    /// M4 `rampart_mfa_recovery_logins_total`.
    pub recovery_logins: Counter,
    /// M4 `rampart_mfa_recovery_requests_total`.
    pub recovery_requests: Counter,
    /// M5 `rampart_mfa_errors_total{factor,reason}`.
    pub errors: Family<FactorReason, Counter>,
    /// M6 `rampart_idp_requests_total{provider,outcome}`.
    pub idp_requests: Family<ProviderOutcome, Counter>,
    /// M6 `rampart_idp_up{provider}`.
    pub idp_up: Family<Provider, Gauge>,
    /// M7 `rampart_mfa_bypass_attempts_total{factor,kind}`.
    pub bypass: Family<FactorKind, Counter>,
    /// M8 `rampart_enrolment_users{role}`.
    pub users: Family<Role, Gauge>,
    /// M8 `rampart_enrolment_users_with_factor{role}`.
    pub users_with_factor: Family<Role, Gauge>,
    /// M8 `rampart_enrolment_users_phishing_resistant{role}`.
    pub users_phishing_resistant: Family<Role, Gauge>,
    /// M8 `rampart_enrolment_factor_users{factor}`.
    pub factor_users: Family<FactorOnly, Gauge>,
    /// M9 `rampart_mfa_approval_latency_seconds{kind}`.
    pub approval_latency: Family<Kind, Histogram, fn() -> Histogram>,
    /// M10 `rampart_mfa_challenges_abandoned_total{factor,flow}`.
    pub abandoned: Family<FactorFlow, Counter>,
    /// `rampart_mfa_challenges_open{factor,flow}`.
    pub open: Family<FactorFlow, Gauge>,
    /// `rampart_certificates_issued_total{kind}`.
    pub certs_issued: Family<Kind, Counter>,
    /// `rampart_api_connections_refused_total{reason}`.
    pub connections_refused: Family<Reason, Counter>,
    /// `rampart_certificates_denied_total{kind,reason}`.
    pub certs_denied: Family<KindReason, Counter>,
    /// `rampart_certificate_issuance_seconds{kind}`.
    pub issuance: Family<Kind, Histogram, fn() -> Histogram>,
    /// `rampart_audit_append_seconds`.
    pub audit_append: Histogram,
    /// `rampart_audit_append_failures_total`.
    pub audit_failures: Counter,
    /// `rampart_audit_witness_failures_total`.
    pub witness_failures: Counter,
    /// `rampart_siem_forwarder_lag_events{forwarder}`.
    pub siem_lag: Family<Forwarder, Gauge>,
    /// `rampart_siem_forwarder_errors_total{forwarder}`.
    pub siem_errors: Family<Forwarder, Counter>,
    /// `rampart_siem_forwarder_connected{forwarder}`.
    pub siem_connected: Family<Forwarder, Gauge>,
    /// `rampart_siem_forwarder_events_sent_total{forwarder}`.
    pub siem_sent: Family<Forwarder, Counter>,
    /// `rampart_krl_version`.
    pub krl_version: Gauge,
    /// `rampart_krl_generated_timestamp_seconds`.
    pub krl_generated: Gauge,
    /// `rampart_api_requests_total{endpoint,code}`.
    pub api_requests: Family<Endpoint, Counter>,
    /// `rampart_build_info{version}` (always 1).
    pub build_info: Family<Version, Gauge>,
    pub(super) providers: Bounded,
    pub(super) roles: Bounded,
    pub(super) forwarders: Bounded,
    pub(super) endpoints: Bounded,
    pub(super) reasons: Bounded,
    pub(super) challenges_open: Mutex<HashMap<String, OpenChallenge>>,
    pub(super) siem_seen: Mutex<HashMap<String, (u32, u64)>>,
    /// When M8 coverage was last computed from the store.
    pub(super) coverage_at: Mutex<Option<Instant>>,
}

/// `{version}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Version {
    /// The crate version.
    pub version: &'static str,
}

#[derive(Debug)]
pub(super) struct OpenChallenge {
    pub(super) factor: Factor,
    pub(super) flow: Flow,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) started: Instant,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rampart");
        let m = Metrics {
            registry: Registry::default(),
            challenges: Family::default(),
            completions: Family::default(),
            latency: Family::new_with_constructor(human_latency),
            fallbacks: Family::default(),
            recovery_logins: Counter::default(),
            recovery_requests: Counter::default(),
            errors: Family::default(),
            idp_requests: Family::default(),
            idp_up: Family::default(),
            bypass: Family::default(),
            users: Family::default(),
            users_with_factor: Family::default(),
            users_phishing_resistant: Family::default(),
            factor_users: Family::default(),
            approval_latency: Family::new_with_constructor(human_latency),
            abandoned: Family::default(),
            open: Family::default(),
            certs_issued: Family::default(),
            connections_refused: Family::default(),
            certs_denied: Family::default(),
            issuance: Family::new_with_constructor(server_latency),
            audit_append: server_latency(),
            audit_failures: Counter::default(),
            witness_failures: Counter::default(),
            siem_lag: Family::default(),
            siem_errors: Family::default(),
            siem_connected: Family::default(),
            siem_sent: Family::default(),
            krl_version: Gauge::default(),
            krl_generated: Gauge::default(),
            api_requests: Family::default(),
            build_info: Family::default(),
            providers: Bounded::default(),
            roles: Bounded::default(),
            forwarders: Bounded::default(),
            endpoints: Bounded::default(),
            reasons: Bounded::default(),
            challenges_open: Mutex::new(HashMap::new()),
            siem_seen: Mutex::new(HashMap::new()),
            coverage_at: Mutex::new(None),
        };
        // Series every deployment has, created at zero so that rates and ratios
        // exist from the first scrape (and dashboards show 0, not "no data").
        for factor in Factor::ALL {
            for flow in Flow::ALL {
                let ff = FactorFlow {
                    factor: factor.as_str(),
                    flow: flow.as_str(),
                };
                m.challenges.get_or_create_owned(&ff);
                m.abandoned.get_or_create_owned(&ff);
                m.open.get_or_create_owned(&ff);
                m.latency.get_or_create_owned(&ff);
                for outcome in ["success", "failure"] {
                    m.completions.get_or_create_owned(&FactorFlowOutcome {
                        factor: ff.factor,
                        flow: ff.flow,
                        outcome,
                    });
                }
            }
            for kind in Bypass::ALL {
                m.bypass.get_or_create_owned(&FactorKind {
                    factor: factor.as_str(),
                    kind: kind.as_str(),
                });
            }
            for reason in COMMON_REASONS {
                m.errors.get_or_create_owned(&FactorReason {
                    factor: factor.as_str(),
                    reason,
                });
            }
            m.factor_users.get_or_create_owned(&FactorOnly {
                factor: factor.as_str(),
            });
        }
        // The fallbacks that exist today: recovery codes instead of TOTP, and
        // TOTP instead of an unreachable IdP.
        for (used, primary) in [
            (Factor::Recovery, Factor::Totp),
            (Factor::Totp, Factor::Oidc),
        ] {
            m.fallbacks.get_or_create_owned(&Fallback {
                factor: used.as_str(),
                primary: primary.as_str(),
            });
        }
        for approval in [Approval::Browser, Approval::Session] {
            m.approval_latency.get_or_create_owned(&Kind {
                kind: approval.as_str(),
            });
        }
        for kind in [CertKind::User, CertKind::Host, CertKind::Session] {
            m.certs_issued.get_or_create_owned(&Kind {
                kind: kind.as_str(),
            });
            m.issuance.get_or_create_owned(&Kind {
                kind: kind.as_str(),
            });
        }
        m.build_info
            .get_or_create_owned(&Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);

        let r = &mut registry;
        r.register(
            "mfa_challenges",
            "M1: MFA challenges issued (a TOTP login is a challenge and its answer at once)",
            m.challenges.clone(),
        );
        r.register(
            "mfa_completions",
            "M1: MFA answers checked, by outcome",
            m.completions.clone(),
        );
        r.register_with_unit(
            "mfa_latency",
            "M2: challenge issued to answer verified",
            prometheus_client::registry::Unit::Seconds,
            m.latency.clone(),
        );
        r.register(
            "mfa_fallback_logins",
            "M3: logins completed with a weaker factor than the user's primary one",
            m.fallbacks.clone(),
        );
        r.register(
            "mfa_recovery_logins",
            "M4: logins with a recovery code",
            m.recovery_logins.clone(),
        );
        r.register(
            "mfa_recovery_requests",
            "M4: requests to recover access (an invite for a user who already has a factor)",
            m.recovery_requests.clone(),
        );
        r.register(
            "mfa_errors",
            "M5: failed MFA attempts by reason (stable error codes)",
            m.errors.clone(),
        );
        r.register(
            "idp_requests",
            "M6: requests to identity providers, by outcome",
            m.idp_requests.clone(),
        );
        r.register(
            "idp_up",
            "M6: 1 when the provider's last request succeeded, 0 when it failed",
            m.idp_up.clone(),
        );
        r.register(
            "mfa_bypass_attempts",
            "M7: refused-but-suspicious events (replays, sign-count regressions, lockouts)",
            m.bypass.clone(),
        );
        r.register(
            "enrolment_users",
            "M8: enabled users, per policy role (role=\"all\": every enabled user)",
            m.users.clone(),
        );
        r.register(
            "enrolment_users_with_factor",
            "M8: enabled users with at least one MFA factor, per role",
            m.users_with_factor.clone(),
        );
        r.register(
            "enrolment_users_phishing_resistant",
            "M8: enabled users with a phishing-resistant factor (WebAuthn, FIDO2, PIV), per role",
            m.users_phishing_resistant.clone(),
        );
        r.register(
            "enrolment_factor_users",
            "M8: enabled users with this factor enrolled",
            m.factor_users.clone(),
        );
        r.register_with_unit(
            "mfa_approval_latency",
            "M9: time a browser or per-session approval waited for the person",
            prometheus_client::registry::Unit::Seconds,
            m.approval_latency.clone(),
        );
        r.register(
            "mfa_challenges_abandoned",
            "M10: challenges that expired without a successful answer",
            m.abandoned.clone(),
        );
        r.register(
            "mfa_challenges_open",
            "challenges issued and neither answered nor expired",
            m.open.clone(),
        );
        r.register(
            "api_connections_refused",
            "API connections closed before TLS because a connection cap was full",
            m.connections_refused.clone(),
        );
        r.register(
            "certificates_issued",
            "certificates issued",
            m.certs_issued.clone(),
        );
        r.register(
            "certificates_denied",
            "certificate requests denied, by reason code",
            m.certs_denied.clone(),
        );
        r.register_with_unit(
            "certificate_issuance",
            "time to evaluate policy, sign, audit and store one certificate",
            prometheus_client::registry::Unit::Seconds,
            m.issuance.clone(),
        );
        r.register_with_unit(
            "audit_append",
            "time for one audit event to be durably appended",
            prometheus_client::registry::Unit::Seconds,
            m.audit_append.clone(),
        );
        r.register(
            "audit_append_failures",
            "audit appends that failed (each refused the action it recorded)",
            m.audit_failures.clone(),
        );
        r.register(
            "audit_witness_failures",
            "audit checkpoints the CA could not append to its witness file",
            m.witness_failures.clone(),
        );
        r.register(
            "siem_forwarder_lag_events",
            "events in the audit log not yet confirmed delivered by this forwarder",
            m.siem_lag.clone(),
        );
        r.register(
            "siem_forwarder_errors",
            "failed connects or sends of this forwarder",
            m.siem_errors.clone(),
        );
        r.register(
            "siem_forwarder_connected",
            "1 while the forwarder has a connection to its receiver",
            m.siem_connected.clone(),
        );
        r.register(
            "siem_forwarder_events_sent",
            "events written by this forwarder, resends included",
            m.siem_sent.clone(),
        );
        r.register(
            "krl_version",
            "version of the KRL the CA serves",
            m.krl_version.clone(),
        );
        r.register(
            "krl_generated_timestamp_seconds",
            "generated_date of the KRL the CA serves (Unix seconds)",
            m.krl_generated.clone(),
        );
        r.register(
            "api_requests",
            "HTTPS API requests by matched route and status class",
            m.api_requests.clone(),
        );
        r.register(
            "build_info",
            "always 1; the version label names the running build",
            m.build_info.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub(super) static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

pub(super) fn ff(factor: Factor, flow: Flow) -> FactorFlow {
    FactorFlow {
        factor: factor.as_str(),
        flow: flow.as_str(),
    }
}
