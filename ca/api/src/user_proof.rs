//! The user's proof of presence that a bastion forwards with a session
//! certificate request: what the user's SSH client signed to log in to the
//! bastion (RFC 4252 §7) and the signature over it.
//!
//! **Owns:** the wire form ([`UserProof`], base64 of raw bytes), the size
//! bounds, and the byte layout of the signed data ([`SignedUserauth::parse`],
//! [`SignedUserauth::encode`]). Checking the signature needs the key and its
//! algorithms and is the CA's job; this module only says what was signed.
//!
//! Why it exists: the user's certificate is public (every server it is shown
//! to sees it), so a certificate alone proves nothing about who is asking. The
//! signature is over the SSH session identifier, which is unique to one key
//! exchange, so it shows that the holder of the certificate's private key
//! logged in to one particular SSH session, and the CA can bind that session
//! to the one bastion that first presents it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Longest signed data accepted, in bytes: a certificate blob (the CA takes
/// certificate lines up to 16 KiB of base64, about 12 KiB of bytes) plus the
/// session identifier, the user name and the fixed fields.
pub const MAX_SIGNED_DATA: usize = 16 * 1024;
/// Longest encoded signature accepted, in bytes (an RSA-16384 signature is
/// 2 KiB; the name and the length prefixes are a few bytes more).
pub const MAX_SIGNATURE: usize = 4 * 1024;
/// Longest session identifier: the output of the largest exchange hash in use
/// (SHA-512, 64 bytes). The shortest is SHA-1's 20 bytes.
pub const MAX_SESSION_ID: usize = 64;
/// Shortest session identifier accepted (SHA-1's output).
pub const MIN_SESSION_ID: usize = 20;
/// Longest SSH user name accepted in the signed data.
const MAX_USER: usize = 1024;
/// Longest algorithm name accepted.
const MAX_ALGORITHM: usize = 128;

/// `SSH_MSG_USERAUTH_REQUEST` (RFC 4250 §4.1.2).
const MSG_USERAUTH_REQUEST: u8 = 50;

/// The proof as it travels in [`super::SessionCertRequest::user_proof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserProof {
    /// Base64 (standard, padded) of exactly the bytes the client signed.
    pub signed_data: String,
    /// Base64 of the SSH-encoded signature (string algorithm, string blob).
    pub signature: String,
}

impl UserProof {
    /// The wire form of raw signed data and an encoded signature.
    pub fn from_raw(signed_data: &[u8], signature: &[u8]) -> UserProof {
        let b64 = base64::engine::general_purpose::STANDARD;
        UserProof {
            signed_data: b64.encode(signed_data),
            signature: b64.encode(signature),
        }
    }

    /// The raw signed data and signature, within the size bounds.
    pub fn decode(&self) -> Result<(Vec<u8>, Vec<u8>), ProofError> {
        // Base64 is 4 characters for 3 bytes: refuse before decoding.
        if self.signed_data.len() > MAX_SIGNED_DATA.div_ceil(3) * 4
            || self.signature.len() > MAX_SIGNATURE.div_ceil(3) * 4
        {
            return Err(ProofError::TooLarge);
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let signed = b64
            .decode(&self.signed_data)
            .map_err(|_| ProofError::Malformed("signed_data is not base64"))?;
        let signature = b64
            .decode(&self.signature)
            .map_err(|_| ProofError::Malformed("signature is not base64"))?;
        if signed.len() > MAX_SIGNED_DATA || signature.len() > MAX_SIGNATURE {
            return Err(ProofError::TooLarge);
        }
        Ok((signed, signature))
    }
}

/// Why a proof cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Larger than [`MAX_SIGNED_DATA`] or [`MAX_SIGNATURE`].
    #[error("the proof is larger than a userauth signature can be")]
    TooLarge,
    /// Not the RFC 4252 §7 layout.
    #[error("the proof is malformed: {0}")]
    Malformed(&'static str),
}

/// The fields of a signed `publickey` userauth request (RFC 4252 §7):
///
/// ```text
/// string    session identifier
/// byte      SSH_MSG_USERAUTH_REQUEST (50)
/// string    user name
/// string    "ssh-connection"
/// string    "publickey"
/// boolean   TRUE
/// string    public key algorithm name
/// string    public key blob (here: the certificate)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUserauth {
    /// The SSH session identifier (the first exchange hash).
    pub session_id: Vec<u8>,
    /// The SSH user name the client logged in as (a login, `login+target`,
    /// or anything for a ProxyJump hop).
    pub user: String,
    /// The public key algorithm name, e.g. `ssh-ed25519-cert-v01@openssh.com`.
    pub algorithm: String,
    /// The public key blob: the certificate in SSH wire form.
    pub key_blob: Vec<u8>,
}

