//! ID-token checks, driven by tokens these tests sign themselves with throwaway
//! RSA keys (`testdata/rsa_{a,b}.pem`, made by `openssl genrsa -traditional 2048`
//! for these tests only). The token is the CA's input; the provider is a peer
//! that the e2e tests run for real.

use std::time::Duration;

use rampart_api::ErrorCode;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AdditionalClaims, Audience, AuthenticationContextClass, AuthenticationMethodReference,
    ClientId, EndUserUsername, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};

use super::*;

const ISS: &str = "https://idp.example.test";
const CLIENT: &str = "rampart-ca";
const NONCE: &str = "n-0S6_WzA2Mj";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Groups {
    groups: Vec<String>,
}
impl AdditionalClaims for Groups {}

type TestToken =
    IdToken<Groups, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn key(which: &str, kid: &str) -> CoreRsaPrivateSigningKey {
    let pem = match which {
        "a" => include_str!("testdata/rsa_a.pem"),
        _ => include_str!("testdata/rsa_b.pem"),
    };
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into()))).unwrap()
}

fn jwks() -> CoreJsonWebKeySet {
    let k: CoreJsonWebKey = key("a", "k1").as_verification_key();
    CoreJsonWebKeySet::new(vec![k])
}

fn expect() -> Expectations<'static> {
    Expectations {
        issuer: ISS,
        client_id: CLIENT,
        nonce: Some(NONCE),
        skew: Duration::from_secs(60),
        username_claim: "preferred_username",
        groups_claim: "groups",
    }
}

struct Spec {
    iss: &'static str,
    aud: Vec<&'static str>,
    exp: DateTime<Utc>,
    iat: DateTime<Utc>,
    nonce: Option<&'static str>,
    auth_time: Option<DateTime<Utc>>,
    amr: Vec<&'static str>,
    username: Option<&'static str>,
    azp: Option<&'static str>,
}

fn good() -> Spec {
    Spec {
        iss: ISS,
        aud: vec![CLIENT],
        exp: now() + chrono::Duration::minutes(5),
        iat: now() - chrono::Duration::seconds(5),
        nonce: Some(NONCE),
        auth_time: Some(now() - chrono::Duration::seconds(30)),
        amr: vec!["pwd", "hwk"],
        username: Some("alice"),
        azp: None,
    }
}

