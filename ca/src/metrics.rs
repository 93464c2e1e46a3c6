//! Prometheus metrics of the CA: the MFA SLIs (M1–M10 of the observability issue),
//! issuance, audit and SIEM-forwarding series, and the `/metrics` listener that
//! serves them in the Prometheus text format on its own address, apart from the
//! API (`[metrics] listen`, off unless configured).
//!
//! This module owns the series names, their labels and their meaning
//! (`docs/metrics.md` is the reference). Instrumenting is one call per event:
//!
//! ```ignore
//! use rampart_ca::metrics::{self, Factor, Flow};
//! metrics::mfa_challenge(Factor::Oidc, Flow::Login);
//! metrics::mfa_result(Factor::Oidc, Flow::Login, Err("idp_error"), started.elapsed());
//! metrics::provider_request("corp-idp", Err("timeout"));
//! ```
//!
//! Label values are bounded by construction: factors, flows, outcomes and bypass
//! kinds are enums; reasons are `&'static str` error codes; names that come from
//! config (providers, forwarders, roles, endpoints) pass through [`Bounded`], which
//! folds anything past [`MAX_LABEL_VALUES`] distinct values into `other`. No user
//! name, address or token ever becomes a label.
//!
//! The registry is process-wide so that any module (the authority, factors,
//! forwarders, the bastion endpoints) can count without threading a handle through.
//! Tests that need exact numbers run a separate CA process.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::error::CaError;

/// Most distinct values a config-derived label (provider, forwarder, role,
/// endpoint, denial reason) may take before new ones are counted as `other`.
pub const MAX_LABEL_VALUES: usize = 64;

/// Most open challenges tracked for M10 at once; past it new challenges are not
/// tracked (and so can never be counted as abandoned), which bounds memory.
pub const MAX_TRACKED_CHALLENGES: usize = 100_000;

/// Failure reasons every factor can have, created at zero for every factor.
/// Other stable codes (e.g. `audit_unavailable`) appear when they first happen.
pub const COMMON_REASONS: [&str; 5] = [
    "factor_invalid",
    "factor_replayed",
    "factor_malformed",
    "user_locked",
    "source_rate_limited",
];

// ----- label vocabularies ----------------------------------------------------

/// A second factor, as a label value. Every factor of the issue is defined so its
/// series exist (at zero) before the factor is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// RFC 6238 one-time codes.
    Totp,
    /// WebAuthn in a browser.
    Webauthn,
    /// FIDO2/CTAP2 from the CLI.
    Fido2,
    /// A YubiKey PIV key with attestation.
    Piv,
    /// OpenID Connect step-up at an IdP.
    Oidc,
    /// A single-use recovery code.
    Recovery,
}

impl Factor {
    /// Every factor, in label order.
    pub const ALL: [Factor; 6] = [
        Factor::Totp,
        Factor::Webauthn,
        Factor::Fido2,
        Factor::Piv,
        Factor::Oidc,
        Factor::Recovery,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::Webauthn => "webauthn",
            Factor::Fido2 => "fido2",
            Factor::Piv => "piv",
            Factor::Oidc => "oidc",
            Factor::Recovery => "recovery",
        }
    }

    /// The factor of an audit/session method name (`totp`, `recovery`, `webauthn`,
    /// `webauthn-uv`, `oidc`, …); `None` for anything else.
    pub fn from_method(method: &str) -> Option<Factor> {
        Some(match method {
            "totp" => Factor::Totp,
            "webauthn" | "webauthn-uv" => Factor::Webauthn,
            "fido2" => Factor::Fido2,
            "piv" => Factor::Piv,
            "oidc" => Factor::Oidc,
            "recovery" => Factor::Recovery,
            _ => return None,
        })
    }

    /// Phishing-resistant factors (bound to an origin or to hardware), for M8.
    pub fn phishing_resistant(self) -> bool {
        matches!(self, Factor::Webauthn | Factor::Fido2 | Factor::Piv)
    }
}

