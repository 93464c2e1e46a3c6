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

mod admin;
pub mod bastion;
mod enrolment;
mod host_join;
mod host_renew;
mod issuance;
mod lockout;
mod login;
pub mod oidc_login;
mod oidc_state;
pub mod policy_share;
pub mod sessions;
pub mod user_proof;
pub mod webauthn;

use issuance::cert_response;
pub use lockout::source_network;

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
    /// Public user CA keys trusted beside the signing one while a rotation
    /// runs ([`crate::rotation`]): published, never used to sign.
    pub also_trusted_user: Vec<PublicKey>,
    /// The same for the host CA.
    pub also_trusted_host: Vec<PublicKey>,
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
            .field("also_trusted_user", &fingerprints(&self.also_trusted_user))
            .field("also_trusted_host", &fingerprints(&self.also_trusted_host))
            .finish()
    }
}

impl Keys {
    /// Keys loaded from encrypted files.
    pub fn from_files(user_ca: FileCaKey, host_ca: FileCaKey) -> Self {
        Keys {
            user_ca: Box::new(user_ca),
            host_ca: Box::new(host_ca),
            also_trusted_user: Vec::new(),
            also_trusted_host: Vec::new(),
        }
    }
}

fn fingerprints(keys: &[PublicKey]) -> Vec<String> {
    keys.iter()
        .map(|k| k.fingerprint(Default::default()).to_string())
        .collect()
}

/// The signing key's line first, then the others: an OpenSSH
/// `TrustedUserCAKeys` file or one `@cert-authority` line per key. A replaced
/// key's comment says when it was replaced.
fn key_lines(signer: &PublicKey, also: &[PublicKey]) -> String {
    std::iter::once(signer)
        .chain(also)
        .map(|k| k.to_openssh().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
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
    /// `recordings/` beside an SQLite audit database, or in the CA's
    /// directory: where uploads are spooled, and where sealed recordings are
    /// kept unless `recordings_database` is set.
    pub recordings_dir: std::path::PathBuf,
    /// The shared PostgreSQL audit database, when there is one: sealed
    /// recordings are kept there so that every CA can hand them out.
    pub recordings_database: Option<Box<rampart_audit::PgConfig>>,
}

/// What a successful login proved, for [`Authority::open_session`]. Holds the
/// new session token in the clear, so it has no `Debug` and lives only until the
/// session is stored and answered.
pub(crate) struct ProvenLogin<'a> {
    /// The Rampart user logged in.
    pub user: &'a str,
    /// Whether that user is an administrator (told to the client).
    pub admin: bool,
    /// The factor that was checked.
    pub mfa_method: rampart_policy::MfaMethod,
    /// When the factor was checked (for OIDC, the provider's `auth_time`).
    pub mfa_time: DateTime<Utc>,
    /// The id of the `mfa_succeeded` audit event the session points at.
    pub mfa_event: String,
    /// The session's public id, already named in `mfa_succeeded`.
    pub session_id: String,
    /// The bearer token handed to the client; only its digest is stored.
    pub token: api::WireSecret,
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
    /// [`Authority::user_ca_keys_signature`], made once: the set cannot change
    /// while the process runs, and an anonymous caller must not make an HSM sign.
    user_ca_keys_sig: std::sync::OnceLock<String>,
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
    sshsig(signer, api::KRL_SIG_NAMESPACE, krl)
}

