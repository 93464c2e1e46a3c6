//! A host renewing its own host certificate (`POST /v1/hosts/renew`), so a
//! host certified once by an admin stays certified without hand work.
//!
//! **Owns:** checking the renewal proof (see [`rampart_api::HostRenewRequest`])
//! and re-issuing the same names through the policy, as `sign_host` does for
//! an admin. Every refusal is audited (`host_cert_issued`, failure, with the
//! reason) and counts against the caller's network, like a failed login.

use rampart_api::{self as api, ErrorCode};
use rampart_audit::{EventKind, Outcome};
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg, PublicKey, SshSig};

use super::{key_fingerprint, Authority, Caller};
use crate::error::CaError;

impl Authority {
    /// Renew the host certificate `req` carries, for the key that signed it.
    pub fn renew_host_cert(
        &self,
        caller: &Caller,
        req: &api::HostRenewRequest,
    ) -> Result<api::CertResponse, CaError> {
        self.check_source_limit(caller)?;
        let refused = |code: ErrorCode, message: String| {
            self.refuse_host_cert(caller, "host renewal", code, message)
        };
        let cert = match self.check_renewal(req) {
            Ok(cert) => cert,
            Err((code, message)) => return refused(code, message),
        };
        let key = PublicKey::from(cert.public_key().clone());
        if self.store.key_revoked(&key_fingerprint(&key))?
            || self.store.serial_revoked(cert.serial())?
        {
            return refused(
                ErrorCode::KeyRevoked,
                "this host key or certificate is revoked".into(),
            );
        }
        let name = cert.key_id().to_owned();
        let line = key
            .to_openssh()
            .map_err(|e| CaError::Internal(format!("encoding host key: {e}")))?;
        let extra: Vec<String> = cert
            .valid_principals()
            .iter()
            .filter(|p| **p != name)
            .cloned()
            .collect();
        // The same lifetime as the certificate renewed; the policy clamps it.
        let ttl =
            std::time::Duration::from_secs(cert.valid_before().saturating_sub(cert.valid_after()));
        let renewed = cert.serial();
        self.sign_host(
            caller,
            &line,
            &name,
            &extra,
            Some(ttl),
            ErrorCode::HostRefused,
            |ev| {
                ev.actor(&format!("host {name}"))
                    .detail("renews_serial", renewed)
            },
        )
    }

    /// Refuse a host that asked for its own certificate (a renewal or a
    /// join): audited as a failed `host_cert_issued` with the reason, and
    /// counted against the caller's network.
    pub(super) fn refuse_host_cert<T>(
        &self,
        caller: &Caller,
        actor: &str,
        code: ErrorCode,
        message: String,
    ) -> Result<T, CaError> {
        self.note_source_failure(caller);
        self.record(
            self.event(EventKind::HostCertIssued, Outcome::Failure, Some(caller))
                .actor(actor)
                .reason(code.as_str()),
        )?;
        Err(CaError::unauthenticated(code, message))
    }

    /// The certificate when it and the proof hold (revocation aside); else the
    /// code and message to refuse with.
    fn check_renewal(
        &self,
        req: &api::HostRenewRequest,
    ) -> Result<Certificate, (ErrorCode, String)> {
        let refuse = |code: ErrorCode, message: &str| Err((code, message.to_owned()));
        let Ok(cert) = Certificate::from_openssh(req.certificate.trim()) else {
            return refuse(
                ErrorCode::CertificateMalformed,
                "certificate is not an OpenSSH certificate",
            );
        };
        if cert.cert_type() != CertType::Host {
            return refuse(
                ErrorCode::CertificateNotHost,
                "only a host certificate is renewed here",
            );
        }
        let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
        let Some(ca_fp) = std::iter::once(self.keys.host_ca.public_key())
            .chain(&self.keys.also_trusted_host)
            .map(|k| k.fingerprint(HashAlg::Sha256))
            .find(|fp| *fp == signer)
        else {
            return refuse(
                ErrorCode::CertificateForeign,
                "the certificate was not issued by this CA's host CA",
            );
        };
        let now = self.now();
        let unix_now = u64::try_from(now.timestamp()).unwrap_or(0);
        if !(cert.valid_after() <= unix_now && unix_now < cert.valid_before()) {
            return refuse(
                ErrorCode::CertificateExpired,
                "the certificate is not valid now: an expired host certificate is renewed \
                 by an admin (`rampart admin host-cert`)",
            );
        }
        if cert.validate_at(unix_now, [&ca_fp]).is_err() {
            return refuse(
                ErrorCode::CertificateInvalid,
                "the certificate's signature does not verify",
            );
        }
        if (now.timestamp() - req.signed_at).abs() > api::HOST_RENEW_MAX_SKEW_SECONDS {
            return refuse(
                ErrorCode::RenewalProofInvalid,
                "the proof's time is more than 5 minutes from the CA's clock",
            );
        }
        let Ok(sig) = SshSig::from_pem(req.signature.trim()) else {
            return refuse(
                ErrorCode::RenewalProofInvalid,
                "signature is not an SSH signature",
            );
        };
        let key = PublicKey::from(cert.public_key().clone());
        let message = api::HostRenewRequest::signed_message(&req.certificate, req.signed_at);
        if sig.public_key() != key.key_data()
            || key
                .verify(api::HOST_RENEW_NAMESPACE, &message, &sig)
                .is_err()
        {
            return refuse(
                ErrorCode::RenewalProofInvalid,
                "the proof is not a signature by the certificate's key over this request",
            );
        }
        Ok(cert)
    }
}
