//! The `[metrics]` config, the request-observing middleware and the
//! `/metrics` listener, on its own address apart from the API.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;

use super::*;
use crate::error::CaError;

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
pub(super) fn acceptable_request_id(v: &str) -> bool {
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
