//! The checks a per-session certificate needs beyond policy: the user's
//! address, a usable security key, a per-session TOTP code.

use rampart_api as api;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::MfaMethod;
use ssh_key::Certificate;

use crate::authority::{Authority, Caller};
use crate::error::CaError;
use crate::factor::{FactorContext, FactorFailure, FactorVerifier};

use super::*;

impl Authority {
    /// The user's address as the bastion reported it, against the outer
    /// certificate's critical options (`source-address` is the only one a
    /// Rampart certificate carries; any other refuses it, as sshd would) and
    /// the granting roles' `source_address`. `Err` is the refusal message.
    pub(super) fn check_user_source(
        &self,
        outer: &Certificate,
        grant: &rampart_policy::Grant,
        reported: Option<&str>,
    ) -> Result<(), String> {
        let client = reported.and_then(|s| s.parse::<std::net::IpAddr>().ok());
        let mut by_cert = None;
        for (name, value) in outer.critical_options().iter() {
            if name.as_str() != api::source::SOURCE_ADDRESS {
                return Err(format!(
                    "the user certificate carries critical option {:?}, which a bastion session cannot honour",
                    name.chars().take(64).collect::<String>()
                ));
            }
            by_cert = Some(value.clone());
        }
        let by_role = grant.source_address();
        if by_cert.is_none() && by_role.is_empty() {
            return Ok(());
        }
        let Some(client) = client.map(|c| c.to_canonical()) else {
            return Err(
                "this access is limited by source address and the bastion did not report the user's address"
                    .into(),
            );
        };
        if let Some(value) = by_cert {
            if !api::source::source_address_allows(&value, client)? {
                return Err(format!(
                    "the user certificate is not valid from {client} (source-address {})",
                    value.chars().take(256).collect::<String>()
                ));
            }
        }
        if !by_role.is_empty() && !by_role.iter().any(|net| net.contains(&client)) {
            let allowed: Vec<String> = by_role.iter().map(ToString::to_string).collect();
            return Err(format!(
                "policy allows this access only from {}; the user is at {client}",
                allowed.join(",")
            ));
        }
        Ok(())
    }

    /// Whether per-session MFA for `user` should be a security-key approval:
    /// the CA has a WebAuthn relying party and the user a key that is not
    /// disabled. Otherwise the bastion asks for a TOTP code.
    pub(crate) fn has_usable_security_key(&self, user: &str) -> Result<bool, CaError> {
        if self.webauthn().is_err() {
            return Ok(false);
        }
        Ok(self
            .store
            .webauthn_keys(user)?
            .iter()
            .any(|k| k.disabled_reason.is_none()))
    }

    /// Verify a per-session TOTP code with the login path's rules (replay,
    /// failure counting, lockout, audit). `Ok(Ok(event id))` on success.
    /// Failures count against the user's own network as the bastion reports
    /// it, never against the bastion's address, which all its users share.
    pub(super) fn verify_session_totp(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        client: Option<&str>,
        user: &str,
        code: &str,
        session_id: &str,
    ) -> Result<Result<String, FactorFailure>, CaError> {
        let now = self.now();
        let client = Caller {
            source: client
                .and_then(|c| c.parse::<std::net::IpAddr>().ok())
                .unwrap_or(caller.source),
        };
        let network = client.network();
        if let Err(lock) = self.begin_attempt(user, &network)? {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .user(user)
                    .session(session_id)
                    .mfa_method(MfaMethod::Totp.as_str())
                    .reason("user locked out")
                    .detail("scope", lock.scope.as_str()),
            )?;
            return Ok(Err(FactorFailure::Invalid));
        }
        let ctx = FactorContext {
            store: self.store.as_ref(),
            sealer: &self.sealer,
            now,
        };
        match self.totp.verify(&ctx, user, code)? {
            Ok(_) => {
                self.attempt_succeeded(user, &network)?;
                let appended = self.record(
                    self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                        .actor(&bastion.actor())
                        .user(user)
                        .session(session_id)
                        .mfa_method(MfaMethod::Totp.as_str())
                        .detail("per_session", true),
                )?;
                Ok(Ok(appended.id.to_string()))
            }
            Err(failure) => {
                self.attempt_failed(
                    &client,
                    user,
                    &network,
                    crate::metrics::Factor::Totp,
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .actor(&bastion.actor())
                        .user(user)
                        .session(session_id)
                        .mfa_method(MfaMethod::Totp.as_str())
                        .reason(failure.code().as_str())
                        .detail("per_session", true),
                )?;
                Ok(Err(failure))
            }
        }
    }
}
