//! The user's outer certificate, the one the user logged in to the bastion
//! with: that it is one well-formed OpenSSH certificate, that the user's own
//! login signature proves it (and binds that proof to this bastion), that it
//! is a user certificate of this CA valid now, that this CA issued it to the
//! user its key ID names, for the same key, unrevoked, and that this user
//! exists and is enabled.
//!
//! **Owns:** every refusal about the outer certificate and its user
//! (`certificate_*`, `user_proof_*`, `user_disabled`, `user_unknown`), in the
//! order the module docs of `bastion` give.

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_api::ErrorCode;
use ssh_key::certificate::CertType;
use ssh_key::Certificate;

use crate::authority::{key_fingerprint, to_chrono, Authority};
use crate::store::{CertKind, ProofClaim, UserRecord};

use super::super::{key_id_user, Bastion, Refusal, MAX_CERT_LINE};
use super::Checked;

/// The request's `user_certificate` as one OpenSSH certificate line; a
/// malformed one is the bastion's bad request.
pub(super) fn parse(line: &str) -> Result<Certificate, Refusal> {
    let line = line.trim();
    if line.is_empty() || line.len() > MAX_CERT_LINE {
        return Err(Refusal::bad_request(
            ErrorCode::CertificateMalformed,
            "user_certificate must be one OpenSSH certificate line",
        ));
    }
    Certificate::from_openssh(line).map_err(|e| {
        Refusal::bad_request(
            ErrorCode::CertificateMalformed,
            format!("user_certificate is not an OpenSSH certificate ({e})"),
        )
    })
}

impl Authority {
    /// The user's proof of presence, before any other decision, then the
    /// certificate itself; a proof that passes is claimed for this bastion.
    pub(super) fn check_outer_cert(
        &self,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        outer: &Certificate,
        now: DateTime<Utc>,
    ) -> Checked<()> {
        // The certificate is public; the signature the user's client made to
        // log in to the bastion on this connection is not (see user_proof).
        let proof = crate::authority::user_proof::verify(req.user_proof.as_ref(), outer)
            .map_err(|(code, message)| Ok(Refusal::new(code, message)))?;
        self.outer_cert_is_ours(outer, now).map_err(Ok)?;
        // A certificate of this CA, valid now: bind the proof to this bastion
        // (only now, so that only this CA's certificates, whose lifetime
        // policy bounds, leave rows behind).
        self.claim_user_proof(bastion, outer, &proof, now)
            .map_err(|r| {
                r.map(|r| Refusal {
                    user: key_id_user(outer.key_id()).map(str::to_owned),
                    ..r
                })
            })
    }

