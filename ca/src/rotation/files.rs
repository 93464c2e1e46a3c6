//! A rotation's slots as key files: `K.next` and `K.previous` (each with
//! its `.pub`) beside the key file `K`. The replaced key's `.pub` comment
//! carries the moment it was replaced (`replaced-at=RFC 3339`).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;
use ssh_key::PublicKey;

use super::{Published, Replaced};
use crate::error::CaError;

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

    /// Read the public halves beside `self.current` (no passphrase needed).
    pub fn published(&self) -> Result<Published, CaError> {
        let slots = self;
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

    /// Write the new key `K.next` (encrypted with `pass`).
    pub(super) fn write_next(
        &self,
        key: &rampart_signer::FileCaKey,
        pass: &SecretString,
    ) -> Result<(), CaError> {
        Ok(key.write_encrypted(&self.next, pass)?)
    }

    /// Whether an activation stopped between its renames (a crash): `K`
    /// gone while `K.next` waits, or `K.next.pub` left behind its key.
    pub(super) fn interrupted(&self) -> bool {
        self.previous.exists()
            && ((!self.current.exists() && self.next.exists())
                || (!self.next.exists() && pub_path(&self.next).exists()))
    }

    /// Finish an interrupted activation: the renames left undone.
    pub(super) fn finish_activation(&self) -> Result<(), CaError> {
        if !self.current.exists() && self.next.exists() {
            rename(&self.next, &self.current)?;
        }
        if !self.next.exists() && pub_path(&self.next).exists() {
            rename(&pub_path(&self.next), &pub_path(&self.current))?;
        }
        sync_dir(&self.current)
    }

    /// Delete `K.previous` and its `.pub`.
    pub(super) fn remove_previous(&self) -> Result<(), CaError> {
        for p in [pub_path(&self.previous), self.previous.clone()] {
            remove_if_present(&p)?;
        }
        Ok(())
    }
}

/// `K` → `K.previous` (its `.pub` rewritten with the moment), `K.next` → `K`.
/// Each rename is atomic; a crash between them leaves `K` missing, which
/// `serve` refuses, and running activate again finishes the move.
pub(super) fn activate_files(
    slots: &Slots,
    current: &PublicKey,
    now: DateTime<Utc>,
) -> Result<(), CaError> {
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

/// The moment in a replaced key's comment.
fn replaced_at(key: &PublicKey) -> Option<DateTime<Utc>> {
    let comment: &str = key.comment().as_ref();
    let (_, at) = comment.rsplit_once("replaced-at=")?;
    DateTime::parse_from_rfc3339(at.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
    use rampart_signer::FileCaKey;

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
        assert_eq!(slots.published().unwrap(), Published::default());
        let new = FileCaKey::generate("rampart user CA").unwrap();
        new.write_encrypted(&slots.next, &pass).unwrap();
        let published = slots.published().unwrap();
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
        let published = slots.published().unwrap();
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
    fn an_activation_cut_short_is_found_and_finished() {
        let dir = tempfile::tempdir().unwrap();
        let pass = secrecy::SecretString::from("correct horse battery".to_owned());
        let slots = Slots::of(&dir.path().join("user_ca"));
        let old = FileCaKey::generate("rampart user CA").unwrap();
        old.write_encrypted(&slots.current, &pass).unwrap();
        let new = FileCaKey::generate("rampart user CA").unwrap();
        new.write_encrypted(&slots.next, &pass).unwrap();
        assert!(!slots.interrupted(), "a prepared rotation is not a crash");

        // The first renames of activate_files, then the power goes.
        let mut replaced = old.private_key().public_key().clone();
        replaced.set_comment("rampart user CA replaced-at=2026-12-05T17:00:00Z");
        fs::write(
            pub_path(&slots.previous),
            format!("{}\n", replaced.to_openssh().unwrap()),
        )
        .unwrap();
        rename(&slots.current, &slots.previous).unwrap();
        remove_if_present(&pub_path(&slots.current)).unwrap();
        assert!(slots.interrupted());

        slots.finish_activation().unwrap();
        assert!(!slots.interrupted());
        let signer = FileCaKey::load_encrypted(&slots.current, &pass).unwrap();
        assert_eq!(
            signer.private_key().public_key().key_data(),
            new.private_key().public_key().key_data()
        );
        let published = slots.published().unwrap();
        assert_eq!(published.next, None);
        assert_eq!(
            published.previous.unwrap().key.key_data(),
            old.private_key().public_key().key_data()
        );
        assert_eq!(
            read_public(&pub_path(&slots.current))
                .unwrap()
                .map(|k| k.key_data().clone()),
            Some(new.private_key().public_key().key_data().clone())
        );
    }

    #[test]
    fn a_replaced_key_without_its_moment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let slots = Slots::of(&dir.path().join("host_ca"));
        let line = key("rampart host CA").to_openssh().unwrap();
        fs::write(pub_path(&slots.previous), format!("{line}\n")).unwrap();
        let e = slots.published().unwrap_err().to_string();
        assert!(e.contains("replaced-at"), "{e}");
        fs::write(pub_path(&slots.previous), "not a key\n").unwrap();
        assert!(slots.published().is_err());
    }

    #[test]
    fn the_moment_is_read_back_from_the_comment() {
        let mut k = key("rampart user CA");
        k.set_comment("rampart user CA replaced-at=2026-01-02T03:04:05Z");
        assert_eq!(
            replaced_at(&k).map(super::super::rfc3339).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        k.set_comment("rampart user CA replaced-at=yesterday");
        assert_eq!(replaced_at(&k), None);
    }
}
