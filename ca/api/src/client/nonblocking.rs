//! The async client, for `rampart-bastion`: the same pinned TLS, CA list and
//! failover as [`super::Client`], on tokio. The bastion's calls build on
//! [`AsyncClient::send`]; the JSON helpers cover the plain ones.

use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    api_error, pinned_tls_config, Attempts, BearerToken, CaUrls, ClientError, Fingerprint,
    CONNECT_TIMEOUT, REQUEST_TIMEOUT,
};

/// Async client for one CA (or several serving the same state).
#[derive(Clone, Debug)]
pub struct AsyncClient {
    base: CaUrls,
    http: reqwest::Client,
    token: Option<BearerToken>,
}

impl AsyncClient {
    /// A client for `base_url` (one URL or several, comma-separated: see
    /// [`CaUrls`]) that trusts only the certificate `pin`, introducing itself
    /// as `user_agent`.
    pub fn new(base_url: &str, pin: Fingerprint, user_agent: &str) -> Result<Self, ClientError> {
        let base = CaUrls::parse(base_url)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(pinned_tls_config(pin)?)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(user_agent)
            .build()
            .map_err(|e| ClientError::Tls(crate::report::one_line(&e)))?;
        Ok(AsyncClient {
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

    /// Every CA URL, comma-separated.
    pub fn base_urls(&self) -> String {
        self.base.all()
    }

    /// Send the request `build` makes (from the HTTP client and a base URL)
    /// to the CAs in turn, moving on only when the connection itself failed;
    /// a non-2xx answer is the [`ClientError::Api`] its body names.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut attempts = Attempts::default();
        for (index, base) in self.base.attempts() {
            let mut rb = build(&self.http, base);
            if let Some(t) = &self.token {
                rb = rb.header(reqwest::header::AUTHORIZATION, t.header());
            }
            match rb.send().await {
                Ok(resp) => {
                    self.base.answered(index);
                    if resp.status().is_success() {
                        return Ok(resp);
                    }
                    let status = resp.status();
                    return Err(api_error(status, &resp.text().await.unwrap_or_default()));
                }
                Err(e) => attempts.failed(base, &e)?,
            }
        }
        Err(attempts.exhausted(&self.base))
    }

    /// Read a successful answer as JSON.
    pub async fn json<T: DeserializeOwned>(resp: Response) -> Result<T, ClientError> {
        resp.json()
            .await
            .map_err(|e| ClientError::Decode(crate::report::one_line(&e)))
    }

    /// `GET` a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Self::json(self.send(|http, b| http.get(format!("{b}{path}"))).await?).await
    }

    /// `GET` a text document.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        self.send(|http, b| http.get(format!("{b}{path}")))
            .await?
            .text()
            .await
            .map_err(|e| ClientError::Decode(crate::report::one_line(&e)))
    }

    /// `POST` JSON, read JSON.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        Self::json(
            self.send(|http, b| http.post(format!("{b}{path}")).json(body))
                .await?,
        )
        .await
    }
}