/// Where a challenge happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// `POST /v1/login`: a factor proved to open a session.
    Login,
    /// Confirming a newly enrolled factor.
    Enrolment,
    /// Per-session MFA asked by the bastion for one SSH session.
    Session,
}

impl Flow {
    /// Every flow.
    pub const ALL: [Flow; 3] = [Flow::Login, Flow::Enrolment, Flow::Session];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Login => "login",
            Flow::Enrolment => "enrolment",
            Flow::Session => "session",
        }
    }
}

/// A refused event that looks like someone trying to get around MFA (M7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bypass {
    /// A correct code (or assertion) used a second time.
    Replay,
    /// A WebAuthn/FIDO2 signature counter that went backwards (cloned key).
    SignCountRegression,
    /// A user locked from one source network after too many failures there.
    Lockout,
    /// A user locked everywhere after many failures from many networks.
    UserLockout,
    /// An attempt while the user was locked.
    LockedOutAttempt,
    /// A source address over its failure budget (429).
    RateLimited,
}

impl Bypass {
    /// Every kind.
    pub const ALL: [Bypass; 6] = [
        Bypass::Replay,
        Bypass::SignCountRegression,
        Bypass::Lockout,
        Bypass::UserLockout,
        Bypass::LockedOutAttempt,
        Bypass::RateLimited,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Bypass::Replay => "replay",
            Bypass::SignCountRegression => "sign_count_regression",
            Bypass::Lockout => "lockout",
            Bypass::UserLockout => "user_lockout",
            Bypass::LockedOutAttempt => "locked_out_attempt",
            Bypass::RateLimited => "rate_limited",
        }
    }
}

/// What an approval waited for (M9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Approval {
    /// A browser ceremony (WebAuthn page, IdP redirect) finishing a CLI login.
    Browser,
    /// A per-session approval asked by the bastion.
    Session,
}

impl Approval {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Browser => "browser",
            Approval::Session => "session",
        }
    }
}

/// Which kind of certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// A user certificate from `POST /v1/cert`.
    User,
    /// A host certificate.
    Host,
    /// A ~1-minute per-session certificate for the bastion's onward hop.
    Session,
}

impl CertKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::User => "user",
            CertKind::Host => "host",
            CertKind::Session => "session",
        }
    }
}

/// Folds config-derived label values into at most [`MAX_LABEL_VALUES`] distinct
/// ones; later newcomers become `other`. Values are also cut to 64 characters.
#[derive(Debug, Default)]
pub struct Bounded(Mutex<BTreeSet<String>>);

impl Bounded {
    /// The label value to use for `value`.
    pub fn label(&self, value: &str) -> String {
        let value: String = value.chars().take(64).collect();
        let Ok(mut seen) = self.0.lock() else {
            return "other".to_owned();
        };
        if seen.contains(&value) {
            return value;
        }
        if seen.len() >= MAX_LABEL_VALUES {
            return "other".to_owned();
        }
        seen.insert(value.clone());
        value
    }
}

// ----- label sets ------------------------------------------------------------

/// `{factor, flow}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorFlow {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// [`Flow::as_str`].
    pub flow: &'static str,
}

/// `{factor, flow, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorFlowOutcome {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// [`Flow::as_str`].
    pub flow: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
}

/// `{factor, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorReason {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// A stable error code.
    pub reason: &'static str,
}

/// `{factor, kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorKind {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// [`Bypass::as_str`].
    pub kind: &'static str,
}

/// `{factor, primary}` for fallbacks.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Fallback {
    /// The factor actually used.
    pub factor: &'static str,
    /// The stronger factor the user would normally use.
    pub primary: &'static str,
}

/// `{factor}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorOnly {
    /// [`Factor::as_str`].
    pub factor: &'static str,
}

/// `{provider}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Provider {
    /// The provider's configured name.
    pub provider: String,
}

/// `{provider, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOutcome {
    /// The provider's configured name.
    pub provider: String,
    /// `success`, or the error code of the failure.
    pub outcome: &'static str,
}

/// `{role}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Role {
    /// A policy role, or `all`.
    pub role: String,
}

