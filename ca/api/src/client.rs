//! A small blocking client for the CA's API.
//!
//! The CA serves HTTPS with a self-signed certificate made by `rampart-ca init`, so
//! the client trusts exactly one certificate: the one whose SHA-256 fingerprint the
//! operator printed and the user passed (`--ca-fingerprint SHA256:…`). No system
//! roots, no trust-on-first-use. The TLS handshake signature is still verified with
//! that certificate's key, so a copied certificate without its key does not pass.
//!
//! A client may know several CAs that serve the same state (one database, the
//! same keys and TLS certificate): [`CaUrls`]. A request goes to the CA that
//! answered last; when it cannot connect there, it tries the others in order.
//! Only a failed *connection* moves on: once a request has reached a CA it is
//! never sent again elsewhere, so nothing is done twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::StatusCode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{paths, ErrorBody};

/// Errors of the API client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The fingerprint is not `SHA256:<base64>` (or 64 hex digits).
    #[error(
        "invalid CA fingerprint {0:?}: expected SHA256:<base64> as printed by `rampart-ca init`"
    )]
    BadFingerprint(String),
    /// The URL is not an `https://` URL.
    #[error("invalid CA URL {0:?}: expected https://host:port")]
    BadUrl(String),
    /// TLS set-up failed.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    /// Could not reach the CA, or the certificate did not match the pin.
    #[error("cannot reach the CA at {url}: {detail}")]
    Transport {
        /// Base URL.
        url: String,
        /// Cause, flattened into one line.
        detail: String,
    },
    /// The CA answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Message from the CA.
        message: String,
    },
    /// The CA answered with something that is not the expected JSON.
    #[error("unexpected answer from the CA: {0}")]
    Decode(String),
}

impl ClientError {
    /// The stable error code for API errors, else `None`.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Parse `SHA256:<unpadded base64>` (the form `rampart-ca init` prints), or
    /// 64 hex digits with optional colons.
    pub fn parse(s: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadFingerprint(s.to_owned());
        let s = s.trim();
        let bytes = if let Some(b64) = s.strip_prefix("SHA256:") {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(b64.trim_end_matches('='))
                .map_err(|_| bad())?
        } else {
            let hex: String = s.chars().filter(|c| *c != ':').collect();
            if hex.len() != 64 {
                return Err(bad());
            }
            (0..32)
                .map(|i| {
                    hex.get(i * 2..i * 2 + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(bad)?
        };
        let arr: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Fingerprint(arr))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.0)
        )
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: Fingerprint,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Constant time is not needed for comparing public data, but it costs nothing.
        let got = Fingerprint::of_der(end_entity.as_ref());
        if got.0 == self.pin.0 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "CA certificate fingerprint {got} does not match the pinned {}",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration that trusts exactly the certificate `pin` (and
/// still checks the handshake signature with its key). Public so that other HTTP
/// stacks (tests sending deliberately malformed requests, later the bastion) pin
/// the CA the same way.
pub fn pinned_tls_config(pin: Fingerprint) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin, provider }))
            .with_no_client_auth(),
    )
}

/// Most CA URLs one client takes: a list longer than this is a mistake.
pub const MAX_CA_URLS: usize = 16;

/// The CA's base URLs: one (`https://host:port`) or several CAs serving the
/// same state, comma-separated, and which of them answered last.
#[derive(Debug, Clone)]
pub struct CaUrls {
    urls: Arc<[String]>,
    preferred: Arc<AtomicUsize>,
}

