//! Random secrets the CA hands out (invite codes, enrolment and session tokens,
//! recovery codes), their at-rest forms, and sealing of TOTP seeds.
//!
//! High-entropy secrets (≥ 160 bits) are stored as SHA-256 digests: a slow hash
//! adds nothing when guessing is already hopeless. Recovery codes are shorter and
//! typed by people, so they get argon2id. TOTP seeds must be readable by the CA to
//! verify codes, so they are encrypted (ChaCha20-Poly1305) with a key derived by
//! argon2id from the CA passphrase and a per-installation salt, and bound to the
//! user name as associated data so a seed row cannot be moved to another user.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use rampart_api::WireSecret;

use crate::error::CaError;

/// Crockford-style alphabet without look-alikes (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `n` random characters from [`ALPHABET`] (5 bits each).
fn random_chars(n: usize) -> String {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'0')))
        .collect()
}

/// Group a string in dashes every `every` characters.
fn grouped(s: &str, every: usize) -> String {
    s.as_bytes()
        .chunks(every)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// A new invite code: 32 characters (160 bits) in groups of four.
pub fn new_invite_code() -> WireSecret {
    WireSecret::new(grouped(&random_chars(32), 4))
}

/// A new opaque bearer token (256 bits, URL-safe).
///
/// Never starts with `-`: tokens are pasted into command lines (`rampart-bastion
/// join --token …`), where a leading dash reads as a flag. One draw in 64 would
/// start with one (the first character carries the top 6 bits of the first byte,
/// and `-` is 62 in the URL-safe alphabet); those are drawn again.
pub fn new_token() -> WireSecret {
    WireSecret::new(random_token())
}

/// A request ID: as unguessable as a token, but public (it appears in URLs and
/// audit events), so a plain `String`.
pub fn new_request_id() -> String {
    random_token()
}

/// 256 random bits, URL-safe base64, never starting with `-` (see [`new_token`]).
fn random_token() -> String {
    use base64::Engine as _;
    let mut b = Zeroizing::new([0u8; 32]);
    loop {
        OsRng.fill_bytes(b.as_mut());
        if !b.first().is_some_and(|f| starts_with_dash(*f)) {
            return base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b.as_ref());
        }
    }
}

/// Whether a token whose first byte is `first` would encode with a leading `-`.
fn starts_with_dash(first: u8) -> bool {
    first >> 2 == 62
}

/// A short public identifier for sessions in audit events (not a secret).
pub fn new_public_id() -> String {
    random_chars(12)
}

/// SHA-256 of a normalised high-entropy secret (lower case, no dashes/spaces), so
/// that `ABCD-efgh` and `abcdefgh` are the same invite.
pub fn digest_secret(secret: &str) -> [u8; 32] {
    let norm: Zeroizing<String> = Zeroizing::new(normalise(secret));
    Sha256::digest(norm.as_bytes()).into()
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A recovery code: `id-secret`, 4 + 16 characters. The ID selects the stored hash
/// (so verification costs one argon2 run, not ten); the whole code is hashed.
#[derive(Clone)]
pub struct RecoveryCode {
    /// The public part, unique per user.
    pub id: String,
    /// The code as shown to the user.
    pub code: WireSecret,
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCode({}-<redacted>)", self.id)
    }
}

/// Ten fresh recovery codes.
pub fn new_recovery_codes(count: usize) -> Vec<RecoveryCode> {
    let mut out: Vec<RecoveryCode> = Vec::with_capacity(count);
    while out.len() < count {
        let id = random_chars(4);
        if out.iter().any(|c| c.id == id) {
            continue;
        }
        let secret = Zeroizing::new(random_chars(16));
        let code = WireSecret::new(format!("{id}-{}", grouped(&secret, 4)));
        out.push(RecoveryCode { id, code });
    }
    out
}

/// Split a typed recovery code into (id, normalised full code).
pub fn parse_recovery_code(typed: &str) -> Option<(String, Zeroizing<String>)> {
    let norm = Zeroizing::new(normalise(typed));
    if norm.len() != 20 || !norm.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    let id = norm.get(..4)?.to_owned();
    Some((id, norm))
}

