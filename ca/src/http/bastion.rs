//! The endpoints a bastion calls with its credential (join, host and
//! per-session certificates, revocations, its audit events and recordings),
//! the admin ones that manage bastions, and the admin's view of the sessions
//! they recorded (see `crate::authority::bastion` and
//! `crate::authority::sessions`).

use rampart_api::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use rampart_api as api;

use super::{
    as_admin, bad_query, bearer, blocking, caller, plain_error, ApiError, ApiJson, ApiPath, Shared,
};
use crate::authority::bastion::Bastion;
use crate::authority::sessions::{self, SessionFilter};
use crate::authority::Authority;
use crate::error::CaError;

pub(super) async fn create_bastion_token(
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

pub(super) async fn revoke_bastion(
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

pub(super) async fn bastion_join(
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

pub(super) async fn bastion_host_cert(
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

pub(super) async fn bastion_session_cert(
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

pub(super) async fn bastion_revocations(
    State(auth): Shared,
    headers: HeaderMap,
    query: Result<Query<api::RevocationsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::BastionRevocations>, ApiError> {
    as_bastion(auth, &headers, move |a, b| {
        let Query(q) = query.map_err(bad_query)?;
        a.bastion_revocations(&b, q.since_version)
    })
    .await
    .map(Json)
}

// ----- the sessions bastions recorded, and their recordings -----------------

pub(super) async fn bastion_events(
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

/// The upload itself: the bastion's credential and the query first, then the
/// body, spooled to disk, then the seal. An answer given before the upload is
/// all in leaves the rest to the router's `unread` layer.
pub(super) async fn bastion_recording(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiPath(session_id): ApiPath<String>,
    query: Result<Query<api::RecordingUploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    // Who is asking comes before anything is read from the request.
    as_bastion(Arc::clone(&auth), &headers, |_, _| Ok(())).await?;
    let Query(q) = query.map_err(|e| ApiError(bad_query(e)))?;
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
    let too_large = || {
        plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RecordingTooLarge,
            format!(
                "a recording is at most {} bytes (or the upload broke off)",
                api::MAX_RECORDING_BYTES
            ),
        )
    };
    // Spooled to disk as it arrives: a CA holds at most one frame of an
    // upload in memory, however many bastions upload at once.
    let mut spool = auth.spool_recording().map_err(ApiError)?;
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let Ok(frame) = frame else {
            return Ok(too_large());
        };
        if spool.bytes() + frame.len() as u64 > api::MAX_RECORDING_BYTES as u64 {
            return Ok(too_large());
        }
        spool.write(&frame).map_err(ApiError)?;
    }
    as_bastion(auth, &headers, move |a, b| {
        let upload = spool.finish()?;
        a.seal_recording(
            &caller(addr),
            &b,
            &session_id,
            digest.as_deref(),
            &upload,
            from_header || from_query,
        )
    })
    .await
    .map(|r| Json(r).into_response())
}

pub(super) async fn list_sessions(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<api::SessionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<api::SessionList>, ApiError> {
    // The query is read once the caller is known to be an admin.
    as_admin(
        auth,
        &headers,
        caller(addr),
        "list_sessions",
        move |a, _| {
            let Query(q) = query.map_err(bad_query)?;
            if q.limit
                .is_some_and(|l| l == 0 || l > sessions::SESSIONS_MAX_LIMIT)
            {
                return Err(CaError::bad_request(
                    ErrorCode::InvalidLimit,
                    format!("limit is 1 to {}", sessions::SESSIONS_MAX_LIMIT),
                ));
            }
            a.list_sessions(&SessionFilter {
                user: q.user,
                target: q.target,
                session: q.session,
                limit: q.limit,
            })
        },
    )
    .await
    .map(Json)
}

pub(super) async fn session_recording(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiPath(session_id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = caller(addr);
    let rec = as_admin(auth, &headers, who, "session_recording", move |a, s| {
        a.session_recording(&who, &s, &session_id)
    })
    .await?;
    // The store is read on a blocking thread, a piece at a time; the body
    // takes each piece as the client reads it.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let mut chunks = rec.chunks;
    tokio::task::spawn_blocking(move || {
        for chunk in chunks.by_ref() {
            let piece = chunk.map_err(|e| {
                tracing::error!(error = %rampart_api::report::one_line(&e),
                    "reading a recording failed mid-download");
                std::io::Error::other("the recording could not be read")
            });
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                break;
            }
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|piece| (piece, rx))
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (
                header::HeaderName::from_static(api::RECORDING_SHA256_HEADER),
                rec.sha256,
            ),
            (header::CONTENT_LENGTH, rec.bytes.to_string()),
        ],
        body,
    )
        .into_response())
}
