//! Host certificates for the targets a bastion fronts, and the revocation feed.

use rampart_api as api;
use rampart_api::ErrorCode;
use rampart_audit::{EventKind, Outcome};

use crate::authority::{key_fingerprint, Authority, Caller};
use crate::error::CaError;

use super::*;

impl Authority {
    /// `POST /v1/bastion/host-cert`: a short-lived host certificate for a target.
    pub fn bastion_host_cert(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::BastionHostCertRequest,
    ) -> Result<api::CertResponse, CaError> {
        // The bastion terminates inner sessions under its own host key, the one
        // it joined with: a certificate for any other key would let whoever
        // holds the credential impersonate a target anywhere.
        let key = self.parse_public_key(&req.host_public_key)?;
        if key_fingerprint(&key) != bastion.record.host_key_fingerprint {
            self.record(
                self.event(EventKind::CertDenied, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .target(&req.target)
                    .reason("a target host certificate was asked for a key the bastion did not join with")
                    .detail("code", "host_key_not_registered")
                    .detail("key_fingerprint", key_fingerprint(&key)),
            )?;
            return Err(CaError::bad_request(
                ErrorCode::HostKeyNotRegistered,
                "a bastion gets target host certificates only for the host key it joined with",
            ));
        }
        let policy = self.policy()?;
        if let Err(d) =
            rampart_policy::bastion_may_serve(&policy, &bastion.record.name, &req.target)
        {
            self.record(
                self.event(EventKind::CertDenied, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .target(&req.target)
                    .reason(&d.reason)
                    .detail("code", d.code.as_str()),
            )?;
            return Err(CaError::forbidden(d.code.into(), d.reason));
        }
        self.sign_host(
            caller,
            &req.host_public_key,
            &req.target,
            &[],
            Some(TARGET_HOST_CERT_TTL),
            ErrorCode::InvalidTarget,
            |ev| ev.actor(&bastion.actor()),
        )
    }

    /// `GET /v1/bastion/revocations`.
    pub fn bastion_revocations(
        &self,
        _bastion: &Bastion,
        since_version: Option<u64>,
    ) -> Result<api::BastionRevocations, CaError> {
        let rev = self.store.revocations()?;
        let disabled: Vec<String> = self
            .store
            .users()?
            .into_iter()
            .filter(|u| u.disabled)
            .map(|u| u.name)
            .collect();
        if since_version == Some(rev.version) {
            return Ok(api::BastionRevocations {
                version: rev.version,
                changed: false,
                serials: Vec::new(),
                key_fingerprints: Vec::new(),
                disabled_users: disabled,
            });
        }
        Ok(api::BastionRevocations {
            version: rev.version,
            changed: true,
            serials: rev.serials,
            key_fingerprints: rev.key_fingerprints,
            disabled_users: disabled,
        })
    }
}