impl CaUrls {
    /// Parse `https://a:8443` or `https://a:8443,https://b:8443`.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] for an empty entry, one that is not `https://`,
    /// or more than [`MAX_CA_URLS`].
    pub fn parse(list: &str) -> Result<Self, ClientError> {
        let mut urls = Vec::new();
        for part in list.split(',') {
            let url = part.trim().trim_end_matches('/');
            if url.len() <= "https://".len() || !url.starts_with("https://") {
                return Err(ClientError::BadUrl(list.to_owned()));
            }
            if !urls.iter().any(|u: &String| u == url) {
                urls.push(url.to_owned());
            }
        }
        if urls.len() > MAX_CA_URLS {
            return Err(ClientError::BadUrl(format!(
                "{} CA URLs (at most {MAX_CA_URLS})",
                urls.len()
            )));
        }
        Ok(Self {
            urls: urls.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The URL that answered last (the first one until then).
    pub fn current(&self) -> &str {
        let i = self.preferred.load(Ordering::Relaxed);
        self.urls
            .get(i)
            .or_else(|| self.urls.first())
            .map_or("", String::as_str)
    }

    /// Every URL, comma-separated, as given.
    pub fn all(&self) -> String {
        self.urls.join(",")
    }

    /// The URLs in the order to try them: the one that answered last, then
    /// the others in their listed order.
    pub fn attempts(&self) -> Vec<(usize, &str)> {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut order: Vec<(usize, &str)> = self
            .urls
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == first)
            .map(|(i, u)| (i, u.as_str()))
            .collect();
        order.extend(
            self.urls
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(i, u)| (i, u.as_str())),
        );
        order
    }

    /// Remember that the URL at `index` answered.
    pub fn answered(&self, index: usize) {
        self.preferred.store(index, Ordering::Relaxed);
    }
}

/// Blocking client for one CA (or several serving the same state).
#[derive(Debug, Clone)]
pub struct Client {
    base: CaUrls,
    http: reqwest::blocking::Client,
    token: Option<String>,
}

impl Client {
    /// A client for `base_url` (`https://host:port`, or several such URLs
    /// comma-separated: see [`CaUrls`]) that trusts only the certificate with
    /// fingerprint `pin`.
    pub fn new(base_url: &str, pin: Fingerprint) -> Result<Self, ClientError> {
        let base = CaUrls::parse(base_url)?;
        let tls = pinned_tls_config(pin)?;
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Tls(crate::report::one_line(&e)))?;
        Ok(Client {
            base,
            http,
            token: None,
        })
    }

    /// The same client, sending `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The base URL of the CA that answered last.
    pub fn base_url(&self) -> &str {
        self.base.current()
    }

    fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => rb.header(reqwest::header::AUTHORIZATION, crate::bearer(t)),
            None => rb,
        }
    }

    /// Send the request `build` makes for a base URL to the CAs in turn,
    /// moving on only when the connection itself failed.
    fn send(&self, build: impl Fn(&str) -> RequestBuilder) -> Result<Response, ClientError> {
        let mut failed = Vec::new();
        let mut resp = None;
        for (index, base) in self.base.attempts() {
            match self.auth(build(base)).send() {
                Ok(r) => {
                    self.base.answered(index);
                    resp = Some(r);
                    break;
                }
                Err(e) if e.is_connect() => {
                    failed.push(format!("{base}: {}", crate::report::one_line(&e)))
                }
                Err(e) => {
                    return Err(ClientError::Transport {
                        url: base.to_owned(),
                        detail: crate::report::one_line(&e),
                    })
                }
            }
        }
        let resp = resp.ok_or_else(|| ClientError::Transport {
            url: self.base.all(),
            detail: failed.join("; "),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: status_code_name(status),
                message: text.chars().take(200).collect(),
            },
        })
    }

    /// `GET` a JSON document.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.send(|base| self.http.get(format!("{base}{path}")))?;
        resp.json()
            .map_err(|e| ClientError::Decode(crate::report::one_line(&e)))
    }

    /// `GET` raw bytes.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self.send(|base| self.http.get(format!("{base}{path}")))?;
        resp.bytes()
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Decode(crate::report::one_line(&e)))
    }

    /// `POST` JSON, read JSON.
    pub fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let resp = self.send(|base| self.http.post(format!("{base}{path}")).json(body))?;
        resp.json()
            .map_err(|e| ClientError::Decode(crate::report::one_line(&e)))
    }

    /// `POST` JSON, read JSON, allowing this one request `timeout` instead of the
    /// client's default 30 s: for long-polls the CA holds open (e.g.
    /// [`crate::webauthn::WAIT`], up to [`crate::webauthn::WAIT_HOLD_SECS`]), which
    /// must not be cut short by a loaded CA answering a little late.
    pub fn post_json_timeout<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let resp = self.send(|base| {
            self.http
                .post(format!("{base}{path}"))
                .json(body)
                .timeout(timeout)
        })?;
        resp.json()
            .map_err(|e| ClientError::Decode(crate::report::one_line(&e)))
    }

    /// `POST` with an empty body, expecting no content.
    pub fn post_empty(&self, path: &str) -> Result<(), ClientError> {
        self.send(|base| self.http.post(format!("{base}{path}")))
            .map(|_| ())
    }

    /// `GET /v1/health`.
    pub fn health(&self) -> Result<crate::Health, ClientError> {
        self.get_json(paths::HEALTH)
    }

    /// The user CA public keys, one per line, the signing one first.
    pub fn user_ca(&self) -> Result<String, ClientError> {
        self.get_bytes(paths::USER_CA_PUB)
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
    }

    /// The user CA key set exactly as served, and its SSHSIG
    /// ([`crate::CA_KEYS_SIG_NAMESPACE`]), for a host to check before it
    /// trusts the set.
    pub fn user_ca_signed(&self) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        Ok((
            self.get_bytes(paths::USER_CA_PUB)?,
            self.get_bytes(paths::USER_CA_PUB_SIG)?,
        ))
    }

    /// The host CA public keys, one per line, the signing one first.
    pub fn host_ca(&self) -> Result<String, ClientError> {
        self.get_bytes(paths::HOST_CA_PUB)
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
    }
}

