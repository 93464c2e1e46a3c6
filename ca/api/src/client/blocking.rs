//! The blocking client, for the `rampart` CLI and the host helpers.

use std::time::Duration;

use reqwest::blocking::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    api_error, pinned_tls_config, Attempts, BearerToken, CaUrls, ClientError, Fingerprint,
    CONNECT_TIMEOUT, REQUEST_TIMEOUT,
};
use crate::paths;

/// Blocking client for one CA (or several serving the same state).
#[derive(Clone, Debug)]
pub struct Client {
    base: CaUrls,
    http: reqwest::blocking::Client,
    token: Option<BearerToken>,
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
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
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
    pub fn with_token(mut self, token: impl Into<crate::WireSecret>) -> Self {
        self.token = Some(BearerToken::new(token));
        self
    }

    /// The base URL of the CA that answered last.
    pub fn base_url(&self) -> &str {
        self.base.current()
    }

    fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => rb.header(reqwest::header::AUTHORIZATION, t.header()),
            None => rb,
        }
    }

    /// Send the request `build` makes for a base URL to the CAs in turn,
    /// moving on only when the connection itself failed.
    fn send(&self, build: impl Fn(&str) -> RequestBuilder) -> Result<Response, ClientError> {
        let mut attempts = Attempts::default();
        for (index, base) in self.base.attempts() {
            match self.auth(build(base)).send() {
                Ok(resp) => {
                    self.base.answered(index);
                    if resp.status().is_success() {
                        return Ok(resp);
                    }
                    let status = resp.status();
                    return Err(api_error(status, &resp.text().unwrap_or_default()));
                }
                Err(e) => attempts.failed(base, &e)?,
            }
        }
        Err(attempts.exhausted(&self.base))
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
