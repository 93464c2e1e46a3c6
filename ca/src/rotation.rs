//! Replacing the user CA or host CA key while everything keeps working
//! (`rampart-ca rotate-key`).
//!
//! **Owns:** the key slots of a rotation, the three steps between them, and the
//! public keys a serving CA publishes from them.
//!
//! A key file `K` (say `keys/user_ca`) has two more slots beside it:
//! `K.next` (the key that will sign) and `K.previous` (the key that signed
//! until the last rotation), each with its `.pub`. The steps, each one command
//! on the CA host, each audited as `ca_key_rotated` *before* a file changes:
//!
//! 1. **prepare**: make `K.next`, encrypted with the CA's passphrase. A CA
//!    started afterwards still signs with `K` and publishes both keys, so
//!    hosts (`rampart host krl-sync`), bastions and clients (`rampart login`)
//!    learn to trust the next key before anything is signed with it.
//! 2. **activate**: `K` becomes `K.previous`, `K.next` becomes `K`. A CA
//!    started afterwards signs with the new key and still publishes the old
//!    one, so certificates it signed keep working until they expire. The
//!    moment is written into `K.previous.pub`'s comment (`replaced-at=…`).
//! 3. **retire**: delete `K.previous*`: the old key is no longer published, and
//!    hosts drop it at their next sync. Refused while a certificate the old
//!    key may have signed is still valid (the store knows the last one);
//!    `--force` cuts them off at once, for a compromised key.
//!
//! Every step needs a restart of the CA (`systemctl restart rampart-ca`), which
//! loads its keys once. With several CAs on key files, copy the changed files
//! to every CA host and restart each. Keys in a PKCS#11 token are refused
//! here: a token rotates by making a key under a new label and pointing
//! `[keys.pkcs11]` at it, which this module does not do yet.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rampart_audit::{EventKind, NewEvent, Outcome};
use rampart_signer::FileCaKey;
use ssh_key::{HashAlg, PublicKey};

use crate::clock::SystemClock;
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

/// Where one CA key's rotation lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// The signing key.
    pub current: PathBuf,
    /// The key that will sign.
    pub next: PathBuf,
    /// The key that signed before.
    pub previous: PathBuf,
}

impl Slots {
    /// The slots beside the key file `current`.
    pub fn of(current: &Path) -> Slots {
        Slots {
            current: current.to_owned(),
            next: with_suffix(current, ".next"),
            previous: with_suffix(current, ".previous"),
        }
    }

    /// The slots of `role`'s key, or why there are none.
    pub fn for_role(config: &Config, role: CaRole) -> Result<Slots, CaError> {
        match &config.ca_keys {
            CaKeys::Files { user_ca, host_ca } => Ok(Slots::of(match role {
                CaRole::User => user_ca,
                CaRole::Host => host_ca,
            })),
            CaKeys::Pkcs11(_) => Err(CaError::Config(
                "the CA keys are in a PKCS#11 token: rotate-key handles key files only; \
                 make a key under a new label in the token and point [keys.pkcs11] at it"
                    .into(),
            )),
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
    /// Read the public halves beside `slots.current` (no passphrase needed).
    pub fn read(slots: &Slots) -> Result<Published, CaError> {
        let next = read_public(&pub_path(&slots.next))?;
        let previous = match read_public(&pub_path(&slots.previous))? {
            None => None,
            Some(key) => {
                let replaced_at = replaced_at(&key).ok_or_else(|| {
                    CaError::Config(format!(
                        "{}: the comment does not say when the key was replaced \
                         (replaced-at=RFC 3339 time)",
                        pub_path(&slots.previous).display()
                    ))
                })?;
                Some(Replaced { key, replaced_at })
            }
        };
        Ok(Published { next, previous })
    }

    /// The keys to trust beside the signing one: the next, then the previous.
    pub fn also_trusted(&self) -> Vec<PublicKey> {
        self.next
            .iter()
            .chain(self.previous.as_ref().map(|p| &p.key))
            .cloned()
            .collect()
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
    let slots = Slots::for_role(&config, role)?;
    let published = Published::read(&slots)?;
    let pass = config.read_passphrase()?;
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
            let key = FileCaKey::generate(&format!("rampart {} CA", role.as_str()))?;
            let key_fp = fingerprint(key.private_key().public_key());
            auth.record(event(&key_fp, &current_fp))?;
            key.write_encrypted(&slots.next, &pass)?;
            StepDone {
                role,
                step,
                key: key_fp,
                signer: current_fp,
                retire_after: None,
            }
        }
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
            // The next key must decrypt before it is made the signer.
            crate::keys::load_file(&slots.next, &pass)?;
            let next_fp = fingerprint(next);
            auth.record(event(&next_fp, &next_fp))?;
            activate_files(&slots, &current, now)?;
            let retire_after = last_expiry(&auth, role, now)?.map(|(end, _)| end);
            StepDone {
                role,
                step,
                key: next_fp.clone(),
                signer: next_fp,
                retire_after,
            }
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
            for p in [pub_path(&slots.previous), slots.previous.clone()] {
                remove_if_present(&p)?;
            }
            StepDone {
                role,
                step,
                key: key_fp,
                signer: current_fp,
                retire_after: None,
            }
        }
    };
    auth.audit_log()
        .close()
        .map_err(CaError::AuditUnavailable)?;
    Ok(done)
}