fn sign(s: &Spec, signer: &CoreRsaPrivateSigningKey) -> String {
    let mut std = StandardClaims::new(SubjectIdentifier::new("sub-alice".into()));
    if let Some(u) = s.username {
        std = std.set_preferred_username(Some(EndUserUsername::new(u.into())));
    }
    let claims = IdTokenClaims::new(
        IssuerUrl::new(s.iss.into()).unwrap(),
        s.aud.iter().map(|a| Audience::new((*a).into())).collect(),
        s.exp,
        s.iat,
        std,
        Groups {
            groups: vec!["dbas".into(), "devs".into(), "not a group!".into()],
        },
    )
    .set_nonce(s.nonce.map(|n| Nonce::new(n.into())))
    .set_auth_time(s.auth_time)
    .set_auth_method_refs(Some(
        s.amr
            .iter()
            .map(|a| AuthenticationMethodReference::new((*a).into()))
            .collect(),
    ))
    .set_auth_context_ref(Some(AuthenticationContextClass::new("gold".into())))
    .set_authorized_party(s.azp.map(|a| ClientId::new(a.into())));
    let tok = TestToken::new(
        claims,
        signer,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .unwrap();
    tok.to_string()
}

fn check(raw: &str) -> Result<IdpClaims, OidcFailure> {
    validate_id_token(raw, &expect(), &jwks(), now())
}

/// Replace the header of a signed token, keeping payload and signature.
fn with_header(raw: &str, header: &str) -> String {
    let rest = raw.split_once('.').unwrap().1;
    let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
    format!("{h}.{rest}")
}

#[test]
fn a_good_token_maps_user_groups_acr_amr_and_auth_time() {
    let c = check(&sign(&good(), &key("a", "k1"))).unwrap();
    assert_eq!(c.username, "alice");
    assert_eq!(c.subject, "sub-alice");
    // Invalid group names are dropped, the rest sorted.
    assert_eq!(c.groups, vec!["dbas", "devs"]);
    assert_eq!(c.acr.as_deref(), Some("gold"));
    assert_eq!(c.amr, vec!["pwd", "hwk"]);
    assert_eq!(c.auth_time, now() - chrono::Duration::seconds(30));
}

#[test]
fn negatives_each_have_their_own_reason() {
    let a = key("a", "k1");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong audience",
            sign(
                &Spec {
                    aud: vec!["someone-else"],
                    ..good()
                },
                &a,
            ),
            "wrong_audience",
        ),
        (
            "extra untrusted audience",
            sign(
                &Spec {
                    aud: vec![CLIENT, "other"],
                    ..good()
                },
                &a,
            ),
            "wrong_audience",
        ),
        (
            "azp names another client",
            sign(
                &Spec {
                    azp: Some("other"),
                    ..good()
                },
                &a,
            ),
            "wrong_audience",
        ),
        (
            "expired beyond the skew",
            sign(
                &Spec {
                    exp: now() - chrono::Duration::seconds(61),
                    ..good()
                },
                &a,
            ),
            "token_expired",
        ),
        (
            "issued in the future",
            sign(
                &Spec {
                    iat: now() + chrono::Duration::seconds(120),
                    ..good()
                },
                &a,
            ),
            "token_expired",
        ),
        (
            "wrong issuer",
            sign(
                &Spec {
                    iss: "https://evil.test",
                    ..good()
                },
                &a,
            ),
            "wrong_issuer",
        ),
        (
            "nonce mismatch",
            sign(
                &Spec {
                    nonce: Some("another"),
                    ..good()
                },
                &a,
            ),
            "nonce_mismatch",
        ),
        (
            "nonce missing",
            sign(
                &Spec {
                    nonce: None,
                    ..good()
                },
                &a,
            ),
            "nonce_mismatch",
        ),
        (
            "bad signature (other key, same kid)",
            sign(&good(), &key("b", "k1")),
            "bad_signature",
        ),
        ("unknown kid", sign(&good(), &key("b", "k2")), "unknown_kid"),
        (
            "no auth_time",
            sign(
                &Spec {
                    auth_time: None,
                    ..good()
                },
                &a,
            ),
            "auth_time_missing",
        ),
        (
            "no user name",
            sign(
                &Spec {
                    username: None,
                    ..good()
                },
                &a,
            ),
            "username_invalid",
        ),
    ];
    for (name, raw, code) in cases {
        let got = check(&raw).expect_err(name);
        assert_eq!(got.code().as_str(), code, "{name}: {got:?}");
    }
}

#[test]
fn skew_is_honoured_but_bounded() {
    let a = key("a", "k1");
    let just_expired = Spec {
        exp: now() - chrono::Duration::seconds(30),
        ..good()
    };
    assert!(check(&sign(&just_expired, &a)).is_ok());
}

#[test]
fn alg_none_and_hmac_are_refused_before_any_key_lookup() {
    let raw = sign(&good(), &key("a", "k1"));
    let none = with_header(&raw, r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert_eq!(check(&unsigned).unwrap_err().code(), ErrorCode::AlgNone);
    assert_eq!(check(&none).unwrap_err().code(), ErrorCode::AlgNone);
    let hs = with_header(&raw, r#"{"alg":"HS256","kid":"k1"}"#);
    assert_eq!(check(&hs).unwrap_err().code(), ErrorCode::AlgNotAllowed);
    let rs512 = with_header(&raw, r#"{"alg":"RS512","kid":"k1"}"#);
    assert_eq!(check(&rs512).unwrap_err().code(), ErrorCode::AlgNotAllowed);
}

#[test]
fn malformed_and_oversized_tokens_are_refused() {
    for raw in [
        "",
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
    ] {
        assert_eq!(
            check(raw).unwrap_err().code(),
            ErrorCode::TokenMalformed,
            "{raw:?}"
        );
    }
    let big = "a".repeat(MAX_ID_TOKEN_BYTES + 1);
    assert_eq!(check(&big).unwrap_err().code(), ErrorCode::TokenMalformed);
}
