//! Join tokens, joining, bastion identity and revocation.

use rampart_api::ErrorCode;
use std::time::Duration;

use rampart_api as api;
use rampart_audit::{EventKind, Outcome};

use crate::authority::{cert_response, key_fingerprint, to_chrono, Authority, Caller, Session};
use crate::error::CaError;
use crate::secrets;
use crate::store::{BastionJoin, BastionRecord, CertKind};

use super::*;

impl Authority {
    /// `POST /v1/admin/bastion-tokens`: a single-use join token.
    pub fn create_bastion_token(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::BastionTokenRequest,
    ) -> Result<api::BastionTokenResponse, CaError> {
        if let Some(name) = &req.name {
            self.check_bastion_name(name)?;
        }
        let ttl = match req.ttl_seconds {
            None => BASTION_TOKEN_DEFAULT_TTL,
            Some(0) => {
                return Err(CaError::bad_request(
                    ErrorCode::InvalidTtl,
                    "ttl_seconds must be positive",
                ))
            }
            Some(s) => Duration::from_secs(s),
        };
        if ttl > BASTION_TOKEN_MAX_TTL {
            return Err(CaError::bad_request(
                ErrorCode::InvalidTtl,
                format!(
                    "bastion join tokens may live at most {} s",
                    BASTION_TOKEN_MAX_TTL.as_secs()
                ),
            ));
        }
        let now = self.now();
        let token = secrets::new_token();
        let expires_at = now + to_chrono(ttl);
        let mut ev = self
            .event(
                EventKind::BastionTokenCreated,
                Outcome::Success,
                Some(caller),
            )
            .actor(&actor.user.name)
            .session(&actor.record.id)
            .detail("expires_at", expires_at.to_rfc3339());
        if let Some(name) = &req.name {
            ev = ev.target(name);
        }
        // Audit first: a token the log does not know about must not exist.
        self.record(ev)?;
        self.store.create_bastion_token(
            &secrets::digest_secret(token.expose()),
            req.name.as_deref(),
            expires_at,
            now,
        )?;
        Ok(api::BastionTokenResponse {
            token,
            name: req.name.clone(),
            expires_at,
        })
    }

    pub(super) fn check_bastion_name(&self, name: &str) -> Result<(), CaError> {
        let policy = self.policy()?;
        rampart_policy::approve_host(&policy, name, &[], None)
            .map(|_| ())
            .map_err(|d| CaError::bad_request(ErrorCode::InvalidBastionName, d.reason))?;
        if !clean_token(name) {
            return Err(CaError::bad_request(
                ErrorCode::InvalidBastionName,
                "a bastion name is a host name of at most 128 characters",
            ));
        }
        Ok(())
    }

