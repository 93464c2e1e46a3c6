//! Replacing the user CA or host CA key while everything keeps working
//! (`rampart-ca rotate-key`).
//!
//! **Owns:** the key slots of a rotation, the three steps between them, and the
//! public keys a serving CA publishes from them.
//!
//! Each CA key has two more slots beside it: *next* (the key that will sign)
//! and *previous* (the key that signed until the last rotation). With key
//! files (`files`) they are `K.next` and `K.previous` beside the key file
//! `K`, each with its `.pub`; in a PKCS#11 token (`token`) they are the
//! labels `L.next` and `L.previous` beside the key's label `L`. The steps,
//! each one command on the CA host, each audited as `ca_key_rotated`
//! *before* a key changes place:
//!
//! 1. **prepare**: make the next key (a file encrypted with the CA's
//!    passphrase, or a key generated inside the token). A CA started
//!    afterwards still signs with the current key and publishes both, so
//!    hosts (`rampart host krl-sync`), bastions and clients (`rampart login`)
//!    learn to trust the next key before anything is signed with it.
//! 2. **activate**: current becomes previous, next becomes current. A CA
//!    started afterwards signs with the new key and still publishes the old
//!    one, so certificates it signed keep working until they expire. The
//!    moment is kept with the replaced key (`replaced-at=…` in its `.pub`
//!    comment; its `CKA_END_DATE` in a token). An activation cut short by a
//!    crash is finished by running activate again.
//! 3. **retire**: delete the previous key: it is no longer published, and
//!    hosts drop it at their next sync. Refused while a certificate the old
//!    key may have signed is still valid (the store knows the last one);
//!    `--force` cuts them off at once, for a compromised key.
//!
//! Every step needs a restart of the CA (`systemctl restart rampart-ca`), which
//! loads its keys once. With several CAs on key files, copy the changed files
//! to every CA host and restart each; CAs that share a token see its labels
//! change, and only need the restart.

mod files;
mod token;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rampart_audit::{EventKind, NewEvent, Outcome};
use rampart_signer::FileCaKey;
use secrecy::SecretString;
use ssh_key::{HashAlg, PublicKey};

pub use files::Slots;
pub use token::TokenSlots;

use crate::clock::{Clock as _, SystemClock};
use crate::config::{CaKeys, Config};
use crate::error::CaError;
use crate::store::CertKind;

/// Which CA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// The user CA (user certificates, KRL signatures).
    User,
    /// The host CA (host certificates).
    Host,
}

impl CaRole {
    /// `user` or `host`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaRole::User => "user",
            CaRole::Host => "host",
        }
    }

    fn cert_kind(self) -> CertKind {
        match self {
            CaRole::User => CertKind::User,
            CaRole::Host => CertKind::Host,
        }
    }
}

/// A step of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make and publish the next key.
    Prepare,
    /// Sign with the next key; keep trusting the replaced one.
    Activate,
    /// Stop trusting the replaced key.
    Retire,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Activate => "activate",
            Step::Retire => "retire",
        }
    }
}

/// The key that signed before the last activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// Its public key.
    pub key: PublicKey,
    /// When it stopped signing.
    pub replaced_at: DateTime<Utc>,
}

/// The published side of one CA key: what hosts and clients must trust.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Published {
    /// The key that will sign, trusted before it does.
    pub next: Option<PublicKey>,
    /// The key that signed before, trusted until its certificates expire.
    pub previous: Option<Replaced>,
}

impl Published {
    /// The keys to trust beside the signing one: the next, then the previous.
    pub fn also_trusted(&self) -> Vec<PublicKey> {
        self.next
            .iter()
            .chain(self.previous.as_ref().map(|p| &p.key))
            .cloned()
            .collect()
    }
}

/// Where one CA key's rotation lives: key files, or labels in a token.
#[derive(Debug)]
pub enum KeySlots {
    /// `K`, `K.next`, `K.previous` on disk.
    Files(Slots),
    /// `L`, `L.next`, `L.previous` in the token `[keys.pkcs11]` names.
    Token(TokenSlots),
}

impl KeySlots {
    /// The slots of `role`'s key (opening the token, for keys in one).
    pub fn for_role(config: &Config, role: CaRole) -> Result<KeySlots, CaError> {
        Ok(match &config.ca_keys {
            CaKeys::Files { user_ca, host_ca } => KeySlots::Files(Slots::of(match role {
                CaRole::User => user_ca,
                CaRole::Host => host_ca,
            })),
            CaKeys::Pkcs11(p) => KeySlots::Token(TokenSlots::new(
                std::rc::Rc::new(crate::keys::open_token(p)?),
                match role {
                    CaRole::User => &p.user_ca,
                    CaRole::Host => &p.host_ca,
                },
            )),
        })
    }