/// `K` → `K.previous` (its `.pub` rewritten with the moment), `K.next` → `K`.
/// Each rename is atomic; a crash between them leaves `K` missing, which
/// `serve` refuses, and running activate again finishes the move.
fn activate_files(slots: &Slots, current: &PublicKey, now: DateTime<Utc>) -> Result<(), CaError> {
    let mut replaced = current.clone();
    replaced.set_comment(format!(
        "{} replaced-at={}",
        current.comment(),
        now.to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    let line = replaced
        .to_openssh()
        .map_err(|e| CaError::Internal(format!("public key: {e}")))?;
    write_file(&pub_path(&slots.previous), format!("{line}\n").as_bytes())?;
    rename(&slots.current, &slots.previous)?;
    remove_if_present(&pub_path(&slots.current))?;
    rename(&slots.next, &slots.current)?;
    rename(&pub_path(&slots.next), &pub_path(&slots.current))?;
    sync_dir(&slots.current)
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

/// The moment in a replaced key's comment.
fn replaced_at(key: &PublicKey) -> Option<DateTime<Utc>> {
    let comment: &str = key.comment().as_ref();
    let (_, at) = comment.rsplit_once("replaced-at=")?;
    DateTime::parse_from_rfc3339(at.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `SHA256:…`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// One line per key: how each CA key stands, for `rampart-ca check`.
pub fn describe(config: &Config) -> Result<Vec<String>, CaError> {
    let mut out = Vec::new();
    for role in [CaRole::User, CaRole::Host] {
        let Ok(slots) = Slots::for_role(config, role) else {
            return Ok(out);
        };
        let published = Published::read(&slots)?;
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

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn pub_path(path: &Path) -> PathBuf {
    with_suffix(path, ".pub")
}

fn io(path: &Path, e: std::io::Error) -> CaError {
    CaError::Config(format!("{}: {e}", path.display()))
}

fn read_public(path: &Path) -> Result<Option<PublicKey>, CaError> {
    match fs::read_to_string(path) {
        Ok(text) => PublicKey::from_openssh(text.trim())
            .map(Some)
            .map_err(|e| CaError::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    let tmp = with_suffix(path, ".tmp");
    fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    rename(&tmp, path)
}

fn rename(from: &Path, to: &Path) -> Result<(), CaError> {
    fs::rename(from, to).map_err(|e| io(from, e))
}

fn remove_if_present(path: &Path) -> Result<(), CaError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

fn sync_dir(file: &Path) -> Result<(), CaError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key(comment: &str) -> PublicKey {
        FileCaKey::generate(comment)
            .unwrap()
            .private_key()
            .public_key()
            .clone()
    }

    #[test]
    fn the_slots_sit_beside_the_key_file() {
        let s = Slots::of(Path::new("/ca/keys/user_ca"));
        assert_eq!(s.next, Path::new("/ca/keys/user_ca.next"));
        assert_eq!(s.previous, Path::new("/ca/keys/user_ca.previous"));
        assert_eq!(
            pub_path(&s.previous),
            Path::new("/ca/keys/user_ca.previous.pub")
        );
    }

    #[test]
    fn activation_moves_the_keys_and_dates_the_replaced_one() {
        let dir = tempfile::tempdir().unwrap();
        let pass = secrecy::SecretString::from("correct horse battery".to_owned());
        let slots = Slots::of(&dir.path().join("user_ca"));
        let old = FileCaKey::generate("rampart user CA").unwrap();
        old.write_encrypted(&slots.current, &pass).unwrap();
        assert_eq!(Published::read(&slots).unwrap(), Published::default());
        let new = FileCaKey::generate("rampart user CA").unwrap();
        new.write_encrypted(&slots.next, &pass).unwrap();
        let published = Published::read(&slots).unwrap();
        assert_eq!(
            published.next.as_ref(),
            Some(new.private_key().public_key())
        );
        assert_eq!(published.also_trusted().len(), 1);

        let at = DateTime::parse_from_rfc3339("2026-12-05T17:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        activate_files(&slots, old.private_key().public_key(), at).unwrap();
        let signer = FileCaKey::load_encrypted(&slots.current, &pass).unwrap();
        assert_eq!(
            signer.private_key().public_key(),
            new.private_key().public_key()
        );
        let published = Published::read(&slots).unwrap();
        assert_eq!(published.next, None);
        let previous = published.previous.unwrap();
        assert_eq!(previous.replaced_at, at);
        assert_eq!(
            previous.key.key_data(),
            old.private_key().public_key().key_data()
        );
        assert!(!slots.next.exists() && !pub_path(&slots.next).exists());
    }

    #[test]
    fn a_replaced_key_without_its_moment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let slots = Slots::of(&dir.path().join("host_ca"));
        let line = key("rampart host CA").to_openssh().unwrap();
        fs::write(pub_path(&slots.previous), format!("{line}\n")).unwrap();
        let e = Published::read(&slots).unwrap_err().to_string();
        assert!(e.contains("replaced-at"), "{e}");
        fs::write(pub_path(&slots.previous), "not a key\n").unwrap();
        assert!(Published::read(&slots).is_err());
    }

    #[test]
    fn the_moment_is_read_back_from_the_comment() {
        let mut k = key("rampart user CA");
        k.set_comment("rampart user CA replaced-at=2026-01-02T03:04:05Z");
        assert_eq!(
            replaced_at(&k).map(rfc3339).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        k.set_comment("rampart user CA replaced-at=yesterday");
        assert_eq!(replaced_at(&k), None);
    }
}
