//! OpenSSH binary Key Revocation Lists, as specified in OpenSSH's PROTOCOL.krl
//! and read by sshd's `RevokedKeys` and `ssh-keygen -Q`.
//!
//! ```text
//! #define KRL_MAGIC           0x5353484b524c0a00ULL  /* "SSHKRL\n\0" */
//! #define KRL_FORMAT_VERSION  1
//!     uint64  KRL_MAGIC
//!     uint32  KRL_FORMAT_VERSION
//!     uint64  krl_version
//!     uint64  generated_date
//!     uint64  flags
//!     string  reserved
//!     string  comment
//! followed by sections of `byte section_type, string section_data`.
//! ```
//!
//! The KRL is unsigned: PROTOCOL.krl notes that OpenSSH >= 9.4 refuses KRLs
//! with KRL_SECTION_SIGNATURE, and recommends SSHSIG for authenticity.

use ssh_key::{Fingerprint, HashAlg, PublicKey};

use crate::error::SignerError;

const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";
const KRL_FORMAT_VERSION: u32 = 1;

const KRL_SECTION_CERTIFICATES: u8 = 1;
const KRL_SECTION_EXPLICIT_KEY: u8 = 2;
const KRL_SECTION_FINGERPRINT_SHA256: u8 = 5;

const KRL_SECTION_CERT_SERIAL_LIST: u8 = 0x20;
const KRL_SECTION_CERT_SERIAL_RANGE: u8 = 0x21;

/// A run of consecutive serials at least this long is written as one
/// SERIAL_RANGE subsection (1 + 4 + 16 bytes) instead of list entries (8 bytes each).
const MIN_RANGE_RUN: u64 = 3;

/// What to revoke.
#[derive(Debug, Clone)]
pub struct KrlSpec {
    /// `krl_version`: must increase each time the KRL changes.
    pub version: u64,
    /// `generated_date`, Unix seconds.
    pub generated_at: u64,
    /// Free-form comment (shown by `ssh-keygen -Q -l`).
    pub comment: String,
    /// The CA whose certificates `revoked_serials` refers to.
    pub ca_key: PublicKey,
    /// Further CA keys the same serials are revoked under: while a CA rotates
    /// its key, certificates from the next or the replaced key are trusted
    /// too, and serials are unique across a CA's keys. One certificate
    /// section each.
    pub also_ca_keys: Vec<PublicKey>,
    /// Serials of certificates issued by `ca_key` to revoke. Any order,
    /// duplicates allowed; 0 is refused (OpenSSH never revokes serial 0,
    /// which is what certificates without a serial carry).
    pub revoked_serials: Vec<u64>,
    /// SHA-256 of plain public-key blobs to revoke (the bytes behind an
    /// `ssh-keygen -l` `SHA256:` fingerprint). This also revokes every
    /// certificate issued for that key.
    pub revoked_key_sha256: Vec<[u8; 32]>,
    /// Plain public keys to revoke (and every certificate for them).
    pub revoked_keys: Vec<PublicKey>,
}

