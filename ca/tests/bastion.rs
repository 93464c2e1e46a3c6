//! The bastion operations of the authority, driven through its public methods with
//! a manual clock, for the rules that depend on time: join-token expiry, and MFA
//! freshness taken from the user's outer certificate (and refreshed by a
//! per-session TOTP code, once per time step); bastion events, recordings and the
//! session list built from them. The HTTP surface is covered by the e2e tests
//! `tests/tests/bastion_api.rs` and `tests/tests/sessions_api.rs`.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use rampart_api as api;
use rampart_ca::authority::bastion::Bastion;
use rampart_ca::authority::{Authority, Caller};
use rampart_ca::clock::Clock;
use rampart_ca::config::Limits;
use rampart_ca::CaError;
use rampart_signer::FileCaKey;

const POLICY: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{user}"]
min_factor = "otp"
mfa_max_age = "10m"
targets = { allow = ["db-*"] }

[groups]
engineers = ["dev"]
"#;

type Fixture = common::TestAuthority;

fn fixture() -> Fixture {
    fixture_with(POLICY)
}

/// `policy` as given when it registers bastions itself; else with
/// `bastion-1` and `bastion-2` registered for every target, so that each test
/// is about its own rule (registration has its own tests).
fn fixture_with(policy: &str) -> Fixture {
    let policy = if policy.contains("[bastions.") {
        policy.to_owned()
    } else {
        format!("{policy}\n[bastions.bastion-1]\ntargets = [\"*\"]\n[bastions.bastion-2]\ntargets = [\"*\"]\n")
    };
    let mut t = common::authority(&policy, Limits::default(), None);
    t.caller = Caller {
        source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
    };
    t
}

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

impl Fixture {
    fn code(&self, totp: &totp_rs::TOTP) -> String {
        totp.generate(self.clock.now().timestamp() as u64)
    }

    /// Create, invite and enrol `name`; returns their authenticator.
    fn enrol(&self, name: &str, admin: bool) -> totp_rs::TOTP {
        self.auth
            .create_user(
                None,
                None,
                &api::CreateUserRequest {
                    name: name.into(),
                    groups: vec!["engineers".into()],
                    admin,
                },
            )
            .unwrap();
        let invite = self
            .auth
            .create_invite(
                None,
                None,
                &api::InviteRequest {
                    user: name.into(),
                    ttl_seconds: None,
                },
            )
            .unwrap();
        let started = self
            .auth
            .enroll_start(
                &self.caller,
                &api::EnrollStartRequest {
                    invite: invite.code,
                },
            )
            .unwrap();
        let totp = totp_rs::TOTP::from_url(started.totp_uri.expose()).unwrap();
        self.auth
            .enroll_finish(
                &self.caller,
                &api::EnrollFinishRequest {
                    enrollment_token: started.enrollment_token,
                    totp_code: self.code(&totp).into(),
                },
            )
            .unwrap();
        totp
    }

    /// Log in (after moving one TOTP step on) and get a 1 h certificate.
    fn login_cert(&self, name: &str, totp: &totp_rs::TOTP) -> (String, api::CertResponse) {
        self.clock.advance(chrono::Duration::seconds(30));
        let login = self
            .auth
            .login(
                &self.caller,
                &api::LoginRequest {
                    user: name.into(),
                    factor: api::FactorProof::Totp {
                        code: self.code(totp).into(),
                    },
                },
            )
            .unwrap();
        let session = self
            .auth
            .authenticate(login.session_token.expose())
            .unwrap();
        let key = FileCaKey::generate("subject").unwrap();
        let cert = self
            .auth
            .issue_user_cert(
                &self.caller,
                &session,
                &api::CertRequest {
                    public_key: key.private_key().public_key().to_openssh().unwrap(),
                    ttl_seconds: None,
                },
            )
            .unwrap();
        common::remember_key(&cert.certificate, key.private_key());
        (login.session_token.expose().to_owned(), cert)
    }

    fn join(&self, admin_token: &str) -> Bastion {
        self.join_as(admin_token, "bastion-1")
    }

    fn join_as(&self, admin_token: &str, name: &str) -> Bastion {
        self.join_with_key(admin_token, name).0
    }

    /// Join `name` and keep its host key.
    fn join_with_key(&self, admin_token: &str, name: &str) -> (Bastion, FileCaKey) {
        let session = self.auth.authenticate(admin_token).unwrap();
        let token = self
            .auth
            .create_bastion_token(
                &self.caller,
                &session,
                &api::BastionTokenRequest {
                    name: None,
                    ttl_seconds: None,
                },
            )
            .unwrap();
        let host = FileCaKey::generate("bastion host").unwrap();
        let joined = self
            .auth
            .bastion_join(
                &self.caller,
                &api::BastionJoinRequest {
                    token: token.token,
                    name: name.into(),
                    host_public_key: host.private_key().public_key().to_openssh().unwrap(),
                },
            )
            .unwrap();
        (
            self.auth
                .authenticate_bastion(joined.credential.expose())
                .unwrap(),
            host,
        )
    }

    fn session_cert(
        &self,
        bastion: &Bastion,
        outer: &str,
        totp_code: Option<String>,
    ) -> Result<api::SessionCertResponse, CaError> {
        let key = FileCaKey::generate("ephemeral").unwrap();
        self.auth.bastion_session_cert(
            &self.caller,
            bastion,
            &api::SessionCertRequest {
                user_certificate: outer.to_owned(),
                login: "alice".into(),
                target: "db-1".into(),
                target_labels: Default::default(),
                session_id: "s1".into(),
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                source: None,
                totp_code: totp_code.map(Into::into),
                webauthn_approval: None,
                user_proof: Some(common::user_proof(outer)),
            },
        )
    }
}

