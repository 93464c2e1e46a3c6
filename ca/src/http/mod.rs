//! The HTTPS JSON API: routing, request parsing with bounds, bearer sessions, and
//! mapping [`CaError`] to status codes with a JSON [`rampart_api::ErrorBody`].
//!
//! Handlers are thin: they parse, then run the [`Authority`] method on a blocking
//! thread (the store and the audit log's durable append block). A bad request gets
//! a 4xx with a clear message and never reaches the authority half-parsed.
//!
//! # Files
//!
//! - `mod.rs`: the router, errors as responses, bounded JSON bodies, and the
//!   credential checks every handler goes through (session, admin, bastion
//!   in `bastion.rs`).
//! - `user.rs`: the CA keys and KRL, enrolment, login, certificates, whoami.
//! - `admin.rs`: users, invites, revocation, host certificates.
//! - `bastion.rs`: what bastions call, and the recorded sessions.
//! - `unread.rs`: the layer that reads what a handler left of a body, so an
//!   early answer reaches a client still writing instead of a reset.

use rampart_api::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rampart_api::{self as api, paths, ErrorBody};
use serde::de::DeserializeOwned;

use crate::authority::{Authority, Caller, Session};
use crate::error::CaError;

mod admin;
mod bastion;
mod unread;
mod user;

use admin::{
    create_host_token, create_invite, create_user, host_cert, link_idp_subject, list_host_tokens,
    list_users, revoke, revoke_host_token, set_user_groups, set_user_state,
};
pub(crate) use bastion::as_bastion;
use bastion::{
    bastion_events, bastion_host_cert, bastion_join, bastion_recording, bastion_revocations,
    bastion_session_cert, create_bastion_token, list_sessions, revoke_bastion, session_recording,
};
use user::{
    enroll_finish, enroll_start, host_ca, host_join, host_renew, issue_cert, krl, krl_sig, login,
    logout, oidc_device_poll, oidc_device_start, oidc_finish, oidc_pending, oidc_start, ssh_hosts,
    targets, user_ca, user_ca_sig, whoami,
};

type Shared = State<Arc<Authority>>;

/// An API error as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub CaError);

impl From<CaError> for ApiError {
    fn from(e: CaError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            outage_log().note(
                e.code(),
                &rampart_api::report::one_line(&e),
                std::time::Instant::now(),
            );
        } else if status.is_server_error() {
            tracing::error!(error = %rampart_api::report::one_line(&e), "request failed");
        } else {
            tracing::info!(code = e.code().as_str(), error = %rampart_api::report::one_line(&e), "request refused");
        }
        let body = ErrorBody {
            code: e.code().as_str().to_owned(),
            message: e.public_message(),
        };
        let mut resp = (status, Json(body)).into_response();
        if let CaError::RateLimited {
            retry_after_secs, ..
        } = e
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// How often the same 503 is logged at ERROR while an outage lasts.
const OUTAGE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Logs 503s (the database or the audit log unavailable) once when they
/// start and then once a minute with a count, instead of once per request:
/// during an outage every bastion poll and client retry fails the same way.
#[derive(Debug, Default)]
struct OutageLog {
    last: std::sync::Mutex<Option<(ErrorCode, std::time::Instant, u64)>>,
}

fn outage_log() -> &'static OutageLog {
    static LOG: std::sync::OnceLock<OutageLog> = std::sync::OnceLock::new();
    LOG.get_or_init(OutageLog::default)
}

impl OutageLog {
    /// Log a 503 at `now`; whether it went out at ERROR.
    fn note(&self, code: ErrorCode, error: &str, now: std::time::Instant) -> bool {
        let Ok(mut last) = self.last.lock() else {
            tracing::error!(error, "request failed");
            return true;
        };
        match last.as_mut() {
            Some((c, at, suppressed))
                if *c == code && now.duration_since(*at) < OUTAGE_LOG_EVERY =>
            {
                *suppressed += 1;
                tracing::debug!(error, "request failed (outage already logged)");
                false
            }
            _ => {
                let suppressed = last.map_or(0, |(_, _, n)| n);
                tracing::error!(
                    error,
                    similar_since_last_logged = suppressed,
                    "request failed"
                );
                *last = Some((code, now, 0));
                true
            }
        }
    }
}

