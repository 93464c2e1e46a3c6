//! Host certificates the bastion presents for a target: the inner session of a
//! ProxyJump is terminated under a certificate for the target's name, asked of
//! the CA once and kept until it nears its expiry.

use std::collections::HashMap;
use std::sync::Arc;

use rampart_api::BastionHostCertRequest;
use russh::keys::ssh_key::Certificate;
use russh::server;

use super::{server_config, Shared};

/// Host certificates for targets are renewed when less than this is left. The
/// CA signs them for an hour: every inner session needs the CA for its user
/// certificate anyway, so a longer host certificate would buy no availability,
/// only a longer life for a stolen one.
const HOST_CERT_RENEW_BEFORE: u64 = 600;

/// Why the bastion has no host certificate to present for a target.
#[derive(Debug, thiserror::Error)]
pub(super) enum HostCertError {
    /// The bastion's host key could not be encoded for the request.
    #[error(transparent)]
    EncodeKey(russh::keys::ssh_key::Error),
    /// The CA refused or could not be reached.
    #[error("the CA did not issue a host certificate for {target}")]
    NotIssued {
        /// The target asked for.
        target: String,
        /// The client's error.
        #[source]
        source: rampart_api::ClientError,
    },
    /// The CA's answer does not parse as a certificate.
    #[error(transparent)]
    Unreadable(russh::keys::ssh_key::Error),
}

/// Server configs by target name, each with its certificate's `valid_before`.
pub(super) type Cache = tokio::sync::Mutex<HashMap<String, (Arc<server::Config>, u64)>>;

impl Shared {
    /// A server config presenting a host certificate for `target` (cached until near expiry).
    pub(super) async fn target_config(
        &self,
        target: &str,
    ) -> Result<Arc<server::Config>, HostCertError> {
        let mut cache = self.target_configs.lock().await;
        let now = self.clock.unix_secs();
        if let Some((c, until)) = cache.get(target) {
            if now + HOST_CERT_RENEW_BEFORE < *until {
                return Ok(c.clone());
            }
        }
        let public = self
            .host_key
            .public_key()
            .to_openssh()
            .map_err(HostCertError::EncodeKey)?;
        let resp = self
            .ca
            .host_cert(&BastionHostCertRequest {
                target: target.to_owned(),
                host_public_key: public,
            })
            .await
            .map_err(|source| HostCertError::NotIssued {
                target: target.to_owned(),
                source,
            })?;
        let cert = Certificate::from_openssh(resp.certificate.trim())
            .map_err(HostCertError::Unreadable)?;
        let until = cert.valid_before();
        let config = Arc::new(server_config(&self.host_key, Some(cert)));
        cache.insert(target.to_owned(), (config.clone(), until));
        Ok(config)
    }
}
