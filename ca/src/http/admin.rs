//! The admin endpoints (an admin session, see `Authority::require_admin`):
//! users, groups, identity-provider links, invites, revocation, host
//! certificates.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use rampart_api as api;

use super::{as_admin, caller, ApiError, ApiJson, Shared};

pub(super) async fn list_users(
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

pub(super) async fn create_user(
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

pub(super) async fn set_user_state(
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

pub(super) async fn set_user_groups(
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

pub(super) async fn link_idp_subject(
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

pub(super) async fn create_invite(
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

pub(super) async fn revoke(
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

pub(super) async fn host_cert(
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

pub(super) async fn create_host_token(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::HostTokenRequest>,
) -> Result<Json<api::HostTokenResponse>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "host_token", move |a, s| {
        a.create_host_token(&who, &s, &req)
    })
    .await
    .map(Json)
}

pub(super) async fn list_host_tokens(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<api::HostTokenList>, ApiError> {
    as_admin(auth, &headers, caller(addr), "list_host_tokens", |a, _| {
        a.list_host_tokens()
    })
    .await
    .map(Json)
}

pub(super) async fn revoke_host_token(
    State(auth): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<api::HostTokenRevokeRequest>,
) -> Result<Json<api::HostTokenInfo>, ApiError> {
    let who = caller(addr);
    as_admin(auth, &headers, who, "revoke_host_token", move |a, s| {
        a.revoke_host_token(&who, &s, &req)
    })
    .await
    .map(Json)
}