#[test]
fn join_tokens_expire_by_the_cas_clock_and_have_a_ceiling() {
    let f = fixture();
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let admin = f.auth.authenticate(&admin_token).unwrap();
    let make = |ttl: Option<u64>| {
        f.auth.create_bastion_token(
            &f.caller,
            &admin,
            &api::BastionTokenRequest {
                name: Some("bastion-1".into()),
                ttl_seconds: ttl,
            },
        )
    };
    assert_eq!(make(Some(0)).unwrap_err().code(), "invalid_ttl");
    assert_eq!(make(Some(24 * 3600 + 1)).unwrap_err().code(), "invalid_ttl");
    let token = make(None).unwrap();
    assert_eq!(token.expires_at, f.clock.now() + minutes(60), "default 1 h");
    // A bad name is refused before any token exists.
    let bad = f.auth.create_bastion_token(
        &f.caller,
        &admin,
        &api::BastionTokenRequest {
            name: Some("not a host".into()),
            ttl_seconds: None,
        },
    );
    assert_eq!(bad.unwrap_err().code(), "invalid_bastion_name");

    f.clock.advance(minutes(61));
    let host = FileCaKey::generate("bastion host").unwrap();
    let err = f
        .auth
        .bastion_join(
            &f.caller,
            &api::BastionJoinRequest {
                token: token.token.clone(),
                name: "bastion-1".into(),
                host_public_key: host.private_key().public_key().to_openssh().unwrap(),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "token_expired");
    // Non-admins get no token.
    let alice_totp = f.enrol("alice", false);
    let (alice_token, _) = f.login_cert("alice", &alice_totp);
    let alice = f.auth.authenticate(&alice_token).unwrap();
    f.auth
        .require_admin(&f.caller, &alice, "bastion_token")
        .unwrap_err();
}

/// A session-certificate request for `outer` with the proof `proof`.
fn with_proof(
    f: &Fixture,
    bastion: &Bastion,
    outer: &str,
    proof: Option<api::user_proof::UserProof>,
) -> Result<api::SessionCertResponse, CaError> {
    let key = FileCaKey::generate("ephemeral").unwrap();
    f.auth.bastion_session_cert(
        &f.caller,
        bastion,
        &api::SessionCertRequest {
            user_certificate: outer.to_owned(),
            login: "alice".into(),
            target: "db-1".into(),
            target_labels: Default::default(),
            session_id: "s1".into(),
            public_key: key.private_key().public_key().to_openssh().unwrap(),
            source: None,
            totp_code: None,
            webauthn_approval: None,
            user_proof: proof,
        },
    )
}

#[test]
fn a_session_certificate_needs_the_users_own_proof_bound_to_one_bastion() {
    let f = fixture();
    let (admin_token, bastion_a) = f.admin_and_bastion();
    let bastion_b = f.join_as(&admin_token, "bastion-2");
    let alice_totp = f.enrol("alice", false);
    let (_, outer) = f.login_cert("alice", &alice_totp);
    let (_, other) = f.login_cert("alice", &alice_totp);
    let denied = |r: Result<api::SessionCertResponse, CaError>| match r {
        Err(CaError::Forbidden { code, .. }) => code,
        other => panic!("{other:?}"),
    };

    // No proof; a proof made for another certificate (same user).
    assert_eq!(
        denied(with_proof(&f, &bastion_a, &outer.certificate, None)),
        "user_proof_required"
    );
    let for_other = common::user_proof(&other.certificate);
    assert_eq!(
        denied(with_proof(
            &f,
            &bastion_a,
            &outer.certificate,
            Some(for_other)
        )),
        "user_proof_invalid"
    );

    // A good proof works, again at the same bastion (a per-session MFA
    // retry), but not at another bastion.
    let proof = common::user_proof(&outer.certificate);
    with_proof(&f, &bastion_a, &outer.certificate, Some(proof.clone())).unwrap();
    f.clock.advance(minutes(9));
    with_proof(&f, &bastion_a, &outer.certificate, Some(proof.clone())).unwrap();
    assert_eq!(
        denied(with_proof(
            &f,
            &bastion_b,
            &outer.certificate,
            Some(proof.clone())
        )),
        "user_proof_foreign"
    );
    // Past the window after its first use: refused at its own bastion too
    // (before the policy's MFA age would be).
    f.clock.advance(minutes(22));
    assert_eq!(
        denied(with_proof(&f, &bastion_a, &outer.certificate, Some(proof))),
        "user_proof_expired"
    );

    // Every refusal is audited as access_denied with its code.
    let codes: Vec<String> = query_kind(&f.auth, rampart_audit::EventKind::AccessDenied)
        .iter()
        .filter_map(|e| {
            e.details
                .get("code")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        })
        .collect();
    for code in [
        "user_proof_required",
        "user_proof_invalid",
        "user_proof_foreign",
        "user_proof_expired",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code}: {codes:?}");
    }
}

#[test]
fn mfa_freshness_comes_from_the_outer_certificate_or_a_per_session_code() {
    let f = fixture();
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let bastion = f.join(&admin_token);
    let alice_totp = f.enrol("alice", false);
    let (_, outer) = f.login_cert("alice", &alice_totp);

    // Within the role's mfa_max_age (10m): granted; valid 60 s from the CA's now.
    f.clock.advance(minutes(5));
    let ok = f.session_cert(&bastion, &outer.certificate, None).unwrap();
    let c = ok.certificate;
    assert_eq!(c.principals, ["alice"]);
    assert_eq!(
        c.valid_before,
        f.clock.now() + chrono::Duration::seconds(60)
    );
    assert!(c.key_id.contains("session=s1") && c.key_id.contains("via=bastion-1"));
    let cert = ssh_key::Certificate::from_openssh(&c.certificate).unwrap();
    assert_eq!(
        cert.critical_options()
            .get("source-address")
            .map(String::as_str),
        Some("192.0.2.10/32"),
        "source-address is the bastion's address as the CA saw it"
    );

    // The outer certificate is still valid (1 h) but its MFA is 15 minutes old.
    f.clock.advance(minutes(10));
    let err = f
        .session_cert(&bastion, &outer.certificate, None)
        .unwrap_err();
    assert_eq!(err.code(), "access_denied");
    // A per-session TOTP code refreshes the evidence…
    let code = f.code(&alice_totp);
    let fresh = f
        .session_cert(&bastion, &outer.certificate, Some(code.clone()))
        .unwrap();
    assert!(fresh.session_mfa);
    let cert = ssh_key::Certificate::from_openssh(&fresh.certificate.certificate).unwrap();
    assert_eq!(
        cert.extensions()
            .get("mfa-time@rampart")
            .map(String::as_str),
        Some("2026-05-01T10:16:05Z"),
        "the per-session code's time, not the login's"
    );
    // …once per time step.
    let err = f
        .session_cert(&bastion, &outer.certificate, Some(code))
        .unwrap_err();
    assert_eq!(err.code(), "factor_replayed");

    // After the outer certificate expires (1 h), nothing is issued, code or not.
    f.clock.advance(minutes(60));
    let err = f
        .session_cert(&bastion, &outer.certificate, Some(f.code(&alice_totp)))
        .unwrap_err();
    assert_eq!(err.code(), "certificate_expired");
}

