//! A bounded reader for OpenSSH binary Key Revocation Lists (PROTOCOL.krl) and the
//! revocation check of a certificate against one.
//!
//! Every length is checked against what remains, the whole input is capped at
//! [`MAX_KRL_SIZE`], and nothing is expanded: serial bitmaps are queried in place,
//! so a hostile KRL costs at most its own size in memory.
//!
//! From PROTOCOL.krl:
//!
//! ```text
//! uint64 KRL_MAGIC (0x5353484b524c0a00)   uint32 KRL_FORMAT_VERSION (1)
//! uint64 krl_version   uint64 generated_date   uint64 flags
//! string reserved      string comment
//! then zero or more sections:  byte section_type  string section_data
//! ```
//!
//! Signature sections (type 4) are skipped, not verified: OpenSSH's own tools
//! never write them, and this file's authenticity comes from its root-owned path,
//! which `rampart host krl-sync` fills only after verifying the CA's signature.

use std::collections::HashSet;

use sha1::Digest as _;
use ssh_key::encoding::Encode;
use ssh_key::public::KeyData;
use ssh_key::Certificate;

use crate::error::KrlError;

/// The largest KRL accepted: 16 MiB (a bitmap of 128 M serials, or ~500 k keys).
pub const MAX_KRL_SIZE: usize = 16 * 1024 * 1024;

const KRL_MAGIC: u64 = 0x5353_484b_524c_0a00;
const KRL_FORMAT_VERSION: u32 = 1;

const SECTION_CERTIFICATES: u8 = 1;
const SECTION_EXPLICIT_KEY: u8 = 2;
const SECTION_FINGERPRINT_SHA1: u8 = 3;
const SECTION_SIGNATURE: u8 = 4;
const SECTION_FINGERPRINT_SHA256: u8 = 5;

const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_SERIAL_RANGE: u8 = 0x21;
const CERT_SERIAL_BITMAP: u8 = 0x22;
const CERT_KEY_ID: u8 = 0x23;

/// A parsed KRL.
#[derive(Debug, Clone, Default)]
pub struct Krl {
    /// `krl_version`: increases with every KRL the CA publishes.
    pub version: u64,
    /// `generated_date`: seconds since the epoch.
    pub generated_date: u64,
    /// The free-text comment.
    pub comment: String,
    certs: Vec<CertSection>,
    explicit: HashSet<Vec<u8>>,
    sha1: HashSet<Vec<u8>>,
    sha256: HashSet<Vec<u8>>,
}

/// Revocations of certificates issued by one CA (or by any CA, when the CA key
/// is empty: "an empty ca_key … matches any CA").
#[derive(Debug, Clone, Default)]
struct CertSection {
    ca_key: Option<Vec<u8>>,
    serials: HashSet<u64>,
    ranges: Vec<(u64, u64)>,
    /// (serial_offset, big-endian bitmap bytes).
    bitmaps: Vec<(u64, Vec<u8>)>,
    key_ids: HashSet<String>,
}

