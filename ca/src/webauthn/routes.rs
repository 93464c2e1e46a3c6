//! HTTP routes of the hardware-key factor: the JSON API of
//! `rampart_api::webauthn` and the browser pages under
//! [`PAGE_PREFIX`](rampart_api::webauthn::PAGE_PREFIX). Thin, like the rest of
//! `crate::http`: parse, run the authority on a blocking thread, answer.
//!
//! Long-polls (`WAIT`, `approvals/wait`) never block a thread while they wait:
//! the authority answers at once with a `watch` receiver, and the handler awaits
//! a change (or the hold time, or the request's end) on the async runtime.

use rampart_api::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rampart_api::webauthn as wapi;
use serde::Deserialize;

use super::pages;
use crate::authority::webauthn::WaitState;
use crate::authority::{Authority, Caller};
use crate::error::CaError;
use crate::http::{
    as_bastion, bad_query, blocking, caller, with_session, ApiError, ApiJson, ApiPath,
};

type Shared = State<Arc<Authority>>;

/// The routes, to merge into the API router.
pub fn routes() -> Router<Arc<Authority>> {
    let p = wapi::PAGE_PREFIX;
    Router::new()
        .route(wapi::REGISTER_START, post(register_start))
        .route(wapi::LOGIN_START, post(login_start))
        .route(wapi::WAIT, post(wait))
        .route(wapi::FINISH, post(finish))
        .route(wapi::KEYS, get(list_keys))
        .route(wapi::KEY_REMOVE, post(remove_key))
        .route(wapi::BASTION_APPROVAL_START, post(approval_start))
        .route(wapi::BASTION_APPROVAL_WAIT, post(approval_wait))
        .route(&format!("{p}/r/{{request_id}}"), get(page))
        .route(&format!("{p}/r/{{request_id}}/options"), post(page_options))
        .route(&format!("{p}/r/{{request_id}}/answer"), post(page_answer))
        .route(&format!("{p}/r/{{request_id}}/deny"), post(page_deny))
        .route(
            &format!("{p}/static/page.js"),
            get(|| async { pages::script() }),
        )
        .route(
            &format!("{p}/static/page.css"),
            get(|| async { pages::stylesheet() }),
        )
}

async fn register_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wapi::RegisterStartRequest>,
) -> Result<Json<wapi::CeremonyStarted>, ApiError> {
    let who = caller(addr);
    if req.invite.is_some() {
        blocking(auth, move |a| a.webauthn_register_start(&who, None, &req))
            .await
            .map(Json)
    } else {
        with_session(auth, &headers, move |a, s| {
            a.webauthn_register_start(&who, Some(&s), &req)
        })
        .await
        .map(Json)
    }
}

async fn login_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<wapi::LoginStartRequest>,
) -> Result<Json<wapi::CeremonyStarted>, ApiError> {
    blocking(auth, move |a| a.webauthn_login_start(&caller(addr), &req))
        .await
        .map(Json)
}

async fn finish(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<wapi::FinishRequest>,
) -> Result<Json<wapi::CeremonyOutcome>, ApiError> {
    blocking(auth, move |a| a.webauthn_finish(&caller(addr), &req))
        .await
        .map(Json)
}

async fn wait(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<wapi::WaitRequest>,
) -> Result<Json<wapi::CeremonyOutcome>, ApiError> {
    long_poll(auth, caller(addr), req, None).await.map(Json)
}

async fn approval_wait(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wapi::WaitRequest>,
) -> Result<Json<wapi::CeremonyOutcome>, ApiError> {
    // Who is asking is settled once, before the hold.
    let bastion = as_bastion(Arc::clone(&auth), &headers, |_, b| Ok(b.record.name)).await?;
    long_poll(auth, caller(addr), req, Some(bastion))
        .await
        .map(Json)
}

/// Hold a wait until the request changes, [`wapi::WAIT_HOLD_SECS`] pass, or the
/// request ends; then answer what it is.
async fn long_poll(
    auth: Arc<Authority>,
    who: Caller,
    req: wapi::WaitRequest,
    bastion: Option<String>,
) -> Result<wapi::CeremonyOutcome, ApiError> {
    let hold_until = tokio::time::Instant::now() + Duration::from_secs(wapi::WAIT_HOLD_SECS);
    loop {
        let r = req.clone();
        let b = bastion.clone();
        let state = blocking(Arc::clone(&auth), move |a| {
            a.webauthn_poll(&who, &r, b.as_deref())
        })
        .await?;
        let (expires_at, mut changed) = match state {
            WaitState::Ready(outcome) => return Ok(outcome),
            WaitState::Pending {
                expires_at,
                changed,
            } => (expires_at, changed),
        };
        let left = hold_until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(wapi::CeremonyOutcome::Pending { expires_at });
        }
        // Wake at the request's end too, so an unanswered request is refused
        // as expired rather than reported pending forever.
        let to_end = (expires_at - auth.now()).to_std().unwrap_or(Duration::ZERO)
            + Duration::from_millis(50);
        // Look at the store again now and then too: an answer that reached
        // another CA wakes nobody here.
        let hold = left
            .min(to_end)
            .min(crate::webauthn::WAIT_RECHECK)
            .max(Duration::from_millis(50));
        match tokio::time::timeout(hold, changed.changed()).await {
            // Changed, or the request went away: look again.
            Ok(_) => {}
            Err(_) if hold >= left => {
                return Ok(wapi::CeremonyOutcome::Pending { expires_at });
            }
            Err(_) => {}
        }
    }
}