#[test]
fn an_outer_certificate_from_an_oidc_login_is_accepted_as_oidc() {
    let f = fixture();
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let bastion = f.join(&admin_token);
    let alice_totp = f.enrol("alice", false);
    // The CA's own OIDC login (ca/src/oidc) stores sessions whose factor is
    // `oidc`; the certificate carries that method, and the bastion path must map
    // it to the policy's factor instead of refusing it as unknown.
    f.clock.advance(chrono::Duration::seconds(30));
    let login = f
        .auth
        .login(
            &f.caller,
            &api::LoginRequest {
                user: "alice".into(),
                factor: api::FactorProof::Totp {
                    code: f.code(&alice_totp).into(),
                },
            },
        )
        .unwrap();
    let mut session = f.auth.authenticate(login.session_token.expose()).unwrap();
    session.record.mfa_method = rampart_policy::MfaMethod::Oidc;
    // What the OIDC login keeps beside such a session (a second connection to
    // the same store file; SQLite serialises the writers).
    use rampart_ca::store::SessionStore as _;
    let store = rampart_ca::store::sqlite::SqliteStore::open(&f.dir.path().join("ca.db")).unwrap();
    store
        .put_idp_evidence(
            &session.record.id,
            &rampart_ca::store::IdpEvidence {
                provider: "corp".into(),
                acr: None,
                amr: vec!["pwd".into(), "otp".into()],
                auth_time: f.clock.now(),
            },
            session.record.expires_at,
            f.clock.now(),
        )
        .unwrap();
    let key = FileCaKey::generate("subject").unwrap();
    let outer = f
        .auth
        .issue_user_cert(
            &f.caller,
            &session,
            &api::CertRequest {
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                ttl_seconds: None,
            },
        )
        .unwrap();
    common::remember_key(&outer.certificate, key.private_key());
    let cert = ssh_key::Certificate::from_openssh(&outer.certificate).unwrap();
    assert_eq!(
        cert.extensions()
            .get("mfa-method@rampart")
            .map(String::as_str),
        Some("oidc")
    );
    let granted = f.session_cert(&bastion, &outer.certificate, None).unwrap();
    let inner = ssh_key::Certificate::from_openssh(&granted.certificate.certificate).unwrap();
    assert_eq!(
        inner
            .extensions()
            .get("mfa-method@rampart")
            .map(String::as_str),
        Some("oidc"),
        "the evidence is copied into the per-session certificate"
    );
    assert_eq!(
        inner
            .extensions()
            .get("mfa-idp@rampart")
            .map(String::as_str),
        Some("corp")
    );
}

// ----- session events, recordings, the session list ----------------------------

fn event(kind: api::BastionEventKind, session: &str) -> api::BastionEvent {
    api::BastionEvent {
        id: None,
        kind,
        success: true,
        at: common::start() - chrono::Duration::seconds(3),
        session_id: Some(session.to_owned()),
        user: Some("alice".into()),
        login: Some("root".into()),
        target: Some("db-1".into()),
        source: Some("198.51.100.7".into()),
        serial: Some(9),
        reason: None,
        details: Default::default(),
    }
}

fn batch(events: Vec<api::BastionEvent>) -> api::BastionEventBatch {
    api::BastionEventBatch { events }
}

fn started(session: &str, user: &str, target: &str) -> api::BastionEvent {
    api::BastionEvent {
        user: Some(user.into()),
        target: Some(target.into()),
        ..event(api::BastionEventKind::SessionStarted, session)
    }
}

/// A small real recording (what the bastion uploads) and its digest.
fn recording(session: &str, text: &[u8]) -> (Vec<u8>, String) {
    use rampart_audit::recording::{finish_recording, RecordingHeader, RecordingWriter};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{session}.cast"));
    let mut w = RecordingWriter::create(
        &path,
        &RecordingHeader {
            session_id: session.into(),
            user: "alice".into(),
            login: "root".into(),
            target: "db-1".into(),
            width: 80,
            height: 24,
            started: common::start(),
            record_input: false,
            term: None,
        },
    )
    .unwrap();
    w.output(std::time::Duration::from_millis(10), text);
    let fin = finish_recording(&w.close().unwrap()).unwrap();
    (std::fs::read(&fin.path).unwrap(), fin.sha256)
}

fn query_kind(auth: &Authority, kind: rampart_audit::EventKind) -> Vec<rampart_audit::Event> {
    auth.audit_log()
        .query(&rampart_audit::Query::all().kind(kind))
        .unwrap()
}

impl Fixture {
    fn admin_and_bastion(&self) -> (String, Bastion) {
        let admin_totp = self.enrol("root", true);
        let (admin_token, _) = self.login_cert("root", &admin_totp);
        let bastion = self.join(&admin_token);
        (admin_token, bastion)
    }

    fn send(
        &self,
        bastion: &Bastion,
        events: Vec<api::BastionEvent>,
    ) -> Result<api::BastionEventAck, CaError> {
        self.auth
            .bastion_events(&self.caller, bastion, &batch(events))
    }

    fn seal(
        &self,
        bastion: &Bastion,
        session: &str,
        bytes: &[u8],
        sha: &str,
    ) -> Result<api::RecordingSealed, CaError> {
        self.auth.seal_recording(
            &self.caller,
            bastion,
            session,
            Some(sha),
            &self.upload(bytes),
            false,
        )
    }

    /// `bytes` spooled as the HTTP handler spools an upload, in two pieces.
    fn upload(&self, bytes: &[u8]) -> rampart_ca::authority::sessions::SpooledRecording {
        let mut spool = self.auth.spool_recording().unwrap();
        let (a, b) = bytes.split_at(bytes.len() / 2);
        spool.write(a).unwrap();
        spool.write(b).unwrap();
        spool.finish().unwrap()
    }
}

#[test]
fn bastion_events_land_in_the_chain_with_their_codes_in_one_group() {
    use rampart_audit::EventKind as K;
    let f = fixture();
    let (_, bastion) = f.admin_and_bastion();
    let s = ulid::Ulid::new().to_string();
    let mut exec = event(api::BastionEventKind::Exec, &s);
    exec.details.insert("command".into(), "uname -a".into());
    exec.details.insert("exit_status".into(), 0.into());
    let mut refused = event(api::BastionEventKind::RequestRefused, &s);
    refused.success = false;
    refused.reason = Some("port forwarding is not allowed for this role".into());
    let mut ended = event(api::BastionEventKind::SessionEnded, &s);
    ended.reason = Some("closed".into());
    let kinds = [
        (
            started(&s, "alice", "db-1"),
            K::BastionSessionStarted,
            "RA-BAS-006",
        ),
        (exec, K::BastionExec, "RA-BAS-009"),
        (
            event(api::BastionEventKind::FileOp, &s),
            K::BastionFileOp,
            "RA-BAS-010",
        ),
        (
            event(api::BastionEventKind::Forward, &s),
            K::BastionForward,
            "RA-BAS-011",
        ),
        (refused, K::BastionRequestRefused, "RA-BAS-012"),
        (
            api::BastionEvent {
                session_id: None,
                success: false,
                reason: Some("password authentication is not accepted".into()),
                ..event(api::BastionEventKind::ConnectionRefused, &s)
            },
            K::BastionConnectionRefused,
            "RA-BAS-008",
        ),
        (ended, K::BastionSessionEnded, "RA-BAS-007"),
        (
            api::BastionEvent {
                success: false,
                reason: Some("/etc/rampart-bastion/bastion.toml: needs a restart: listen".into()),
                ..event(api::BastionEventKind::ConfigReloaded, &s)
            },
            K::BastionConfigReloaded,
            "RA-BAS-016",
        ),
    ];
    let head_before = f.auth.audit_log().head().unwrap().0;
    let ack = f
        .send(&bastion, kinds.iter().map(|(e, _, _)| e.clone()).collect())
        .unwrap();
    assert_eq!(ack.ids.len(), kinds.len());
    let all = f
        .auth
        .audit_log()
        .query(&rampart_audit::Query::all().after_seq(head_before))
        .unwrap();
    assert_eq!(
        all.len(),
        kinds.len(),
        "contiguous, nothing else in between"
    );
    for ((sent, kind, code), (stored, id)) in kinds.iter().zip(all.iter().zip(&ack.ids)) {
        assert_eq!(stored.kind, *kind);
        assert_eq!(stored.code, *code);
        assert_eq!(&stored.id.to_string(), id, "ack ids are in batch order");
        assert_eq!(stored.actor.as_deref(), Some("bastion:bastion-1"));
        assert_eq!(
            stored.time,
            f.clock.now(),
            "the CA's clock, not the bastion's"
        );
        assert_eq!(
            stored.details["at"],
            serde_json::json!("2026-05-01T10:00:02Z"),
            "the bastion's clock is kept as a detail"
        );
        assert_eq!(stored.details["login"], serde_json::json!("root"));
        assert_eq!(stored.source.as_deref(), Some("198.51.100.7"));
        assert_eq!(stored.session, sent.session_id);
        assert_eq!(stored.reason, sent.reason);
        assert_eq!(
            stored.outcome == rampart_audit::Outcome::Success,
            sent.success
        );
    }
    assert_eq!(all[1].details["command"], serde_json::json!("uname -a"));
}