    /// `POST /v1/bastion/join`: redeem a join token; register the bastion.
    pub fn bastion_join(
        &self,
        caller: &Caller,
        req: &api::BastionJoinRequest,
    ) -> Result<api::BastionJoinResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        self.check_bastion_name(&req.name)?;
        let key = self.parse_public_key(&req.host_public_key)?;
        let fingerprint = key_fingerprint(&key);
        let credential = api::WireSecret::new(format!(
            "{}{}",
            api::BASTION_CREDENTIAL_PREFIX,
            secrets::new_token().expose()
        ));
        let record = BastionRecord {
            name: req.name.clone(),
            host_key_fingerprint: fingerprint.clone(),
            joined_at: now,
        };
        let refused = |code: ErrorCode, message: String| -> Result<_, CaError> {
            self.note_source_failure(caller);
            self.record(
                self.event(
                    EventKind::BastionJoinRefused,
                    Outcome::Failure,
                    Some(caller),
                )
                .target(&req.name)
                .reason(code.as_str()),
            )?;
            Err(CaError::unauthenticated(code, message))
        };
        if self.store.key_revoked(&fingerprint)? {
            return refused(
                ErrorCode::HostKeyRevoked,
                "this host key has been revoked; join from a fresh directory, which makes a new key"
                    .into(),
            );
        }
        let token_hash = secrets::digest_secret(req.token.expose());
        let rejoin = self.store.bastion(&req.name)?.is_some();
        match self.store.join_bastion(
            &token_hash,
            &record,
            &secrets::digest_secret(credential.expose()),
            now,
        )? {
            BastionJoin::Joined => {}
            BastionJoin::Unknown => {
                return refused(ErrorCode::TokenUnknown, "this join token is not valid".into())
            }
            BastionJoin::AlreadyUsed => {
                return refused(
                    ErrorCode::TokenUsed,
                    "this join token has already been used".into(),
                )
            }
            BastionJoin::Expired => {
                return refused(ErrorCode::TokenExpired, "this join token has expired".into())
            }
            BastionJoin::NameMismatch(bound) => {
                return refused(
                    ErrorCode::NameMismatch,
                    format!("this join token is for the bastion {bound:?}"),
                )
            }
            BastionJoin::NameTaken => {
                return refused(
                    ErrorCode::NameTaken,
                    format!(
                        "a bastion named {:?} has joined already; an admin can make a token for that name to re-join it",
                        req.name
                    ),
                )
            }
        }
        let policy = self.policy()?;
        let grant = rampart_policy::approve_host(&policy, &req.name, &[], None)
            .map_err(|d| CaError::bad_request(ErrorCode::InvalidBastionName, d.reason))?;
        let serial = self.next_serial()?;
        let spec = rampart_signer::HostCertSpec::from_grant(&grant, key, serial, now)?;
        let cert = rampart_signer::sign_host_cert(self.keys.host_ca.as_ref(), &spec)?;
        let (cert_record, line) =
            self.store_issued(&cert, CertKind::Host, &req.name, &fingerprint, now)?;
        let bastion = Bastion { record };
        self.record(
            self.event(EventKind::BastionJoined, Outcome::Success, Some(caller))
                .actor(&bastion.actor())
                .target(&req.name)
                .serial(serial)
                .detail("host_key_fingerprint", fingerprint)
                .detail("rejoin", rejoin),
        )?;
        Ok(api::BastionJoinResponse {
            name: req.name.clone(),
            credential,
            user_ca: self.user_ca_keys(),
            host_ca: self.host_ca_keys(),
            host_certificate: cert_response(cert_record, line),
        })
    }

    /// `POST /v1/admin/bastions/revoke` (`rampart admin revoke --bastion NAME`):
    /// the bastion's credential stops working at once, so it can obtain no more
    /// certificates, and its host key is revoked; its name is free for a new
    /// join with a new key.
    pub fn revoke_bastion(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::BastionRevokeRequest,
    ) -> Result<api::BastionRevokeResponse, CaError> {
        let reason = crate::authority::admin::revocation_reason(req.reason.as_deref())?;
        let Some(record) = self.store.bastion(&req.name)? else {
            return Err(CaError::not_found(
                ErrorCode::BastionUnknown,
                format!("no bastion named {:?} has joined", req.name),
            ));
        };
        // Audit first, then change state.
        self.record(
            self.event(EventKind::Revoked, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .target(&format!("bastion:{}", req.name))
                .reason(&reason)
                .detail("keys", vec![record.host_key_fingerprint.clone()]),
        )?;
        self.store.remove_bastion(&req.name)?;
        // Its host key too: every host certificate it holds (its own and the
        // targets') is for that key, and clients that refresh their
        // known_hosts get it as `@revoked`, so a stolen bastion cannot go on
        // impersonating targets until its certificates run out.
        let version = self.store.revoke(
            &[],
            std::slice::from_ref(&record.host_key_fingerprint),
            &format!("bastion {} revoked: {reason}", req.name),
            self.now(),
        )?;
        self.rebuild_krl()?;
        self.record(
            self.event(EventKind::KrlPublished, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .detail("krl_version", version),
        )?;
        Ok(api::BastionRevokeResponse {
            name: req.name.clone(),
        })
    }

    /// Resolve a bastion credential. User session tokens never resolve here.
    pub fn authenticate_bastion(&self, credential: &str) -> Result<Bastion, CaError> {
        let refused = || {
            CaError::unauthenticated(
                ErrorCode::BastionCredentialInvalid,
                "this endpoint needs a bastion credential (rampart-bastion join)",
            )
        };
        if !credential.starts_with(api::BASTION_CREDENTIAL_PREFIX) {
            return Err(refused());
        }
        let record = self
            .store
            .bastion_by_credential(&secrets::digest_secret(credential))?
            .ok_or_else(refused)?;
        Ok(Bastion { record })
    }
}
