//! Driving the CA through its HTTPS API directly (no CLI), for tests about the CA
//! itself: bad input, crash safety.

use rampart_api::{
    paths, Client, CreateUserRequest, EnrollFinishRequest, EnrollFinishResponse,
    EnrollStartRequest, EnrollStartResponse, FactorProof, InviteRequest, InviteResponse,
    LoginRequest, LoginResponse, User,
};

use crate::totp::Totp;
use crate::Ca;

/// A user enrolled through the API.
#[derive(Debug)]
pub struct ApiUser {
    /// User name.
    pub name: String,
    /// Their authenticator.
    pub totp: Totp,
    /// Their recovery codes.
    pub recovery_codes: Vec<String>,
}

impl ApiUser {
    /// `POST /v1/enroll/start` + `/v1/enroll/finish` with `invite`.
    pub fn enroll(ca: &Ca, invite: &str) -> ApiUser {
        let api = ca.api();
        let start: EnrollStartResponse = api
            .post_json(
                paths::ENROLL_START,
                &EnrollStartRequest {
                    invite: invite.into(),
                },
            )
            .unwrap_or_else(|e| panic!("enroll/start: {e}"));
        assert!(
            start.totp_uri.expose().starts_with("otpauth://totp/"),
            "{:?}",
            start.totp_uri.expose()
        );
        let mut totp = Totp::from_uri(start.totp_uri.expose());
        let fin: EnrollFinishResponse = api
            .post_json(
                paths::ENROLL_FINISH,
                &EnrollFinishRequest {
                    enrollment_token: start.enrollment_token,
                    totp_code: totp.fresh_code().into(),
                },
            )
            .unwrap_or_else(|e| panic!("enroll/finish: {e}"));
        ApiUser {
            name: start.user,
            totp,
            recovery_codes: fin
                .recovery_codes
                .iter()
                .map(|code| code.expose().to_owned())
                .collect(),
        }
    }

    /// `POST /v1/login` with a fresh TOTP code; returns the session and a client
    /// carrying its bearer token.
    pub fn login(&mut self, ca: &Ca) -> Session {
        let resp: LoginResponse = ca
            .api()
            .post_json(
                paths::LOGIN,
                &LoginRequest {
                    user: self.name.clone(),
                    factor: FactorProof::Totp {
                        code: self.totp.fresh_code().into(),
                    },
                },
            )
            .unwrap_or_else(|e| panic!("login as {}: {e}", self.name));
        let client = ca.api().with_token(resp.session_token.clone());
        Session {
            login: resp,
            client,
        }
    }
}

/// A logged-in API session.
#[derive(Debug, Clone)]
pub struct Session {
    /// What `/v1/login` answered.
    pub login: LoginResponse,
    /// A client sending the session's bearer token.
    pub client: Client,
}

impl Session {
    /// The bearer token.
    pub fn token(&self) -> &str {
        self.login.session_token.expose()
    }
}

/// Enrol and log in the bootstrap admin through the API; returns them and their
/// admin session.
pub fn api_admin(ca: &Ca) -> (ApiUser, Session) {
    let mut admin = ApiUser::enroll(ca, &ca.info().admin_invite);
    let session = admin.login(ca);
    assert!(session.login.admin, "the bootstrap user must be an admin");
    (admin, session)
}

/// As admin: create `name` in `groups`, invite and enrol them through the API.
pub fn api_onboard(ca: &Ca, admin: &Client, name: &str, groups: &[&str]) -> ApiUser {
    let _: User = admin
        .post_json(
            paths::ADMIN_USERS,
            &CreateUserRequest {
                name: name.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                admin: false,
            },
        )
        .unwrap_or_else(|e| panic!("create user {name}: {e}"));
    let inv: InviteResponse = admin
        .post_json(
            paths::ADMIN_INVITES,
            &InviteRequest {
                user: name.to_owned(),
                ttl_seconds: None,
            },
        )
        .unwrap_or_else(|e| panic!("invite {name}: {e}"));
    ApiUser::enroll(ca, inv.code.expose())
}
