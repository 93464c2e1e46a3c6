//! The HTTPS JSON API: routing, request parsing with bounds, bearer sessions, and
//! mapping [`CaError`] to status codes with a JSON [`rampart_api::ErrorBody`].
//!
//! Handlers are thin: they parse, then run the [`Authority`] method on a blocking
//! thread (the store and the audit log's durable append block). A bad request gets
//! a 4xx with a clear message and never reaches the authority half-parsed.

use rampart_api::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path as UrlPath;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rampart_api::{self as api, paths, ErrorBody};
use serde::de::DeserializeOwned;

use crate::authority::bastion::Bastion;
use crate::authority::sessions::{self, SessionFilter};
use crate::authority::{Authority, Caller, Session};
use crate::error::CaError;

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
        if status.is_server_error() {
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

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            let status = rej.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                plain_error(
                    status,
                    ErrorCode::BodyTooLarge,
                    format!("request body is larger than {} bytes", api::MAX_BODY_BYTES),
                )
            } else {
                plain_error(status, ErrorCode::BadBody, rej.body_text())
            }
        })?;
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
        .route(paths::USER_CA_PUB, get(user_ca))
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
        .route(paths::ADMIN_BASTION_TOKENS, post(create_bastion_token))
        .route(paths::ADMIN_BASTION_REVOKE, post(revoke_bastion))
        .route(paths::BASTION_JOIN, post(bastion_join))
        .route(paths::BASTION_HOST_CERT, post(bastion_host_cert))
        .route(paths::BASTION_SESSION_CERT, post(bastion_session_cert))
        .route(paths::BASTION_REVOCATIONS, get(bastion_revocations))
        .route(paths::BASTION_EVENTS, post(bastion_events))
        .route(
            &format!("{}/{{session_id}}", paths::BASTION_RECORDINGS),
            // Reads its body itself, with its own limit, after the credential.
            put(bastion_recording),
        )
        .route(paths::ADMIN_SESSIONS, get(list_sessions))
        .route(
            &format!(
                "{}/{{session_id}}{}",
                paths::ADMIN_SESSIONS,
                paths::ADMIN_SESSION_RECORDING_SUFFIX
            ),
            get(session_recording),
        )
        .merge(crate::webauthn::routes::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .with_state(auth)
}

async fn not_found() -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint".into(),
    )
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

fn text(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body + "\n",
    )
        .into_response()
}

async fn user_ca(State(auth): Shared) -> Response {
    text(auth.user_ca_line())
}

async fn host_ca(State(auth): Shared) -> Response {
    text(auth.host_ca_line())
}

/// `GET /v1/krl`: the KRL bytes, with their version in a header.
async fn krl(State(auth): Shared) -> Result<Response, ApiError> {
    // signed_krl may re-generate a stale pair, which reads the store: off the
    // async workers, like every other store access.
    let signed = blocking(auth, |a| Ok(a.signed_krl())).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::HeaderName::from_static(api::KRL_VERSION_HEADER),
                signed.version.to_string(),
            ),
        ],
        signed.bytes.as_ref().clone(),
    )
        .into_response())
}

/// `GET /v1/krl.sig`: the SSHSIG over exactly the bytes `GET /v1/krl` serves
/// (same cached pair; see [`crate::authority::SignedKrl`]).
async fn krl_sig(State(auth): Shared) -> Result<Response, ApiError> {
    let signed = blocking(auth, |a| Ok(a.signed_krl())).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::HeaderName::from_static(api::KRL_VERSION_HEADER),
                signed.version.to_string(),
            ),
        ],
        signed.signature.clone(),
    )
        .into_response())
}

async fn enroll_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::EnrollStartRequest>,
) -> Result<Json<api::EnrollStartResponse>, ApiError> {
    blocking(auth, move |a| a.enroll_start(&caller(addr), &req))
        .await
        .map(Json)
}

async fn enroll_finish(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::EnrollFinishRequest>,
) -> Result<Json<api::EnrollFinishResponse>, ApiError> {
    blocking(auth, move |a| a.enroll_finish(&caller(addr), &req))
        .await
        .map(Json)
}

async fn login(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::LoginRequest>,
) -> Result<Json<api::LoginResponse>, ApiError> {
    blocking(auth, move |a| a.login(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/start`.
async fn oidc_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcStartRequest>,
) -> Result<Json<api::oidc::OidcStartResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_start(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/finish`.
async fn oidc_finish(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcFinishRequest>,
) -> Result<Json<api::oidc::OidcFinishResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_finish(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/device/start`.
async fn oidc_device_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcDeviceStartRequest>,
) -> Result<Json<api::oidc::OidcDeviceStartResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_device_start(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/device/poll`.
async fn oidc_pending(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcPendingRequest>,
) -> Result<Json<api::oidc::OidcPendingResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_pending(&caller(addr), &req))
        .await
        .map(Json)
}

async fn oidc_device_poll(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcDevicePollRequest>,
) -> Result<Json<api::oidc::OidcDevicePollResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_device_poll(&caller(addr), &req))
        .await
        .map(Json)
}