/// Encode `spec` as an OpenSSH binary KRL.
///
/// Serials are sorted and deduplicated; runs of consecutive serials become
/// SERIAL_RANGE subsections, the rest one SERIAL_LIST. Hashes and key blobs
/// are sorted and deduplicated (PROTOCOL.krl: "Hashes in this section must
/// appear in numeric order, treating each hash as a big-endian integer").
///
/// # Errors
/// [`SignerError::InvalidKrl`] for serial 0, or a certificate given where a
/// plain key is required; [`SignerError::Ssh`] if a key cannot be encoded.
pub fn build_krl(spec: &KrlSpec) -> Result<Vec<u8>, SignerError> {
    // OpenSSH reads the comment with sshbuf_get_cstring, which rejects NULs.
    if spec.comment.contains('\0') {
        return Err(SignerError::InvalidKrl(
            "the comment contains a NUL byte".to_owned(),
        ));
    }
    let mut out = Vec::new();
    out.extend_from_slice(KRL_MAGIC);
    put_u32(&mut out, KRL_FORMAT_VERSION);
    put_u64(&mut out, spec.version);
    put_u64(&mut out, spec.generated_at);
    put_u64(&mut out, 0); // flags: "No flags are currently defined."
    put_string(&mut out, b"")?; // reserved
    put_string(&mut out, spec.comment.as_bytes())?;

    let mut serials = spec.revoked_serials.clone();
    serials.sort_unstable();
    serials.dedup();
    if serials.first() == Some(&0) {
        return Err(SignerError::InvalidKrl(
            "serial 0 cannot be revoked (OpenSSH treats it as 'no serial')".to_owned(),
        ));
    }
    let ca_keys = std::iter::once(&spec.ca_key).chain(&spec.also_ca_keys);
    for ca_key in ca_keys.filter(|_| !serials.is_empty()) {
        let ca_blob = plain_key_blob(ca_key, "the CA key")?;
        // Certificate section: string ca_key, string reserved, subsections.
        let mut sect = Vec::new();
        put_string(&mut sect, &ca_blob)?;
        put_string(&mut sect, b"")?;
        let mut singles = Vec::new();
        for (lo, hi) in runs(&serials) {
            if hi - lo >= MIN_RANGE_RUN - 1 {
                let mut range = Vec::with_capacity(16);
                put_u64(&mut range, lo);
                put_u64(&mut range, hi);
                put_section(&mut sect, KRL_SECTION_CERT_SERIAL_RANGE, &range)?;
            } else {
                for s in lo..=hi {
                    put_u64(&mut singles, s);
                }
            }
        }
        if !singles.is_empty() {
            put_section(&mut sect, KRL_SECTION_CERT_SERIAL_LIST, &singles)?;
        }
        put_section(&mut out, KRL_SECTION_CERTIFICATES, &sect)?;
    }

    let mut blobs = spec
        .revoked_keys
        .iter()
        .map(|k| plain_key_blob(k, "a revoked key"))
        .collect::<Result<Vec<_>, _>>()?;
    blobs.sort();
    blobs.dedup();
    if !blobs.is_empty() {
        let mut sect = Vec::new();
        for blob in &blobs {
            put_string(&mut sect, blob)?;
        }
        put_section(&mut out, KRL_SECTION_EXPLICIT_KEY, &sect)?;
    }

    // Byte-wise lexicographic order of equal-length arrays is big-endian numeric order.
    let mut hashes = spec.revoked_key_sha256.clone();
    hashes.sort_unstable();
    hashes.dedup();
    if !hashes.is_empty() {
        let mut sect = Vec::new();
        for h in &hashes {
            put_string(&mut sect, h)?;
        }
        put_section(&mut out, KRL_SECTION_FINGERPRINT_SHA256, &sect)?;
    }
    Ok(out)
}

/// The SHA-256 fingerprint of `key` as raw bytes, for [`KrlSpec::revoked_key_sha256`].
///
/// # Errors
/// Never in practice: ssh-key always answers a SHA-256 request with a SHA-256
/// fingerprint; the `Result` avoids a panic path should that ever change.
pub fn key_sha256(key: &PublicKey) -> Result<[u8; 32], SignerError> {
    key.fingerprint(HashAlg::Sha256)
        .sha256()
        .ok_or_else(|| SignerError::InvalidKrl("no SHA-256 fingerprint for key".to_owned()))
}

/// Parse `SHA256:<base64 without padding>` (the form `ssh-keygen -l` prints)
/// into the 32 hash bytes.
///
/// # Errors
/// [`SignerError::BadFingerprint`] for another prefix, bad base64 or a wrong length.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], SignerError> {
    let bad = |reason| SignerError::BadFingerprint {
        input: s.chars().take(100).collect(),
        reason,
    };
    let Some(b64) = s.strip_prefix("SHA256:") else {
        return Err(bad("expected the prefix SHA256:"));
    };
    if b64.len() != 43 {
        return Err(bad("expected 43 base64 characters without padding"));
    }
    let fp: Fingerprint = s.parse().map_err(|_| bad("not valid base64"))?;
    fp.sha256().ok_or_else(|| bad("not a SHA-256 fingerprint"))
}

