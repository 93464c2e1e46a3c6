//! The vendored russh patch (third_party/russh/RAMPART-PATCH.md): a server
//! handler is handed exactly the bytes the client signed for a certificate
//! login and the signature over them, and they verify under the certificate's
//! key as RFC 4252 §7 publickey userauth data for this very session.
//!
//! A real russh client logs in to a real russh server over an in-memory
//! stream; the handler keeps what it was given.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};

use rampart_api::user_proof::SignedUserauth;
use russh::server::{self, Auth};
use russh::{client, MethodKind, MethodSet};
use signature::Verifier;
use ssh_key::certificate::{Builder, CertType};
use ssh_key::encoding::{Decode, Encode};
use ssh_key::{rand_core::UnwrapErr, Algorithm, Certificate, EcdsaCurve, PrivateKey, Signature};

type Seen = Arc<Mutex<Vec<(String, Vec<u8>, Vec<u8>)>>>;

struct Server {
    seen: Seen,
}

impl server::Handler for Server {
    type Error = russh::Error;

    async fn auth_openssh_certificate_signed(
        &mut self,
        user: &str,
        _certificate: &Certificate,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<Auth, Self::Error> {
        self.seen
            .lock()
            .unwrap()
            .push((user.to_owned(), signed.to_vec(), signature.to_vec()));
        Ok(Auth::Accept)
    }
}

/// A handler that implements only the old method still gets its call: the
/// new one's default forwards to it.
struct OldServer {
    called: Arc<Mutex<bool>>,
}

impl server::Handler for OldServer {
    type Error = russh::Error;

    async fn auth_openssh_certificate(
        &mut self,
        _user: &str,
        _certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        *self.called.lock().unwrap() = true;
        Ok(Auth::Accept)
    }
}

struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn rng() -> UnwrapErr<ssh_key::getrandom::SysRng> {
    UnwrapErr(ssh_key::getrandom::SysRng)
}

fn certificate(ca: &PrivateKey, key: &PrivateKey) -> Certificate {
    let mut b = Builder::new(
        [7u8; 32].to_vec(),
        key.public_key().key_data().clone(),
        1_000,
        4_000_000_000,
    )
    .unwrap();
    b.serial(9).unwrap();
    b.key_id("user=alice").unwrap();
    b.cert_type(CertType::User).unwrap();
    b.valid_principal("root").unwrap();
    b.sign(ca).unwrap()
}

fn config() -> Arc<server::Config> {
    let host = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
    Arc::new(server::Config {
        keys: vec![host],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        ..server::Config::default()
    })
}

/// Log in with `key`'s certificate to a server running `handler`.
async fn login<H: server::Handler + Send + 'static>(
    handler: H,
    key: &PrivateKey,
    cert: Certificate,
) -> bool {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(server::run_stream(config(), a, handler));
    let mut handle = client::connect_stream(Arc::new(client::Config::default()), b, Client)
        .await
        .unwrap();
    let ok = handle
        .authenticate_openssh_cert("root+db-1", Arc::new(key.clone()), cert)
        .await
        .unwrap()
        .success();
    drop(handle);
    drop(server);
    ok
}

async fn proof_for(algorithm: Algorithm) {
    let ca = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
    let key = PrivateKey::random(&mut rng(), algorithm.clone()).unwrap();
    let cert = certificate(&ca, &key);
    let seen = Seen::default();
    assert!(
        login(Server { seen: seen.clone() }, &key, cert.clone()).await,
        "{algorithm:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one signed login, one proof");
    let (user, signed, signature) = &seen[0];
    assert_eq!(user, "root+db-1");

    // RFC 4252 §7 data for this user and exactly this certificate.
    let parsed = SignedUserauth::parse(signed).unwrap();
    assert_eq!(parsed.user, "root+db-1");
    assert_eq!(parsed.key_blob, cert.encode_vec().unwrap());
    assert!(
        parsed.algorithm.ends_with("-cert-v01@openssh.com"),
        "{}",
        parsed.algorithm
    );
    // The session identifier is an exchange hash: 32 bytes or more.
    assert!(parsed.session_id.len() >= 32);

    // The signature verifies under the certificate's key, and only over
    // these bytes.
    let sig = Signature::decode(&mut signature.as_slice()).unwrap();
    let public = ssh_key::PublicKey::from(cert.public_key().clone());
    Verifier::verify(&public, signed, &sig).unwrap();
    let mut tampered = signed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(Verifier::verify(&public, &tampered, &sig).is_err());
    let other = PrivateKey::random(&mut rng(), algorithm).unwrap();
    assert!(Verifier::verify(other.public_key(), signed, &sig).is_err());
}

#[tokio::test]
async fn a_certificate_login_hands_the_handler_its_signed_userauth_data() {
    proof_for(Algorithm::Ed25519).await;
    proof_for(Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    })
    .await;
}

#[tokio::test]
async fn two_logins_sign_two_different_sessions() {
    let ca = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
    let key = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
    let cert = certificate(&ca, &key);
    let seen = Seen::default();
    for _ in 0..2 {
        assert!(login(Server { seen: seen.clone() }, &key, cert.clone()).await);
    }
    let seen = seen.lock().unwrap();
    let a = SignedUserauth::parse(&seen[0].1).unwrap();
    let b = SignedUserauth::parse(&seen[1].1).unwrap();
    assert_ne!(a.session_id, b.session_id);
}

#[tokio::test]
async fn handlers_without_the_new_method_are_unaffected() {
    let ca = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
    let key = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
    let called = Arc::new(Mutex::new(false));
    let cert = certificate(&ca, &key);
    assert!(
        login(
            OldServer {
                called: called.clone()
            },
            &key,
            cert
        )
        .await
    );
    assert!(*called.lock().unwrap());
}
