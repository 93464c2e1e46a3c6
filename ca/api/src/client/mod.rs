//! Clients for the CA's API: [`Client`] (blocking, for the CLI and the host
//! helpers) and [`AsyncClient`] (for the bastion), which share the TLS pin, the
//! list of CAs and how a request fails over and reads an error.
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

use base64::Engine as _;
use reqwest::StatusCode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::ErrorBody;

mod blocking;
mod nonblocking;

pub use blocking::Client;
pub use nonblocking::AsyncClient;

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

/// The bearer token a client sends: a [`WireSecret`](crate::WireSecret), so
/// zeroized when dropped and never in `Debug`.
#[derive(Clone, Debug)]
pub(crate) struct BearerToken(crate::WireSecret);

/// How long either client waits for a whole request (a call may set longer:
/// long-polls, uploads), and for a connection.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl BearerToken {
    fn new(token: impl Into<crate::WireSecret>) -> Self {
        BearerToken(token.into())
    }

    /// The `Authorization` header value, marked sensitive so that reqwest
    /// keeps it out of its own debug output too.
    fn header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::from_str(&crate::bearer(self.0.expose()))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }
}

/// What the attempts of one request at the CAs came to, for the error when
/// none answered. Shared by both clients, so that they fail over alike.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    failed: Vec<String>,
}

impl Attempts {
    /// Sending to `base` failed with `e`: go on to the next CA when the
    /// connection itself failed, else stop with the error (the request may
    /// have reached that CA, and is never sent twice).
    pub(crate) fn failed(&mut self, base: &str, e: &reqwest::Error) -> Result<(), ClientError> {
        if e.is_connect() {
            self.failed
                .push(format!("{base}: {}", crate::report::one_line(e)));
            Ok(())
        } else {
            Err(ClientError::Transport {
                url: base.to_owned(),
                detail: crate::report::one_line(e),
            })
        }
    }

    /// No CA could be reached: the error names each.
    pub(crate) fn exhausted(self, urls: &CaUrls) -> ClientError {
        ClientError::Transport {
            url: urls.all(),
            detail: self.failed.join("; "),
        }
    }
}

/// The error a non-2xx answer with body `text` stands for: the CA's
/// [`ErrorBody`] when it is one, else the status's name as the code.
pub(crate) fn api_error(status: StatusCode, text: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            code: body.code,
            message: body.message,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            message: text.chars().take(200).collect(),
        },
    }
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

    #[test]
    fn both_clients_fail_over_alike_and_read_an_error_body() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let urls = format!("https://127.0.0.1:{closed}");
        let blocking = Client::new(&urls, Fingerprint::of_der(b"x"))
            .unwrap()
            .health()
            .unwrap_err();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let nonblocking = rt
            .block_on(
                AsyncClient::new(&urls, Fingerprint::of_der(b"x"), "test")
                    .unwrap()
                    .get_json::<crate::Health>(crate::paths::HEALTH),
            )
            .unwrap_err();
        assert!(matches!(nonblocking, ClientError::Transport { .. }));
        assert_eq!(blocking.to_string(), nonblocking.to_string());

        let body = r#"{"code":"session_missing","message":"log in"}"#;
        let err = api_error(StatusCode::UNAUTHORIZED, body);
        assert_eq!(err.api_code(), Some("session_missing"));
        let err = api_error(StatusCode::BAD_GATEWAY, "<html>proxy</html>");
        assert_eq!(err.api_code(), Some("bad_gateway"));
        assert!(err.to_string().contains("<html>proxy</html>"), "{err}");
    }

    #[test]
    fn a_client_never_prints_its_token() {
        let fp = Fingerprint::of_der(b"x");
        let c = Client::new("https://a:1", fp).unwrap().with_token("s3cret");
        let a = AsyncClient::new("https://a:1", fp, "t")
            .unwrap()
            .with_token("s3cret");
        assert!(!format!("{c:?}{a:?}").contains("s3cret"));
    }
}
