//! Prometheus metrics of the bastion: the "Bastion series" of docs/metrics.md.
//!
//! **Owns:** the process-wide registry and the `/metrics` listener (plain HTTP,
//! off unless `[metrics] listen` is set, like the CA's). Counters are fed from
//! the one place every session fact already passes through — the audit events
//! ([`observe`], called by [`crate::audit::Auditor`]) — so what Prometheus
//! counts and what the audit chain says cannot drift apart. Gauges that are
//! state (live sessions, the age of the revocation list) are read at scrape
//! time. Labels are bounded: no user, target, session or address ever appears.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use rampart_api::{BastionEvent, BastionEventKind};

use crate::clock::Clock;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartLabels {
    /// `accepted` or `refused`.
    outcome: &'static str,
    /// For refusals: `connection` (certificate, target, limits, policy before a
    /// session existed) or `audit_unavailable`; `none` for accepted starts.
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    /// `to_target` or `to_client`.
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordingFailureLabels {
    /// `start` (the recorder could not be created) or `write` (a write failed).
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `allowed` or `refused`.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    /// `applied` or `refused` (the running config stayed).
    outcome: &'static str,
}

/// The bastion's series.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions_active: Gauge,
    starts: Family<StartLabels, Counter>,
    bytes: Family<DirectionLabels, Counter>,
    recording_bytes: Counter,
    /// Audit events the CA replaced by `audit_event_rejected` (or refused outright).
    events_rejected: Counter,
    /// Recordings that could not start or failed mid-session (the channel or
    /// session was refused or ended: fail closed).
    recording_failures: Family<RecordingFailureLabels, Counter>,
    /// Bytes of audit events waiting in the bastion's spool for the CA.
    spool_bytes: Gauge,
    requests: Family<RequestLabels, Counter>,
    /// SIGHUP reloads of `bastion.toml`, applied or refused.
    reloads: Family<ReloadLabels, Counter>,
    krl_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Unix seconds of the last successful revocation fetch (0: never).
    revocations_at: AtomicI64,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rampart_bastion");
        let m = Metrics {
            registry: Registry::default(),
            sessions_active: Gauge::default(),
            starts: Family::default(),
            bytes: Family::default(),
            recording_bytes: Counter::default(),
            events_rejected: Counter::default(),
            recording_failures: Family::default(),
            spool_bytes: Gauge::default(),
            requests: Family::default(),
            reloads: Family::default(),
            krl_age: Gauge::default(),
            revocations_at: AtomicI64::new(0),
        };
        // Every label value exists from the start, so dashboards see zeros
        // rather than gaps before the first session.
        for (outcome, reason) in [
            ("accepted", "none"),
            ("refused", "connection"),
            ("refused", "audit_unavailable"),
            ("refused", "audit_spool_full"),
        ] {
            let _ = m.starts.get_or_create(&StartLabels { outcome, reason });
        }
        for stage in ["start", "write"] {
            let _ = m
                .recording_failures
                .get_or_create(&RecordingFailureLabels { stage });
        }
        for direction in ["to_target", "to_client"] {
            let _ = m.bytes.get_or_create(&DirectionLabels { direction });
        }
        for outcome in ["allowed", "refused"] {
            let _ = m.requests.get_or_create(&RequestLabels { outcome });
        }
        for outcome in ["applied", "refused"] {
            let _ = m.reloads.get_or_create(&ReloadLabels { outcome });
        }
        registry.register(
            "sessions_active",
            "SSH sessions being proxied now",
            m.sessions_active.clone(),
        );
        registry.register(
            "session_starts",
            "Session starts and refusals",
            m.starts.clone(),
        );
        // Names as docs/metrics.md fixed them (no unit suffix before _total).
        registry.register(
            "bytes_proxied",
            "Bytes carried between user and target (counted when a session ends)",
            m.bytes.clone(),
        );
        registry.register(
            "recording_bytes",
            "Compressed asciicast bytes finished for upload",
            m.recording_bytes.clone(),
        );
        registry.register(
            "audit_events_rejected",
            "Audit events the CA refused and replaced by audit_event_rejected",
            m.events_rejected.clone(),
        );
        registry.register(
            "audit_spool_bytes",
            "Audit events waiting on the bastion's disk for the CA (new sessions are refused when the spool is full)",
            m.spool_bytes.clone(),
        );
        registry.register(
            "recording_failures",
            "Recordings that could not start or write; the channel or session was refused or ended",
            m.recording_failures.clone(),
        );
        registry.register(
            "channel_requests",
            "Forwarding channels allowed, and channels or requests refused by policy",
            m.requests.clone(),
        );
        registry.register(
            "config_reloads",
            "SIGHUP reloads of bastion.toml, applied or refused (the running config stayed)",
            m.reloads.clone(),
        );
        registry.register_with_unit(
            "krl_age",
            "Time since the revocation list was last fetched from the CA",
            Unit::Seconds,
            m.krl_age.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition, with the state gauges read at `now`.
    pub fn encode(&self, live_sessions: usize, now: DateTime<Utc>) -> String {
        self.sessions_active
            .set(i64::try_from(live_sessions).unwrap_or(i64::MAX));
        let at = self.revocations_at.load(Ordering::Relaxed);
        // Never fetched: as stale as can be, so the staleness alert fires.
        let age = (now.timestamp() - at).max(0);
        self.krl_age.set(age as f64);
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

/// Count what an audit event says happened (called once per event, when the
/// event is handed to the auditor).
pub fn observe(e: &BastionEvent) {
    let m = metrics();
    match e.kind {
        BastionEventKind::SessionStarted => {
            m.starts
                .get_or_create(&StartLabels {
                    outcome: "accepted",
                    reason: "none",
                })
                .inc();
        }
        BastionEventKind::ConnectionRefused => {
            m.starts
                .get_or_create(&StartLabels {
                    outcome: "refused",
                    reason: "connection",
                })
                .inc();
        }
        BastionEventKind::SessionEnded => {
            for (key, direction) in [("bytes_up", "to_target"), ("bytes_down", "to_client")] {
                if let Some(n) = e.details.get(key).and_then(serde_json::Value::as_u64) {
                    m.bytes
                        .get_or_create(&DirectionLabels { direction })
                        .inc_by(n);
                }
            }
        }
        BastionEventKind::Forward => {
            m.requests
                .get_or_create(&RequestLabels { outcome: "allowed" })
                .inc();
        }
        BastionEventKind::RequestRefused => {
            m.requests
                .get_or_create(&RequestLabels { outcome: "refused" })
                .inc();
        }
        BastionEventKind::ConfigReloaded => {
            let outcome = if e.success { "applied" } else { "refused" };
            m.reloads.get_or_create(&ReloadLabels { outcome }).inc();
        }
        BastionEventKind::Exec | BastionEventKind::FileOp => {}
    }
}

/// A session start that could not be audited, and so was refused.
pub fn start_unaudited() {
    metrics()
        .starts
        .get_or_create(&StartLabels {
            outcome: "refused",
            reason: "audit_unavailable",
        })
        .inc();
}

/// A session refused because the audit event spool is full.
pub fn start_refused_spool_full() {
    metrics()
        .starts
        .get_or_create(&StartLabels {
            outcome: "refused",
            reason: "audit_spool_full",
        })
        .inc();
}

/// The CA answered a revocation fetch at `at`.
pub fn revocations_fetched(at: DateTime<Utc>) {
    metrics()
        .revocations_at
        .store(at.timestamp(), Ordering::Relaxed);
}

/// The CA refused an audit event (it wrote `audit_event_rejected` instead).
pub fn audit_event_rejected() {
    metrics().events_rejected.inc();
}

/// Bytes of audit events now in the spool.
pub fn audit_spool_bytes(bytes: u64) {
    metrics()
        .spool_bytes
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// A recording could not start (`start`) or a write failed (`write`).
pub fn recording_failed(stage: &'static str) {
    metrics()
        .recording_failures
        .get_or_create(&RecordingFailureLabels { stage })
        .inc();
}

/// A recording of `bytes` (compressed) was finished.
pub fn recording_finished(bytes: u64) {
    metrics().recording_bytes.inc_by(bytes);
}

/// Serve `/metrics` on `addr`; `live_sessions` and `clock` are asked at each
/// scrape.
pub async fn serve(
    addr: SocketAddr,
    live_sessions: Arc<dyn Fn() -> usize + Send + Sync>,
    clock: Arc<dyn Clock>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let live = Arc::clone(&live_sessions);
            let now = clock.now();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics().encode(live(), now),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn events_move_the_counters_and_labels_stay_bounded() {
        let m = metrics();
        let before = m.encode(0, chrono::Utc::now());
        let start = value(
            &before,
            "rampart_bastion_session_starts_total{outcome=\"accepted\",reason=\"none\"}",
        );
        let up = value(
            &before,
            "rampart_bastion_bytes_proxied_total{direction=\"to_target\"}",
        );
        let mut e = crate::audit::event(BastionEventKind::SessionStarted, true, chrono::Utc::now());
        e.user = Some("alice".into());
        e.target = Some("db-1".into());
        observe(&e);
        let ended = crate::audit::detail(
            crate::audit::detail(
                crate::audit::event(BastionEventKind::SessionEnded, true, chrono::Utc::now()),
                "bytes_up",
                1000u64,
            ),
            "bytes_down",
            5u64,
        );
        observe(&ended);
        let after = m.encode(3, chrono::Utc::now());
        assert!(
            value(
                &after,
                "rampart_bastion_session_starts_total{outcome=\"accepted\",reason=\"none\"}"
            ) >= start + 1.0
        );
        assert!(
            value(
                &after,
                "rampart_bastion_bytes_proxied_total{direction=\"to_target\"}"
            ) >= up + 1000.0
        );
        assert_eq!(value(&after, "rampart_bastion_sessions_active"), 3.0);
        assert!(!after.contains("alice") && !after.contains("db-1"));
    }

    #[test]
    fn reloads_are_counted_applied_or_refused() {
        let m = metrics();
        let series = |outcome: &str| {
            format!("rampart_bastion_config_reloads_total{{outcome=\"{outcome}\"}}")
        };
        let before = m.encode(0, chrono::Utc::now());
        let (applied, refused) = (
            value(&before, &series("applied")),
            value(&before, &series("refused")),
        );
        observe(&crate::audit::event(
            BastionEventKind::ConfigReloaded,
            false,
            chrono::Utc::now(),
        ));
        observe(&crate::audit::event(
            BastionEventKind::ConfigReloaded,
            false,
            chrono::Utc::now(),
        ));
        observe(&crate::audit::event(
            BastionEventKind::ConfigReloaded,
            true,
            chrono::Utc::now(),
        ));
        let after = m.encode(0, chrono::Utc::now());
        assert!(
            value(&after, &series("refused")) >= refused + 2.0,
            "{after}"
        );
        assert!(
            value(&after, &series("applied")) >= applied + 1.0,
            "{after}"
        );
    }

    #[test]
    fn krl_age_is_the_time_since_the_last_fetch() {
        revocations_fetched(chrono::Utc::now());
        let text = metrics().encode(0, chrono::Utc::now());
        assert!(
            value(&text, "rampart_bastion_krl_age_seconds") < 60.0,
            "{text}"
        );
    }
}