#[test]
fn a_bad_bastion_event_is_replaced_in_its_place_and_its_batch_is_kept() {
    let f = fixture();
    let (admin_token, bastion) = f.admin_and_bastion();
    let s = ulid::Ulid::new().to_string();
    let ok = || started(&s, "alice", "db-1");
    let long = "x".repeat(257);
    let mut cases: Vec<(&str, api::BastionEvent)> = vec![
        (
            "long user",
            api::BastionEvent {
                user: Some(long.clone()),
                ..ok()
            },
        ),
        (
            "long target",
            api::BastionEvent {
                target: Some(long.clone()),
                ..ok()
            },
        ),
        (
            "empty login",
            api::BastionEvent {
                login: Some(String::new()),
                ..ok()
            },
        ),
        (
            "control char",
            api::BastionEvent {
                user: Some("al\x1b[2Jice".into()),
                ..ok()
            },
        ),
        (
            "long reason",
            api::BastionEvent {
                reason: Some("r".repeat(4097)),
                ..ok()
            },
        ),
        (
            "session not a ULID",
            api::BastionEvent {
                session_id: Some("../../x".into()),
                ..ok()
            },
        ),
        (
            "started without login",
            api::BastionEvent {
                login: None,
                ..ok()
            },
        ),
        (
            "ended without session",
            api::BastionEvent {
                session_id: None,
                ..event(api::BastionEventKind::SessionEnded, &s)
            },
        ),
    ];
    let mut too_many = ok();
    for i in 0..33 {
        too_many.details.insert(format!("k{i}"), i.into());
    }
    cases.push(("33 details", too_many));
    let mut big_value = ok();
    big_value
        .details
        .insert("command".into(), "c".repeat(4097).into());
    cases.push(("big detail", big_value));
    let mut reserved = ok();
    reserved.details.insert("at".into(), "yesterday".into());
    cases.push(("reserved detail", reserved));
    let mut long_key = ok();
    long_key.details.insert(long.clone(), 1.into());
    cases.push(("long detail key", long_key));

    let mut exec = event(api::BastionEventKind::Exec, &s);
    exec.details.insert("command".into(), "whoami".into());
    for (name, bad) in cases {
        // A valid event on each side: both are written as sent, and the bad one
        // is replaced in its place by `audit_event_rejected`.
        let before = query_kind(&f.auth, rampart_audit::EventKind::AuditEventRejected).len();
        let execs_before = query_kind(&f.auth, rampart_audit::EventKind::BastionExec).len();
        let ack = f
            .send(&bastion, vec![ok(), bad.clone(), exec.clone()])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ack.ids.len(), 3, "{name}");
        assert_eq!(ack.rejected.len(), 1, "{name}");
        assert_eq!(ack.rejected[0].index, 1, "{name}");
        assert!(
            ack.rejected[0].reason.starts_with("event 1:"),
            "{name}: {}",
            ack.rejected[0].reason
        );
        let rejected = query_kind(&f.auth, rampart_audit::EventKind::AuditEventRejected);
        assert_eq!(rejected.len(), before + 1, "{name}");
        let stand_in = rejected.last().unwrap();
        assert_eq!(
            &stand_in.id.to_string(),
            &ack.ids[1],
            "{name}: in its place"
        );
        assert_eq!(stand_in.outcome, rampart_audit::Outcome::Failure);
        assert_eq!(stand_in.actor.as_deref(), Some("bastion:bastion-1"));
        let sent_kind = serde_json::to_value(bad.kind).unwrap();
        assert_eq!(stand_in.details["rejected_kind"], sent_kind, "{name}");
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            serde_json::to_vec(&bad).unwrap(),
        ));
        assert_eq!(
            stand_in.details["digest"],
            serde_json::json!(digest),
            "{name}"
        );
        assert_eq!(
            stand_in.reason.as_deref(),
            Some(ack.rejected[0].reason.as_str())
        );
        // The session is kept when it is one.
        let valid_session = bad.session_id.as_deref() == Some(s.as_str());
        assert_eq!(stand_in.session.is_some(), valid_session, "{name}");
        assert_eq!(
            query_kind(&f.auth, rampart_audit::EventKind::BastionExec).len(),
            execs_before + 1,
            "{name}: the event after the bad one is written"
        );
    }
    let head = f.auth.audit_log().head().unwrap();
    let err = f
        .send(&bastion, vec![ok(); api::MAX_EVENTS_PER_BATCH + 1])
        .unwrap_err();
    assert_eq!(err.code(), "batch_too_large");
    assert_eq!(f.auth.audit_log().head().unwrap(), head, "nothing written");
    assert_eq!(
        f.send(&bastion, vec![ok(); api::MAX_EVENTS_PER_BATCH])
            .unwrap()
            .ids
            .len(),
        api::MAX_EVENTS_PER_BATCH
    );

    // Only a bastion credential opens these endpoints.
    assert_eq!(
        f.auth
            .authenticate_bastion(&admin_token)
            .unwrap_err()
            .code(),
        "bastion_credential_invalid"
    );
    assert_eq!(
        f.auth
            .authenticate_bastion("rpb_0000000000000000000000000000000000000000000")
            .unwrap_err()
            .code(),
        "bastion_credential_invalid"
    );

    // The audit log cannot take them: 503, and the bastion fails closed.
    f.auth.audit_log().close().unwrap();
    let err = f.send(&bastion, vec![ok()]).unwrap_err();
    assert_eq!(err.status(), 503);
    assert_eq!(err.code(), "audit_unavailable");
}