async fn issue_cert(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::AttestedCertRequest>,
) -> Result<Json<api::CertResponse>, ApiError> {
    with_session(auth, &headers, move |a, s| {
        a.issue_attested_user_cert(&caller(addr), &s, &req)
    })
    .await
    .map(Json)
}

async fn whoami(State(auth): Shared, headers: HeaderMap) -> Result<Json<api::WhoAmI>, ApiError> {
    with_session(auth, &headers, |a, s| Ok(a.whoami(&s)))
        .await
        .map(Json)
}

async fn ssh_hosts(
    State(auth): Shared,
    headers: HeaderMap,
) -> Result<Json<api::SshHosts>, ApiError> {
    with_session(auth, &headers, |a, s| a.ssh_hosts(&s))
        .await
        .map(Json)
}

/// The caller's own view: the session decides whose. A query (`?user=bob`)
/// is refused rather than ignored, so no client can believe it asked for
/// someone else's list and got it.
async fn targets(
    State(auth): Shared,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Json<api::Targets>, ApiError> {
    if uri.query().is_some() {
        return Err(CaError::bad_request(
            ErrorCode::InvalidRequest,
            "this endpoint takes no parameters: it lists the session's own user's targets",
        )
        .into());
    }
    with_session(auth, &headers, |a, s| a.targets(&s))
        .await
        .map(Json)
}

async fn logout(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers)?;
    blocking(auth, move |a| a.logout(&caller(addr), &token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_users(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Vec<api::User>>, ApiError> {
    as_admin(auth, &headers, caller(addr), "list_users", |a, _| {
        a.list_users()
    })
    .await
    .map(Json)
}

async fn create_user(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::CreateUserRequest>,
) -> Result<(StatusCode, Json<api::User>), ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "create_user", move |a, s| {
        a.create_user(Some(&who), Some(&s), &req)
    })
    .await
    .map(|u| (StatusCode::CREATED, Json(u)))
}

async fn set_user_state(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::SetUserStateRequest>,
) -> Result<Json<api::User>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "set_user_state", move |a, s| {
        a.set_user_state(&who, &s, &req)
    })
    .await
    .map(Json)
}

async fn set_user_groups(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::SetGroupsRequest>,
) -> Result<Json<api::User>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "set_user_groups", move |a, s| {
        a.set_user_groups(&who, &s, &req)
    })
    .await
    .map(Json)
}

async fn link_idp_subject(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::IdpLinkRequest>,
) -> Result<Json<api::IdpLinkResponse>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "link_idp_subject", move |a, s| {
        a.link_idp_subject(&who, &s, &req)
    })
    .await
    .map(Json)
}

async fn create_invite(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::InviteRequest>,
) -> Result<(StatusCode, Json<api::InviteResponse>), ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "create_invite", move |a, s| {
        a.create_invite(Some(&who), Some(&s), &req)
    })
    .await
    .map(|r| (StatusCode::CREATED, Json(r)))
}

async fn revoke(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::RevokeRequest>,
) -> Result<Json<api::RevokeResponse>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "revoke", move |a, s| {
        a.revoke(&who, &s, &req)
    })
    .await
    .map(Json)
}

async fn host_cert(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::HostCertRequest>,
) -> Result<Json<api::CertResponse>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "host_cert", move |a, s| {
        a.issue_host_cert(&who, &s, &req)
    })
    .await
    .map(Json)
}

// ----- bastion (see crate::authority::bastion) --------------------------------

async fn create_bastion_token(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::BastionTokenRequest>,
) -> Result<(StatusCode, Json<api::BastionTokenResponse>), ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "bastion_token", move |a, s| {
        a.create_bastion_token(&who, &s, &req)
    })
    .await
    .map(|r| (StatusCode::CREATED, Json(r)))
}

async fn revoke_bastion(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::BastionRevokeRequest>,
) -> Result<Json<api::BastionRevokeResponse>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "revoke_bastion", move |a, s| {
        a.revoke_bastion(&who, &s, &req)
    })
    .await
    .map(Json)
}

async fn bastion_join(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::BastionJoinRequest>,
) -> Result<(StatusCode, Json<api::BastionJoinResponse>), ApiError> {
    blocking(auth, move |a| a.bastion_join(&caller(addr), &req))
        .await
        .map(|r| (StatusCode::CREATED, Json(r)))
}