/// The fixed header of an OpenSSH KRL, as [`read_krl_header`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KrlHeader {
    /// `krl_version`: increases with every change.
    pub version: u64,
    /// `generated_date`, Unix seconds.
    pub generated_at: u64,
}

/// Read a KRL's header, then walk every `byte section_type, string section_data`
/// up to the end, so that a truncated or foreign file is refused. Section
/// contents are not interpreted: a host installs the CA's KRL for sshd, which
/// reads them itself.
///
/// # Errors
/// [`SignerError::MalformedKrl`] for a bad magic or format version, or any field
/// that runs past the end of the input.
pub fn read_krl_header(bytes: &[u8]) -> Result<KrlHeader, SignerError> {
    let mut r = Reader(bytes);
    let magic = r
        .take(8)
        .map_err(|_| SignerError::MalformedKrl("not an OpenSSH KRL (too short)".to_owned()))?;
    if magic != KRL_MAGIC {
        return Err(SignerError::MalformedKrl(
            "not an OpenSSH KRL (bad magic)".to_owned(),
        ));
    }
    let format = r.u32()?;
    if format != KRL_FORMAT_VERSION {
        return Err(SignerError::MalformedKrl(format!(
            "unsupported KRL format version {format}"
        )));
    }
    let version = r.u64()?;
    let generated_at = r.u64()?;
    let _flags = r.u64()?;
    r.string()?; // reserved
    r.string()?; // comment
    while !r.0.is_empty() {
        r.take(1)?; // section type
        r.string()?;
    }
    Ok(KrlHeader {
        version,
        generated_at,
    })
}

fn truncated() -> SignerError {
    SignerError::MalformedKrl("the KRL is truncated".to_owned())
}

/// Big-endian SSH wire reader over a byte slice (RFC 4251 §5 types).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SignerError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or_else(truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, SignerError> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| truncated())?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, SignerError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| truncated())?;
        Ok(u64::from_be_bytes(b))
    }

    fn string(&mut self) -> Result<&'a [u8], SignerError> {
        let n = usize::try_from(self.u32()?).map_err(|_| truncated())?;
        self.take(n)
    }
}