#[cfg(test)]
mod outage_log_tests {
    use super::*;

    #[test]
    fn an_outage_is_logged_when_it_starts_and_then_once_a_minute() {
        let log = OutageLog::default();
        let t0 = std::time::Instant::now();
        let s = std::time::Duration::from_secs;
        let db = ErrorCode::DatabaseUnavailable;
        assert!(log.note(db, "down", t0));
        assert!(!log.note(db, "down", t0 + s(1)));
        assert!(!log.note(db, "down", t0 + s(59)));
        assert!(log.note(ErrorCode::AuditUnavailable, "audit down", t0 + s(59)));
        assert!(log.note(db, "down", t0 + s(60)));
        assert!(!log.note(db, "down", t0 + s(61)));
        assert!(log.note(db, "down", t0 + s(121)));
    }
}

fn plain_error(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            code: code.as_str().to_owned(),
            message,
        }),
    )
        .into_response()
}

/// A path parameter; one that does not decode (a segment that is not UTF-8)
/// is refused in our error shape, 400 `invalid_request`, where axum's own
/// extractor would answer in plain text.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(e) => Err(plain_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                format!("path: {}", e.body_text()),
            )),
        }
    }
}

/// A JSON body parsed strictly (unknown fields refused by the types) with errors
/// that say what is wrong, in our error shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body()).await?;
        // serde reads a struct from a JSON array too (`[null, null]` as every
        // field absent); the API's bodies are objects, so an array is refused.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(plain_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "request body: expected a JSON object, not an array".into(),
            ));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let code = if e.is_syntax() || e.is_eof() {
                ErrorCode::MalformedJson
            } else {
                ErrorCode::InvalidRequest
            };
            plain_error(StatusCode::BAD_REQUEST, code, format!("request body: {e}"))
        })
    }
}

/// A request body of at most [`api::MAX_BODY_BYTES`], or the error response.
async fn read_body(body: axum::body::Body) -> Result<Vec<u8>, Response> {
    use futures_util::StreamExt as _;
    let too_large = || {
        let mut r = plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("request body is larger than {} bytes", api::MAX_BODY_BYTES),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let mut frames = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|e| {
            plain_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadBody,
                format!("request body: {e}"),
            )
        })?;
        if bytes.len() + frame.len() > api::MAX_BODY_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&frame);
    }
    Ok(bytes)
}

pub(crate) fn caller(addr: SocketAddr) -> Caller {
    Caller {
        source: addr.ip().to_canonical(),
    }
}

fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256);
    value.map(str::to_owned).ok_or_else(|| {
        ApiError(CaError::unauthenticated(
            ErrorCode::SessionMissing,
            "this endpoint needs a session; run `rampart login`",
        ))
    })
}

/// A query string that does not parse: 400 `invalid_query`. Handlers read
/// their query only after the caller is authenticated, so a stranger learns
/// nothing from how a query is judged.
pub(crate) fn bad_query(e: axum::extract::rejection::QueryRejection) -> CaError {
    CaError::bad_request(ErrorCode::InvalidQuery, format!("query: {}", e.body_text()))
}

/// Run a blocking authority call off the async workers.
pub(crate) async fn blocking<T, F>(auth: Arc<Authority>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Authority) -> Result<T, CaError> + Send + 'static,
{
    // The request's span (its request ID) follows the work onto the blocking thread.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| f(&auth)))
        .await
        .map_err(|e| ApiError(CaError::Internal(format!("worker failed: {e}"))))?
        .map_err(ApiError)
}

/// Resolve the bearer token and run `f` with the session.
pub(crate) async fn with_session<T, F>(
    auth: Arc<Authority>,
    headers: &HeaderMap,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Authority, Session) -> Result<T, CaError> + Send + 'static,
{
    let token = bearer(headers)?;
    blocking(auth, move |a| {
        let session = a.authenticate(&token)?;
        f(a, session)
    })
    .await
}