/// An armored SSHSIG over `message` in `namespace`, hash SHA-512, made through
/// the [`CaSigner`] seam.
fn sshsig(signer: &dyn CaSigner, namespace: &str, message: &[u8]) -> Result<String, CaError> {
    let internal = |e: ssh_key::Error| CaError::Internal(format!("{namespace} signature: {e}"));
    let hash = ssh_key::HashAlg::Sha512;
    let data = ssh_key::SshSig::signed_data(namespace, hash, message).map_err(internal)?;
    let raw = signer.sign_raw(&data)?;
    let sig = ssh_key::SshSig::new(signer.public_key().key_data().clone(), namespace, hash, raw)
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
            user_ca_keys_sig: std::sync::OnceLock::new(),
            oidc: RwLock::new(None),
            webauthn: RwLock::new(None),
            piv: RwLock::new(None),
        };
        auth.rebuild_krl()?;
        Ok(auth)
    }

    /// Forget flows in progress (login ceremonies, approvals, device grants)
    /// past their expiry; how many went. A new entry also clears expired ones,
    /// but only when someone starts a flow, so a timer calls this too.
    pub fn purge_expired_requests(&self) -> Result<u64, CaError> {
        Ok(self.store.pending_purge(self.now())?)
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
        let rp = self.webauthn().ok();
        crate::metrics::refresh_coverage(self.store.as_ref(), &*self.policy()?, &|k| {
            rp.as_ref()
                .is_some_and(|rp| rp.key_attested(k.attestation_verified, &k.aaguid))
        })
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
            tracing::error!(error = %rampart_api::report::one_line(&e), "audit append failed; refusing the action");
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

    /// Every user CA key to trust, one per line, the signing one first
    /// (several while a rotation runs).
    pub fn user_ca_keys(&self) -> String {
        key_lines(self.keys.user_ca.public_key(), &self.keys.also_trusted_user)
    }

    /// Every host CA key to trust, one per line, the signing one first.
    pub fn host_ca_keys(&self) -> String {
        key_lines(self.keys.host_ca.public_key(), &self.keys.also_trusted_host)
    }

    /// The SSHSIG (namespace [`api::CA_KEYS_SIG_NAMESPACE`]) over exactly the
    /// bytes `GET /v1/ca/user.pub` serves, made with the signing user CA key:
    /// a host that trusts any key of the set can check the next set, so a
    /// rotation reaches hosts without a new trust step.
    pub fn user_ca_keys_signature(&self) -> Result<String, CaError> {
        if let Some(sig) = self.user_ca_keys_sig.get() {
            return Ok(sig.clone());
        }
        let sig = sshsig(
            self.keys.user_ca.as_ref(),
            api::CA_KEYS_SIG_NAMESPACE,
            format!("{}\n", self.user_ca_keys()).as_bytes(),
        )?;
        Ok(self.user_ca_keys_sig.get_or_init(|| sig).clone())
    }

    /// The latest end of validity among certificates of `kind` valid from
    /// `valid_after_upto` or before, with its serial.
    pub fn last_certificate_expiry(
        &self,
        kind: crate::store::CertKind,
        valid_after_upto: u64,
    ) -> Result<Option<(u64, u64)>, CaError> {
        Ok(self.store.last_expiry(kind, valid_after_upto)?)
    }

    /// The current KRL (OpenSSH binary format).
    pub fn krl(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.signed_krl().bytes)
    }

    /// The current KRL with its SSHSIG signature, as one consistent pair.
    ///
    /// The pair is re-generated (same `krl_version`, new `generated_date`, new
    /// signature) when it is older than [`KRL_RESIGN_AFTER`], so hosts can tell a
    /// fresh KRL from a replayed old one by its signed date, and at once when
    /// the store's revocation version moved past it: another CA on the same
    /// database revoked something. If that refresh fails the previous pair is
    /// served: it is still correct, only older.
    pub fn signed_krl(&self) -> Arc<SignedKrl> {
        let current = self.cached_krl();
        let now = u64::try_from(self.now().timestamp()).unwrap_or(0);
        let moved = match self.store.krl_version() {
            Ok(v) => v != current.version,
            Err(e) => {
                tracing::warn!(error = %rampart_api::report::one_line(&e), "could not read the revocation version");
                false
            }
        };
        if moved || now.saturating_sub(current.generated_at) >= KRL_RESIGN_AFTER.as_secs() {
            match self.rebuild_krl() {
                Ok(_) => return self.cached_krl(),
                Err(e) => {
                    tracing::warn!(error = %rampart_api::report::one_line(&e), "could not re-sign the KRL; serving the previous one")
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
            also_ca_keys: self.keys.also_trusted_user.clone(),
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