/// `{kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// A kind from a closed enum.
    pub kind: &'static str,
}

/// `{reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// A reason from a closed enum.
    pub reason: &'static str,
}

/// `{kind, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindReason {
    /// [`CertKind::as_str`].
    pub kind: &'static str,
    /// The denial code.
    pub reason: String,
}

/// `{forwarder}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Forwarder {
    /// The `[[audit.forwarders]] name`.
    pub forwarder: String,
}

/// `{endpoint, code}` for API requests.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Endpoint {
    /// The matched route (`/v1/login`), never the raw path.
    pub endpoint: String,
    /// `2xx`, `4xx`, `5xx`, …
    pub code: &'static str,
}

type Hist = Family<FactorFlow, Histogram, fn() -> Histogram>;

fn human_latency() -> Histogram {
    // From a fast TOTP check (ms) to a person fetching a hardware key (minutes).
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

fn server_latency() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// Every series of the CA. Field docs name the exported series.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
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
    providers: Bounded,
    roles: Bounded,
    forwarders: Bounded,
    endpoints: Bounded,
    reasons: Bounded,
    challenges_open: Mutex<HashMap<String, OpenChallenge>>,
    siem_seen: Mutex<HashMap<String, (u32, u64)>>,
}

/// `{version}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Version {
    /// The crate version.
    pub version: &'static str,
}