    /// What hosts and clients must trust beside the signing key.
    pub fn published(&self) -> Result<Published, CaError> {
        match self {
            KeySlots::Files(slots) => slots.published(),
            KeySlots::Token(slots) => slots.published(),
        }
    }

    /// Make the next key; `audit` records it (given its fingerprint) before
    /// it takes its place. A token makes keys in place, so there a key whose
    /// record failed is destroyed again.
    fn make_next(
        &self,
        role: CaRole,
        pass: &SecretString,
        audit: impl FnOnce(&str) -> Result<(), CaError>,
    ) -> Result<String, CaError> {
        match self {
            KeySlots::Files(slots) => {
                let key = FileCaKey::generate(&format!("rampart {} CA", role.as_str()))?;
                let key_fp = fingerprint(key.private_key().public_key());
                audit(&key_fp)?;
                slots.write_next(&key, pass)?;
                Ok(key_fp)
            }
            KeySlots::Token(slots) => {
                let key_fp = fingerprint(&slots.generate_next()?);
                if let Err(e) = audit(&key_fp) {
                    slots.destroy_next()?;
                    return Err(e);
                }
                Ok(key_fp)
            }
        }
    }

    /// The next key can sign: the file decrypts, the token holds both halves.
    fn check_next(&self, pass: &SecretString) -> Result<(), CaError> {
        match self {
            KeySlots::Files(slots) => crate::keys::load_file(&slots.next, pass).map(|_| ()),
            KeySlots::Token(slots) => slots.check_next(),
        }
    }

    fn activate(&self, current: &PublicKey, now: DateTime<Utc>) -> Result<(), CaError> {
        match self {
            KeySlots::Files(slots) => files::activate_files(slots, current, now),
            KeySlots::Token(slots) => slots.activate(now),
        }
    }

    /// Finish an activation a crash cut short; whether there was one.
    fn finish_interrupted_activation(&self, now: DateTime<Utc>) -> Result<bool, CaError> {
        match self {
            KeySlots::Files(slots) if slots.interrupted() => {
                slots.finish_activation().map(|()| true)
            }
            KeySlots::Token(slots) if slots.interrupted()? => slots.activate(now).map(|()| true),
            _ => Ok(false),
        }
    }

    fn retire(&self) -> Result<(), CaError> {
        match self {
            KeySlots::Files(slots) => slots.remove_previous(),
            KeySlots::Token(slots) => slots.destroy_previous(),
        }
    }
}

/// What a step did, for the operator.
#[derive(Debug)]
pub struct StepDone {
    /// Which key.
    pub role: CaRole,
    /// Which step.
    pub step: Step,
    /// Fingerprint of the key the step is about (the new, or the retired one).
    pub key: String,
    /// Fingerprint of the key that signs after the step (once the CA restarts).
    pub signer: String,
    /// For activate: the replaced key's certificates end by then at the latest
    /// (the earliest `retire` without `--force`).
    pub retire_after: Option<DateTime<Utc>>,
}