#[test]
fn recordings_are_stored_once_and_sealed_by_digest() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let (admin_token, bastion) = f.admin_and_bastion();
    let other = f.join_as(&admin_token, "bastion-2");
    let s = ulid::Ulid::new().to_string();
    let (bytes, sha) = recording(&s, b"$ id\r\nuid=0(root)\r\n");

    // No session_started from this bastion yet.
    assert_eq!(
        f.seal(&bastion, &s, &bytes, &sha).unwrap_err().code(),
        "session_unknown"
    );
    f.send(&bastion, vec![started(&s, "alice", "db-1")])
        .unwrap();
    assert_eq!(
        f.seal(&other, &s, &bytes, &sha).unwrap_err().code(),
        "session_unknown",
        "another bastion cannot seal this bastion's session"
    );

    // Damaged in transit, no digest, not a ULID, not zstd.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = f.seal(&bastion, &s, &tampered, &sha).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.status()),
        ("recording_digest_mismatch", 400)
    );
    let err = f
        .auth
        .seal_recording(&f.caller, &bastion, &s, None, &f.upload(&bytes), false)
        .unwrap_err();
    assert_eq!(err.code(), "recording_digest_missing");
    let err = f
        .auth
        .seal_recording(
            &f.caller,
            &bastion,
            &s,
            Some(&sha.to_uppercase()),
            &f.upload(&bytes),
            false,
        )
        .unwrap_err();
    assert_eq!(err.code(), "recording_digest_missing", "lowercase hex only");
    let err = f.seal(&bastion, "..%2Fx", &bytes, &sha).unwrap_err();
    assert_eq!(err.code(), "invalid_session_id");
    let plain = b"{\"version\":2}\n";
    let plain_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(plain));
    let err = f.seal(&bastion, &s, plain, &plain_sha).unwrap_err();
    assert_eq!(err.code(), "recording_not_zstd");
    assert!(query_kind(&f.auth, rampart_audit::EventKind::RecordingSealed).is_empty());

    // Sealed.
    let sealed = f
        .auth
        .seal_recording(&f.caller, &bastion, &s, Some(&sha), &f.upload(&bytes), true)
        .unwrap();
    assert_eq!(
        (sealed.sha256.as_str(), sealed.bytes),
        (sha.as_str(), bytes.len() as u64)
    );
    let stored = f.auth.recordings_dir().join(format!("{s}.cast.zst"));
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let events = query_kind(&f.auth, rampart_audit::EventKind::RecordingSealed);
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert_eq!(ev.code, "RA-BAS-013");
    assert_eq!(ev.id.to_string(), sealed.event_id);
    assert_eq!(ev.session.as_deref(), Some(s.as_str()));
    assert_eq!(ev.user.as_deref(), Some("alice"));
    assert_eq!(ev.target.as_deref(), Some("db-1"));
    assert_eq!(ev.actor.as_deref(), Some("bastion:bastion-1"));
    assert_eq!(ev.details["sha256"], serde_json::json!(sha));
    assert_eq!(ev.details["bytes"], serde_json::json!(bytes.len()));
    assert_eq!(ev.details["format"], serde_json::json!("asciicast-v2+zstd"));
    assert_eq!(ev.details["abnormal_end"], serde_json::json!(true));

    // A retry of the same bytes answers the same; different bytes are refused.
    assert_eq!(f.seal(&bastion, &s, &bytes, &sha).unwrap(), sealed);
    let (other_bytes, other_sha) = recording(&s, b"something else");
    let err = f.seal(&bastion, &s, &other_bytes, &other_sha).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.status()),
        ("recording_exists", 409)
    );
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        bytes,
        "the first one stays"
    );
    assert_eq!(
        query_kind(&f.auth, rampart_audit::EventKind::RecordingSealed).len(),
        1
    );
    let leftovers: Vec<_> = std::fs::read_dir(f.auth.recordings_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[test]
fn a_seal_that_could_not_be_audited_is_sealed_by_the_retry() {
    let f = fixture();
    let (_, bastion) = f.admin_and_bastion();
    let s = ulid::Ulid::new().to_string();
    f.send(&bastion, vec![started(&s, "alice", "db-1")])
        .unwrap();
    let (bytes, sha) = recording(&s, b"x");
    // Lock the audit database like a stray sqlite3 session would.
    let blocker = rusqlite::Connection::open(f.auth.audit_log().sqlite_path().unwrap()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = f.seal(&bastion, &s, &bytes, &sha).unwrap_err();
    assert_eq!(err.status(), 503);
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let sealed = f.seal(&bastion, &s, &bytes, &sha).unwrap();
    assert_eq!(sealed.sha256, sha);
    assert_eq!(
        query_kind(&f.auth, rampart_audit::EventKind::RecordingSealed).len(),
        1
    );
}

#[test]
fn the_session_list_comes_from_the_audit_chain() {
    use rampart_ca::authority::sessions::SessionFilter;
    let f = fixture();
    let (_, bastion) = f.admin_and_bastion();
    let ids: Vec<String> = (0..4).map(|_| ulid::Ulid::new().to_string()).collect();
    let who = [
        ("alice", "db-1"),
        ("bob", "db-1"),
        ("alice", "web-1"),
        ("alice", "db-1"),
    ];
    for (id, (user, target)) in ids.iter().zip(who) {
        f.clock.advance(chrono::Duration::seconds(10));
        f.send(&bastion, vec![started(id, user, target)]).unwrap();
    }
    // Session 0 ends normally with a recording; session 1 ends abnormally.
    let mut end0 = event(api::BastionEventKind::SessionEnded, &ids[0]);
    end0.reason = Some("closed".into());
    let mut end1 = api::BastionEvent {
        user: Some("bob".into()),
        ..event(api::BastionEventKind::SessionEnded, &ids[1])
    };
    end1.success = false;
    end1.reason = Some("bastion_restarted".into());
    f.clock.advance(chrono::Duration::seconds(10));
    f.send(&bastion, vec![end0, end1]).unwrap();
    let (bytes, sha) = recording(&ids[0], b"hello");
    f.seal(&bastion, &ids[0], &bytes, &sha).unwrap();

    let list = |user: Option<&str>, target: Option<&str>, limit: Option<usize>| {
        f.auth
            .list_sessions(&SessionFilter {
                user: user.map(str::to_owned),
                target: target.map(str::to_owned),
                session: None,
                limit,
            })
            .unwrap()
            .sessions
    };
    let all = list(None, None, None);
    let order: Vec<&str> = all.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(order, [&ids[3], &ids[2], &ids[1], &ids[0]], "newest first");
    let s0 = &all[3];
    assert_eq!(
        (s0.user.as_str(), s0.login.as_str(), s0.target.as_str()),
        ("alice", "root", "db-1")
    );
    assert_eq!(s0.bastion, "bastion-1");
    assert_eq!(s0.end_reason.as_deref(), Some("closed"));
    assert_eq!(s0.ended_normally, Some(true));
    assert!(s0.ended_at.unwrap() > s0.started_at);
    assert_eq!(s0.recording_sha256.as_deref(), Some(sha.as_str()));
    let s1 = &all[2];
    assert_eq!(s1.ended_normally, Some(false));
    assert_eq!(s1.end_reason.as_deref(), Some("bastion_restarted"));
    assert_eq!(s1.recording_sha256, None);
    assert_eq!(
        (all[0].ended_at, all[0].ended_normally),
        (None, None),
        "still running"
    );

    let alice: Vec<_> = list(Some("alice"), None, None)
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(alice, [ids[3].clone(), ids[2].clone(), ids[0].clone()]);
    let db: Vec<_> = list(Some("alice"), Some("db-1"), None)
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(db, [ids[3].clone(), ids[0].clone()]);
    assert_eq!(list(None, None, Some(2)).len(), 2);
    assert!(list(Some("carol"), None, None).is_empty());
    let one = f
        .auth
        .list_sessions(&SessionFilter {
            session: Some(ids[1].clone()),
            ..SessionFilter::default()
        })
        .unwrap()
        .sessions;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].session_id, ids[1]);
}