#[derive(Debug)]
struct OpenChallenge {
    factor: Factor,
    flow: Flow,
    expires_at: DateTime<Utc>,
    started: Instant,
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

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn ff(factor: Factor, flow: Flow) -> FactorFlow {
    FactorFlow {
        factor: factor.as_str(),
        flow: flow.as_str(),
    }
}

// ----- the instrumentation API -------------------------------------------------

/// M1: a challenge was issued (for TOTP logins, the request arrived).
pub fn mfa_challenge(factor: Factor, flow: Flow) {
    metrics()
        .challenges
        .get_or_create_owned(&ff(factor, flow))
        .inc();
}

/// M1 + M2 + M5: an answer was checked. `result` is `Ok(())` or the stable error
/// code of the failure; `latency` runs from the challenge to the verdict.
pub fn mfa_result(factor: Factor, flow: Flow, result: Result<(), &'static str>, latency: Duration) {
    let m = metrics();
    let outcome = if result.is_ok() { "success" } else { "failure" };
    m.completions
        .get_or_create_owned(&FactorFlowOutcome {
            factor: factor.as_str(),
            flow: flow.as_str(),
            outcome,
        })
        .inc();
    m.latency
        .get_or_create_owned(&ff(factor, flow))
        .observe(latency.as_secs_f64());
    if let Err(reason) = result {
        m.errors
            .get_or_create_owned(&FactorReason {
                factor: factor.as_str(),
                reason,
            })
            .inc();
    }
}

/// M1–M5 and M7 for one `POST /v1/login` with the factor named `method`: the
/// challenge and its answer at once (TOTP and recovery codes have no separate
/// challenge), the error code as the reason, replays, lockouts and rate limits as
/// bypass attempts, recovery-code logins as fallbacks from TOTP.
pub fn login_finished<T>(method: &str, result: &Result<T, CaError>, latency: Duration) {
    let Some(factor) = Factor::from_method(method) else {
        return;
    };
    mfa_challenge(factor, Flow::Login);
    let outcome = result.as_ref().map(|_| ()).map_err(CaError::code);
    mfa_result(factor, Flow::Login, outcome, latency);
    match outcome {
        Ok(()) if factor == Factor::Recovery => {
            recovery_login();
            // Recovery codes come with a TOTP enrolment: using one means the
            // primary factor was not at hand.
            fallback_login(Factor::Recovery, Factor::Totp);
        }
        Ok(()) => {}
        Err("factor_replayed") => bypass_attempt(factor, Bypass::Replay),
        Err("user_locked") => bypass_attempt(factor, Bypass::LockedOutAttempt),
        Err("source_rate_limited") => bypass_attempt(factor, Bypass::RateLimited),
        Err(_) => {}
    }
}

/// One `POST /v1/bastion/session-cert` finished: a per-session certificate issued
/// or refused (`Err(code)`). When the bastion sent a TOTP code (`totp_sent`), the
/// verdict on it is an M1/M2/M5 completion in flow `session` — unless the request
/// was refused before the code was looked at (a code that is not `factor_*`).
pub fn session_cert_finished(totp_sent: bool, result: Result<(), &'static str>, latency: Duration) {
    match result {
        Ok(()) => cert_issued(CertKind::Session, latency),
        Err(code) => cert_denied(CertKind::Session, code),
    }
    if !totp_sent {
        return;
    }
    let checked = match result {
        Ok(()) => true,
        Err(code) => code.starts_with("factor_"),
    };
    if checked {
        mfa_challenge(Factor::Totp, Flow::Session);
        mfa_result(Factor::Totp, Flow::Session, result, latency);
        if result == Err("factor_replayed") {
            bypass_attempt(Factor::Totp, Bypass::Replay);
        }
    }
}

/// M3: a login succeeded with `used` although the user normally uses `primary`.
pub fn fallback_login(used: Factor, primary: Factor) {
    metrics()
        .fallbacks
        .get_or_create_owned(&Fallback {
            factor: used.as_str(),
            primary: primary.as_str(),
        })
        .inc();
}

/// M4: a login with a recovery code.
pub fn recovery_login() {
    metrics().recovery_logins.inc();
}

/// M4: someone asked to recover access (re-enrolment of an enrolled user).
pub fn recovery_request() {
    metrics().recovery_requests.inc();
}

/// M6: one request to an identity provider; `Err(code)` for a failure. Also sets
/// `rampart_idp_up{provider}` from the outcome.
pub fn provider_request(provider: &str, result: Result<(), &'static str>) {
    let m = metrics();
    let provider = m.providers.label(provider);
    let outcome = match result {
        Ok(()) => "success",
        Err(code) => code,
    };
    m.idp_requests
        .get_or_create_owned(&ProviderOutcome {
            provider: provider.clone(),
            outcome,
        })
        .inc();
    m.idp_up
        .get_or_create_owned(&Provider { provider })
        .set(i64::from(result.is_ok()));
}

/// M6: declare a configured provider at start, so its series exist (up = 1 until
/// a request fails).
pub fn provider_configured(provider: &str) {
    let m = metrics();
    let provider = m.providers.label(provider);
    m.idp_requests.get_or_create_owned(&ProviderOutcome {
        provider: provider.clone(),
        outcome: "success",
    });
    m.idp_up.get_or_create_owned(&Provider { provider }).set(1);
}

/// An API connection refused by a connection cap.
pub fn connection_refused(why: crate::connections::Refused) {
    metrics()
        .connections_refused
        .get_or_create_owned(&Reason {
            reason: why.as_str(),
        })
        .inc();
}

/// M7: a refused event that looks like an attempt to get around MFA.
pub fn bypass_attempt(factor: Factor, kind: Bypass) {
    metrics()
        .bypass
        .get_or_create_owned(&FactorKind {
            factor: factor.as_str(),
            kind: kind.as_str(),
        })
        .inc();
}

/// M9: an approval waited `latency` for the person.
pub fn approval(kind: Approval, latency: Duration) {
    metrics()
        .approval_latency
        .get_or_create_owned(&Kind {
            kind: kind.as_str(),
        })
        .observe(latency.as_secs_f64());
}

/// M10: a challenge with an identity (`id`: a token digest, a ceremony ID — never
/// a secret) that may be answered until `expires_at`. Counts it for M1 too.
pub fn challenge_opened(factor: Factor, flow: Flow, id: &str, expires_at: DateTime<Utc>) {
    mfa_challenge(factor, flow);
    let m = metrics();
    let Ok(mut open) = m.challenges_open.lock() else {
        return;
    };
    if open.len() >= MAX_TRACKED_CHALLENGES {
        return;
    }
    let previous = open.insert(
        id.to_owned(),
        OpenChallenge {
            factor,
            flow,
            expires_at,
            started: Instant::now(),
        },
    );
    if previous.is_none() {
        m.open.get_or_create_owned(&ff(factor, flow)).inc();
    }
}

/// The answer to an open challenge was checked: counts M1/M2/M5 with the latency
/// since [`challenge_opened`]. A success closes the challenge; a failure leaves it
/// open for another try.
pub fn challenge_answered(factor: Factor, flow: Flow, id: &str, result: Result<(), &'static str>) {
    let m = metrics();
    let started = {
        let Ok(mut open) = m.challenges_open.lock() else {
            return;
        };
        let started = open.get(id).map(|c| c.started);
        if result.is_ok() && open.remove(id).is_some() {
            m.open.get_or_create_owned(&ff(factor, flow)).dec();
        }
        started
    };
    let latency = started.map(|s| s.elapsed()).unwrap_or_default();
    mfa_result(factor, flow, result, latency);
}

/// Count open challenges past their expiry as abandoned (M10) and forget them.
/// Called on every scrape with the CA's clock.
pub fn expire_challenges(now: DateTime<Utc>) {
    let m = metrics();
    let Ok(mut open) = m.challenges_open.lock() else {
        return;
    };
    open.retain(|_, c| {
        if c.expires_at > now {
            return true;
        }
        let labels = ff(c.factor, c.flow);
        m.abandoned.get_or_create_owned(&labels).inc();
        m.open.get_or_create_owned(&labels).dec();
        false
    });
}

/// A certificate was issued; `latency` covers policy, signing, audit and storage.
pub fn cert_issued(kind: CertKind, latency: Duration) {
    let m = metrics();
    let k = Kind {
        kind: kind.as_str(),
    };
    m.certs_issued.get_or_create_owned(&k).inc();
    m.issuance
        .get_or_create_owned(&k)
        .observe(latency.as_secs_f64());
}

/// A certificate request was denied with `reason` (a policy denial code or a
/// refusal code such as `key_revoked`).
pub fn cert_denied(kind: CertKind, reason: &str) {
    let m = metrics();
    let reason = m.reasons.label(reason);
    m.certs_denied
        .get_or_create_owned(&KindReason {
            kind: kind.as_str(),
            reason,
        })
        .inc();
}

/// One audit append finished (successfully or not) after `latency`.
pub fn audit_append(ok: bool, latency: Duration) {
    let m = metrics();
    m.audit_append.observe(latency.as_secs_f64());
    if !ok {
        m.audit_failures.inc();
    }
}

/// Publish the audit log's count of unwitnessed checkpoints (it counts from
/// the log's opening; the counter follows it upwards).
pub fn witness_failures(total: u64) {
    let c = &metrics().witness_failures;
    let seen = c.get();
    if total > seen {
        c.inc_by(total - seen);
    }
}

/// One API request finished; `endpoint` is the matched route template.
pub fn api_request(endpoint: &str, status: u16) {
    let m = metrics();
    let code = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let endpoint = m.endpoints.label(endpoint);
    // The classes an endpoint answers with exist at zero from its first request,
    // so the first 5xx is an increase Prometheus can see (`rate` of a series that
    // is born at 20 is 0).
    for class in ["2xx", "4xx", "5xx"] {
        m.api_requests.get_or_create_owned(&Endpoint {
            endpoint: endpoint.clone(),
            code: class,
        });
    }
    m.api_requests
        .get_or_create_owned(&Endpoint { endpoint, code })
        .inc();
}

/// Publish the KRL the CA serves.
pub fn krl(version: u64, generated_at: u64) {
    let m = metrics();
    m.krl_version
        .set(i64::try_from(version).unwrap_or(i64::MAX));
    m.krl_generated
        .set(i64::try_from(generated_at).unwrap_or(i64::MAX));
}

/// Publish one forwarder's status. Lag is what the SIEM has not confirmed: the
/// log's head (`log_head`, read now, since a forwarder waiting to reconnect does
/// not look) minus the forwarder's durable cursor. Errors are counted from the
/// growth of its consecutive-failure count between two looks (a reset to 0 is a
/// success).
pub fn forwarder_status(status: &rampart_audit::forward::ForwarderStatus, log_head: Option<u64>) {
    let m = metrics();
    let labels = Forwarder {
        forwarder: m.forwarders.label(&status.name),
    };
    let head = log_head.unwrap_or(0).max(status.head_seq);
    m.siem_lag
        .get_or_create_owned(&labels)
        .set(i64::try_from(head.saturating_sub(status.acked_seq)).unwrap_or(i64::MAX));
    m.siem_connected
        .get_or_create_owned(&labels)
        .set(i64::from(status.connected));
    let Ok(mut seen) = m.siem_seen.lock() else {
        return;
    };
    let (last_failures, last_sent) = seen.entry(labels.forwarder.clone()).or_insert((0, 0));
    let failures = status.consecutive_failures;
    let new_errors = if failures >= *last_failures {
        failures - *last_failures
    } else {
        failures
    };
    m.siem_errors
        .get_or_create_owned(&labels)
        .inc_by(u64::from(new_errors));
    m.siem_sent
        .get_or_create_owned(&labels)
        .inc_by(status.events_sent.saturating_sub(*last_sent));
    *last_failures = failures;
    *last_sent = status.events_sent.max(*last_sent);
}

/// Coverage of one scope (a role, or `all`) for M8.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Enabled users.
    pub users: i64,
    /// … with at least one factor.
    pub with_factor: i64,
    /// … with a phishing-resistant factor.
    pub phishing_resistant: i64,
}

