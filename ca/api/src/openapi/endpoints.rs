//! The table of operations: one row per method and path, with who may call
//! it and the types of its parameters, body and answer.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use super::{any_object, json, json_list, Body, Caller, Endpoint, Method};
use crate::{oidc, paths, webauthn as wapi};

fn no_params() -> Vec<Parameter> {
    Vec::new()
}

fn query<P: IntoParams>() -> Vec<Parameter> {
    P::into_params(|| Some(ParameterIn::Query))
}

fn session_id() -> Parameter {
    ParameterBuilder::new()
        .name("session_id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The session ID (ULID)."))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn recording_upload_params() -> Vec<Parameter> {
    let header = |name: &str, doc: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(doc))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let mut params = vec![
        session_id(),
        header(
            crate::RECORDING_SHA256_HEADER,
            "Lowercase hex SHA-256 of the body; the CA refuses a body that does not match.",
        ),
        header(
            crate::RECORDING_ABNORMAL_END_HEADER,
            "`1` or `true` when the session did not end cleanly.",
        ),
    ];
    params.extend(query::<crate::RecordingUploadQuery>());
    params
}

fn session_id_only() -> Vec<Parameter> {
    vec![session_id()]
}

/// Every endpoint of the API, in path order.
pub fn endpoints() -> Vec<Endpoint> {
    use Caller::*;
    use Method::*;
    let op = |method, path: &'static str, caller, request, response| Endpoint {
        method,
        path,
        caller,
        status: 200,
        params: no_params,
        request,
        response,
        response_header: None,
    };
    let created = |e: Endpoint| Endpoint { status: 201, ..e };
    let with_query = |e: Endpoint, params: fn() -> Vec<Parameter>| Endpoint { params, ..e };
    let text = Body::Text("text/plain; charset=utf-8");
    let krl_version = Some((
        crate::KRL_VERSION_HEADER,
        "The `krl_version` of the KRL served (decimal).",
    ));
    let mut all = vec![
        op(
            Get,
            paths::HEALTH,
            Anyone,
            Body::Empty,
            json::<crate::Health>(),
        ),
        op(
            Get,
            paths::OPENAPI,
            Anyone,
            Body::Empty,
            Body::Json(any_object),
        ),
        op(Get, paths::USER_CA_PUB, Anyone, Body::Empty, text),
        op(Get, paths::USER_CA_PUB_SIG, Anyone, Body::Empty, text),
        op(Get, paths::HOST_CA_PUB, Anyone, Body::Empty, text),
        Endpoint {
            response_header: krl_version,
            ..op(
                Get,
                paths::KRL,
                Anyone,
                Body::Empty,
                Body::Bytes(&["application/octet-stream"]),
            )
        },
        Endpoint {
            response_header: krl_version,
            ..op(Get, paths::KRL_SIG, Anyone, Body::Empty, text)
        },
        op(
            Post,
            paths::ENROLL_START,
            Anyone,
            json::<crate::EnrollStartRequest>(),
            json::<crate::EnrollStartResponse>(),
        ),
        op(
            Post,
            paths::ENROLL_FINISH,
            Anyone,
            json::<crate::EnrollFinishRequest>(),
            json::<crate::EnrollFinishResponse>(),
        ),
        op(
            Post,
            paths::LOGIN,
            Anyone,
            json::<crate::LoginRequest>(),
            json::<crate::LoginResponse>(),
        ),
        op(
            Post,
            paths::CERTS,
            Session,
            json::<crate::AttestedCertRequest>(),
            json::<crate::CertResponse>(),
        ),
        op(
            Get,
            paths::WHOAMI,
            Session,
            Body::Empty,
            json::<crate::WhoAmI>(),
        ),
        op(
            Get,
            paths::SSH_HOSTS,
            Session,
            Body::Empty,
            json::<crate::SshHosts>(),
        ),
        op(
            Get,
            paths::TARGETS,
            Session,
            Body::Empty,
            json::<crate::Targets>(),
        ),
        Endpoint {
            status: 204,
            ..op(Post, paths::LOGOUT, Session, Body::Empty, Body::Empty)
        },
        op(
            Get,
            paths::ADMIN_USERS,
            Admin,
            Body::Empty,
            json_list::<crate::User>(),
        ),
        created(op(
            Post,
            paths::ADMIN_USERS,
            Admin,
            json::<crate::CreateUserRequest>(),
            json::<crate::User>(),
        )),
        op(
            Post,
            paths::ADMIN_USER_STATE,
            Admin,
            json::<crate::SetUserStateRequest>(),
            json::<crate::User>(),
        ),
        op(
            Post,
            paths::ADMIN_USER_GROUPS,
            Admin,
            json::<crate::SetGroupsRequest>(),
            json::<crate::User>(),
        ),
        op(
            Post,
            paths::ADMIN_USER_IDP_LINK,
            Admin,
            json::<crate::IdpLinkRequest>(),
            json::<crate::IdpLinkResponse>(),
        ),
        created(op(
            Post,
            paths::ADMIN_INVITES,
            Admin,
            json::<crate::InviteRequest>(),
            json::<crate::InviteResponse>(),
        )),
        op(
            Post,
            paths::ADMIN_REVOKE,
            Admin,
            json::<crate::RevokeRequest>(),
            json::<crate::RevokeResponse>(),
        ),
        op(
            Post,
            paths::ADMIN_HOST_CERTS,
            Admin,
            json::<crate::HostCertRequest>(),
            json::<crate::CertResponse>(),
        ),
        op(
            Post,
            paths::HOST_RENEW,
            Anyone,
            json::<crate::HostRenewRequest>(),
            json::<crate::CertResponse>(),
        ),
        op(
            Post,
            paths::ADMIN_HOST_TOKENS,
            Admin,
            json::<crate::HostTokenRequest>(),
            json::<crate::HostTokenResponse>(),
        ),
        op(
            Get,
            paths::ADMIN_HOST_TOKENS,
            Admin,
            Body::Empty,
            json::<crate::HostTokenList>(),
        ),
        op(
            Post,
            paths::ADMIN_HOST_TOKENS_REVOKE,
            Admin,
            json::<crate::HostTokenRevokeRequest>(),
            json::<crate::HostTokenInfo>(),
        ),
        op(
            Post,
            paths::HOST_JOIN,
            Anyone,
            json::<crate::HostJoinRequest>(),
            json::<crate::CertResponse>(),
        ),
        created(op(
            Post,
            paths::ADMIN_BASTION_TOKENS,
            Admin,
            json::<crate::BastionTokenRequest>(),
            json::<crate::BastionTokenResponse>(),
        )),
        op(
            Post,
            paths::ADMIN_BASTION_REVOKE,
            Admin,
            json::<crate::BastionRevokeRequest>(),
            json::<crate::BastionRevokeResponse>(),
        ),
        created(op(
            Post,
            paths::BASTION_JOIN,
            Anyone,
            json::<crate::BastionJoinRequest>(),
            json::<crate::BastionJoinResponse>(),
        )),
        op(
            Post,
            paths::BASTION_HOST_CERT,
            Bastion,
            json::<crate::BastionHostCertRequest>(),
            json::<crate::CertResponse>(),
        ),
        op(
            Post,
            paths::BASTION_SESSION_CERT,
            Bastion,
            json::<crate::SessionCertRequest>(),
            json::<crate::SessionCertResponse>(),
        ),
        with_query(
            op(
                Get,
                paths::BASTION_REVOCATIONS,
                Bastion,
                Body::Empty,
                json::<crate::BastionRevocations>(),
            ),
            query::<crate::RevocationsQuery>,
        ),
        op(
            Post,
            paths::BASTION_EVENTS,
            Bastion,
            json::<crate::BastionEventBatch>(),
            json::<crate::BastionEventAck>(),
        ),
        Endpoint {
            params: recording_upload_params,
            ..op(
                Put,
                paths::BASTION_RECORDING,
                Bastion,
                // The bastion says `application/zstd`; the CA reads any type.
                Body::Bytes(&["application/zstd", "application/octet-stream"]),
                json::<crate::RecordingSealed>(),
            )
        },
        with_query(
            op(
                Get,
                paths::ADMIN_SESSIONS,
                Admin,
                Body::Empty,
                json::<crate::SessionList>(),
            ),
            query::<crate::SessionsQuery>,
        ),
        Endpoint {
            params: session_id_only,
            ..op(
                Get,
                paths::ADMIN_SESSION_RECORDING,
                Admin,
                Body::Empty,
                Body::Bytes(&["application/zstd"]),
            )
        },
        op(
            Post,
            oidc::START,
            Anyone,
            json::<oidc::OidcStartRequest>(),
            json::<oidc::OidcStartResponse>(),
        ),
        op(
            Post,
            oidc::FINISH,
            Anyone,
            json::<oidc::OidcFinishRequest>(),
            json::<oidc::OidcFinishResponse>(),
        ),
        op(
            Post,
            oidc::PENDING,
            Anyone,
            json::<oidc::OidcPendingRequest>(),
            json::<oidc::OidcPendingResponse>(),
        ),
        op(
            Post,
            oidc::DEVICE_START,
            Anyone,
            json::<oidc::OidcDeviceStartRequest>(),
            json::<oidc::OidcDeviceStartResponse>(),
        ),
        op(
            Post,
            oidc::DEVICE_POLL,
            Anyone,
            json::<oidc::OidcDevicePollRequest>(),
            json::<oidc::OidcDevicePollResponse>(),
        ),
        op(
            Post,
            wapi::REGISTER_START,
            SessionOrInvite,
            json::<wapi::RegisterStartRequest>(),
            json::<wapi::CeremonyStarted>(),
        ),
        op(
            Post,
            wapi::LOGIN_START,
            Anyone,
            json::<wapi::LoginStartRequest>(),
            json::<wapi::CeremonyStarted>(),
        ),
        op(
            Post,
            wapi::WAIT,
            Anyone,
            json::<wapi::WaitRequest>(),
            json::<wapi::CeremonyOutcome>(),
        ),
        op(
            Post,
            wapi::FINISH,
            Anyone,
            json::<wapi::FinishRequest>(),
            json::<wapi::CeremonyOutcome>(),
        ),
        with_query(
            op(
                Get,
                wapi::KEYS,
                Session,
                Body::Empty,
                json_list::<wapi::WebauthnKey>(),
            ),
            query::<wapi::KeysQuery>,
        ),
        op(
            Post,
            wapi::KEY_REMOVE,
            Session,
            json::<wapi::KeyRemoveRequest>(),
            json::<wapi::WebauthnKey>(),
        ),
        op(
            Post,
            wapi::BASTION_APPROVAL_START,
            Bastion,
            json::<wapi::BastionApprovalStartRequest>(),
            json::<wapi::CeremonyStarted>(),
        ),
        op(
            Post,
            wapi::BASTION_APPROVAL_WAIT,
            Bastion,
            json::<wapi::WaitRequest>(),
            json::<wapi::CeremonyOutcome>(),
        ),
    ];
    all.sort_by(|a, b| {
        a.path
            .cmp(b.path)
            .then(a.method.as_str().cmp(b.method.as_str()))
    });
    all
}
