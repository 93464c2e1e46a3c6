//! The authority: every CA operation as a synchronous method that checks, acts,
//! and writes its audit event before it answers. The HTTP layer is a thin shell
//! around it (calling it on blocking threads), so the rules live in one place.
//!
//! Ordering rules that make the CA fail closed:
//! - an action's audit event is durably appended before its result leaves the CA;
//!   if the append fails the caller gets [`CaError::AuditUnavailable`] and no
//!   secret, session or certificate;
//! - single-use things (invite, TOTP step, recovery code) are consumed before the
//!   success is reported, so a crash can only lose a success, never repeat one.

#[path = "bastion.rs"]
pub mod bastion;
#[path = "oidc/login.rs"]
pub mod oidc_login;
#[path = "sessions.rs"]
pub mod sessions;
#[path = "webauthn/ceremony.rs"]
pub mod webauthn_ceremony;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_audit::{AuditLog, EventKind, NewEvent, Outcome};
use rampart_policy::{Decision, Policy};
use rampart_signer::{CaSigner, FileCaKey};
use ssh_key::PublicKey;

use crate::clock::Clock;
use crate::config::Limits;
use crate::error::CaError;
use crate::factor::{self, FactorContext, FactorFailure, FactorVerifier};
use crate::secrets::{self, Sealer};
use crate::store::{
    CertKind, CertRecord, InviteRedemption, PendingEnrollment, SessionRecord, Store, StoreError,
    TotpRecord, UserRecord,
};

/// How long a started enrolment may wait for its confirming code.
pub const ENROLLMENT_TTL: Duration = Duration::from_secs(15 * 60);
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Serials reserved durably at a time.
const SERIAL_BLOCK: u64 = 1000;
/// Most source addresses tracked by the per-address limiter before old ones go.
const MAX_TRACKED_SOURCES: usize = 100_000;

/// Who is calling, as far as the network can tell.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Peer address of the TCP connection.
    pub source: IpAddr,
}

/// An authenticated session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored session.
    pub record: SessionRecord,
    /// The user, as of now.
    pub user: UserRecord,
}

/// The CA's keys.
pub struct Keys {
    /// Signs user certificates.
    pub user_ca: Box<dyn CaSigner>,
    /// Signs host certificates.
    pub host_ca: Box<dyn CaSigner>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field(
                "user_ca",
                &self.user_ca.public_key().fingerprint(Default::default()),
            )
            .field(
                "host_ca",
                &self.host_ca.public_key().fingerprint(Default::default()),
            )
            .finish()
    }
}

impl Keys {
    /// Keys loaded from encrypted files.
    pub fn from_files(user_ca: FileCaKey, host_ca: FileCaKey) -> Self {
        Keys {
            user_ca: Box::new(user_ca),
            host_ca: Box::new(host_ca),
        }
    }
}

/// Settings the authority needs from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Factor failure limits.
    pub limits: Limits,
    /// TOTP issuer label.
    pub totp_issuer: String,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// Default invite lifetime.
    pub invite_default_ttl: Duration,
    /// Longest invite lifetime.
    pub invite_max_ttl: Duration,
    /// Admin MFA freshness.
    pub admin_max_mfa_age: Duration,
    /// Admin with a recovery-code session.
    pub admin_allow_recovery: bool,
}

/// What a successful login proved, for [`Authority::open_session`]. Holds the
/// new session token in the clear, so it has no `Debug` and lives only until the
/// session is stored and answered.
pub(crate) struct ProvenLogin<'a> {
    /// The Rampart user logged in.
    pub user: &'a str,
    /// Whether that user is an administrator (told to the client).
    pub admin: bool,
    /// The factor that was checked: `totp`, `recovery`, `webauthn`, `oidc`.
    pub mfa_method: &'a str,
    /// When the factor was checked (for OIDC, the provider's `auth_time`).
    pub mfa_time: DateTime<Utc>,
    /// The id of the `mfa_succeeded` audit event the session points at.
    pub mfa_event: String,
    /// The session's public id, already named in `mfa_succeeded`.
    pub session_id: String,
    /// The bearer token handed to the client; only its digest is stored.
    pub token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct SerialBlock {
    next: u64,
    end: u64,
}

/// The certificate authority.
#[derive(Debug)]
pub struct Authority {
    store: Arc<dyn Store>,
    audit: AuditLog,
    policy: RwLock<Arc<Policy>>,
    keys: Keys,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    settings: Settings,
    totp: factor::TotpVerifier,
    recovery: factor::RecoveryVerifier,
    serials: Mutex<SerialBlock>,
    krl: RwLock<Arc<SignedKrl>>,
    source_failures: Mutex<HashMap<IpAddr, Vec<DateTime<Utc>>>>,
    oidc: RwLock<Option<Arc<crate::oidc::RelyingParty>>>,
    webauthn: RwLock<Option<Arc<crate::webauthn::RelyingParty>>>,
    piv: RwLock<Option<Arc<crate::piv::PivVerifier>>>,
}

/// A signed KRL is re-generated when it is this old, even without a revocation,
/// so its signed `generated_date` tells hosts how fresh it is.
pub const KRL_RESIGN_AFTER: Duration = Duration::from_secs(60 * 60);