/// Replace the M8 gauges: coverage per role (`all` included by the caller) and
/// users per enrolled factor.
pub fn set_coverage(per_role: &HashMap<String, Coverage>, per_factor: &HashMap<Factor, i64>) {
    let m = metrics();
    m.users.clear();
    m.users_with_factor.clear();
    m.users_phishing_resistant.clear();
    for (role, c) in per_role {
        let role = Role {
            role: m.roles.label(role),
        };
        m.users.get_or_create_owned(&role).inc_by(c.users);
        m.users_with_factor
            .get_or_create_owned(&role)
            .inc_by(c.with_factor);
        m.users_phishing_resistant
            .get_or_create_owned(&role)
            .inc_by(c.phishing_resistant);
    }
    for factor in Factor::ALL {
        m.factor_users
            .get_or_create_owned(&FactorOnly {
                factor: factor.as_str(),
            })
            .set(per_factor.get(&factor).copied().unwrap_or(0));
    }
}

/// Compute M8 from the store: every enabled user, their enrolled factors, and the
/// roles policy gives them. One user list plus one factor lookup per user; run at
/// most every [`COVERAGE_EVERY`] (scrapes in between reuse the last figures).
/// `key_attested` says whether the CA vouches for a key's model: only such a key
/// makes its user count as phishing-resistant, as it does for policy.
pub fn refresh_coverage(
    store: &dyn crate::store::Store,
    policy: &rampart_policy::Policy,
    key_attested: &dyn Fn(&crate::store::WebauthnKeyRecord) -> bool,
) -> Result<(), CaError> {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    if let Ok(mut last) = LAST.lock() {
        if last.is_some_and(|t| t.elapsed() < COVERAGE_EVERY) {
            return Ok(());
        }
        *last = Some(Instant::now());
    }
    let mut per_role: HashMap<String, Coverage> = HashMap::new();
    for role in policy.role_names() {
        per_role.insert(role.to_owned(), Coverage::default());
    }
    let mut per_factor: HashMap<Factor, i64> = HashMap::new();
    for user in store.users()? {
        if user.disabled {
            continue;
        }
        let mut factors = Vec::new();
        if store.totp(&user.name)?.is_some() {
            factors.push(Factor::Totp);
        }
        if store.recovery_codes_left(&user.name)? > 0 {
            factors.push(Factor::Recovery);
        }
        let keys = store.webauthn_keys(&user.name)?;
        let usable = || keys.iter().filter(|k| k.disabled_reason.is_none());
        if usable().next().is_some() {
            factors.push(Factor::Webauthn);
        }
        for f in &factors {
            *per_factor.entry(*f).or_default() += 1;
        }
        // A recovery code alone is not a factor anyone should log in with daily.
        let with_factor = factors.iter().any(|f| *f != Factor::Recovery);
        // An unattested key may be a software authenticator: not resistant.
        let resistant = factors
            .iter()
            .any(|f| f.phishing_resistant() && *f != Factor::Webauthn)
            || usable().any(key_attested);
        let roles = policy.roles_for(&user.name, &user.groups);
        for scope in roles.iter().map(String::as_str).chain(["all"]) {
            let c = per_role.entry(scope.to_owned()).or_default();
            c.users += 1;
            c.with_factor += i64::from(with_factor);
            c.phishing_resistant += i64::from(resistant);
        }
    }
    per_role.entry("all".to_owned()).or_default();
    set_coverage(&per_role, &per_factor);
    Ok(())
}

