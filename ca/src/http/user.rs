//! The endpoints anyone or a logged-in user calls: the CA keys and the KRL,
//! enrolment, login (codes and OIDC), certificates, who am I, the hosts and
//! targets a user reaches, logout.

use rampart_api::ErrorCode;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rampart_api as api;

use super::{bearer, blocking, caller, with_session, ApiError, ApiJson, Shared};
use crate::error::CaError;

fn text(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body + "\n",
    )
        .into_response()
}

pub(super) async fn user_ca(State(auth): Shared) -> Response {
    text(auth.user_ca_keys())
}

/// `GET /v1/ca/user.pub.sig`: the signing user CA key's SSHSIG over exactly
/// what `GET /v1/ca/user.pub` serves.
pub(super) async fn user_ca_sig(State(auth): Shared) -> Result<Response, ApiError> {
    let sig = blocking(auth, |a| a.user_ca_keys_signature()).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], sig).into_response())
}

pub(super) async fn host_ca(State(auth): Shared) -> Response {
    text(auth.host_ca_keys())
}

/// `POST /v1/hosts/renew`: a host renews its certificate with the one it holds.
pub(super) async fn host_renew(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::HostRenewRequest>,
) -> Result<Json<api::CertResponse>, ApiError> {
    blocking(auth, move |a| a.renew_host_cert(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/hosts/join`: a host redeems a join token for its first certificate.
pub(super) async fn host_join(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::HostJoinRequest>,
) -> Result<Json<api::CertResponse>, ApiError> {
    blocking(auth, move |a| a.host_join(&caller(addr), &req))
        .await
        .map(Json)
}

/// `GET /v1/krl`: the KRL bytes, with their version in a header.
pub(super) async fn krl(State(auth): Shared) -> Result<Response, ApiError> {
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
pub(super) async fn krl_sig(State(auth): Shared) -> Result<Response, ApiError> {
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

pub(super) async fn enroll_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::EnrollStartRequest>,
) -> Result<Json<api::EnrollStartResponse>, ApiError> {
    blocking(auth, move |a| a.enroll_start(&caller(addr), &req))
        .await
        .map(Json)
}

pub(super) async fn enroll_finish(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::EnrollFinishRequest>,
) -> Result<Json<api::EnrollFinishResponse>, ApiError> {
    blocking(auth, move |a| a.enroll_finish(&caller(addr), &req))
        .await
        .map(Json)
}

pub(super) async fn login(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::LoginRequest>,
) -> Result<Json<api::LoginResponse>, ApiError> {
    blocking(auth, move |a| a.login(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/start`.
pub(super) async fn oidc_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcStartRequest>,
) -> Result<Json<api::oidc::OidcStartResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_start(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/finish`.
pub(super) async fn oidc_finish(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcFinishRequest>,
) -> Result<Json<api::oidc::OidcFinishResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_finish(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/device/start`.
pub(super) async fn oidc_device_start(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcDeviceStartRequest>,
) -> Result<Json<api::oidc::OidcDeviceStartResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_device_start(&caller(addr), &req))
        .await
        .map(Json)
}

/// `POST /v1/oidc/device/poll`.
pub(super) async fn oidc_pending(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcPendingRequest>,
) -> Result<Json<api::oidc::OidcPendingResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_pending(&caller(addr), &req))
        .await
        .map(Json)
}

pub(super) async fn oidc_device_poll(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<api::oidc::OidcDevicePollRequest>,
) -> Result<Json<api::oidc::OidcDevicePollResponse>, ApiError> {
    blocking(auth, move |a| a.oidc_device_poll(&caller(addr), &req))
        .await
        .map(Json)
}

pub(super) async fn issue_cert(
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

pub(super) async fn whoami(
    State(auth): Shared,
    headers: HeaderMap,
) -> Result<Json<api::WhoAmI>, ApiError> {
    with_session(auth, &headers, |a, s| Ok(a.whoami(&s)))
        .await
        .map(Json)
}

pub(super) async fn ssh_hosts(
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
pub(super) async fn targets(
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

pub(super) async fn logout(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers)?;
    blocking(auth, move |a| a.logout(&caller(addr), &token)).await?;
    Ok(StatusCode::NO_CONTENT)
}
