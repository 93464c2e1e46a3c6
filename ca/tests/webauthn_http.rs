//! The WebAuthn routes over real HTTP (the CA's router on a loopback port): the
//! page and its security headers, the page API a browser script uses, the
//! long-poll `WAIT` waking as soon as the page answers, the CTAP2 `FINISH`, keys
//! with a bearer session, and the clear pages for unknown requests.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_api as api;
use rampart_api::webauthn as wapi;
use rampart_ca::authority::Authority;
use rampart_ca::config::Limits;
use rampart_ca::webauthn::{RawWebauthn, RelyingParty};
use reqwest::Url;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_core::proto::{CreationChallengeResponse, RequestChallengeResponse};

const POLICY: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{user}"]
min_factor = "otp"

[groups]
engineers = ["dev"]
"#;

const ORIGIN: &str = "https://localhost:8443";

struct Server {
    _dir: tempfile::TempDir,
    auth: Arc<Authority>,
    base: String,
    http: reqwest::Client,
}

async fn server() -> Server {
    let t = common::authority(POLICY, Limits::default(), None);
    let settings =
        rampart_ca::webauthn::validate(&RawWebauthn::default(), "127.0.0.1:8443".parse().unwrap())
            .unwrap();
    // The authority moves into an Arc; the server keeps the temp dir alive.
    let common::TestAuthority {
        dir, clock, auth, ..
    } = t;
    // The manual clock stays at its start, so no request expires during the test.
    drop(clock);
    auth.set_webauthn(RelyingParty::new(settings).unwrap());
    let auth = Arc::new(auth);
    let app = rampart_ca::http::router(Arc::clone(&auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        _dir: dir,
        auth,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    }
}

impl Server {
    fn invite(&self, user: &str) -> api::WireSecret {
        self.auth
            .create_user(
                None,
                None,
                &api::CreateUserRequest {
                    name: user.into(),
                    groups: vec!["engineers".into()],
                    admin: false,
                },
            )
            .unwrap();
        self.auth
            .create_invite(
                None,
                None,
                &api::InviteRequest {
                    user: user.into(),
                    ttl_seconds: None,
                },
            )
            .unwrap()
            .code
    }

    async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Invite `user` and start enrolling a key named `blue` from that invite, as
    /// the waiting CLI does (`REGISTER_START`, not direct).
    async fn start_enrolment(&self, user: &str) -> wapi::CeremonyStarted {
        self.post(
            wapi::REGISTER_START,
            &wapi::RegisterStartRequest {
                invite: Some(self.invite(user)),
                name: "blue".into(),
                direct: false,
                replaces: None,
            },
        )
        .await
        .json()
        .await
        .unwrap()
    }

    /// The page path of a CA URL (`https://localhost:8443/webauthn/r/…`).
    fn page_path(url: &str) -> String {
        Url::parse(url).unwrap().path().to_owned()
    }
}

fn check_page_headers(r: &reqwest::Response) {
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_on_the_page_wakes_the_waiting_cli_then_ctap2_login_and_keys() {
    let s = server().await;
    let started = s.start_enrolment("alice").await;
    let page_path = Server::page_path(&started.url);
    assert_eq!(page_path, format!("/webauthn/r/{}", started.request_id));

    // The page shows the user and asks for the code; it never shows it (the
    // user types what their own terminal shows).
    let page = s
        .http
        .get(format!("{}{page_path}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    check_page_headers(&page);
    let html = page.text().await.unwrap();
    assert!(!html.contains(&started.short_code), "{html}");
    assert!(html.contains("id=\"code\""), "{html}");
    assert!(html.contains("alice"));
    assert!(html.contains("/webauthn/static/page.js"));
    assert!(!html.contains("<script>"), "no inline script");

    // The CLI waits...
    let wait_req = wapi::WaitRequest {
        request_id: started.request_id.clone(),
        poll_token: started.poll_token.clone(),
    };
    let http = s.http.clone();
    let wait_url = format!("{}{}", s.base, wapi::WAIT);
    let waited = Instant::now();
    let waiter = tokio::spawn(async move {
        http.post(wait_url)
            .json(&wait_req)
            .send()
            .await
            .unwrap()
            .json::<wapi::CeremonyOutcome>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // ...while the browser answers.
    // The options need the code: a GET, or a wrong code, gets none.
    let no_get = s
        .http
        .get(format!("{}{page_path}/options", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_get.status(), 405);
    let wrong = s
        .http
        .post(format!("{}{page_path}/options", s.base))
        .json(&serde_json::json!({ "code": "ZZZZ-ZZZZ" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let options = s
        .http
        .post(format!("{}{page_path}/options", s.base))
        .json(&serde_json::json!({ "code": started.short_code }))
        .send()
        .await
        .unwrap();
    check_page_headers(&options);
    let ccr: CreationChallengeResponse = options.json().await.unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        let mut t = SoftToken::new(false).unwrap().0;
        let reg = t.do_registration(Url::parse(ORIGIN).unwrap(), ccr).unwrap();
        (t.to_cbor().unwrap(), serde_json::to_value(reg).unwrap())
    })
    .await
    .unwrap();
    let (token_state, credential) = answer;

    // Not JSON: refused before anything is looked at.
    let form = s
        .http
        .post(format!("{}{page_path}/answer", s.base))
        .body(serde_json::json!({ "credential": credential }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);

    let ok = s
        .post(
            &format!("{page_path}/answer"),
            &serde_json::json!({ "credential": credential }),
        )
        .await;
    check_page_headers(&ok);
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["result"], "registered");
    assert!(
        body.get("recovery_codes").is_none(),
        "secrets stay off the page"
    );

    let outcome = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("WAIT woke up")
        .unwrap();
    assert!(
        waited.elapsed() < Duration::from_secs(wapi::WAIT_HOLD_SECS),
        "the long-poll answered when the page did, not at the end of its hold"
    );
    let key = match outcome {
        wapi::CeremonyOutcome::Registered {
            user,
            key,
            recovery_codes,
        } => {
            assert_eq!(user, "alice");
            assert_eq!(recovery_codes.len(), 10);
            key
        }
        other => panic!("{other:?}"),
    };

    // A second answer is a replay.
    let again = s
        .post(
            &format!("{page_path}/answer"),
            &serde_json::json!({ "credential": credential }),
        )
        .await;
    assert_eq!(again.status(), 401);
    let err: api::ErrorBody = again.json().await.unwrap();
    assert_eq!(err.code, "webauthn_replayed");

    // The page of a finished request says so; an unknown one says it is unknown.
    let finished = s
        .http
        .get(format!("{}{page_path}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 409);
    check_page_headers(&finished);
    assert!(finished.text().await.unwrap().contains("already answered"));

    // CTAP2 login: start with direct, FINISH with the key's assertion.
    let started: wapi::CeremonyStarted = s
        .post(
            wapi::LOGIN_START,
            &wapi::LoginStartRequest {
                user: "alice".into(),
                direct: true,
            },
        )
        .await
        .json()
        .await
        .unwrap();
    let rcr: RequestChallengeResponse =
        serde_json::from_value(started.public_key.clone().unwrap()).unwrap();
    let assertion = tokio::task::spawn_blocking(move || {
        let mut t = SoftToken::from_cbor(&token_state).unwrap();
        let a = t
            .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
            .unwrap();
        serde_json::to_value(a).unwrap()
    })
    .await
    .unwrap();
    let finish = s
        .post(
            wapi::FINISH,
            &wapi::FinishRequest {
                request_id: started.request_id.clone(),
                poll_token: started.poll_token.clone(),
                credential: assertion,
            },
        )
        .await;
    assert_eq!(finish.status(), 200);
    let login = match finish.json::<wapi::CeremonyOutcome>().await.unwrap() {
        wapi::CeremonyOutcome::LoggedIn { login } => login,
        other => panic!("{other:?}"),
    };
    assert_eq!(login.mfa_method, "webauthn");

    // The session lists its keys.
    let keys: Vec<wapi::WebauthnKey> = s
        .http
        .get(format!("{}{}", s.base, wapi::KEYS))
        .bearer_auth(login.session_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, key.id);
    // Without a session: refused.
    let anon = s
        .http
        .get(format!("{}{}", s.base, wapi::KEYS))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pages_static_files_and_deny() {
    let s = server().await;
    let unknown = s
        .http
        .get(format!("{}/webauthn/r/nope", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    check_page_headers(&unknown);
    let js = s
        .http
        .get(format!("{}/webauthn/static/page.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().await.unwrap().contains("PublicKeyCredential"));

    // Deny from the page: the waiting CLI is refused with webauthn_denied.
    let started = s.start_enrolment("bob").await;
    let page_path = Server::page_path(&started.url);
    let denied = s
        .post(&format!("{page_path}/deny"), &serde_json::json!({}))
        .await;
    assert_eq!(denied.status(), 200);
    let wait = s
        .post(
            wapi::WAIT,
            &wapi::WaitRequest {
                request_id: started.request_id.clone(),
                poll_token: started.poll_token.clone(),
            },
        )
        .await;
    assert_eq!(wait.status(), 403);
    let err: api::ErrorBody = wait.json().await.unwrap();
    assert_eq!(err.code, "webauthn_denied");
}