/// Consecutive runs `(lo, hi)` in a sorted, deduplicated list.
fn runs(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sorted {
        match out.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(s) => *hi = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// The SSH wire encoding of a plain (non-certificate) public key.
fn plain_key_blob(key: &PublicKey, what: &str) -> Result<Vec<u8>, SignerError> {
    if key.key_data().is_certificate() {
        return Err(SignerError::InvalidKrl(format!(
            "{what} is a certificate; a KRL needs the plain public key"
        )));
    }
    Ok(key.to_bytes()?)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// RFC 4251 `string`: uint32 length, then the bytes.
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), SignerError> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| SignerError::InvalidKrl("a KRL section exceeds 4 GiB".to_owned()))?;
    put_u32(out, len);
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_section(out: &mut Vec<u8>, kind: u8, data: &[u8]) -> Result<(), SignerError> {
    out.push(kind);
    put_string(out, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CaSigner, FileCaKey};

    fn spec(serials: Vec<u64>) -> KrlSpec {
        KrlSpec {
            version: 3,
            generated_at: 1_700_000_000,
            comment: "test".into(),
            ca_key: FileCaKey::generate("ca").unwrap().public_key().clone(),
            also_ca_keys: Vec::new(),
            revoked_serials: serials,
            revoked_key_sha256: vec![],
            revoked_keys: vec![],
        }
    }

    #[test]
    fn runs_table() {
        type Case<'a> = (&'a [u64], &'a [(u64, u64)]);
        let cases: &[Case<'_>] = &[
            (&[], &[]),
            (&[1], &[(1, 1)]),
            (&[1, 2, 3, 7, 9, 10], &[(1, 3), (7, 7), (9, 10)]),
            (&[u64::MAX - 1, u64::MAX], &[(u64::MAX - 1, u64::MAX)]),
        ];
        for (input, want) in cases {
            assert_eq!(runs(input), *want, "{input:?}");
        }
    }

    #[test]
    fn header_layout() {
        let krl = build_krl(&spec(vec![])).unwrap();
        let mut want = b"SSHKRL\n\0".to_vec();
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&3u64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        want.extend_from_slice(&0u64.to_be_bytes());
        want.extend_from_slice(&0u32.to_be_bytes());
        want.extend_from_slice(&4u32.to_be_bytes());
        want.extend_from_slice(b"test");
        assert_eq!(krl, want);
    }

    #[test]
    fn header_reader_reads_what_build_krl_writes_and_refuses_non_krls() {
        let built = build_krl(&spec(vec![1, 2, 3, 9])).unwrap();
        let h = read_krl_header(&built).unwrap();
        assert_eq!(
            h,
            KrlHeader {
                version: 3,
                generated_at: 1_700_000_000
            }
        );
        let msg = |b: &[u8]| read_krl_header(b).unwrap_err().to_string();
        assert!(msg(b"").contains("too short"));
        assert!(msg(b"-----BEGIN SSH SIGNATURE-----\n").contains("bad magic"));
        let mut wrong_format = built.clone();
        wrong_format[11] = 2;
        assert!(msg(&wrong_format).contains("format version 2"));
        // The header alone (magic to comment, "test") is a KRL without sections;
        // every other cut is refused: a header field, the comment, or the one
        // section runs past the end.
        let header_end = 8 + 4 + 8 + 8 + 8 + 4 + 4 + 4;
        assert!(read_krl_header(&built[..header_end]).is_ok());
        for cut in (8..built.len()).filter(|&c| c != header_end) {
            assert!(read_krl_header(&built[..cut]).is_err(), "cut at {cut}");
        }
        // A section length past the end.
        let mut long = built.clone();
        long.push(1);
        long.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(msg(&long).contains("truncated"));
    }

    #[test]
    fn serials_sorted_deduped_ranged() {
        let s = spec(vec![42, 5, 10, 11, 12, 13, 5, 6]);
        let krl = build_krl(&s).unwrap();
        let header_len = 8 + 4 + 8 * 3 + 4 + 4 + 4;
        let body = &krl[header_len..];
        assert_eq!(body[0], KRL_SECTION_CERTIFICATES);
        let ca_blob = s.ca_key.to_bytes().unwrap();
        let sect = &body[5..];
        assert_eq!(&sect[4..4 + ca_blob.len()], &ca_blob[..]);
        let sub = &sect[4 + ca_blob.len() + 4..];
        // 10..=13 is a range; 5, 6, 42 a list.
        assert_eq!(sub[0], KRL_SECTION_CERT_SERIAL_RANGE);
        assert_eq!(&sub[1..5], &16u32.to_be_bytes());
        assert_eq!(&sub[5..13], &10u64.to_be_bytes());
        assert_eq!(&sub[13..21], &13u64.to_be_bytes());
        assert_eq!(sub[21], KRL_SECTION_CERT_SERIAL_LIST);
        assert_eq!(&sub[22..26], &24u32.to_be_bytes());
        assert_eq!(&sub[26..34], &5u64.to_be_bytes());
        assert_eq!(&sub[34..42], &6u64.to_be_bytes());
        assert_eq!(&sub[42..50], &42u64.to_be_bytes());
        assert_eq!(sub.len(), 50);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            build_krl(&spec(vec![0, 1])),
            Err(SignerError::InvalidKrl(_))
        ));
        let mut nul = spec(vec![1]);
        nul.comment = "a\0b".into();
        assert!(matches!(build_krl(&nul), Err(SignerError::InvalidKrl(_))));
    }

    #[test]
    fn fingerprint_parse_table() {
        let key = FileCaKey::generate("k").unwrap();
        let fp = key.fingerprint();
        assert_eq!(
            parse_fingerprint(&fp).unwrap(),
            key_sha256(key.public_key()).unwrap()
        );
        let bad = [
            "",
            "SHA256:",
            "MD5:aa:bb",
            "SHA512:AAAA",
            &fp[..fp.len() - 1],
            &format!("{fp}="),
            "SHA256:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ];
        for b in bad {
            assert!(
                matches!(
                    parse_fingerprint(b),
                    Err(SignerError::BadFingerprint { .. })
                ),
                "{b:?}"
            );
        }
    }
}
