//! The one-request factors: TOTP and recovery codes, behind [`FactorVerifier`].
//!
//! A verifier only answers "did this user prove this factor now?". Rate limits,
//! lockouts, audit events and sessions are the authority's job, so every factor
//! gets them the same way. The factors that take a round trip through a browser or
//! an identity provider are ceremonies with their own state instead: WebAuthn and
//! CTAP2 in `crate::webauthn` (and `authority/webauthn/`), OIDC step-up in
//! `crate::oidc`; they feed the same limits, lockout and audit events.

use chrono::{DateTime, Utc};
use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::secrets::{self, Sealer};
use crate::store::Store;

/// RFC 6238 parameters chosen for authenticator-app compatibility: SHA-1, six
/// digits, 30-second steps.
pub const TOTP_DIGITS: usize = 6;
/// Step length in seconds.
pub const TOTP_STEP: i64 = 30;
/// Steps accepted either side of now (RFC 6238 §5.2 recommends at most one).
pub const TOTP_SKEW_STEPS: i64 = 1;
/// Seed length: 160 bits, the RFC 4226 recommendation.
pub const TOTP_SEED_BYTES: usize = 20;

/// Why a factor check failed. The client sees only the `Display`; details that
/// would help an attacker (which step matched, whether the user exists) are not in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorFailure {
    /// The code is wrong (or the user has no such factor).
    Invalid,
    /// The code was right but its time step (or the recovery code) was used before.
    Replayed,
    /// The code is not even of the right shape.
    Malformed,
}

impl FactorFailure {
    /// Stable code for API errors and audit reasons.
    pub fn code(&self) -> rampart_api::ErrorCode {
        match self {
            FactorFailure::Invalid => ErrorCode::FactorInvalid,
            FactorFailure::Replayed => ErrorCode::FactorReplayed,
            FactorFailure::Malformed => ErrorCode::FactorMalformed,
        }
    }
}

/// What a successful check proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Factor as policy sees it.
    pub factor: rampart_policy::Factor,
    /// Extra audit detail (e.g. the recovery code ID used).
    pub detail: Option<(String, String)>,
}

/// Everything a verifier may use.
#[derive(Debug)]
pub struct FactorContext<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// Opens sealed seeds.
    pub sealer: &'a Sealer,
    /// Now, from the CA's clock.
    pub now: DateTime<Utc>,
}

/// A second factor the CA can check in one request.
pub trait FactorVerifier: Send + Sync + std::fmt::Debug {
    /// Name as used in policy and audit (`totp`, `recovery`, …).
    fn method(&self) -> MfaMethod;
    /// Check `secret` for `user`. Consumes what must be single-use (the TOTP step,
    /// the recovery code) before returning success.
    fn verify(
        &self,
        ctx: &FactorContext<'_>,
        user: &str,
        secret: &str,
    ) -> Result<Result<Verified, FactorFailure>, CaError>;
}

/// Build the RFC 6238 generator for a seed.
pub fn totp_for(seed: &[u8], issuer: &str, account: &str) -> Result<TOTP, CaError> {
    TOTP::new(
        Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP as u64,
        seed.to_vec(),
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )
    .map_err(|e| CaError::Internal(format!("TOTP set-up: {e}")))
}

/// The time step of `t`.
pub fn totp_step(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(TOTP_STEP)
}