/// Like [`with_session`], for admin endpoints.
async fn as_admin<T, F>(
    auth: Arc<Authority>,
    headers: &HeaderMap,
    who: Caller,
    action: &'static str,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Authority, Session) -> Result<T, CaError> + Send + 'static,
{
    with_session(auth, headers, move |a, s| {
        a.require_admin(&who, &s, action)?;
        f(a, s)
    })
    .await
}

/// The API router.
pub fn router(auth: Arc<Authority>) -> Router {
    Router::new()
        .route(paths::HEALTH, get(health))
        .route(paths::OPENAPI, get(openapi))
        .route(paths::USER_CA_PUB, get(user_ca))
        .route(paths::USER_CA_PUB_SIG, get(user_ca_sig))
        .route(paths::HOST_RENEW, post(host_renew))
        .route(paths::HOST_JOIN, post(host_join))
        .route(paths::HOST_CA_PUB, get(host_ca))
        .route(paths::KRL, get(krl))
        .route(paths::KRL_SIG, get(krl_sig))
        .route(paths::ENROLL_START, post(enroll_start))
        .route(paths::ENROLL_FINISH, post(enroll_finish))
        .route(paths::LOGIN, post(login))
        .route(api::oidc::START, post(oidc_start))
        .route(api::oidc::FINISH, post(oidc_finish))
        .route(api::oidc::DEVICE_START, post(oidc_device_start))
        .route(api::oidc::DEVICE_POLL, post(oidc_device_poll))
        .route(api::oidc::PENDING, post(oidc_pending))
        .route(paths::CERTS, post(issue_cert))
        .route(paths::WHOAMI, get(whoami))
        .route(paths::SSH_HOSTS, get(ssh_hosts))
        .route(paths::TARGETS, get(targets))
        .route(paths::LOGOUT, post(logout))
        .route(paths::ADMIN_USERS, get(list_users).post(create_user))
        .route(paths::ADMIN_USER_STATE, post(set_user_state))
        .route(paths::ADMIN_USER_GROUPS, post(set_user_groups))
        .route(paths::ADMIN_USER_IDP_LINK, post(link_idp_subject))
        .route(paths::ADMIN_INVITES, post(create_invite))
        .route(paths::ADMIN_REVOKE, post(revoke))
        .route(paths::ADMIN_HOST_CERTS, post(host_cert))
        .route(
            paths::ADMIN_HOST_TOKENS,
            post(create_host_token).get(list_host_tokens),
        )
        .route(paths::ADMIN_HOST_TOKENS_REVOKE, post(revoke_host_token))
        .route(paths::ADMIN_BASTION_TOKENS, post(create_bastion_token))
        .route(paths::ADMIN_BASTION_REVOKE, post(revoke_bastion))
        .route(paths::BASTION_JOIN, post(bastion_join))
        .route(paths::BASTION_HOST_CERT, post(bastion_host_cert))
        .route(paths::BASTION_SESSION_CERT, post(bastion_session_cert))
        .route(paths::BASTION_REVOCATIONS, get(bastion_revocations))
        .route(paths::BASTION_EVENTS, post(bastion_events))
        .route(
            paths::BASTION_RECORDING,
            // Reads its body itself, with its own limit, after the credential.
            put(bastion_recording),
        )
        .route(paths::ADMIN_SESSIONS, get(list_sessions))
        .route(paths::ADMIN_SESSION_RECORDING, get(session_recording))
        .merge(crate::webauthn::routes::routes())
        // After every route: it applies to the routes there are.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // ApiJson reads bodies itself (read_body); this limit holds axum's own
        // extractors to the same bound, should a handler ever take one.
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        // Outermost of the router's layers: whatever answered, the rest of
        // the body is read before the answer goes out (see `unread`).
        .layer(axum::middleware::from_fn(unread::drain_unread_body))
        .with_state(auth)
}

async fn not_found() -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint".into(),
    )
}

/// A known path with another method: 405 (axum adds `Allow`).
async fn method_not_allowed(method: axum::http::Method) -> Response {
    plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("this endpoint does not take {method}"),
    )
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        api::openapi::DOCUMENT,
    )
        .into_response()
}

async fn health(State(auth): Shared) -> Json<api::Health> {
    Json(api::Health {
        status: if auth.audit_log().healthy() {
            "ok"
        } else {
            "degraded"
        }
        .to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}
