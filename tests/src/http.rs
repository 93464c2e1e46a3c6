//! A raw HTTPS client pinned to the CA's certificate, for requests the typed
//! `rampart_api::Client` cannot send: malformed JSON, oversized bodies, unknown
//! fields.

use std::sync::Arc;
use std::time::Duration;

use rampart_api::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Trust exactly the certificate with this fingerprint; still check the handshake
/// signature with its key.
#[derive(Debug)]
struct Pinned {
    pin: Fingerprint,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Fingerprint::of_der(end_entity.as_ref()) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "CA certificate does not match the pin".into(),
            ))
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

/// What the CA answered.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// Body text (lossy UTF-8).
    pub body: String,
}

impl RawResponse {
    /// The body as the API's error shape, or `None` if it is not one.
    pub fn error_body(&self) -> Option<rampart_api::ErrorBody> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Blocking raw client for one CA.
#[derive(Debug, Clone)]
pub struct RawHttp {
    base: String,
    http: reqwest::blocking::Client,
}

impl RawHttp {
    /// A client for `base` trusting only the certificate `pin`.
    pub fn new(base: &str, pin: Fingerprint) -> RawHttp {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { pin, provider }))
            .with_no_client_auth();
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build HTTP client");
        RawHttp {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// `POST path` with `body` as `application/json` (whether or not it is JSON),
    /// with an optional bearer token.
    pub fn post(&self, path: &str, body: Vec<u8>, bearer: Option<&str>) -> RawResponse {
        self.try_post(path, body, bearer)
            .unwrap_or_else(|e| panic!("request to {path} failed at the transport level: {e}"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RawResponse {
        Self::finish(self.http.get(format!("{}{path}", self.base)), path)
    }

    fn finish(rb: reqwest::blocking::RequestBuilder, path: &str) -> RawResponse {
        Self::try_finish(rb)
            .unwrap_or_else(|e| panic!("request to {path} failed at the transport level: {e}"))
    }

    /// Like [`RawHttp::post`], but a transport failure is returned, not a panic.
    pub fn try_post(
        &self,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<RawResponse, String> {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(t) = bearer {
            rb = rb.header(reqwest::header::AUTHORIZATION, rampart_api::bearer(t));
        }
        Self::try_finish(rb)
    }

    fn try_finish(rb: reqwest::blocking::RequestBuilder) -> Result<RawResponse, String> {
        let resp = rb.send().map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().unwrap_or_default();
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    }
}