/// A bounds-checked cursor over SSH wire encoding (RFC 4251 §5).
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], KrlError> {
        if n > self.buf.len() {
            return Err(KrlError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, KrlError> {
        let b = self.take(1, what)?;
        b.first().copied().ok_or(KrlError::Truncated(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, KrlError> {
        let b: [u8; 4] = self
            .take(4, what)?
            .try_into()
            .map_err(|_| KrlError::Truncated(what))?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, KrlError> {
        let b: [u8; 8] = self
            .take(8, what)?
            .try_into()
            .map_err(|_| KrlError::Truncated(what))?;
        Ok(u64::from_be_bytes(b))
    }

    fn string(&mut self, what: &'static str) -> Result<&'a [u8], KrlError> {
        let len = self.u32(what)?;
        let len = usize::try_from(len).map_err(|_| KrlError::Truncated(what))?;
        self.take(len, what)
    }
}

impl Krl {
    /// Parse a binary KRL. Refuses anything over [`MAX_KRL_SIZE`], an unknown
    /// section type, or a field that runs past its enclosing section.
    pub fn parse(bytes: &[u8]) -> Result<Krl, KrlError> {
        if bytes.len() > MAX_KRL_SIZE {
            return Err(KrlError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_KRL_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        if r.u64("magic")? != KRL_MAGIC {
            return Err(KrlError::BadMagic);
        }
        let format = r.u32("format version")?;
        if format != KRL_FORMAT_VERSION {
            return Err(KrlError::BadVersion(format));
        }
        let mut krl = Krl {
            version: r.u64("krl_version")?,
            generated_date: r.u64("generated_date")?,
            ..Krl::default()
        };
        let _flags = r.u64("flags")?;
        let _reserved = r.string("reserved")?;
        krl.comment = String::from_utf8_lossy(r.string("comment")?).into_owned();
        while !r.is_empty() {
            let kind = r.u8("section type")?;
            let data = r.string("section data")?;
            let mut s = Reader::new(data);
            match kind {
                SECTION_CERTIFICATES => krl.certs.push(parse_cert_section(&mut s)?),
                SECTION_EXPLICIT_KEY => {
                    while !s.is_empty() {
                        krl.explicit.insert(s.string("explicit key blob")?.to_vec());
                    }
                }
                SECTION_FINGERPRINT_SHA1 => {
                    while !s.is_empty() {
                        let fp = s.string("SHA-1 fingerprint")?;
                        if fp.len() != 20 {
                            return Err(KrlError::Malformed("SHA-1 fingerprint is not 20 bytes"));
                        }
                        krl.sha1.insert(fp.to_vec());
                    }
                }
                SECTION_FINGERPRINT_SHA256 => {
                    while !s.is_empty() {
                        let fp = s.string("SHA-256 fingerprint")?;
                        if fp.len() != 32 {
                            return Err(KrlError::Malformed("SHA-256 fingerprint is not 32 bytes"));
                        }
                        krl.sha256.insert(fp.to_vec());
                    }
                }
                SECTION_SIGNATURE => {
                    // string signing_key, string signature: well-formedness only.
                    let _key = s.string("signature key")?;
                    let _sig = s.string("signature")?;
                }
                other => return Err(KrlError::UnknownSection(other)),
            }
        }
        Ok(krl)
    }

    /// Whether this KRL revokes `cert`, and by which entry. Like OpenSSH's
    /// `ssh_krl_check_key`, it checks the certificate (serial and key ID under its
    /// CA), the certificate's own key, and the CA key, each by explicit blob,
    /// SHA-1 and SHA-256 fingerprint.
    pub fn revocation(&self, cert: &Certificate) -> Option<String> {
        let ca_blob = key_blob(cert.signature_key());
        for sec in &self.certs {
            let applies = match (&sec.ca_key, &ca_blob) {
                (None, _) => true,
                (Some(k), Some(ca)) => k == ca,
                (Some(_), None) => false,
            };
            if !applies {
                continue;
            }
            let serial = cert.serial();
            if sec.serials.contains(&serial) {
                return Some(format!("serial {serial} is in a serial list"));
            }
            if let Some((lo, hi)) = sec
                .ranges
                .iter()
                .find(|(lo, hi)| *lo <= serial && serial <= *hi)
            {
                return Some(format!("serial {serial} is in the range {lo}-{hi}"));
            }
            if sec
                .bitmaps
                .iter()
                .any(|(offset, bits)| bitmap_has(*offset, bits, serial))
            {
                return Some(format!("serial {serial} is in a serial bitmap"));
            }
            if sec.key_ids.contains(cert.key_id()) {
                return Some(format!("key ID {:?} is revoked", cert.key_id()));
            }
        }
        if let Some(why) = self.key_revocation(cert.public_key()) {
            return Some(format!("the certificate's key {why}"));
        }
        if let Some(why) = self.key_revocation(cert.signature_key()) {
            return Some(format!("the signing CA key {why}"));
        }
        None
    }

    fn key_revocation(&self, key: &KeyData) -> Option<String> {
        let blob = key_blob(key)?;
        if self.explicit.contains(&blob) {
            return Some("is revoked explicitly".to_owned());
        }
        if self.sha1.contains(sha1::Sha1::digest(&blob).as_slice()) {
            return Some("is revoked by SHA-1 fingerprint".to_owned());
        }
        if self.sha256.contains(sha2::Sha256::digest(&blob).as_slice()) {
            return Some(format!(
                "is revoked by fingerprint {}",
                key.fingerprint(ssh_key::HashAlg::Sha256)
            ));
        }
        None
    }
}

/// The SSH wire encoding of a plain public key (`string algorithm, …`).
fn key_blob(key: &KeyData) -> Option<Vec<u8>> {
    key.encode_vec().ok()
}

fn parse_cert_section(s: &mut Reader<'_>) -> Result<CertSection, KrlError> {
    let ca_key = s.string("certificate section CA key")?;
    let _reserved = s.string("certificate section reserved")?;
    let mut sec = CertSection {
        ca_key: (!ca_key.is_empty()).then(|| ca_key.to_vec()),
        ..CertSection::default()
    };
    while !s.is_empty() {
        let kind = s.u8("certificate subsection type")?;
        let data = s.string("certificate subsection data")?;
        let mut d = Reader::new(data);
        match kind {
            CERT_SERIAL_LIST => {
                while !d.is_empty() {
                    sec.serials.insert(d.u64("revoked serial")?);
                }
            }
            CERT_SERIAL_RANGE => {
                let lo = d.u64("serial range minimum")?;
                let hi = d.u64("serial range maximum")?;
                if lo > hi || !d.is_empty() {
                    return Err(KrlError::Malformed("bad serial range"));
                }
                sec.ranges.push((lo, hi));
            }
            CERT_SERIAL_BITMAP => {
                let offset = d.u64("serial bitmap offset")?;
                let bits = d.string("serial bitmap")?;
                // An mpint (RFC 4251 §5): a set top bit would make it negative.
                if bits.first().is_some_and(|b| b & 0x80 != 0) || !d.is_empty() {
                    return Err(KrlError::Malformed("bad serial bitmap"));
                }
                sec.bitmaps.push((offset, bits.to_vec()));
            }
            CERT_KEY_ID => {
                while !d.is_empty() {
                    let id = d.string("revoked key ID")?;
                    sec.key_ids.insert(String::from_utf8_lossy(id).into_owned());
                }
            }
            other => return Err(KrlError::UnknownSection(other)),
        }
    }
    Ok(sec)
}

/// Bit `serial - offset` of the big-endian `bits` (bit 0 is the last byte's
/// least significant bit).
fn bitmap_has(offset: u64, bits: &[u8], serial: u64) -> bool {
    let Some(i) = serial.checked_sub(offset) else {
        return false;
    };
    let Ok(byte_from_end) = usize::try_from(i / 8) else {
        return false;
    };
    let Some(idx) = bits.len().checked_sub(1 + byte_from_end) else {
        return false;
    };
    bits.get(idx).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(generated: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(KRL_MAGIC.to_be_bytes());
        v.extend(KRL_FORMAT_VERSION.to_be_bytes());
        v.extend(7u64.to_be_bytes());
        v.extend(generated.to_be_bytes());
        v.extend(0u64.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        v.extend(2u32.to_be_bytes());
        v.extend(b"hi");
        v
    }

    #[test]
    fn reads_the_header() {
        let k = Krl::parse(&header(1_700_000_000)).unwrap();
        assert_eq!(k.version, 7);
        assert_eq!(k.generated_date, 1_700_000_000);
        assert_eq!(k.comment, "hi");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(Krl::parse(b"").unwrap_err(), KrlError::Truncated("magic"));
        assert_eq!(Krl::parse(&[0u8; 64]).unwrap_err(), KrlError::BadMagic);
        let mut v = header(1);
        v.truncate(v.len() - 1);
        assert!(matches!(Krl::parse(&v), Err(KrlError::Truncated(_))));
        let mut v = header(1);
        v.push(9);
        v.extend(0u32.to_be_bytes());
        assert_eq!(Krl::parse(&v).unwrap_err(), KrlError::UnknownSection(9));
        let mut v = header(1);
        v.push(SECTION_EXPLICIT_KEY);
        v.extend(u32::MAX.to_be_bytes());
        assert!(matches!(Krl::parse(&v), Err(KrlError::Truncated(_))));
        let big = vec![0u8; MAX_KRL_SIZE + 1];
        assert!(matches!(Krl::parse(&big), Err(KrlError::TooLarge { .. })));
    }

    #[test]
    fn bitmap_bits_count_from_the_end() {
        // 0b0000_0101 0b0000_0010 → bits 1, 8, 10 set.
        let bits = [0x05, 0x02];
        let set: Vec<u64> = (0..20)
            .filter(|s| bitmap_has(100, &bits, s + 100))
            .collect();
        assert_eq!(set, [1, 8, 10]);
        assert!(!bitmap_has(100, &bits, 99));
        assert!(!bitmap_has(100, &bits, u64::MAX));
        assert!(!bitmap_has(0, &[], 0));
    }
}