/// The KRL and its signature, built together and cached together so that
/// `GET /v1/krl` and `GET /v1/krl.sig` always serve a matching pair.
///
/// Signature format: an SSHSIG (OpenSSH PROTOCOL.sshsig) made with the **user CA
/// key** — the key hosts already trust as `TrustedUserCAKeys`, so no new key has
/// to be distributed — over the exact KRL bytes, namespace
/// [`api::KRL_SIG_NAMESPACE`] (`rampart-krl@rampart`), hash SHA-512, armored as
/// `-----BEGIN SSH SIGNATURE-----`. Stock OpenSSH verifies it with
/// `ssh-keygen -Y verify -f allowed_signers -I rampart-ca -n rampart-krl@rampart
/// -s krl.sig < krl`, where `allowed_signers` holds
/// `rampart-ca namespaces="rampart-krl@rampart" <user CA public key>`.
/// (The KRL's own KRL_SECTION_SIGNATURE is not used: OpenSSH >= 9.4 refuses it.)
#[derive(Debug, Clone, Default)]
pub struct SignedKrl {
    /// The KRL, OpenSSH binary format.
    pub bytes: Arc<Vec<u8>>,
    /// The armored SSHSIG over `bytes` (empty only before the first build).
    pub signature: String,
    /// `krl_version` inside `bytes`.
    pub version: u64,
    /// `generated_date` inside `bytes`, Unix seconds.
    pub generated_at: u64,
}

/// Sign `krl` as an SSHSIG through the [`CaSigner`] seam (not with a private key
/// in hand), so an HSM-held user CA key signs KRLs the same way: build the
/// PROTOCOL.sshsig "signed data" blob (`"SSHSIG" ‖ namespace ‖ reserved ‖
/// hash_algorithm ‖ H(message)`), have the backend sign it raw, wrap the result.
fn sign_krl(signer: &dyn CaSigner, krl: &[u8]) -> Result<String, CaError> {
    let internal = |e: ssh_key::Error| CaError::Internal(format!("KRL signature: {e}"));
    let hash = ssh_key::HashAlg::Sha512;
    let data = ssh_key::SshSig::signed_data(api::KRL_SIG_NAMESPACE, hash, krl).map_err(internal)?;
    let raw = signer.sign_raw(&data)?;
    let sig = ssh_key::SshSig::new(
        signer.public_key().key_data().clone(),
        api::KRL_SIG_NAMESPACE,
        hash,
        raw,
    )
    .map_err(internal)?;
    sig.to_pem(ssh_key::LineEnding::LF).map_err(internal)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `[a-z_][a-z0-9_.-]{0,31}`, the portable POSIX-ish user name shape.
pub fn valid_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && name.len() <= 32
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn key_fingerprint(key: &PublicKey) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}

impl Authority {
    /// Assemble an authority. Builds the KRL once so it can be served at once.
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        policy: Policy,
        keys: Keys,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Result<Self, CaError> {
        let totp = factor::TotpVerifier {
            issuer: settings.totp_issuer.clone(),
        };
        let auth = Authority {
            store,
            audit,
            policy: RwLock::new(Arc::new(policy)),
            keys,
            sealer,
            clock,
            settings,
            totp,
            recovery: factor::RecoveryVerifier,
            serials: Mutex::new(SerialBlock::default()),
            krl: RwLock::new(Arc::new(SignedKrl::default())),
            source_failures: Mutex::new(HashMap::new()),
            oidc: RwLock::new(None),
            webauthn: RwLock::new(None),
            piv: RwLock::new(None),
        };
        auth.rebuild_krl()?;
        Ok(auth)
    }

    /// Now, from the CA's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Refresh the gauges computed from state (M8 coverage, expired challenges),
    /// before a `/metrics` scrape.
    pub fn refresh_metrics(&self) -> Result<(), CaError> {
        crate::metrics::expire_challenges(self.now());
        crate::metrics::refresh_coverage(self.store.as_ref(), &*self.policy()?)
    }

    /// Replace the policy (e.g. on reload).
    pub fn set_policy(&self, policy: Policy) {
        if let Ok(mut p) = self.policy.write() {
            *p = Arc::new(policy);
        }
    }

    fn policy(&self) -> Result<Arc<Policy>, CaError> {
        self.policy
            .read()
            .map(|p| Arc::clone(&p))
            .map_err(|_| CaError::Internal("policy lock poisoned".into()))
    }

    /// Append an event; any failure refuses the action (fail closed).
    pub fn record(&self, ev: NewEvent) -> Result<rampart_audit::Appended, CaError> {
        let started = std::time::Instant::now();
        let code = ev.kind().code();
        let appended = self.audit.append(ev);
        crate::metrics::audit_append(appended.is_ok(), started.elapsed());
        if let Ok(a) = &appended {
            tracing::info!(event_code = code, event_id = %a.id, "audit event");
        }
        appended.map_err(|e| {
            tracing::error!(error = %e, "audit append failed; refusing the action");
            CaError::AuditUnavailable(e)
        })
    }

    fn event(&self, kind: EventKind, outcome: Outcome, caller: Option<&Caller>) -> NewEvent {
        let ev = NewEvent::new(kind, outcome, self.now());
        match caller {
            Some(c) => ev.source(&c.source.to_string()),
            None => ev,
        }
    }

    /// User CA public key, OpenSSH one-line form.
    pub fn user_ca_line(&self) -> String {
        self.keys
            .user_ca
            .public_key()
            .to_openssh()
            .unwrap_or_default()
    }

    /// Host CA public key, OpenSSH one-line form.
    pub fn host_ca_line(&self) -> String {
        self.keys
            .host_ca
            .public_key()
            .to_openssh()
            .unwrap_or_default()
    }