fn status_code_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(' ', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_and_rejects_garbage() {
        let fp = Fingerprint::of_der(b"hello");
        let s = fp.to_string();
        assert!(s.starts_with("SHA256:"));
        assert_eq!(Fingerprint::parse(&s).unwrap(), fp);
        let hex: String = fp.0.iter().map(|b| format!("{b:02X}:")).collect();
        assert_eq!(Fingerprint::parse(hex.trim_end_matches(':')).unwrap(), fp);
        assert!(Fingerprint::parse("SHA256:abc").is_err());
        assert!(Fingerprint::parse("nope").is_err());
    }

    #[test]
    fn http_urls_are_refused() {
        let fp = Fingerprint::of_der(b"x");
        assert!(matches!(
            Client::new("http://127.0.0.1:1", fp),
            Err(ClientError::BadUrl(_))
        ));
    }

    #[test]
    fn a_list_of_ca_urls_is_tried_from_the_last_that_answered() {
        let urls = CaUrls::parse("https://a:8443/, https://b:8443,https://a:8443").unwrap();
        assert_eq!(
            urls.all(),
            "https://a:8443,https://b:8443",
            "trimmed, deduplicated"
        );
        assert_eq!(urls.current(), "https://a:8443");
        assert_eq!(
            urls.attempts(),
            [(0, "https://a:8443"), (1, "https://b:8443")]
        );
        urls.answered(1);
        assert_eq!(urls.current(), "https://b:8443");
        assert_eq!(
            urls.attempts(),
            [(1, "https://b:8443"), (0, "https://a:8443")]
        );
        // Clones share what they learnt (the CLI clones its client per token).
        let clone = urls.clone();
        clone.answered(0);
        assert_eq!(urls.current(), "https://a:8443");
        for bad in [
            "",
            ",",
            "https://a,",
            "https://a,http://b",
            "https://",
            "ftp://x",
        ] {
            assert!(
                matches!(CaUrls::parse(bad), Err(ClientError::BadUrl(_))),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_CA_URLS).map(|i| format!("https://h{i}")).collect();
        assert!(CaUrls::parse(&many.join(",")).is_err());
    }

    #[test]
    fn when_no_ca_can_be_reached_the_error_names_each() {
        // Two closed loopback ports: both refuse the connection.
        let closed = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (a, b) = (closed(), closed());
        let client = Client::new(
            &format!("https://127.0.0.1:{a},https://127.0.0.1:{b}"),
            Fingerprint::of_der(b"x"),
        )
        .unwrap();
        let err = client.health().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{a}")) && text.contains(&format!("127.0.0.1:{b}")),
            "{text}"
        );
        assert!(matches!(err, ClientError::Transport { .. }));
    }
}