impl SignedUserauth {
    /// Read signed data; anything but the exact layout is refused, trailing
    /// bytes included.
    pub fn parse(mut data: &[u8]) -> Result<SignedUserauth, ProofError> {
        if data.len() > MAX_SIGNED_DATA {
            return Err(ProofError::TooLarge);
        }
        let r = &mut data;
        let session_id = take_string(r)?.to_vec();
        if !(MIN_SESSION_ID..=MAX_SESSION_ID).contains(&session_id.len()) {
            return Err(ProofError::Malformed(
                "the session identifier has the wrong length",
            ));
        }
        if take_byte(r)? != MSG_USERAUTH_REQUEST {
            return Err(ProofError::Malformed("not a userauth request"));
        }
        let user = take_string(r)?;
        if user.len() > MAX_USER {
            return Err(ProofError::Malformed("the user name is too long"));
        }
        let user = std::str::from_utf8(user)
            .map_err(|_| ProofError::Malformed("the user name is not UTF-8"))?
            .to_owned();
        if take_string(r)? != b"ssh-connection" {
            return Err(ProofError::Malformed("the service is not ssh-connection"));
        }
        if take_string(r)? != b"publickey" {
            return Err(ProofError::Malformed("the method is not publickey"));
        }
        if take_byte(r)? != 1 {
            return Err(ProofError::Malformed("not a signed publickey request"));
        }
        let algorithm = take_string(r)?;
        if algorithm.is_empty() || algorithm.len() > MAX_ALGORITHM {
            return Err(ProofError::Malformed("bad algorithm name"));
        }
        let algorithm = std::str::from_utf8(algorithm)
            .map_err(|_| ProofError::Malformed("the algorithm name is not UTF-8"))?
            .to_owned();
        let key_blob = take_string(r)?.to_vec();
        if !r.is_empty() {
            return Err(ProofError::Malformed("trailing bytes after the key blob"));
        }
        Ok(SignedUserauth {
            session_id,
            user,
            algorithm,
            key_blob,
        })
    }

    /// The bytes a client signs for these fields (the inverse of
    /// [`SignedUserauth::parse`]); tests and tools build proofs with it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_string(&mut out, &self.session_id);
        out.push(MSG_USERAUTH_REQUEST);
        put_string(&mut out, self.user.as_bytes());
        put_string(&mut out, b"ssh-connection");
        put_string(&mut out, b"publickey");
        out.push(1);
        put_string(&mut out, self.algorithm.as_bytes());
        put_string(&mut out, &self.key_blob);
        out
    }
}

fn take_byte(r: &mut &[u8]) -> Result<u8, ProofError> {
    let (&b, rest) = r
        .split_first()
        .ok_or(ProofError::Malformed("the data ends early"))?;
    *r = rest;
    Ok(b)
}

fn take_string<'a>(r: &mut &'a [u8]) -> Result<&'a [u8], ProofError> {
    let (len, rest) = r
        .split_first_chunk::<4>()
        .ok_or(ProofError::Malformed("the data ends early"))?;
    let len = usize::try_from(u32::from_be_bytes(*len))
        .map_err(|_| ProofError::Malformed("a length does not fit"))?;
    if len > rest.len() {
        return Err(ProofError::Malformed("a string runs past the end"));
    }
    let (s, rest) = rest.split_at(len);
    *r = rest;
    Ok(s)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    // Every field here is bounded far below 4 GiB by the limits above.
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn sample() -> SignedUserauth {
        SignedUserauth {
            session_id: vec![7; 32],
            user: "root+db-1".into(),
            algorithm: "ssh-ed25519-cert-v01@openssh.com".into(),
            key_blob: b"certificate bytes".to_vec(),
        }
    }

    #[test]
    fn signed_data_round_trips_and_has_the_rfc_4252_layout() {
        let bytes = sample().encode();
        assert_eq!(&bytes[..4], &[0, 0, 0, 32]);
        assert_eq!(bytes[36], 50);
        assert_eq!(SignedUserauth::parse(&bytes).unwrap(), sample());
    }

    #[test]
    fn anything_but_the_exact_layout_is_refused() {
        let good = sample().encode();
        // Trailing bytes, a cut-off blob, nothing at all.
        let mut long = good.clone();
        long.push(0);
        assert!(SignedUserauth::parse(&long).is_err());
        assert!(SignedUserauth::parse(&good[..good.len() - 1]).is_err());
        assert!(SignedUserauth::parse(&[]).is_err());
        // Another message type, service, method, or the unsigned probe form.
        let at = |needle: &[u8]| {
            good.windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        let mut other = good.clone();
        other[36] = 51;
        assert!(SignedUserauth::parse(&other).is_err());
        let mut other = good.clone();
        let i = at(b"ssh-connection");
        other[i] = b'x';
        assert!(SignedUserauth::parse(&other).is_err());
        let mut other = good.clone();
        let i = at(b"publickey");
        other[i] = b'P';
        assert!(SignedUserauth::parse(&other).is_err());
        let mut other = good.clone();
        let i = at(b"publickey") + b"publickey".len();
        other[i] = 0;
        assert!(SignedUserauth::parse(&other).is_err());
        // A session identifier of an impossible length.
        for len in [0, 19, 65] {
            let bad = SignedUserauth {
                session_id: vec![1; len],
                ..sample()
            };
            assert!(SignedUserauth::parse(&bad.encode()).is_err(), "{len}");
        }
        // A length prefix that runs past the end.
        let mut other = good.clone();
        other[0] = 0xff;
        assert!(SignedUserauth::parse(&other).is_err());
    }

    #[test]
    fn oversized_proofs_are_refused_before_decoding() {
        let big = UserProof::from_raw(&vec![0; MAX_SIGNED_DATA + 1], b"sig");
        assert_eq!(big.decode(), Err(ProofError::TooLarge));
        let big = UserProof::from_raw(b"data", &vec![0; MAX_SIGNATURE + 1]);
        assert_eq!(big.decode(), Err(ProofError::TooLarge));
        let ok = UserProof::from_raw(b"data", b"sig");
        assert_eq!(ok.decode().unwrap(), (b"data".to_vec(), b"sig".to_vec()));
        let bad = UserProof {
            signed_data: "not base64!".into(),
            signature: String::new(),
        };
        assert!(matches!(bad.decode(), Err(ProofError::Malformed(_))));
    }
}