/// Which step within ±skew of `now` (newest first) this code matches, if any.
/// Compares in constant time so timing does not reveal digits.
pub fn matching_step(totp: &TOTP, code: &str, now: DateTime<Utc>) -> Option<i64> {
    let here = totp_step(now);
    let mut found = None;
    for step in [here + TOTP_SKEW_STEPS, here, here - TOTP_SKEW_STEPS] {
        let Ok(at) = u64::try_from(step * TOTP_STEP) else {
            continue;
        };
        let expected = Zeroizing::new(totp.generate(at));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn well_formed_totp(code: &str) -> bool {
    code.len() == TOTP_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// TOTP (RFC 6238).
#[derive(Debug, Default)]
pub struct TotpVerifier {
    /// Issuer label for generated URIs.
    pub issuer: String,
}

impl FactorVerifier for TotpVerifier {
    fn method(&self) -> MfaMethod {
        MfaMethod::Totp
    }

    fn verify(
        &self,
        ctx: &FactorContext<'_>,
        user: &str,
        secret: &str,
    ) -> Result<Result<Verified, FactorFailure>, CaError> {
        let code = secret.trim();
        if !well_formed_totp(code) {
            return Ok(Err(FactorFailure::Malformed));
        }
        let Some(rec) = ctx.store.totp(user)? else {
            return Ok(Err(FactorFailure::Invalid));
        };
        let seed = ctx.sealer.open(&rec.sealed_seed, user)?;
        let totp = totp_for(&seed, &self.issuer, user)?;
        let Some(step) = matching_step(&totp, code, ctx.now) else {
            return Ok(Err(FactorFailure::Invalid));
        };
        // Each time step is accepted at most once per user (RFC 6238 §5.2), and the
        // compare-and-set makes two concurrent requests with one code race safely.
        if !ctx.store.advance_totp_step(user, step)? {
            return Ok(Err(FactorFailure::Replayed));
        }
        Ok(Ok(Verified {
            factor: rampart_policy::Factor::Totp,
            detail: None,
        }))
    }
}

/// Single-use recovery codes.
#[derive(Debug, Default)]
pub struct RecoveryVerifier;

impl FactorVerifier for RecoveryVerifier {
    fn method(&self) -> MfaMethod {
        MfaMethod::Recovery
    }

    fn verify(
        &self,
        ctx: &FactorContext<'_>,
        user: &str,
        secret: &str,
    ) -> Result<Result<Verified, FactorFailure>, CaError> {
        let Some((id, normalised)) = secrets::parse_recovery_code(secret) else {
            return Ok(Err(FactorFailure::Malformed));
        };
        let Some(phc) = ctx.store.recovery_code(user, &id)? else {
            return Ok(Err(FactorFailure::Invalid));
        };
        if !secrets::verify_recovery_code(&normalised, &phc) {
            return Ok(Err(FactorFailure::Invalid));
        }
        if !ctx.store.use_recovery_code(user, &id, ctx.now)? {
            return Ok(Err(FactorFailure::Replayed));
        }
        Ok(Ok(Verified {
            factor: rampart_policy::Factor::Recovery,
            detail: Some(("recovery_code_id".into(), id)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{PendingEnrollment, TotpRecord, UserRecord, UserStore};
    use secrecy::SecretString;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rfc6238_sha1_test_vector() {
        // RFC 6238 Appendix B, SHA-1 seed "12345678901234567890", T = 59 s → 94287082
        // (eight digits); the six-digit code is its last six digits.
        let totp = totp_for(b"12345678901234567890", "Rampart", "x").unwrap();
        assert_eq!(totp.generate(59), "287082");
        assert_eq!(totp.generate(1_111_111_109), "081804");
    }

    #[test]
    fn totp_accepts_one_step_of_skew_once_and_refuses_replay() {
        let store = SqliteStore::in_memory().unwrap();
        let now = t("2026-03-01T12:00:10Z");
        store
            .create_user(&UserRecord {
                name: "alice".into(),
                groups: vec![],
                admin: false,
                disabled: false,
                created_at: now,
            })
            .unwrap();
        let sealer =
            Sealer::derive(&SecretString::from("p".to_owned()), b"0123456789abcdef").unwrap();
        let seed = b"seed-seed-seed-seed!";
        let sealed = sealer.seal(seed, "alice").unwrap();
        store
            .put_enrollment(
                &[1; 32],
                &PendingEnrollment {
                    user: "alice".into(),
                    sealed_seed: sealed.clone(),
                    expires_at: now,
                },
            )
            .unwrap();
        store
            .complete_enrollment(
                &[1; 32],
                "alice",
                &TotpRecord {
                    sealed_seed: sealed,
                    last_step: 0,
                },
                &[],
            )
            .unwrap();
        let v = TotpVerifier {
            issuer: "Rampart".into(),
        };
        let ctx = FactorContext {
            store: &store,
            sealer: &sealer,
            now,
        };
        let totp = totp_for(seed, "Rampart", "alice").unwrap();
        let prev = totp.generate((now.timestamp() - 30) as u64);
        let cur = totp.generate(now.timestamp() as u64);
        let far = totp.generate((now.timestamp() - 90) as u64);
        assert_eq!(
            v.verify(&ctx, "alice", &far).unwrap(),
            Err(FactorFailure::Invalid)
        );
        assert!(v.verify(&ctx, "alice", &prev).unwrap().is_ok());
        assert!(v.verify(&ctx, "alice", &cur).unwrap().is_ok());
        assert_eq!(
            v.verify(&ctx, "alice", &cur).unwrap(),
            Err(FactorFailure::Replayed)
        );
        // An older step after a newer one is a replay too.
        assert_eq!(
            v.verify(&ctx, "alice", &prev).unwrap(),
            Err(FactorFailure::Replayed)
        );
        assert_eq!(
            v.verify(&ctx, "alice", "12345").unwrap(),
            Err(FactorFailure::Malformed)
        );
        assert_eq!(
            v.verify(&ctx, "bob", &cur).unwrap(),
            Err(FactorFailure::Invalid)
        );
    }
}
