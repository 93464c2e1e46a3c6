//! Enrolment: redeeming an invite, starting TOTP enrolment and confirming it
//! with the first code (which also hands out the recovery codes).

use super::*;
use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;

impl Authority {
    /// Redeem a one-time invite for enrolment (TOTP or security key) and return
    /// the user it names. Each refusal (unknown, used, expired invite, or a
    /// disabled user) is audited as `InviteRefused` and counts as a failure of the
    /// source; the caller records `InviteRedeemed` once its enrolment is under way.
    pub(crate) fn redeem_invite(
        &self,
        caller: &Caller,
        invite: &str,
        now: DateTime<Utc>,
    ) -> Result<String, CaError> {
        let hash = secrets::digest_secret(invite);
        let user = match self.store.redeem_invite(&hash, now)? {
            InviteRedemption::Redeemed(user) => user,
            other => {
                let (code, msg) = match other {
                    InviteRedemption::AlreadyUsed => {
                        (ErrorCode::InviteUsed, "this invite has already been used")
                    }
                    InviteRedemption::Expired => {
                        (ErrorCode::InviteExpired, "this invite has expired")
                    }
                    _ => (ErrorCode::InviteUnknown, "this invite code is not valid"),
                };
                self.note_source_failure(caller);
                self.record(
                    self.event(EventKind::InviteRefused, Outcome::Failure, Some(caller))
                        .reason(code.as_str()),
                )?;
                return Err(CaError::unauthenticated(code, msg));
            }
        };
        let record = self.require_user(&user)?;
        if record.disabled {
            self.record(
                self.event(EventKind::InviteRefused, Outcome::Failure, Some(caller))
                    .user(&user)
                    .reason("user_disabled"),
            )?;
            return Err(CaError::forbidden(
                ErrorCode::UserDisabled,
                "this user is disabled",
            ));
        }
        Ok(user)
    }

    /// Redeem an invite and hand out a new TOTP secret to confirm.
    pub fn enroll_start(
        &self,
        caller: &Caller,
        req: &api::EnrollStartRequest,
    ) -> Result<api::EnrollStartResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        let user = self.redeem_invite(caller, req.invite.expose(), now)?;
        let mut seed = zeroize::Zeroizing::new([0u8; factor::TOTP_SEED_BYTES]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        let totp = factor::totp_for(seed.as_ref(), &self.settings.totp_issuer, &user)?;
        let token = secrets::new_token();
        let expires_at = now + to_chrono(ENROLLMENT_TTL);
        let token_hash = secrets::digest_secret(token.expose());
        crate::metrics::challenge_opened(
            crate::metrics::Factor::Totp,
            crate::metrics::Flow::Enrolment,
            &hex::encode(token_hash),
            expires_at,
        );
        self.store.put_enrollment(
            &token_hash,
            &PendingEnrollment {
                user: user.clone(),
                sealed_seed: self.sealer.seal(seed.as_ref(), &user)?,
                expires_at,
            },
        )?;
        self.record(
            self.event(EventKind::InviteRedeemed, Outcome::Success, Some(caller))
                .user(&user),
        )?;
        Ok(api::EnrollStartResponse {
            user,
            enrollment_token: token,
            totp_uri: totp.get_url().into(),
            totp_secret: totp.get_secret_base32().into(),
            expires_at,
        })
    }

    /// Confirm the new TOTP secret with a code; install it; issue recovery codes.
    pub fn enroll_finish(
        &self,
        caller: &Caller,
        req: &api::EnrollFinishRequest,
    ) -> Result<api::EnrollFinishResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        let token_hash = secrets::digest_secret(req.enrollment_token.expose());
        let pending = match self.store.enrollment(&token_hash)? {
            Some(p) if p.expires_at > now => p,
            Some(_) => {
                return Err(CaError::unauthenticated(
                    ErrorCode::EnrollmentExpired,
                    "this enrolment has expired; ask an admin for a new invite",
                ))
            }
            None => {
                self.note_source_failure(caller);
                return Err(CaError::unauthenticated(
                    ErrorCode::EnrollmentUnknown,
                    "unknown enrolment token",
                ));
            }
        };
        let user = pending.user.clone();
        let seed = self.sealer.open(&pending.sealed_seed, &user)?;
        let totp = factor::totp_for(&seed, &self.settings.totp_issuer, &user)?;
        let step = factor::matching_step(&totp, req.totp_code.expose().trim(), now);
        crate::metrics::challenge_answered(
            crate::metrics::Factor::Totp,
            crate::metrics::Flow::Enrolment,
            &hex::encode(token_hash),
            step.map(|_| ()).ok_or("factor_invalid"),
        );
        let Some(step) = step else {
            self.note_source_failure(caller);
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&user)
                    .mfa_method(MfaMethod::Totp.as_str())
                    .reason("enrollment code wrong"),
            )?;
            return Err(CaError::unauthenticated(
                ErrorCode::FactorInvalid,
                "that code is not right; check the authenticator app's clock and try again",
            ));
        };
        let codes = secrets::new_recovery_codes(RECOVERY_CODES);
        let mut hashed = Vec::with_capacity(codes.len());
        for c in &codes {
            hashed.push((c.id.clone(), secrets::hash_recovery_code(c.code.expose())?));
        }
        let installed = self.store.complete_enrollment(
            &token_hash,
            &user,
            &TotpRecord {
                sealed_seed: pending.sealed_seed,
                // The confirming step counts as used: it cannot log in again.
                last_step: step,
            },
            &hashed,
        )?;
        if !installed {
            return Err(CaError::unauthenticated(
                ErrorCode::EnrollmentUnknown,
                "this enrolment was already completed",
            ));
        }
        self.record(
            self.event(EventKind::TotpEnrolled, Outcome::Success, Some(caller))
                .user(&user)
                .mfa_method(MfaMethod::Totp.as_str()),
        )?;
        self.record(
            self.event(
                EventKind::RecoveryCodesIssued,
                Outcome::Success,
                Some(caller),
            )
            .user(&user)
            .detail("count", RECOVERY_CODES as u64),
        )?;
        Ok(api::EnrollFinishResponse {
            user,
            recovery_codes: codes.into_iter().map(|c| c.code).collect(),
        })
    }
}