#[test]
fn a_recording_is_served_only_while_it_matches_its_seal() {
    let f = fixture();
    let (admin_token, bastion) = f.admin_and_bastion();
    let admin = f.auth.authenticate(&admin_token).unwrap();
    let s = ulid::Ulid::new().to_string();
    assert_eq!(
        f.auth
            .session_recording(&f.caller, &admin, &s)
            .unwrap_err()
            .code(),
        "recording_not_found"
    );
    assert_eq!(
        f.auth
            .session_recording(&f.caller, &admin, "nope")
            .unwrap_err()
            .code(),
        "invalid_session_id"
    );
    f.send(&bastion, vec![started(&s, "alice", "db-1")])
        .unwrap();
    let (bytes, sha) = recording(&s, b"top secret output");
    f.seal(&bastion, &s, &bytes, &sha).unwrap();
    let served = f.auth.session_recording(&f.caller, &admin, &s).unwrap();
    assert_eq!(
        (served.sha256.as_str(), served.bytes),
        (sha.as_str(), bytes.len() as u64)
    );
    let served_bytes: Vec<u8> = served.chunks.flat_map(Result::unwrap).collect();
    assert_eq!(served_bytes, bytes);
    let text = rampart_audit::recording::read_recording(&served_bytes)
        .unwrap()
        .render_text();
    assert_eq!(text, "top secret output");
    // Who watched it is audited.
    let viewed = query_kind(&f.auth, rampart_audit::EventKind::RecordingViewed);
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0].code, "RA-BAS-014");
    assert_eq!(viewed[0].actor.as_deref(), Some("root"));
    assert_eq!(viewed[0].session.as_deref(), Some(s.as_str()));
    assert_eq!(viewed[0].user.as_deref(), Some("alice"));
    assert_eq!(viewed[0].details["sha256"], serde_json::json!(sha));

    // One byte edited on disk.
    let path = f.auth.recordings_dir().join(format!("{s}.cast.zst"));
    let mut edited = bytes.clone();
    edited[bytes.len() / 2] ^= 0x20;
    std::fs::write(&path, &edited).unwrap();
    let err = f.auth.session_recording(&f.caller, &admin, &s).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.status()),
        ("recording_tampered", 409)
    );
    assert_eq!(
        query_kind(&f.auth, rampart_audit::EventKind::RecordingViewed).len(),
        1,
        "a refused download is not a view"
    );
    std::fs::remove_file(&path).unwrap();
    let err = f.auth.session_recording(&f.caller, &admin, &s).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.status()),
        ("recording_missing", 409)
    );
}

#[test]
fn policy_switches_reach_the_bastion_and_session_mfa_is_a_prompt_not_a_denial() {
    let policy = r#"
version = 1
[defaults]
min_factor = "recovery"
[roles.dev]
principals = ["{user}"]
min_factor = "otp"
targets = { allow = ["db-*"] }
target_labels = { env = "prod" }
session_mfa = true
record_input = true
port_forwarding = true
[groups]
engineers = ["dev"]
"#;
    let f = fixture_with(policy);
    let (_, bastion) = f.admin_and_bastion();
    let alice_totp = f.enrol("alice", false);
    let (_, outer) = f.login_cert("alice", &alice_totp);
    let key = FileCaKey::generate("ephemeral").unwrap();
    let ask = |labels: &[(&str, &str)], code: Option<String>| {
        f.auth.bastion_session_cert(
            &f.caller,
            &bastion,
            &api::SessionCertRequest {
                user_certificate: outer.certificate.clone(),
                login: "alice".into(),
                target: "db-1".into(),
                target_labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                session_id: "s2".into(),
                public_key: key.private_key().public_key().to_openssh().unwrap(),
                source: None,
                totp_code: code.map(Into::into),
                webauthn_approval: None,
                user_proof: Some(common::user_proof(&outer.certificate)),
            },
        )
    };
    let count = |kind| query_kind(&f.auth, kind).len();
    use rampart_audit::EventKind as K;

    // The target lacks the label: a denial, audited.
    let err = ask(&[("env", "dev")], None).unwrap_err();
    assert_eq!(err.code(), "access_denied");
    assert!(err.to_string().contains("env=prod"), "{err}");
    assert_eq!(count(K::AccessDenied), 1);

    // Labelled: policy wants a per-session code. A prompt, not audited.
    let err = ask(&[("env", "prod")], None).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.status()),
        (api::ErrorCode::SessionMfaRequired.as_str(), 401)
    );
    assert_eq!(count(K::AccessDenied), 1, "no access_denied for the prompt");
    assert_eq!(count(K::AccessGranted), 0);

    // With a code: granted, with the role's switches.
    f.clock.advance(chrono::Duration::seconds(30));
    let ok = ask(&[("env", "prod")], Some(f.code(&alice_totp))).unwrap();
    assert!(ok.session_mfa && ok.record_input && ok.port_forwarding);
    assert!(!ok.agent_forwarding);
    let granted = query_kind(&f.auth, K::AccessGranted);
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].details["record_input"], serde_json::json!(true));
    assert_eq!(
        granted[0].details["port_forwarding"],
        serde_json::json!(true)
    );
    assert_eq!(
        granted[0].details["agent_forwarding"],
        serde_json::json!(false)
    );
}

// ----- YubiKey PIV attestation and hardware-bound roles at the bastion -----------

