//! Async calls from the bastion to the CA's HTTPS API.
//!
//! **Owns:** which endpoint each bastion call uses, with what body, query,
//! headers and timeout. The transport is [`rampart_api::client::AsyncClient`],
//! the async twin of the CLI's client: TLS pinned to the CA certificate's
//! SHA-256 fingerprint, the bastion credential as a bearer token, failover
//! across several CA URLs only when a connection failed, and error bodies
//! mapped to [`rampart_api::ClientError`] so callers can branch on the stable
//! code (`session_mfa_required`, …).

use std::time::Duration;

use rampart_api::client::AsyncClient;
use rampart_api::webauthn;
use rampart_api::{
    paths, BastionEventAck, BastionEventBatch, BastionHostCertRequest, BastionJoinRequest,
    BastionJoinResponse, BastionRevocations, CertResponse, ClientError, Fingerprint,
    RecordingSealed, RevocationsQuery, SessionCertRequest, SessionCertResponse,
    RECORDING_SHA256_HEADER,
};

/// A client for one CA (or several serving the same state), optionally
/// holding the bastion credential.
#[derive(Clone, Debug)]
pub struct CaClient {
    api: AsyncClient,
}

impl CaClient {
    /// A client for `base_url` (one URL or several, comma-separated) that
    /// trusts only the certificate `pin`.
    pub fn new(base_url: &str, pin: Fingerprint) -> Result<Self, ClientError> {
        let agent = concat!("rampart-bastion/", env!("CARGO_PKG_VERSION"));
        Ok(CaClient {
            api: AsyncClient::new(base_url, pin, agent)?,
        })
    }

    /// The same client, authenticating with the bastion credential.
    pub fn with_credential(self, credential: rampart_api::WireSecret) -> Self {
        CaClient {
            api: self.api.with_token(credential),
        }
    }

    /// The CA's public keys at `path` ([`paths::USER_CA_PUB`] or
    /// [`paths::HOST_CA_PUB`]): one per line, the signing key first.
    pub async fn ca_keys(&self, path: &str) -> Result<String, ClientError> {
        self.api.get_text(path).await
    }

    /// `POST /v1/bastion/join`.
    pub async fn join(&self, req: &BastionJoinRequest) -> Result<BastionJoinResponse, ClientError> {
        self.api.post_json(paths::BASTION_JOIN, req).await
    }

    /// `POST /v1/bastion/host-cert`.
    pub async fn host_cert(
        &self,
        req: &BastionHostCertRequest,
    ) -> Result<CertResponse, ClientError> {
        self.api.post_json(paths::BASTION_HOST_CERT, req).await
    }

    /// `POST /v1/bastion/session-cert`.
    pub async fn session_cert(
        &self,
        req: &SessionCertRequest,
    ) -> Result<SessionCertResponse, ClientError> {
        self.api.post_json(paths::BASTION_SESSION_CERT, req).await
    }

    /// `POST /v1/bastion/approvals/start`: a per-session security-key approval.
    pub async fn approval_start(
        &self,
        req: &webauthn::BastionApprovalStartRequest,
    ) -> Result<webauthn::CeremonyStarted, ClientError> {
        self.api
            .post_json(webauthn::BASTION_APPROVAL_START, req)
            .await
    }

    /// `POST /v1/bastion/approvals/wait`: long-polls (the CA holds it at most
    /// [`webauthn::WAIT_HOLD_SECS`]); a refusal (denied, expired) is an error.
    pub async fn approval_wait(
        &self,
        req: &webauthn::WaitRequest,
    ) -> Result<webauthn::CeremonyOutcome, ClientError> {
        let resp = self
            .api
            .send(|http, b| {
                http.post(format!("{b}{}", webauthn::BASTION_APPROVAL_WAIT))
                    .timeout(Duration::from_secs(webauthn::WAIT_HOLD_SECS + 30))
                    .json(req)
            })
            .await?;
        AsyncClient::json(resp).await
    }

    /// `GET /v1/bastion/revocations?since_version=N`.
    pub async fn revocations(&self, since: Option<u64>) -> Result<BastionRevocations, ClientError> {
        let query = RevocationsQuery {
            since_version: since,
        };
        let resp = self
            .api
            .send(|http, b| {
                http.get(format!("{b}{}", paths::BASTION_REVOCATIONS))
                    .query(&query)
            })
            .await?;
        AsyncClient::json(resp).await
    }

    /// `POST /v1/bastion/events`: all or nothing.
    pub async fn events(&self, batch: &BastionEventBatch) -> Result<BastionEventAck, ClientError> {
        self.api.post_json(paths::BASTION_EVENTS, batch).await
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
        let path = paths::for_session(paths::BASTION_RECORDING, session_id);
        let resp = self
            .api
            .send(|http, b| {
                http.put(format!("{b}{path}{query}"))
                    .header(RECORDING_SHA256_HEADER, sha256_hex)
                    .header(reqwest::header::CONTENT_TYPE, "application/zstd")
                    .timeout(Duration::from_secs(600))
                    .body(body.clone())
            })
            .await?;
        AsyncClient::json(resp).await
    }
}