async fn list_keys(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<wapi::KeysQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<wapi::WebauthnKey>>, ApiError> {
    let who = caller(addr);
    // The query is read once the caller is known.
    with_session(auth, &headers, move |a, s| {
        let Query(q) = query.map_err(bad_query)?;
        a.webauthn_list_keys(&who, &s, q.user.as_deref())
    })
    .await
    .map(Json)
}

async fn remove_key(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wapi::KeyRemoveRequest>,
) -> Result<Json<wapi::WebauthnKey>, ApiError> {
    let who = caller(addr);
    with_session(auth, &headers, move |a, s| {
        a.webauthn_remove_key(&who, &s, &req)
    })
    .await
    .map(Json)
}

async fn approval_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<wapi::BastionApprovalStartRequest>,
) -> Result<Json<wapi::CeremonyStarted>, ApiError> {
    as_bastion(auth, &headers, move |a, b| {
        a.webauthn_approval_start(&caller(addr), &b, &req)
    })
    .await
    .map(Json)
}

// ----- pages ---------------------------------------------------------------------

/// A page-API error: the usual JSON error, with the page headers.
fn page_error(e: ApiError) -> Response {
    pages::secure(e.into_response())
}

/// Page POSTs must be JSON: a cross-site form cannot send that without a CORS
/// preflight, which this CA never grants.
fn require_json(headers: &HeaderMap) -> Option<Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    (!json).then(|| {
        page_error(ApiError(CaError::bad_request(
            ErrorCode::ContentType,
            "send the answer as application/json",
        )))
    })
}

async fn page(
    State(auth): Shared,
    request_id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    // A link that does not decode is as unknown as one that names nothing.
    let Ok(UrlPath(request_id)) = request_id else {
        return unknown_page();
    };
    if request_id.len() > 128 {
        return unknown_page();
    }
    let id = request_id.clone();
    match blocking(auth, move |a| a.webauthn_page(&id)).await {
        Ok(Some(view)) => pages::request_page(&request_id, &view),
        Ok(None) => unknown_page(),
        Err(e) => {
            tracing::warn!(error = %e.0, "webauthn page");
            pages::notice(
                StatusCode::SERVICE_UNAVAILABLE,
                "error",
                "The CA cannot show this request",
                "Try again in a minute; if it persists, tell your administrator.",
            )
        }
    }
}

fn unknown_page() -> Response {
    pages::notice(
        StatusCode::NOT_FOUND,
        "unknown",
        "This link is not valid",
        "It may have expired or been mistyped. Nothing was approved. Start again in your terminal.",
    )
}

/// Body of `POST {PAGE_PREFIX}/r/{id}/options`: the code the user's terminal
/// shows, typed on the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageOptions {
    code: String,
}

async fn page_options(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request_id: Result<ApiPath<String>, Response>,
    headers: HeaderMap,
    body: Result<ApiJson<PageOptions>, Response>,
) -> Response {
    if let Some(r) = require_json(&headers) {
        return r;
    }
    let ApiPath(request_id) = match request_id {
        Ok(p) => p,
        Err(r) => return pages::secure(r),
    };
    let ApiJson(typed) = match body {
        Ok(b) => b,
        Err(r) => return pages::secure(r),
    };
    let who = caller(addr);
    match blocking(auth, move |a| {
        a.webauthn_page_options(&who, &request_id, &typed.code)
    })
    .await
    {
        Ok(v) => pages::secure(Json(v).into_response()),
        Err(e) => page_error(e),
    }
}

/// Body of `POST {PAGE_PREFIX}/r/{id}/answer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageAnswer {
    credential: serde_json::Value,
}

async fn page_answer(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request_id: Result<ApiPath<String>, Response>,
    headers: HeaderMap,
    body: Result<ApiJson<PageAnswer>, Response>,
) -> Response {
    if let Some(r) = require_json(&headers) {
        return r;
    }
    let ApiPath(request_id) = match request_id {
        Ok(p) => p,
        Err(r) => return pages::secure(r),
    };
    let ApiJson(answer) = match body {
        Ok(b) => b,
        Err(r) => return pages::secure(r),
    };
    let who = caller(addr);
    match blocking(auth, move |a| {
        a.webauthn_page_answer(&who, &request_id, &answer.credential)
    })
    .await
    {
        Ok(result) => pages::secure(Json(serde_json::json!({ "result": result })).into_response()),
        Err(e) => page_error(e),
    }
}

async fn page_deny(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request_id: Result<ApiPath<String>, Response>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = require_json(&headers) {
        return r;
    }
    let ApiPath(request_id) = match request_id {
        Ok(p) => p,
        Err(r) => return pages::secure(r),
    };
    let who = caller(addr);
    match blocking(auth, move |a| a.webauthn_page_deny(&who, &request_id)).await {
        Ok(()) => pages::secure(Json(serde_json::json!({ "result": "denied" })).into_response()),
        Err(e) => page_error(e),
    }
}