/// Least time between two coverage computations.
pub const COVERAGE_EVERY: Duration = Duration::from_secs(5);

// ----- config and the listener -----------------------------------------------

/// `[metrics]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Address of the plain-HTTP `/metrics` listener. Default: none (off). It
    /// serves counts, not secrets, but still belongs on loopback or a
    /// monitoring-only network.
    #[serde(default)]
    pub listen: Option<String>,
}

/// Validated `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics` is served; `None`: not served.
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    /// Validate `[metrics]`.
    pub fn from_raw(raw: &RawMetrics) -> Result<MetricsConfig, CaError> {
        let listen = match raw.listen.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|_| {
                CaError::Config(format!(
                    "[metrics] listen = {s:?} is not an address like 127.0.0.1:9464"
                ))
            })?),
        };
        Ok(MetricsConfig { listen })
    }
}

/// The request-ID header, read from the client when well-formed and echoed back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A client's request ID is kept if it is 1–64 characters of `[A-Za-z0-9._-]`;
/// anything else is replaced, so a log line never carries an outsider's junk.
fn acceptable_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// API middleware: gives each request an ID (the client's `x-request-id` when
/// well-formed, else a new ULID), runs it inside a `request` tracing span carrying
/// `request_id`, echoes the ID in the response, and counts the request by matched
/// route and status class (`rampart_api_requests_total`).
pub async fn observe_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let endpoint = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // `session_id` is filled in by the authority once a session is known.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        endpoint = %endpoint,
        session_id = tracing::field::Empty
    );
    let mut resp = next.run(req).instrument(span).await;
    api_request(&endpoint, resp.status().as_u16());
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// Runs before each scrape to refresh gauges computed from state (coverage, KRL,
/// forwarders, expired challenges). Blocking: it runs on a blocking thread.
pub type Refresh = Arc<dyn Fn() + Send + Sync>;

/// Bind the `/metrics` listener (so a taken port fails start-up) and serve it in
/// the background. Returns the bound address (useful with port 0).
pub async fn serve(addr: SocketAddr, refresh: Refresh) -> Result<SocketAddr, CaError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CaError::Config(format!("[metrics] cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CaError::Config(format!("[metrics] {addr}: {e}")))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let refresh = Arc::clone(&refresh);
            async move {
                // A failed refresh still serves the counters; the gauges keep
                // their previous values.
                let _ = tokio::task::spawn_blocking(move || refresh()).await;
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics().encode(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    tracing::info!("rampart-ca metrics on http://{bound}/metrics");
    Ok(bound)
}

/// Counters and gauges are process-wide; these tests check shapes and deltas,
/// never absolute values, since other tests in the process also count.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

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
        let c =
            "rampart_mfa_completions_total{factor=\"piv\",flow=\"session\",outcome=\"failure\"}";
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
        let ok =
            "rampart_mfa_completions_total{factor=\"totp\",flow=\"session\",outcome=\"success\"}";
        let bad =
            "rampart_mfa_completions_total{factor=\"totp\",flow=\"session\",outcome=\"failure\"}";
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
}
