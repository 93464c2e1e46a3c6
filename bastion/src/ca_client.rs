//! Async calls from the bastion to the CA's HTTPS API.
//!
//! **Owns:** the transport: TLS pinned to the CA certificate's SHA-256
//! fingerprint (the same verifier as `rampart_api::Client`), the bastion
//! credential as a bearer token, and error bodies mapped to
//! [`rampart_api::ClientError`] so callers can branch on the stable code
//! (`session_mfa_required`, …). It keeps no state beyond the HTTP pool and
//! which of several CA URLs answered last ([`rampart_api::client::CaUrls`]:
//! a request moves to the next CA only when it could not connect).

use std::time::Duration;

use rampart_api::client::CaUrls;
use rampart_api::webauthn;
use rampart_api::{
    paths, BastionEventAck, BastionEventBatch, BastionHostCertRequest, BastionJoinRequest,
    BastionJoinResponse, BastionRevocations, CertResponse, ClientError, ErrorBody, Fingerprint,
    RecordingSealed, SessionCertRequest, SessionCertResponse, RECORDING_SHA256_HEADER,
};
use serde::de::DeserializeOwned;

/// A client for one CA (or several serving the same state), optionally
/// holding the bastion credential.
#[derive(Clone)]
pub struct CaClient {
    base: CaUrls,
    http: reqwest::Client,
    credential: Option<String>,
}

impl std::fmt::Debug for CaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaClient")
            .field("base", &self.base.all())
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl CaClient {
    /// A client for `base_url` (one URL or several, comma-separated) that
    /// trusts only the certificate `pin`.
    pub fn new(base_url: &str, pin: Fingerprint) -> Result<Self, ClientError> {
        let base = CaUrls::parse(base_url)?;
        let tls = rampart_api::client::pinned_tls_config(pin)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .user_agent(concat!("rampart-bastion/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Tls(rampart_api::report::one_line(&e)))?;
        Ok(CaClient {
            base,
            http,
            credential: None,
        })
    }

    /// The same client, authenticating with the bastion credential.
    pub fn with_credential(mut self, credential: String) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Send the request `build` makes for a base URL to the CAs in turn,
    /// moving on only when the connection itself failed.
    async fn send<T: DeserializeOwned>(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.send_ok(build)
            .await?
            .json::<T>()
            .await
            .map_err(|e| ClientError::Decode(rampart_api::report::one_line(&e)))
    }

    /// [`CaClient::send`] up to a successful response, whatever its body.
    async fn send_ok(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut failed = Vec::new();
        let mut answer = None;
        for (index, base) in self.base.attempts() {
            let rb = build(base);
            let rb = match &self.credential {
                Some(c) => rb.header(reqwest::header::AUTHORIZATION, rampart_api::bearer(c)),
                None => rb,
            };
            match rb.send().await {
                Ok(r) => {
                    self.base.answered(index);
                    answer = Some(r);
                    break;
                }
                Err(e) if e.is_connect() => {
                    failed.push(format!("{base}: {}", rampart_api::report::one_line(&e)))
                }
                Err(e) => {
                    return Err(ClientError::Transport {
                        url: base.to_owned(),
                        detail: rampart_api::report::one_line(&e),
                    })
                }
            }
        }
        let resp = answer.ok_or_else(|| ClientError::Transport {
            url: self.base.all(),
            detail: failed.join("; "),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            },
            Err(_) => ClientError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: text.chars().take(200).collect(),
            },
        })
    }

    /// The CA's public keys at `path` ([`paths::USER_CA_PUB`] or
    /// [`paths::HOST_CA_PUB`]): one per line, the signing key first.
    pub async fn ca_keys(&self, path: &str) -> Result<String, ClientError> {
        self.send_ok(|b| self.http.get(format!("{b}{path}")))
            .await?
            .text()
            .await
            .map_err(|e| ClientError::Decode(rampart_api::report::one_line(&e)))
    }

    /// `POST /v1/bastion/join`.
    pub async fn join(&self, req: &BastionJoinRequest) -> Result<BastionJoinResponse, ClientError> {
        self.send(|b| {
            self.http
                .post(format!("{b}{}", paths::BASTION_JOIN))
                .json(req)
        })
        .await
    }

    /// `POST /v1/bastion/host-cert`.
    pub async fn host_cert(
        &self,
        req: &BastionHostCertRequest,
    ) -> Result<CertResponse, ClientError> {
        self.send(|b| {
            self.http
                .post(format!("{b}{}", paths::BASTION_HOST_CERT))
                .json(req)
        })
        .await
    }

    /// `POST /v1/bastion/session-cert`.
    pub async fn session_cert(
        &self,
        req: &SessionCertRequest,
    ) -> Result<SessionCertResponse, ClientError> {
        self.send(|b| {
            self.http
                .post(format!("{b}{}", paths::BASTION_SESSION_CERT))
                .json(req)
        })
        .await
    }

    /// `POST /v1/bastion/approvals/start`: a per-session security-key approval.
    pub async fn approval_start(
        &self,
        req: &webauthn::BastionApprovalStartRequest,
    ) -> Result<webauthn::CeremonyStarted, ClientError> {
        self.send(|b| {
            self.http
                .post(format!("{b}{}", webauthn::BASTION_APPROVAL_START))
                .json(req)
        })
        .await
    }

    /// `POST /v1/bastion/approvals/wait`: long-polls (the CA holds it at most
    /// [`webauthn::WAIT_HOLD_SECS`]); a refusal (denied, expired) is an error.
    pub async fn approval_wait(
        &self,
        req: &webauthn::WaitRequest,
    ) -> Result<webauthn::CeremonyOutcome, ClientError> {
        self.send(|b| {
            self.http
                .post(format!("{b}{}", webauthn::BASTION_APPROVAL_WAIT))
                .timeout(Duration::from_secs(webauthn::WAIT_HOLD_SECS + 30))
                .json(req)
        })
        .await
    }

    /// `GET /v1/bastion/revocations?since_version=N`.
    pub async fn revocations(&self, since: Option<u64>) -> Result<BastionRevocations, ClientError> {
        let query = since
            .map(|v| format!("?since_version={v}"))
            .unwrap_or_default();
        self.send(|b| {
            self.http
                .get(format!("{b}{}{query}", paths::BASTION_REVOCATIONS))
        })
        .await
    }

    /// `POST /v1/bastion/events`: all or nothing.
    pub async fn events(&self, batch: &BastionEventBatch) -> Result<BastionEventAck, ClientError> {
        self.send(|b| {
            self.http
                .post(format!("{b}{}", paths::BASTION_EVENTS))
                .json(batch)
        })
        .await
    }

    /// `PUT /v1/bastion/recordings/{session_id}` with the digest header.
    pub async fn upload_recording(
        &self,
        session_id: &str,
        body: Vec<u8>,
        sha256_hex: &str,
        abnormal_end: bool,
    ) -> Result<RecordingSealed, ClientError> {
        let query = if abnormal_end { "?abnormal_end=1" } else { "" };
        // Bytes: a second attempt (another CA) shares the buffer, no copy.
        let body = bytes::Bytes::from(body);
        self.send(|b| {
            self.http
                .put(format!(
                    "{b}{}{query}",
                    paths::for_session(paths::BASTION_RECORDING, session_id)
                ))
                .header(RECORDING_SHA256_HEADER, sha256_hex)
                .header(reqwest::header::CONTENT_TYPE, "application/zstd")
                .timeout(Duration::from_secs(600))
                .body(body.clone())
        })
        .await
    }
}