    /// A user certificate, signed by one of this CA's trusted user CA keys
    /// (the signing one, or during a rotation the next or the replaced one),
    /// valid at `now` by the CA's clock, whose signature verifies.
    fn outer_cert_is_ours(&self, outer: &Certificate, now: DateTime<Utc>) -> Result<(), Refusal> {
        if outer.cert_type() != CertType::User {
            return Err(Refusal::new(
                ErrorCode::CertificateNotUser,
                "user_certificate is a host certificate",
            ));
        }
        let signer = outer.signature_key().fingerprint(ssh_key::HashAlg::Sha256);
        let Some(ca_fp) = std::iter::once(self.keys.user_ca.public_key())
            .chain(&self.keys.also_trusted_user)
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256))
            .find(|fp| *fp == signer)
        else {
            return Err(Refusal::new(
                ErrorCode::CertificateForeign,
                "the user certificate was not issued by this CA",
            ));
        };
        let unix_now = u64::try_from(now.timestamp()).unwrap_or(0);
        // PROTOCOL.certkeys: "valid after <= current time < valid before".
        if !(outer.valid_after() <= unix_now && unix_now < outer.valid_before()) {
            return Err(Refusal::new(
                ErrorCode::CertificateExpired,
                "the user certificate is not valid now (expired or not yet valid); run `rampart login`",
            ));
        }
        if outer.validate_at(unix_now, [&ca_fp]).is_err() {
            return Err(Refusal::new(
                ErrorCode::CertificateInvalid,
                "the user certificate's signature does not verify",
            ));
        }
        Ok(())
    }

    /// Bind a verified proof to `bastion` on first use; refuse it when another
    /// bastion presented it first or its window is over
    /// ([`crate::authority::user_proof::USER_PROOF_WINDOW`], and never past the outer
    /// certificate's expiry).
    fn claim_user_proof(
        &self,
        bastion: &Bastion,
        outer: &Certificate,
        proof: &crate::authority::user_proof::VerifiedProof,
        now: DateTime<Utc>,
    ) -> Checked<()> {
        use crate::authority::user_proof::{CODE_EXPIRED, CODE_FOREIGN, USER_PROOF_WINDOW};
        let cert_end = i64::try_from(outer.valid_before())
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let accept_until = (now + to_chrono(USER_PROOF_WINDOW)).min(cert_end);
        match self
            .store
            .claim_user_proof(
                &proof.session_hash,
                &bastion.record.name,
                now,
                accept_until,
                cert_end,
            )
            .map_err(|e| Err(e.into()))?
        {
            ProofClaim::First | ProofClaim::Again => Ok(()),
            ProofClaim::Foreign(owner) => Err(Ok(Refusal::new(
                CODE_FOREIGN,
                format!(
                    "this proof of the user's login was presented first by bastion {owner:?}; \
                     a proof is good only at the bastion the user logged in to"
                ),
            ))),
            ProofClaim::Expired => Err(Ok(Refusal::new(
                CODE_EXPIRED,
                format!(
                    "this proof of the user's login was first used more than {} minutes ago",
                    USER_PROOF_WINDOW.as_secs() / 60
                ),
            ))),
        }
    }

    /// The user the outer certificate's key ID names, when this CA's record of
    /// its serial says it was issued to that user for that key, and neither
    /// the serial nor the key is revoked.
    pub(super) fn recorded_owner(&self, outer: &Certificate) -> Checked<String> {
        let Some(user_name) = key_id_user(outer.key_id()).map(str::to_owned) else {
            return Err(Ok(Refusal::new(
                ErrorCode::CertificateUnknown,
                "the user certificate's key ID names no user",
            )));
        };
        let outer_key = ssh_key::PublicKey::from(outer.public_key().clone());
        let outer_fp = key_fingerprint(&outer_key);
        let record = self.store.cert(outer.serial()).map_err(|e| Err(e.into()))?;
        let matches = record.as_ref().is_some_and(|r| {
            r.kind == CertKind::User && r.subject == user_name && r.key_fingerprint == outer_fp
        });
        if !matches {
            return Err(Ok(Refusal::new(
                ErrorCode::CertificateUnknown,
                "this CA has no record of issuing that certificate to that user",
            )
            .user(&user_name)));
        }
        if self
            .store
            .serial_revoked(outer.serial())
            .map_err(|e| Err(e.into()))?
            || self
                .store
                .key_revoked(&outer_fp)
                .map_err(|e| Err(e.into()))?
        {
            return Err(Ok(Refusal::new(
                ErrorCode::CertificateRevoked,
                format!(
                    "the user certificate (serial {}) is revoked",
                    outer.serial()
                ),
            )
            .user(&user_name)));
        }
        Ok(user_name)
    }

    /// The user, when it exists and is not disabled.
    pub(super) fn enabled_user(&self, user_name: &str) -> Checked<UserRecord> {
        match self.store.user(user_name).map_err(|e| Err(e.into()))? {
            Some(u) if !u.disabled => Ok(u),
            Some(_) => Err(Ok(Refusal::new(
                ErrorCode::UserDisabled,
                "this user is disabled",
            )
            .user(user_name))),
            None => Err(Ok(Refusal::new(
                ErrorCode::UserUnknown,
                "this user does not exist",
            )
            .user(user_name))),
        }
    }
}