/// A YubiKey-shaped chain made with rcgen under a test root (see
/// `ca/src/piv/tests.rs`): root ← f9 (no basicConstraints) ← slot attestation of
/// `subject` with PIN once, touch always.
fn piv_chain(subject: &rcgen::KeyPair) -> (Vec<u8>, api::PivAttestation) {
    use rcgen::{CertificateParams, CustomExtension, DnType, IsCa, KeyPair};
    let dn = |cn: &str| {
        let mut d = rcgen::DistinguishedName::new();
        d.push(DnType::CommonName, cn);
        d
    };
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("Test PIV Root CA");
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
    let root = p.self_signed(&root_key).unwrap();
    let f9_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("Yubico PIV Attestation");
    let f9 = p.signed_by(&f9_key, &root, &root_key).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("YubiKey PIV Attestation 9a");
    p.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 41482, 3, 8],
        vec![2, 2],
    )];
    let slot = p.signed_by(subject, &f9, &f9_key).unwrap();
    (
        root.der().to_vec(),
        api::PivAttestation {
            slot_cert_pem: slot.pem(),
            intermediate_pem: f9.pem(),
        },
    )
}

#[test]
fn a_hardware_bound_role_reaches_its_targets_only_with_a_piv_attested_outer_certificate() {
    let f = fixture_with(
        r#"
version = 1
[defaults]
min_factor = "otp"
[roles.web]
principals = ["{user}"]
targets = { allow = ["web-*"] }
[roles.prod]
principals = ["{user}"]
min_factor = "hardware-bound"
targets = { allow = ["db-*"] }
[groups]
engineers = ["web", "prod"]
"#,
    );
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let bastion = f.join(&admin_token);
    let alice_totp = f.enrol("alice", false);

    // A plain outer certificate (role `web` only): db-1 is refused.
    let (alice_token, plain) = f.login_cert("alice", &alice_totp);
    let err = f
        .session_cert(&bastion, &plain.certificate, None)
        .unwrap_err();
    assert!(
        matches!(&err, CaError::Forbidden { code: api::ErrorCode::AccessDenied, message } if message.contains("may reach target db-1")),
        "{err}"
    );

    // The same session with a PIV-attested key: the certificate is marked, and
    // the bastion's session certificate for db-1 is granted through `prod`.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ssh_pub = ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Ecdsa(
            ssh_key::public::EcdsaPublicKey::from_sec1_bytes(key.public_key_raw()).unwrap(),
        ),
        "piv",
    );
    let (root_der, attestation) = piv_chain(&key);
    f.auth.set_piv(
        rampart_ca::piv::PivVerifier::new(
            vec![root_der],
            rampart_ca::piv::DEFAULT_TOUCH.to_vec(),
            rampart_ca::piv::DEFAULT_PIN.to_vec(),
        )
        .unwrap(),
    );
    let session = f.auth.authenticate(&alice_token).unwrap();
    let outer = f
        .auth
        .issue_attested_user_cert(
            &f.caller,
            &session,
            &api::AttestedCertRequest {
                public_key: ssh_pub.to_openssh().unwrap(),
                ttl_seconds: None,
                piv_attestation: Some(attestation),
            },
        )
        .unwrap();
    let cert = ssh_key::Certificate::from_openssh(&outer.certificate).unwrap();
    assert_eq!(
        cert.extensions().get("mfa-key@rampart").map(String::as_str),
        Some("piv-attested")
    );
    // The user's client signs the bastion login with the PIV key: the same
    // P-256 key as an ssh-key keypair (the scalar from rcgen's PKCS#8).
    let der = key.serialize_der();
    let at = der.windows(5).position(|w| w == [2, 1, 1, 4, 32]).unwrap() + 5;
    let scalar: [u8; 32] = der[at..at + 32].try_into().unwrap();
    let ssh_key::public::EcdsaPublicKey::NistP256(point) =
        ssh_key::public::EcdsaPublicKey::from_sec1_bytes(key.public_key_raw()).unwrap()
    else {
        panic!("a P-256 key")
    };
    let piv_private = ssh_key::PrivateKey::new(
        ssh_key::private::KeypairData::Ecdsa(ssh_key::private::EcdsaKeypair::NistP256 {
            private: ssh_key::private::EcdsaPrivateKey::from(scalar),
            public: point,
        }),
        "piv",
    )
    .unwrap();
    common::remember_key(&outer.certificate, &piv_private);
    f.session_cert(&bastion, &outer.certificate, None)
        .expect("the attested outer certificate reaches db-1");
}