    /// The current KRL (OpenSSH binary format).
    pub fn krl(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.signed_krl().bytes)
    }

    /// The current KRL with its SSHSIG signature, as one consistent pair.
    ///
    /// The pair is re-generated (same `krl_version`, new `generated_date`, new
    /// signature) when it is older than [`KRL_RESIGN_AFTER`], so hosts can tell a
    /// fresh KRL from a replayed old one by its signed date. If that refresh fails
    /// the previous pair is served: it is still correct, only older.
    pub fn signed_krl(&self) -> Arc<SignedKrl> {
        let current = self.cached_krl();
        let now = u64::try_from(self.now().timestamp()).unwrap_or(0);
        if now.saturating_sub(current.generated_at) >= KRL_RESIGN_AFTER.as_secs() {
            match self.rebuild_krl() {
                Ok(_) => return self.cached_krl(),
                Err(e) => {
                    tracing::warn!(error = %e, "could not re-sign the KRL; serving the previous one")
                }
            }
        }
        current
    }

    fn cached_krl(&self) -> Arc<SignedKrl> {
        self.krl
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    fn rebuild_krl(&self) -> Result<u64, CaError> {
        let rev = self.store.revocations()?;
        let mut key_hashes = Vec::with_capacity(rev.key_fingerprints.len());
        for fp in &rev.key_fingerprints {
            key_hashes.push(rampart_signer::parse_fingerprint(fp)?);
        }
        let generated_at = u64::try_from(self.now().timestamp()).unwrap_or(0);
        let spec = rampart_signer::KrlSpec {
            version: rev.version,
            generated_at,
            comment: format!("rampart KRL v{}", rev.version),
            ca_key: self.keys.user_ca.public_key().clone(),
            revoked_serials: rev.serials,
            revoked_key_sha256: key_hashes,
            revoked_keys: Vec::new(),
        };
        let bytes = rampart_signer::build_krl(&spec)?;
        let signature = sign_krl(self.keys.user_ca.as_ref(), &bytes)?;
        let signed = SignedKrl {
            bytes: Arc::new(bytes),
            signature,
            version: rev.version,
            generated_at,
        };
        crate::metrics::krl(signed.version, signed.generated_at);
        if let Ok(mut k) = self.krl.write() {
            // Two revocations rebuilding at once may finish out of order: never
            // replace a newer KRL with an older one.
            if (signed.version, signed.generated_at) >= (k.version, k.generated_at) {
                *k = Arc::new(signed);
            }
        }
        Ok(rev.version)
    }

    // ----- enrolment -------------------------------------------------------

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
                        ("invite_used", "this invite has already been used")
                    }
                    InviteRedemption::Expired => ("invite_expired", "this invite has expired"),
                    _ => ("invite_unknown", "this invite code is not valid"),
                };
                self.note_source_failure(caller);
                self.record(
                    self.event(EventKind::InviteRefused, Outcome::Failure, Some(caller))
                        .reason(code),
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
            return Err(CaError::forbidden("user_disabled", "this user is disabled"));
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
        let user = self.redeem_invite(caller, &req.invite, now)?;
        let mut seed = zeroize::Zeroizing::new([0u8; factor::TOTP_SEED_BYTES]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        let totp = factor::totp_for(seed.as_ref(), &self.settings.totp_issuer, &user)?;
        let token = secrets::new_token();
        let expires_at = now + to_chrono(ENROLLMENT_TTL);
        let token_hash = secrets::digest_secret(&token);
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
            totp_uri: totp.get_url(),
            totp_secret: totp.get_secret_base32(),
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
        let token_hash = secrets::digest_secret(&req.enrollment_token);
        let pending = match self.store.enrollment(&token_hash)? {
            Some(p) if p.expires_at > now => p,
            Some(_) => {
                return Err(CaError::unauthenticated(
                    "enrollment_expired",
                    "this enrolment has expired; ask an admin for a new invite",
                ))
            }
            None => {
                self.note_source_failure(caller);
                return Err(CaError::unauthenticated(
                    "enrollment_unknown",
                    "unknown enrolment token",
                ));
            }
        };
        let user = pending.user.clone();
        let seed = self.sealer.open(&pending.sealed_seed, &user)?;
        let totp = factor::totp_for(&seed, &self.settings.totp_issuer, &user)?;
        let step = factor::matching_step(&totp, req.totp_code.trim(), now);
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
                    .mfa_method("totp")
                    .reason("enrollment code wrong"),
            )?;
            return Err(CaError::unauthenticated(
                "factor_invalid",
                "that code is not right; check the authenticator app's clock and try again",
            ));
        };
        let codes = secrets::new_recovery_codes(RECOVERY_CODES);
        let mut hashed = Vec::with_capacity(codes.len());
        for c in &codes {
            hashed.push((c.id.clone(), secrets::hash_recovery_code(&c.code)?));
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
                "enrollment_unknown",
                "this enrolment was already completed",
            ));
        }
        self.record(
            self.event(EventKind::TotpEnrolled, Outcome::Success, Some(caller))
                .user(&user)
                .mfa_method("totp"),
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
            recovery_codes: codes.iter().map(|c| c.code.to_string()).collect(),
        })
    }

    // ----- login -----------------------------------------------------------

    fn check_source_limit(&self, caller: &Caller) -> Result<(), CaError> {
        let now = self.now();
        let window = to_chrono(self.settings.limits.ip_window);
        let mut map = self
            .source_failures
            .lock()
            .map_err(|_| CaError::Internal("limiter lock poisoned".into()))?;
        if let Some(list) = map.get_mut(&caller.source) {
            list.retain(|t| *t > now - window);
            if list.len() >= self.settings.limits.ip_max_failures as usize {
                let oldest = list.first().copied().unwrap_or(now);
                let retry = (oldest + window - now).num_seconds().max(1) as u64;
                return Err(CaError::RateLimited {
                    code: "source_rate_limited",
                    message: format!(
                        "too many failed attempts from {}; try again in {retry} s",
                        caller.source
                    ),
                    retry_after_secs: retry,
                });
            }
        }
        Ok(())
    }

    fn note_source_failure(&self, caller: &Caller) {
        let now = self.now();
        let window = to_chrono(self.settings.limits.ip_window);
        if let Ok(mut map) = self.source_failures.lock() {
            if map.len() >= MAX_TRACKED_SOURCES {
                map.retain(|_, v| v.last().is_some_and(|t| *t > now - window));
            }
            map.entry(caller.source).or_default().push(now);
        }
    }

    fn verifier(&self, proof: &api::FactorProof) -> Result<(&dyn FactorVerifier, String), CaError> {
        match proof {
            api::FactorProof::Totp { code } => Ok((&self.totp, code.clone())),
            api::FactorProof::Recovery { code } => Ok((&self.recovery, code.clone())),
            _ => Err(CaError::bad_request(
                "factor_unsupported",
                "this CA does not support that factor yet",
            )),
        }
    }

    /// Verify a factor and open a session.
    pub fn login(
        &self,
        caller: &Caller,
        req: &api::LoginRequest,
    ) -> Result<api::LoginResponse, CaError> {
        let started = std::time::Instant::now();
        let result = self.login_checked(caller, req);
        crate::metrics::login_finished(req.factor.method(), &result, started.elapsed());
        result
    }

    fn login_checked(
        &self,
        caller: &Caller,
        req: &api::LoginRequest,
    ) -> Result<api::LoginResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        let (verifier, secret) = self.verifier(&req.factor)?;
        let method = verifier.method();
        let user = match self.store.user(&req.user)? {
            Some(u) => u,
            None => {
                // Same answer as a wrong code, so user names cannot be probed.
                self.note_source_failure(caller);
                self.record(
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .user(&req.user)
                        .mfa_method(method)
                        .reason("unknown user"),
                )?;
                return Err(CaError::unauthenticated(
                    FactorFailure::Invalid.code(),
                    "the user name or code is not right",
                ));
            }
        };
        if user.disabled {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&user.name)
                    .mfa_method(method)
                    .reason("user disabled"),
            )?;
            return Err(CaError::forbidden("user_disabled", "this user is disabled"));
        }
        if let Some(until) = self.store.locked_until(&user.name)? {
            if until > now {
                let retry = (until - now).num_seconds().max(1) as u64;
                self.record(
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .user(&user.name)
                        .mfa_method(method)
                        .reason("user locked out"),
                )?;
                return Err(CaError::RateLimited {
                    code: "user_locked",
                    message: format!(
                        "too many failed attempts: {} is locked for another {retry} s",
                        user.name
                    ),
                    retry_after_secs: retry,
                });
            }
        }
        let ctx = FactorContext {
            store: self.store.as_ref(),
            sealer: &self.sealer,
            now,
        };
        let verified = match verifier.verify(&ctx, &user.name, &secret)? {
            Ok(v) => v,
            Err(failure) => {
                self.note_source_failure(caller);
                let count = self.store.record_failure(&user.name, now)?;
                self.record(
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .user(&user.name)
                        .mfa_method(method)
                        .reason(failure.code())
                        .detail("failures", u64::from(count)),
                )?;
                if count >= self.settings.limits.max_failures {
                    let until = now + to_chrono(self.settings.limits.lockout);
                    self.store.lock_until(&user.name, until)?;
                    if let Some(f) = crate::metrics::Factor::from_method(method) {
                        crate::metrics::bypass_attempt(f, crate::metrics::Bypass::Lockout);
                    }
                    self.record(
                        self.event(EventKind::MfaLockedOut, Outcome::Failure, Some(caller))
                            .user(&user.name)
                            .reason(&format!("{count} failed attempts"))
                            .detail("locked_until", until.to_rfc3339()),
                    )?;
                }
                let message = match failure {
                    FactorFailure::Replayed => {
                        "that code was already used; wait for the next one".to_owned()
                    }
                    FactorFailure::Malformed => format!("that is not a well-formed {method} code"),
                    FactorFailure::Invalid => "the user name or code is not right".to_owned(),
                };
                return Err(CaError::unauthenticated(failure.code(), message));
            }
        };
        self.store.clear_failures(&user.name)?;
        let token = secrets::new_token();
        let session_id = secrets::new_public_id();
        tracing::Span::current().record("session_id", session_id.as_str());
        let expires_at = now + to_chrono(self.settings.session_ttl);
        let mut ev = self
            .event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
            .user(&user.name)
            .mfa_method(method)
            .session(&session_id);
        if let Some((k, v)) = &verified.detail {
            ev = ev.detail(k, v.clone());
        }
        let mfa_event = self.record(ev)?.id.to_string();
        if method == "recovery" {
            self.record(
                self.event(EventKind::RecoveryCodeUsed, Outcome::Success, Some(caller))
                    .user(&user.name)
                    .session(&session_id)
                    .detail(
                        "codes_left",
                        u64::from(self.store.recovery_codes_left(&user.name)?),
                    ),
            )?;
        }
        self.open_session(
            caller,
            ProvenLogin {
                user: &user.name,
                admin: user.admin,
                mfa_method: method,
                mfa_time: now,
                mfa_event,
                session_id,
                token,
                expires_at,
            },
        )
    }

    /// Open the session a successful login earned, whatever the factor (TOTP,
    /// recovery code, security key, OIDC): store it under the token's digest
    /// only, audit `session_created`, and answer the client with the token.
    pub(crate) fn open_session(
        &self,
        caller: &Caller,
        login: ProvenLogin<'_>,
    ) -> Result<api::LoginResponse, CaError> {
        let ProvenLogin {
            user,
            admin,
            mfa_method,
            mfa_time,
            mfa_event,
            session_id,
            token,
            expires_at,
        } = login;
        self.store.create_session(
            &secrets::digest_secret(&token),
            &SessionRecord {
                id: session_id.clone(),
                user: user.to_owned(),
                mfa_method: mfa_method.to_owned(),
                mfa_time,
                mfa_event: mfa_event.clone(),
                expires_at,
            },
        )?;
        self.record(
            self.event(EventKind::SessionCreated, Outcome::Success, Some(caller))
                .user(user)
                .session(&session_id)
                .mfa_method(mfa_method),
        )?;
        Ok(api::LoginResponse {
            user: user.to_owned(),
            session_token: token,
            expires_at,
            mfa_method: mfa_method.to_owned(),
            mfa_time,
            mfa_event,
            admin,
        })
    }

    /// Resolve a bearer token to a live session of an enabled user.
    pub fn authenticate(&self, token: &str) -> Result<Session, CaError> {
        let hash = secrets::digest_secret(token);
        let unauth = || {
            CaError::unauthenticated(
                "session_invalid",
                "not logged in or the session expired; run `rampart login`",
            )
        };
        let record = self.store.session(&hash)?.ok_or_else(unauth)?;
        if record.expires_at <= self.now() {
            self.store.delete_session(&hash)?;
            return Err(unauth());
        }
        tracing::Span::current().record("session_id", record.id.as_str());
        let user = self.store.user(&record.user)?.ok_or_else(unauth)?;
        if user.disabled {
            return Err(CaError::forbidden("user_disabled", "this user is disabled"));
        }
        Ok(Session { record, user })
    }

    /// End a session.
    pub fn logout(&self, caller: &Caller, token: &str) -> Result<(), CaError> {
        let session = self.authenticate(token)?;
        self.store.delete_session(&secrets::digest_secret(token))?;
        self.record(
            self.event(EventKind::SessionEnded, Outcome::Success, Some(caller))
                .user(&session.user.name)
                .session(&session.record.id),
        )?;
        Ok(())
    }

    /// `GET /v1/whoami`.
    pub fn whoami(&self, session: &Session) -> api::WhoAmI {
        api::WhoAmI {
            user: session.user.name.clone(),
            groups: session.user.groups.clone(),
            admin: session.user.admin,
            mfa_method: session.record.mfa_method.clone(),
            mfa_time: session.record.mfa_time,
            expires_at: session.record.expires_at,
        }
    }

    /// `GET /v1/ssh-hosts`: the joined bastions, the hosts every user reaches
    /// with a Rampart certificate (the CLI scopes its ssh_config to them). Any
    /// live session may ask: users must know the bastion's name to use it.
    pub fn ssh_hosts(&self, _session: &Session) -> Result<api::SshHosts, CaError> {
        Ok(api::SshHosts {
            hosts: self.store.bastion_names()?,
        })
    }

    // ----- certificates ----------------------------------------------------

    fn next_serial(&self) -> Result<u64, CaError> {
        let mut block = self
            .serials
            .lock()
            .map_err(|_| CaError::Internal("serial lock poisoned".into()))?;
        if block.next >= block.end {
            let first = self.store.reserve_serials(SERIAL_BLOCK)?;
            block.next = first;
            block.end = first + SERIAL_BLOCK;
        }
        let serial = block.next;
        block.next += 1;
        Ok(serial)
    }

    fn parse_public_key(&self, line: &str) -> Result<PublicKey, CaError> {
        let line = line.trim();
        if line.is_empty() || line.len() > 16 * 1024 {
            return Err(CaError::bad_request(
                "invalid_public_key",
                "public_key must be one OpenSSH public key line",
            ));
        }
        let key = PublicKey::from_openssh(line).map_err(|e| {
            CaError::bad_request(
                "invalid_public_key",
                format!("public_key is not an OpenSSH public key ({e})"),
            )
        })?;
        rampart_signer::check_subject_key(&key)
            .map_err(|e| CaError::bad_request("unsupported_key", e.to_string()))?;
        Ok(key)
    }

    /// Sign the caller's public key, if policy allows it for this session.
    pub fn issue_user_cert(
        &self,
        caller: &Caller,
        session: &Session,
        req: &api::CertRequest,
    ) -> Result<api::CertResponse, CaError> {
        self.issue_attested_user_cert(caller, session, &req.clone().into())
    }

    /// Trust these YubiKey PIV attestation roots (none: attestations are refused).
    pub fn set_piv(&self, verifier: crate::piv::PivVerifier) {
        if let Ok(mut slot) = self.piv.write() {
            *slot = Some(Arc::new(verifier));
        }
    }

    fn verify_piv(
        &self,
        att: &api::PivAttestation,
        key: &PublicKey,
        now: DateTime<Utc>,
    ) -> Result<crate::piv::Attested, crate::piv::PivError> {
        let verifier = self
            .piv
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(crate::piv::PivError::NotConfigured)?;
        verifier.verify(&att.slot_cert_pem, &att.intermediate_pem, key, now)
    }

    /// [`Authority::issue_user_cert`] with an optional YubiKey PIV attestation of
    /// the key (see [`crate::piv`]): verified before policy runs; a refused one
    /// denies the request (`piv_attestation_*`), an accepted one lets
    /// `hardware-bound` roles contribute and marks the certificate.
    pub fn issue_attested_user_cert(
        &self,
        caller: &Caller,
        session: &Session,
        req: &api::AttestedCertRequest,
    ) -> Result<api::CertResponse, CaError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let user = &session.user;
        let key = self.parse_public_key(&req.public_key)?;
        let fingerprint = key_fingerprint(&key);
        let deny = |code: &'static str, reason: String| -> Result<api::CertResponse, CaError> {
            crate::metrics::cert_denied(crate::metrics::CertKind::User, code);
            self.record(
                self.event(EventKind::CertDenied, Outcome::Failure, Some(caller))
                    .user(&user.name)
                    .session(&session.record.id)
                    .mfa_method(&session.record.mfa_method)
                    .reason(&reason)
                    .detail("code", code)
                    .detail("key_fingerprint", fingerprint.clone()),
            )?;
            Err(CaError::forbidden(code, reason))
        };
        if self.store.key_revoked(&fingerprint)? {
            return deny("key_revoked", format!("the key {fingerprint} is revoked"));
        }
        let attested = match &req.piv_attestation {
            None => None,
            Some(att) => match self.verify_piv(att, &key, now) {
                Ok(a) => Some(a),
                Err(e) => return deny(e.code(), e.to_string()),
            },
        };
        let key_assurance = match attested {
            Some(_) => rampart_policy::KeyAssurance::HardwareAttested,
            None => rampart_policy::KeyAssurance::Unattested,
        };
        let factor = match session.record.mfa_method.as_str() {
            "totp" => rampart_policy::Factor::Totp,
            "recovery" => rampart_policy::Factor::Recovery,
            "oidc" => rampart_policy::Factor::Oidc,
            "webauthn" => self.webauthn_factor(session)?,
            other => {
                return Err(CaError::Internal(format!(
                    "session with unknown factor {other}"
                )))
            }
        };
        let policy = self.policy()?;
        let request = rampart_policy::CertRequest {
            user: &user.name,
            groups: &user.groups,
            factor,
            mfa_time: session.record.mfa_time,
            requested_ttl: req.ttl_seconds.map(Duration::from_secs),
            login: None,
        };
        let grant = match rampart_policy::evaluate_with_key(&request, key_assurance, &policy, now) {
            Decision::Allow(grant) => grant,
            Decision::Deny(denial) => return deny(denial.code.as_str(), denial.reason),
        };
        if let Err((code, reason)) = self.oidc_gate(caller, &policy, grant.roles(), session)? {
            return deny(code, reason);
        }
        let serial = self.next_serial()?;
        let spec = rampart_signer::UserCertSpec::from_grant(
            &grant,
            key,
            serial,
            rampart_signer::MfaEvidence {
                method: session.record.mfa_method.clone(),
                time: session.record.mfa_time,
                event_id: session.record.mfa_event.clone(),
            },
            now,
        )?
        .with_idp_evidence(&self.idp_extensions(session)?)?
        .with_idp_evidence(&self.webauthn_extensions(session)?)?
        .with_idp_evidence(
            &attested
                .as_ref()
                .map(|a| a.extensions())
                .unwrap_or_default(),
        )?;
        let cert = rampart_signer::sign_user_cert(self.keys.user_ca.as_ref(), &spec)?;
        let mfa_age = (now - session.record.mfa_time).num_seconds();
        let issued = self.event(EventKind::CertIssued, Outcome::Success, Some(caller));
        let issued = match &attested {
            Some(a) => issued.detail("piv_attestation", a.audit_detail()),
            None => issued,
        };
        self.record(
            issued
                .user(&user.name)
                .session(&session.record.id)
                .serial(serial)
                .mfa_method(&session.record.mfa_method)
                .mfa_age_seconds(mfa_age)
                .detail("key_id", spec.key_id())
                .detail("key_fingerprint", fingerprint.clone())
                .detail("principals", spec.principals().to_vec())
                .detail("roles", grant.roles().to_vec())
                .detail("valid_after", spec.valid_after())
                .detail("valid_before", spec.valid_before()),
        )?;
        // Audit first, record second: a certificate the log does not show is never
        // stored or handed out.
        let (record, line) =
            self.store_issued(&cert, CertKind::User, &user.name, &fingerprint, now)?;
        crate::metrics::cert_issued(crate::metrics::CertKind::User, started.elapsed());
        Ok(cert_response(record, line))
    }

    // ----- admin -----------------------------------------------------------

    /// Refuse unless the session belongs to an admin with a fresh, strong enough
    /// factor. Refusals are audited.
    pub fn require_admin(
        &self,
        caller: &Caller,
        session: &Session,
        action: &str,
    ) -> Result<(), CaError> {
        let now = self.now();
        let reason = if !session.user.admin {
            Some(("not_admin", "this operation needs an admin".to_owned()))
        } else if session.record.mfa_method == "recovery" && !self.settings.admin_allow_recovery {
            Some((
                "admin_needs_mfa",
                "admin operations are not allowed from a recovery-code login; log in with your factor"
                    .to_owned(),
            ))
        } else if now - session.record.mfa_time > to_chrono(self.settings.admin_max_mfa_age) {
            Some((
                "admin_mfa_stale",
                "admin operations need a recent MFA check; run `rampart login` again".to_owned(),
            ))
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some((code, message)) => {
                self.record(
                    self.event(EventKind::AdminActionDenied, Outcome::Failure, Some(caller))
                        .actor(&session.user.name)
                        .session(&session.record.id)
                        .reason(code)
                        .detail("action", action),
                )?;
                Err(CaError::forbidden(code, message))
            }
        }
    }

    fn require_user(&self, name: &str) -> Result<UserRecord, CaError> {
        self.store
            .user(name)?
            .ok_or_else(|| CaError::not_found("user_unknown", format!("no user named {name:?}")))
    }

    fn check_groups(groups: &[String]) -> Result<(), CaError> {
        match groups.iter().find(|g| !valid_group_name(g)) {
            Some(bad) => Err(CaError::bad_request(
                "invalid_group",
                format!("{bad:?} is not a valid group name (letters, digits, _ . -)"),
            )),
            None => Ok(()),
        }
    }

    /// Create a user. `actor` is `None` only for the bootstrap admin at `init`.
    pub fn create_user(
        &self,
        caller: Option<&Caller>,
        actor: Option<&Session>,
        req: &api::CreateUserRequest,
    ) -> Result<api::User, CaError> {
        if !valid_user_name(&req.name) {
            return Err(CaError::bad_request(
                "invalid_user_name",
                format!(
                    "{:?} is not a valid user name (lower case letters, digits, _ . -, at most 32, starting with a letter or _)",
                    req.name
                ),
            ));
        }
        Self::check_groups(&req.groups)?;
        let record = UserRecord {
            name: req.name.clone(),
            groups: req.groups.clone(),
            admin: req.admin,
            disabled: false,
            created_at: self.now(),
        };
        let exists = || CaError::Conflict {
            code: "user_exists",
            message: format!("a user named {:?} already exists", req.name),
        };
        if self.store.user(&req.name)?.is_some() {
            return Err(exists());
        }
        // Audit first: a state change the log does not know about must not happen.
        let mut ev = self
            .event(EventKind::UserCreated, Outcome::Success, caller)
            .user(&req.name)
            .detail("groups", req.groups.clone())
            .detail("admin", req.admin);
        if let Some(s) = actor {
            ev = ev.actor(&s.user.name).session(&s.record.id);
        } else {
            ev = ev.actor("rampart-ca init");
        }
        self.record(ev)?;
        match self.store.create_user(&record) {
            Ok(()) => {}
            Err(StoreError::Duplicate(_)) => return Err(exists()),
            Err(e) => return Err(e.into()),
        }
        self.user_view(record)
    }

    fn user_view(&self, u: UserRecord) -> Result<api::User, CaError> {
        Ok(api::User {
            totp_enrolled: self.store.totp(&u.name)?.is_some(),
            recovery_codes_left: self.store.recovery_codes_left(&u.name)?,
            name: u.name,
            groups: u.groups,
            admin: u.admin,
            disabled: u.disabled,
            created_at: u.created_at,
        })
    }

    /// All users.
    pub fn list_users(&self) -> Result<Vec<api::User>, CaError> {
        self.store
            .users()?
            .into_iter()
            .map(|u| self.user_view(u))
            .collect()
    }

    /// Disable (ending sessions) or enable a user.
    pub fn set_user_state(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::SetUserStateRequest,
    ) -> Result<api::User, CaError> {
        if req.disabled && req.name == actor.user.name {
            return Err(CaError::bad_request(
                "cannot_disable_self",
                "an admin cannot disable their own account",
            ));
        }
        self.require_user(&req.name)?;
        let kind = if req.disabled {
            EventKind::UserDisabled
        } else {
            EventKind::UserEnabled
        };
        self.record(
            self.event(kind, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .user(&req.name),
        )?;
        self.store.set_disabled(&req.name, req.disabled)?;
        if req.disabled {
            self.store.delete_user_sessions(&req.name)?;
        }
        let u = self.require_user(&req.name)?;
        self.user_view(u)
    }

    /// Replace a user's groups.
    pub fn set_user_groups(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::SetGroupsRequest,
    ) -> Result<api::User, CaError> {
        Self::check_groups(&req.groups)?;
        let before = self.require_user(&req.name)?;
        self.record(
            self.event(EventKind::UserGroupsChanged, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .user(&req.name)
                .detail("groups", req.groups.clone())
                .detail("previous_groups", before.groups),
        )?;
        self.store.set_groups(&req.name, &req.groups)?;
        let u = self.require_user(&req.name)?;
        self.user_view(u)
    }

    /// Create a single-use invite for an existing user.
    pub fn create_invite(
        &self,
        caller: Option<&Caller>,
        actor: Option<&Session>,
        req: &api::InviteRequest,
    ) -> Result<api::InviteResponse, CaError> {
        let user = self.require_user(&req.user)?;
        if user.disabled {
            return Err(CaError::bad_request(
                "user_disabled",
                "this user is disabled",
            ));
        }
        let ttl = match req.ttl_seconds {
            None => self.settings.invite_default_ttl,
            Some(0) => {
                return Err(CaError::bad_request(
                    "invalid_ttl",
                    "ttl_seconds must be positive",
                ))
            }
            Some(s) => Duration::from_secs(s),
        };
        if ttl > self.settings.invite_max_ttl {
            return Err(CaError::bad_request(
                "invalid_ttl",
                format!(
                    "invites may live at most {} s",
                    self.settings.invite_max_ttl.as_secs()
                ),
            ));
        }
        if self.store.totp(&user.name)?.is_some() {
            // An invite for someone who already has a factor: they lost it (M4).
            crate::metrics::recovery_request();
        }
        let now = self.now();
        let code = secrets::new_invite_code();
        let expires_at = now + to_chrono(ttl);
        self.store
            .create_invite(&secrets::digest_secret(&code), &user.name, expires_at, now)?;
        let mut ev = self
            .event(EventKind::InviteCreated, Outcome::Success, caller)
            .user(&user.name)
            .detail("expires_at", expires_at.to_rfc3339());
        ev = match actor {
            Some(s) => ev.actor(&s.user.name).session(&s.record.id),
            None => ev.actor("rampart-ca init"),
        };
        self.record(ev)?;
        Ok(api::InviteResponse {
            user: user.name,
            code,
            expires_at,
        })
    }

    /// Revoke by serial, user or key; rebuild the KRL.
    pub fn revoke(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::RevokeRequest,
    ) -> Result<api::RevokeResponse, CaError> {
        let chosen = [
            req.serial.is_some(),
            req.user.is_some(),
            req.key_fingerprint.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen != 1 {
            return Err(CaError::bad_request(
                "invalid_revocation",
                "give exactly one of serial, user or key_fingerprint",
            ));
        }
        let reason = req
            .reason
            .clone()
            .unwrap_or_else(|| "unspecified".to_owned());
        if reason.len() > 512 {
            return Err(CaError::bad_request(
                "invalid_reason",
                "reason is longer than 512 bytes",
            ));
        }
        let now = self.now();
        let mut serials = Vec::new();
        let mut keys = Vec::new();
        let mut target = String::new();
        if let Some(serial) = req.serial {
            if self.store.cert(serial)?.is_none() {
                return Err(CaError::not_found(
                    "serial_unknown",
                    format!("this CA issued no certificate with serial {serial}"),
                ));
            }
            serials.push(serial);
            target = format!("serial:{serial}");
        }
        let disable_user = req
            .user
            .as_ref()
            .filter(|u| *u != &actor.user.name)
            .cloned();
        if let Some(user) = &req.user {
            self.require_user(user)?;
            serials = self.store.serials_for_user(user)?;
            target = format!("user:{user}");
        }
        if let Some(fp) = &req.key_fingerprint {
            rampart_signer::parse_fingerprint(fp).map_err(|_| {
                CaError::bad_request(
                    "invalid_fingerprint",
                    "key_fingerprint must look like SHA256:<base64>, as ssh-keygen -l prints",
                )
            })?;
            serials = self.store.serials_for_key(fp)?;
            keys.push(fp.clone());
            target = format!("key:{fp}");
        }
        let before = self.store.revocations()?;
        let newly_serials: Vec<u64> = serials
            .iter()
            .copied()
            .filter(|s| !before.serials.contains(s))
            .collect();
        let newly_keys: Vec<String> = keys
            .iter()
            .filter(|k| !before.key_fingerprints.contains(k))
            .cloned()
            .collect();
        // Audit first, then change state: nothing is revoked or disabled that the
        // log does not show.
        self.record(
            self.event(EventKind::Revoked, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .target(&target)
                .reason(&reason)
                .detail("serials", newly_serials.clone())
                .detail("keys", newly_keys.clone()),
        )?;
        if let Some(user) = &disable_user {
            self.record(
                self.event(EventKind::UserDisabled, Outcome::Success, Some(caller))
                    .actor(&actor.user.name)
                    .session(&actor.record.id)
                    .user(user)
                    .reason("revoked"),
            )?;
            self.store.set_disabled(user, true)?;
        }
        if let Some(user) = &req.user {
            self.store.delete_user_sessions(user)?;
        }
        let version = self.store.revoke(&serials, &keys, &reason, now)?;
        self.rebuild_krl()?;
        self.record(
            self.event(EventKind::KrlPublished, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .detail("krl_version", version)
                .detail("serials", self.store.revocations()?.serials.len() as u64),
        )?;
        Ok(api::RevokeResponse {
            revoked_serials: newly_serials,
            revoked_keys: newly_keys,
            krl_version: version,
        })
    }

    /// Sign a host key.
    pub fn issue_host_cert(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::HostCertRequest,
    ) -> Result<api::CertResponse, CaError> {
        self.sign_host(
            caller,
            &req.public_key,
            &req.name,
            &req.extra_principals,
            req.ttl_seconds.map(Duration::from_secs),
            "host_refused",
            |ev| ev.actor(&actor.user.name).session(&actor.record.id),
        )
    }

    /// Sign a host key for `name` as policy approves it (`[hosts]`), record it and
    /// audit it; `who` names the requester in the event (an admin or a bastion).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sign_host(
        &self,
        caller: &Caller,
        public_key: &str,
        name: &str,
        extra_principals: &[String],
        ttl: Option<Duration>,
        refused_code: &'static str,
        who: impl FnOnce(NewEvent) -> NewEvent,
    ) -> Result<api::CertResponse, CaError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let key = self.parse_public_key(public_key)?;
        let policy = self.policy()?;
        let grant = rampart_policy::approve_host(&policy, name, extra_principals, ttl)
            .map_err(|d| CaError::bad_request(refused_code, d.reason))?;
        let serial = self.next_serial()?;
        let fingerprint = key_fingerprint(&key);
        let spec = rampart_signer::HostCertSpec::from_grant(&grant, key, serial, now)?;
        let cert = rampart_signer::sign_host_cert(self.keys.host_ca.as_ref(), &spec)?;
        self.record(
            who(self.event(EventKind::HostCertIssued, Outcome::Success, Some(caller)))
                .target(name)
                .serial(serial)
                .detail("key_fingerprint", fingerprint.clone())
                .detail("principals", spec.principals().to_vec())
                .detail("valid_before", spec.valid_before()),
        )?;
        let (record, line) = self.store_issued(&cert, CertKind::Host, name, &fingerprint, now)?;
        crate::metrics::cert_issued(crate::metrics::CertKind::Host, started.elapsed());
        Ok(cert_response(record, line))
    }
}

impl Authority {
    /// Record a freshly signed certificate; what is stored is read back from the
    /// certificate itself, so the record cannot drift from what was signed.
    fn store_issued(
        &self,
        cert: &ssh_key::Certificate,
        kind: CertKind,
        subject: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<(CertRecord, String), CaError> {
        let line = cert
            .to_openssh()
            .map_err(|e| CaError::Internal(format!("encoding certificate: {e}")))?;
        let record = CertRecord {
            serial: cert.serial(),
            kind,
            subject: subject.to_owned(),
            key_fingerprint: fingerprint.to_owned(),
            key_id: cert.key_id().to_owned(),
            principals: cert.valid_principals().to_vec(),
            valid_after: cert.valid_after(),
            valid_before: cert.valid_before(),
            issued_at: now,
        };
        self.store.insert_cert(&record)?;
        Ok((record, line))
    }
}

fn cert_response(record: CertRecord, certificate: String) -> api::CertResponse {
    api::CertResponse {
        certificate,
        serial: record.serial,
        key_id: record.key_id,
        principals: record.principals,
        valid_after: unix_to_utc(record.valid_after),
        valid_before: unix_to_utc(record.valid_before),
    }
}

fn unix_to_utc(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_portable_shape() {
        for ok in ["alice", "_svc", "a.b-c_1", "x"] {
            assert!(valid_user_name(ok), "{ok}");
        }
        for bad in ["", "Alice", "1abc", "a b", "a,b", "root\n", &"a".repeat(33)] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn krl_signature_is_an_sshsig_over_the_exact_bytes() {
        let key = FileCaKey::generate("user ca").unwrap();
        let other = FileCaKey::generate("other").unwrap();
        let krl = b"SSHKRL\n\0 some krl bytes".to_vec();
        let pem = sign_krl(&key, &krl).unwrap();
        assert!(pem.starts_with("-----BEGIN SSH SIGNATURE-----"), "{pem}");
        let sig = ssh_key::SshSig::from_pem(&pem).unwrap();
        assert_eq!(sig.hash_alg(), ssh_key::HashAlg::Sha512);
        let public = key.public_key();
        public.verify(api::KRL_SIG_NAMESPACE, &krl, &sig).unwrap();
        let mut tampered = krl.clone();
        tampered[7] ^= 1;
        assert!(public
            .verify(api::KRL_SIG_NAMESPACE, &tampered, &sig)
            .is_err());
        assert!(public.verify("file", &krl, &sig).is_err());
        assert!(other
            .public_key()
            .verify(api::KRL_SIG_NAMESPACE, &krl, &sig)
            .is_err());
    }
}