/// Resolve the bastion credential and run `f` with the bastion.
pub(crate) async fn as_bastion<T, F>(
    auth: Arc<Authority>,
    headers: &HeaderMap,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Authority, Bastion) -> Result<T, CaError> + Send + 'static,
{
    let credential = bearer(headers).map_err(|_| {
        ApiError(CaError::unauthenticated(
            ErrorCode::BastionCredentialMissing,
            "this endpoint needs a bastion credential (rampart-bastion join)",
        ))
    })?;
    blocking(auth, move |a| {
        let bastion = a.authenticate_bastion(&credential)?;
        f(a, bastion)
    })
    .await
}

async fn bastion_host_cert(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::BastionHostCertRequest>,
) -> Result<Json<api::CertResponse>, ApiError> {
    as_bastion(auth, &headers, move |a, b| {
        a.bastion_host_cert(&caller(addr), &b, &req)
    })
    .await
    .map(Json)
}

async fn bastion_session_cert(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::SessionCertRequest>,
) -> Result<Json<api::SessionCertResponse>, ApiError> {
    as_bastion(auth, &headers, move |a, b| {
        a.bastion_session_cert(&caller(addr), &b, &req)
    })
    .await
    .map(Json)
}

/// Query of `GET /v1/bastion/revocations`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationsQuery {
    since_version: Option<u64>,
}

async fn bastion_revocations(
    State(auth): Shared,
    headers: HeaderMap,
    query: Result<Query<RevocationsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::BastionRevocations>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError(CaError::bad_request(
            ErrorCode::InvalidQuery,
            format!("query: {}", e.body_text()),
        ))
    })?;
    as_bastion(auth, &headers, move |a, b| {
        a.bastion_revocations(&b, q.since_version)
    })
    .await
    .map(Json)
}

// ----- bastion sessions and recordings (see crate::authority::sessions) ---------

async fn bastion_events(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<api::BastionEventBatch>,
) -> Result<Json<api::BastionEventAck>, ApiError> {
    as_bastion(auth, &headers, move |a, b| {
        a.bastion_events(&caller(addr), &b, &batch)
    })
    .await
    .map(Json)
}

/// Query of `PUT /v1/bastion/recordings/{session_id}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingQuery {
    abnormal_end: Option<String>,
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError(CaError::bad_request(
        ErrorCode::InvalidQuery,
        format!("query: {}", e.body_text()),
    ))
}

async fn bastion_recording(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    UrlPath(session_id): UrlPath<String>,
    query: Result<Query<RecordingQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let flag = |v: &str| {
        sessions::parse_flag(v).ok_or_else(|| {
            ApiError(CaError::bad_request(
                ErrorCode::InvalidAbnormalEnd,
                "abnormal_end is 1, 0, true or false",
            ))
        })
    };
    let from_header = match headers.get(sessions::ABNORMAL_END_HEADER) {
        Some(v) => flag(v.to_str().unwrap_or_default())?,
        None => false,
    };
    let from_query = match &q.abnormal_end {
        Some(v) => flag(v)?,
        None => false,
    };
    let digest = headers
        .get(api::RECORDING_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Who is asking comes before reading up to MAX_RECORDING_BYTES into memory.
    as_bastion(Arc::clone(&auth), &headers, |_, _| Ok(())).await?;
    let body = match axum::body::to_bytes(body, api::MAX_RECORDING_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Ok(plain_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::RecordingTooLarge,
                format!(
                    "a recording is at most {} bytes (or the upload broke off)",
                    api::MAX_RECORDING_BYTES
                ),
            ))
        }
    };
    as_bastion(auth, &headers, move |a, b| {
        a.seal_recording(
            &caller(addr),
            &b,
            &session_id,
            digest.as_deref(),
            &body,
            from_header || from_query,
        )
    })
    .await
    .map(|r| Json(r).into_response())
}

/// Query of `GET /v1/admin/sessions`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsQuery {
    user: Option<String>,
    target: Option<String>,
    session: Option<String>,
    limit: Option<usize>,
}

async fn list_sessions(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<SessionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::SessionList>, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    if q.limit
        .is_some_and(|l| l == 0 || l > sessions::SESSIONS_MAX_LIMIT)
    {
        return Err(ApiError(CaError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit is 1 to {}", sessions::SESSIONS_MAX_LIMIT),
        )));
    }
    let filter = SessionFilter {
        user: q.user,
        target: q.target,
        session: q.session,
        limit: q.limit,
    };
    as_admin(
        auth,
        &headers,
        caller(addr),
        "list_sessions",
        move |a, _| a.list_sessions(&filter),
    )
    .await
    .map(Json)
}

async fn session_recording(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    UrlPath(session_id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = caller(addr);
    let rec = as_admin(auth, &headers, who, "session_recording", move |a, s| {
        a.session_recording(&who, &s, &session_id)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (
                header::HeaderName::from_static(api::RECORDING_SHA256_HEADER),
                rec.sha256,
            ),
        ],
        rec.bytes,
    )
        .into_response())
}