/// Take `step` for `role`'s key of the CA configured at `config_path`.
pub fn rotate(
    config_path: &Path,
    role: CaRole,
    step: Step,
    force: bool,
) -> Result<StepDone, CaError> {
    let config = Config::load(config_path)?;
    let slots = KeySlots::for_role(&config, role)?;
    let pass = config.read_passphrase()?;
    // An activation a crash cut short was audited before it began: finish
    // it first, or the CA cannot even load its signing key.
    let resumed =
        step == Step::Activate && slots.finish_interrupted_activation(SystemClock.now())?;
    let published = slots.published()?;
    let loaded = crate::server::open_with_passphrase(&config, &pass, Arc::new(SystemClock))?;
    let auth = loaded.authority;
    // The signing key as the CA loaded it (decrypting it once more costs a
    // bcrypt-pbkdf round).
    let current = PublicKey::from_openssh(&match role {
        CaRole::User => auth.user_ca_line(),
        CaRole::Host => auth.host_ca_line(),
    })
    .map_err(|e| CaError::Internal(format!("the signing key: {e}")))?;
    let current_fp = fingerprint(&current);
    let now = auth.now();
    let event = |key: &str, signer: &str| {
        NewEvent::new(EventKind::CaKeyRotated, Outcome::Success, now)
            .actor("rampart-ca rotate-key")
            .detail("ca", role.as_str())
            .detail("step", step.as_str())
            .detail("key", key.to_owned())
            .detail("signer", signer.to_owned())
            .detail("forced", force)
            .detail("os_user", crate::recover::os_user())
    };
    let step_done = |key: String, signer: String, retire_after: Option<DateTime<Utc>>| StepDone {
        role,
        step,
        key,
        signer,
        retire_after,
    };
    let done = match step {
        Step::Prepare => {
            if let Some(next) = &published.next {
                return Err(CaError::Config(format!(
                    "a next {} CA key ({}) is already prepared: activate it first",
                    role.as_str(),
                    fingerprint(next)
                )));
            }
            if published.previous.is_some() {
                return Err(CaError::Config(format!(
                    "the replaced {} CA key is still trusted: retire it before a new rotation",
                    role.as_str()
                )));
            }
            let key_fp = slots.make_next(role, &pass, |key_fp| {
                auth.record(event(key_fp, &current_fp)).map(|_| ())
            })?;
            step_done(key_fp, current_fp, None)
        }
        Step::Activate if resumed => step_done(
            current_fp.clone(),
            current_fp,
            last_expiry(&auth, role, now)?.map(|(end, _)| end),
        ),
        Step::Activate => {
            let Some(next) = &published.next else {
                return Err(CaError::Config(format!(
                    "no next {} CA key to activate: prepare one first",
                    role.as_str()
                )));
            };
            if published.previous.is_some() {
                return Err(CaError::Config(format!(
                    "the replaced {} CA key is still trusted: retire it before activating \
                     another",
                    role.as_str()
                )));
            }
            // The next key must work before it is made the signer.
            slots.check_next(&pass)?;
            let next_fp = fingerprint(next);
            auth.record(event(&next_fp, &next_fp))?;
            slots.activate(&current, now)?;
            let retire_after = last_expiry(&auth, role, now)?.map(|(end, _)| end);
            step_done(next_fp.clone(), next_fp, retire_after)
        }
        Step::Retire => {
            let Some(previous) = &published.previous else {
                return Err(CaError::Config(format!(
                    "no replaced {} CA key to retire",
                    role.as_str()
                )));
            };
            if let Some((end, serial)) = last_expiry(&auth, role, previous.replaced_at)? {
                if end > now && !force {
                    return Err(CaError::Config(format!(
                        "certificates the replaced {} CA key signed stay valid until {} \
                         (serial {serial}): retire after that, or with --force to cut them \
                         off now (for a compromised key)",
                        role.as_str(),
                        rfc3339(end)
                    )));
                }
            }
            let key_fp = fingerprint(&previous.key);
            auth.record(event(&key_fp, &current_fp))?;
            slots.retire()?;
            step_done(key_fp, current_fp, None)
        }
    };
    auth.audit_log()
        .close()
        .map_err(CaError::AuditUnavailable)?;
    Ok(done)
}

/// The last expiry among certificates of `role`'s kind valid from `upto` or
/// before, with its serial.
fn last_expiry(
    auth: &crate::Authority,
    role: CaRole,
    upto: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, u64)>, CaError> {
    let upto = u64::try_from(upto.timestamp()).unwrap_or(0);
    Ok(auth
        .last_certificate_expiry(role.cert_kind(), upto)?
        .map(|(end, serial)| (unix(end), serial)))
}

fn unix(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `SHA256:…`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// One line per key: how each CA key stands, for `rampart-ca check`.
pub fn describe(config: &Config) -> Result<Vec<String>, CaError> {
    let mut out = Vec::new();
    for role in [CaRole::User, CaRole::Host] {
        let published = KeySlots::for_role(config, role)?.published()?;
        if let Some(next) = &published.next {
            out.push(format!(
                "{} CA key rotation: next key {} published, not signing yet (activate it)",
                role.as_str(),
                fingerprint(next)
            ));
        }
        if let Some(prev) = &published.previous {
            out.push(format!(
                "{} CA key rotation: replaced key {} still trusted since {} (retire it once \
                 its certificates expired)",
                role.as_str(),
                fingerprint(&prev.key),
                rfc3339(prev.replaced_at)
            ));
        }
    }
    Ok(out)
}