/// argon2id PHC string of a recovery code.
pub fn hash_recovery_code(code: &str) -> Result<String, CaError> {
    let norm = Zeroizing::new(normalise(code));
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(norm.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CaError::Internal(format!("argon2: {e}")))
}

/// Constant-time (inside argon2) check of a normalised code against its hash.
pub fn verify_recovery_code(normalised: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(normalised.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Encrypts and decrypts TOTP seeds at rest.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// Derive the sealing key from the CA passphrase and the installation's salt.
    pub fn derive(passphrase: &SecretString, salt: &[u8]) -> Result<Self, CaError> {
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::default()
            .hash_password_into(passphrase.expose_secret().as_bytes(), salt, key.as_mut())
            .map_err(|e| CaError::Internal(format!("deriving the seal key: {e}")))?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
        key.zeroize();
        Ok(Sealer { cipher })
    }

    /// nonce ‖ ciphertext of `plain`, bound to `context` (the user name).
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Vec<u8>, CaError> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CaError::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Reverse of [`Sealer::seal`]; fails if the data or the context was changed.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>, CaError> {
        if sealed.len() < 12 + 16 {
            return Err(CaError::Internal("sealed value too short".into()));
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                CaError::Internal(format!(
                    "a sealed secret of {context} does not open: wrong passphrase or tampered row"
                ))
            })
    }
}

/// A random 16-byte salt.
pub fn new_salt() -> [u8; 16] {
    let mut s = [0u8; 16];
    OsRng.fill_bytes(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_start_with_a_dash() {
        use base64::Engine as _;
        // The rule that rejects a first byte matches the encoder: exactly the
        // first bytes 0xf8..=0xfb encode to a leading '-'.
        for first in 0..=u8::MAX {
            let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([first, 0, 0]);
            assert_eq!(
                starts_with_dash(first),
                encoded.starts_with('-'),
                "first byte {first:#04x} encodes as {encoded}"
            );
        }
        // 64 × 64 draws: with a leading dash allowed, about 64 of these would have one.
        for _ in 0..4096 {
            let t = new_token();
            let t = t.expose();
            assert!(!t.starts_with('-'), "{t}");
            assert_eq!(t.len(), 43);
        }
    }

    #[test]
    fn invite_codes_normalise_before_hashing() {
        let code = new_invite_code();
        let code = code.expose();
        assert_eq!(code.len(), 32 + 7);
        assert_eq!(
            digest_secret(code),
            digest_secret(&code.to_uppercase().replace('-', ""))
        );
        assert_ne!(
            digest_secret(code),
            digest_secret(new_invite_code().expose())
        );
    }

    #[test]
    fn recovery_codes_verify_once_typed_any_way() {
        let codes = new_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let c = codes.first().unwrap();
        let phc = hash_recovery_code(c.code.expose()).unwrap();
        let (id, norm) = parse_recovery_code(&c.code.expose().to_uppercase()).unwrap();
        assert_eq!(id, c.id);
        assert!(verify_recovery_code(&norm, &phc));
        let other = codes.get(1).unwrap();
        let (_, wrong) = parse_recovery_code(other.code.expose()).unwrap();
        assert!(!verify_recovery_code(&wrong, &phc));
        assert!(parse_recovery_code("short").is_none());
        assert!(!format!("{c:?}").contains(&c.code.expose()[5..]));
    }

    #[test]
    fn sealed_seeds_are_bound_to_key_and_user() {
        let salt = new_salt();
        let s = Sealer::derive(&SecretString::from("pass".to_owned()), &salt).unwrap();
        let sealed = s.seal(b"seed-bytes-0123456789", "alice").unwrap();
        assert_eq!(
            s.open(&sealed, "alice").unwrap().as_slice(),
            b"seed-bytes-0123456789"
        );
        assert!(s.open(&sealed, "bob").is_err());
        let other = Sealer::derive(&SecretString::from("other".to_owned()), &salt).unwrap();
        assert!(other.open(&sealed, "alice").is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(s.open(&tampered, "alice").is_err());
    }
}