#[test]
fn a_resent_batch_is_written_once_by_its_event_ids() {
    let f = fixture();
    let (_admin_token, bastion) = f.admin_and_bastion();
    let s = ulid::Ulid::new().to_string();
    let with_id = |mut e: api::BastionEvent| {
        e.id = Some(ulid::Ulid::new().to_string());
        e
    };
    let mut long_login = with_id(event(api::BastionEventKind::Exec, &s));
    long_login.login = Some("é".repeat(200));
    let sent = vec![
        with_id(started(&s, "alice", "db-1")),
        with_id(event(api::BastionEventKind::Exec, &s)),
        long_login,
    ];
    let first = f.send(&bastion, sent.clone()).unwrap();
    let want: Vec<String> = sent.iter().map(|e| e.id.clone().unwrap()).collect();
    assert_eq!(
        first.ids, want,
        "the bastion's IDs are the chain's, a stand-in's too"
    );
    assert_eq!(first.rejected.len(), 1);
    let head = f.auth.audit_log().head().unwrap();
    // The bastion got no answer (say) and sends the batch again, with one new event.
    let mut again = sent.clone();
    again.push(with_id(event(api::BastionEventKind::SessionEnded, &s)));
    let second = f.send(&bastion, again.clone()).unwrap();
    assert_eq!(
        second.ids,
        again
            .iter()
            .map(|e| e.id.clone().unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        f.auth.audit_log().head().unwrap().0,
        head.0 + 1,
        "only the new event is written"
    );
    assert!(
        second.rejected.is_empty(),
        "an event already in is not judged again"
    );
    assert_eq!(
        query_kind(&f.auth, rampart_audit::EventKind::BastionExec).len(),
        1
    );
    // An ID that is not a ULID is refused like any bad field.
    let mut bad = event(api::BastionEventKind::Exec, &s);
    bad.id = Some("../not-a-ulid".into());
    let ack = f.send(&bastion, vec![bad]).unwrap();
    assert_eq!(ack.rejected.len(), 1);
    assert!(ack.rejected[0].reason.contains("ULID"));
}

#[test]
fn a_bastion_gets_target_host_certificates_only_for_its_own_host_key() {
    let f = fixture();
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let (bastion, host) = f.join_with_key(&admin_token, "bastion-1");
    let ask = |key: &str| {
        f.auth.bastion_host_cert(
            &f.caller,
            &bastion,
            &api::BastionHostCertRequest {
                target: "db-1".into(),
                host_public_key: key.to_owned(),
            },
        )
    };
    let own = host.private_key().public_key().to_openssh().unwrap();
    ask(&own).unwrap();
    // A stolen credential used with the thief's own key mints nothing that
    // could impersonate db-1 away from the bastion.
    let other = FileCaKey::generate("thief").unwrap();
    let err = ask(&other.private_key().public_key().to_openssh().unwrap()).unwrap_err();
    assert_eq!(err.code(), "host_key_not_registered");
    let issued = query_kind(&f.auth, rampart_audit::EventKind::HostCertIssued);
    assert_eq!(
        issued.len(),
        1,
        "only the bastion's own key got a certificate"
    );
    let denied = query_kind(&f.auth, rampart_audit::EventKind::CertDenied);
    let denied = denied.last().unwrap();
    assert_eq!(denied.actor.as_deref(), Some("bastion:bastion-1"));
    assert_eq!(
        denied.details["code"],
        serde_json::json!("host_key_not_registered")
    );
}

#[test]
fn a_bastion_gets_certificates_only_for_the_targets_the_policy_registers_for_it() {
    let f = fixture_with(&format!(
        "{POLICY}\n[bastions.bastion-1]\ntargets = [\"db-1\", \"db-2*\"]\n"
    ));
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let (b1, host1) = f.join_with_key(&admin_token, "bastion-1");
    let (b2, host2) = f.join_with_key(&admin_token, "bastion-2");
    let ask = |bastion: &Bastion, host: &FileCaKey, target: &str| {
        f.auth.bastion_host_cert(
            &f.caller,
            bastion,
            &api::BastionHostCertRequest {
                target: target.into(),
                host_public_key: host.private_key().public_key().to_openssh().unwrap(),
            },
        )
    };
    ask(&b1, &host1, "db-1").unwrap();
    ask(&b1, &host1, "db-20").unwrap();
    for target in ["db-3", "web-1", "bastion-2"] {
        let err = ask(&b1, &host1, target).unwrap_err();
        assert_eq!(err.code(), "target_not_registered", "{target}");
    }
    // No table for bastion-2: it serves nothing, not even bastion-1's names.
    let err = ask(&b2, &host2, "db-1").unwrap_err();
    assert_eq!(err.code(), "target_not_registered");
    assert!(
        err.public_message().contains("[bastions.bastion-2]"),
        "{err}"
    );
    // Every refusal is in the log with the bastion as the actor.
    let denied = query_kind(&f.auth, rampart_audit::EventKind::CertDenied);
    assert_eq!(denied.len(), 4);
    assert!(denied
        .iter()
        .all(|e| e.details["code"] == serde_json::json!("target_not_registered")));
    assert_eq!(denied[3].actor.as_deref(), Some("bastion:bastion-2"));
}

#[test]
fn any_user_learns_the_joined_bastions_names_and_no_more() {
    let f = fixture_with(&format!(
        "{POLICY}\n[bastions.\"bastion-a.example.com\"]\ntargets = [\"db-*\"]\n"
    ));
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let alice_totp = f.enrol("alice", false);
    let (alice_token, _) = f.login_cert("alice", &alice_totp);
    let alice = f.auth.authenticate(&alice_token).unwrap();
    assert_eq!(
        f.auth.ssh_hosts(&alice).unwrap().hosts,
        vec!["db-*"],
        "the registered target patterns, for the CLI's Host lines"
    );

    f.join_as(&admin_token, "bastion-b.example.com");
    f.join_as(&admin_token, "bastion-a.example.com");
    assert_eq!(
        f.auth.ssh_hosts(&alice).unwrap().hosts,
        vec!["bastion-a.example.com", "bastion-b.example.com", "db-*"],
        "a plain user's session may ask; the names come sorted"
    );

    // A revoked bastion is no longer a host to offer certificates to.
    let admin = f.auth.authenticate(&admin_token).unwrap();
    f.auth
        .revoke_bastion(
            &f.caller,
            &admin,
            &api::BastionRevokeRequest {
                name: "bastion-b.example.com".into(),
                reason: None,
            },
        )
        .unwrap();
    let hosts = f.auth.ssh_hosts(&alice).unwrap();
    assert_eq!(hosts.hosts, vec!["bastion-a.example.com", "db-*"]);
    // Its host key is revoked with it, for clients' `@revoked` lines.
    assert_eq!(hosts.revoked_host_keys.len(), 1, "{hosts:?}");
}

#[test]
fn targets_lists_the_users_own_view_of_joined_bastions() {
    let f = fixture_with(&format!(
        "{POLICY}\n[roles.oncall]\nprincipals = [\"{{user}}\"]\nlogins = [\"postgres\"]\n\
         min_factor = \"otp\"\nsession_mfa = true\ntargets = {{ allow = [\"db-1\"] }}\n\
         [users]\nroot = [\"oncall\"]\n\
         [bastions.\"bastion-a.example.com\"]\ntargets = [\"db-1\", \"db-*\", \"web-1\"]\n\
         address = \"10.0.0.5:2222\"\n\
         [bastions.\"bastion-b.example.com\"]\ntargets = [\"db-2\"]\n"
    ));
    let admin_totp = f.enrol("root", true);
    let (admin_token, _) = f.login_cert("root", &admin_totp);
    let alice_totp = f.enrol("alice", false);
    let (alice_token, _) = f.login_cert("alice", &alice_totp);
    let alice = f.auth.authenticate(&alice_token).unwrap();
    // Nothing joined yet: nothing serves the registered names.
    assert_eq!(f.auth.targets(&alice).unwrap().targets, []);

    f.join_as(&admin_token, "bastion-a.example.com");
    let view = f.auth.targets(&alice).unwrap();
    assert_eq!(view.user, "alice");
    let rows: Vec<(&str, bool, &[String], &str)> = view
        .targets
        .iter()
        .map(|t| {
            (
                t.target.as_str(),
                t.pattern,
                t.logins.as_slice(),
                t.session_check.as_str(),
            )
        })
        .collect();
    // web-1 is registered but no role of alice's reaches it; db-2's bastion
    // never joined.
    assert_eq!(
        rows,
        [
            ("db-1", false, &["alice".to_owned()][..], "none"),
            ("db-*", true, &["alice".to_owned()][..], "none"),
        ]
    );
    assert_eq!(
        view.bastions,
        [api::BastionAddress {
            name: "bastion-a.example.com".into(),
            host: "10.0.0.5".into(),
            port: 2222,
        }]
    );

    // root's own roles add postgres with a per-session code; alice's view
    // does not change for it.
    let root = f.auth.authenticate(&admin_token).unwrap();
    let db1 = f
        .auth
        .targets(&root)
        .unwrap()
        .targets
        .into_iter()
        .find(|t| t.target == "db-1")
        .unwrap();
    assert_eq!(db1.logins, ["postgres", "root"]);
    assert_eq!(db1.session_check, "code");
    assert_eq!(f.auth.targets(&alice).unwrap(), view);
}
