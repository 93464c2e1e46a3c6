//! Keys, certificates and KRLs made and read by the real `ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::process::{run, CmdOutput};
use crate::require_peer;

fn keygen() -> Command {
    let mut c = Command::new(require_peer("ssh-keygen"));
    // `ssh-keygen -L` prints validity in local time; make that UTC.
    c.env("TZ", "UTC");
    c
}

/// A key pair on disk, as `ssh-keygen` writes it (`NAME` 0600 and `NAME.pub`).
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// Private key file.
    pub private: PathBuf,
    /// Public key file.
    pub public: PathBuf,
}

impl KeyPair {
    /// Generate a key with `ssh-keygen -t kind [-b bits]`, no passphrase.
    /// Panics (naming ssh-keygen's complaint) when ssh-keygen refuses.
    pub fn generate(dir: &Path, name: &str, kind: &str, bits: Option<u32>) -> KeyPair {
        Self::try_generate(dir, name, kind, bits)
            .unwrap_or_else(|out| panic!("ssh-keygen could not make a {kind} key\n{out}"))
    }

    /// Like [`KeyPair::generate`], returning ssh-keygen's output on refusal (newer
    /// OpenSSH releases no longer make DSA keys, for example).
    pub fn try_generate(
        dir: &Path,
        name: &str,
        kind: &str,
        bits: Option<u32>,
    ) -> Result<KeyPair, CmdOutput> {
        let private = dir.join(name);
        let mut c = keygen();
        c.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&private);
        if let Some(b) = bits {
            c.args(["-b", &b.to_string()]);
        }
        let out = run(c);
        if !out.success() {
            return Err(out);
        }
        Ok(KeyPair {
            public: dir.join(format!("{name}.pub")),
            private,
        })
    }

    /// A fresh Ed25519 key.
    pub fn ed25519(dir: &Path, name: &str) -> KeyPair {
        Self::generate(dir, name, "ed25519", None)
    }

    /// The public key in OpenSSH one-line format, trimmed.
    pub fn public_line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.public.display()))
            .trim()
            .to_owned()
    }

    /// `SHA256:…` fingerprint as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public)
    }
}

/// `SHA256:…` fingerprint of a public key (or certificate) file.
pub fn fingerprint(public: &Path) -> String {
    let mut c = keygen();
    c.args(["-l", "-E", "sha256", "-f"]).arg(public);
    let out = run(c);
    out.assert_success("ssh-keygen -l");
    out.stdout
        .split_whitespace()
        .find(|t| t.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in\n{out}"))
        .to_owned()
}

/// A certificate authority that is just an `ssh-keygen` key: the reference
/// implementation against which Rampart's own CA is compared, and "some other CA"
/// whose certificates a Rampart-trusting sshd must refuse.
#[derive(Debug, Clone)]
pub struct KeygenCa {
    /// The CA key.
    pub key: KeyPair,
    dir: PathBuf,
}

impl KeygenCa {
    /// A new Ed25519 CA key in `dir`.
    pub fn new(dir: &Path, name: &str) -> KeygenCa {
        KeygenCa {
            key: KeyPair::ed25519(dir, name),
            dir: dir.to_path_buf(),
        }
    }

    /// The CA public key line (for `TrustedUserCAKeys`).
    pub fn public_line(&self) -> String {
        self.key.public_line()
    }

    /// Sign `subject`'s public key as a user certificate:
    /// `ssh-keygen -s CA -I key_id -n principals -V validity -z serial`.
    /// `validity` is ssh-keygen's syntax, e.g. `-5m:+1h` or `20200101:20200102`.
    /// Signs a copy of the public key kept in the CA's directory, because
    /// ssh-keygen writes `<key>-cert.pub` beside the key it signs and would
    /// otherwise overwrite a certificate already there (say, one Rampart issued).
    /// Returns the path of the certificate, unique to this key name and serial.
    pub fn sign_user(
        &self,
        subject: &KeyPair,
        key_id: &str,
        principals: &[&str],
        validity: &str,
        serial: u64,
    ) -> PathBuf {
        let name = subject
            .private
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let copy = self.dir.join(format!("{name}-serial{serial}.pub"));
        std::fs::copy(&subject.public, &copy).expect("copy the public key to sign");
        let mut c = keygen();
        c.arg("-q")
            .arg("-s")
            .arg(&self.key.private)
            .args(["-I", key_id, "-n", &principals.join(",")])
            .args(["-V", validity, "-z", &serial.to_string()])
            .arg(&copy);
        run(c).assert_success("ssh-keygen -s");
        let cert = cert_path_for(&copy);
        assert!(cert.is_file(), "ssh-keygen -s wrote no {}", cert.display());
        cert
    }

    /// Write a KRL revoking `serials` of this CA's certificates
    /// (`ssh-keygen -k -f out -s ca.pub spec` with `serial: N` lines).
    pub fn krl(&self, out: &Path, serials: &[u64]) {
        let spec = self.dir.join(format!(
            "krl-spec-{}",
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let text: String = serials.iter().map(|s| format!("serial: {s}\n")).collect();
        std::fs::write(&spec, text).expect("write KRL spec");
        let mut c = keygen();
        c.arg("-q")
            .arg("-k")
            .arg("-f")
            .arg(out)
            .arg("-s")
            .arg(&self.key.public)
            .arg(&spec);
        run(c).assert_success("ssh-keygen -k");
    }
}

/// Where `ssh-keygen -s` writes the certificate for `public` (`x.pub` → `x-cert.pub`).
pub fn cert_path_for(public: &Path) -> PathBuf {
    let s = public.to_string_lossy();
    PathBuf::from(format!("{}-cert.pub", s.strip_suffix(".pub").unwrap_or(&s)))
}

/// `ssh-keygen -Q -f krl cert`: does this KRL revoke this certificate/key?
/// ssh-keygen prints `<file>: REVOKED` and exits 1 for a revoked one, `ok` and 0 if not.
pub fn krl_revokes(krl: &Path, cert: &Path) -> bool {
    let mut c = keygen();
    c.arg("-Q").arg("-f").arg(krl).arg(cert);
    let out = run(c);
    let revoked = out.stdout.contains("REVOKED");
    let ok = out.stdout.contains(": ok");
    assert!(
        revoked != ok,
        "ssh-keygen -Q gave neither a clear REVOKED nor ok\n{out}"
    );
    assert_eq!(
        out.success(),
        ok,
        "ssh-keygen -Q exit status disagrees\n{out}"
    );
    revoked
}

/// A certificate as `ssh-keygen -L` describes it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// The whole `ssh-keygen -L` text.
    pub text: String,
    /// `Type:` line, e.g. `ssh-ed25519-cert-v01@openssh.com user certificate`.
    pub cert_type: String,
    /// `Signing CA:` line.
    pub signing_ca: String,
    /// `Key ID:` without the quotes.
    pub key_id: String,
    /// `Serial:`.
    pub serial: u64,
    /// Start of validity (`None` when "forever" / "always").
    pub valid_after: Option<DateTime<Utc>>,
    /// End of validity.
    pub valid_before: Option<DateTime<Utc>>,
    /// Principals.
    pub principals: Vec<String>,
    /// Critical options, each line as printed (`source-address 10.0.0.0/8`).
    pub critical_options: Vec<String>,
    /// Extensions, each line as printed (`permit-pty`, `mfa-method@rampart UNKNOWN
    /// OPTION: 00000004746f7470 (len 8)`, …).
    pub extensions: Vec<String>,
}

impl CertInfo {
    /// Whether an extension with this name is present.
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.split_whitespace().next() == Some(name))
    }

    /// The value of an extension that carries data. ssh-keygen does not know
    /// Rampart's extensions and prints their data as hex
    /// (`name UNKNOWN OPTION: <hex> (len n)`); per PROTOCOL.certkeys the data of an
    /// extension is itself an SSH `string`, so the first 4 bytes are its length.
    pub fn extension_value(&self, name: &str) -> Option<String> {
        let line = self
            .extensions
            .iter()
            .find(|e| e.split_whitespace().next() == Some(name))?;
        let hex = line.split_once("OPTION:")?.1.split_whitespace().next()?;
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16))
            .collect::<Result<_, _>>()
            .ok()?;
        let inner = bytes.get(4..)?;
        Some(String::from_utf8_lossy(inner).into_owned())
    }
}

/// Run `ssh-keygen -L -f cert` and parse what it says.
pub fn inspect_cert(cert: &Path) -> CertInfo {
    let mut c = keygen();
    c.arg("-L").arg("-f").arg(cert);
    let out = run(c);
    out.assert_success("ssh-keygen -L");
    parse_cert_listing(&out.stdout)
}

/// Parse `ssh-keygen -L` output (OpenSSH 9.x layout; see `print_cert()` in
/// ssh-keygen.c): `Field: value` lines, with principals, critical options and
/// extensions as indented lists under their heading (or `(none)`).
pub fn parse_cert_listing(text: &str) -> CertInfo {
    let mut info = CertInfo {
        text: text.to_owned(),
        cert_type: String::new(),
        signing_ca: String::new(),
        key_id: String::new(),
        serial: 0,
        valid_after: None,
        valid_before: None,
        principals: Vec::new(),
        critical_options: Vec::new(),
        extensions: Vec::new(),
    };
    #[derive(PartialEq)]
    enum List {
        None,
        Principals,
        Critical,
        Extensions,
    }
    let mut list = List::None;
    for line in text.lines().skip(1) {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim();
            let known = matches!(
                k,
                "Type"
                    | "Public key"
                    | "Signing CA"
                    | "Key ID"
                    | "Serial"
                    | "Valid"
                    | "Principals"
                    | "Critical Options"
                    | "Extensions"
            );
            if known {
                list = List::None;
                match k {
                    "Type" => info.cert_type = v.to_owned(),
                    "Signing CA" => info.signing_ca = v.to_owned(),
                    "Key ID" => info.key_id = v.trim_matches('"').to_owned(),
                    "Serial" => info.serial = v.parse().expect("numeric serial"),
                    "Valid" => {
                        let (a, b) = parse_validity(v);
                        info.valid_after = a;
                        info.valid_before = b;
                    }
                    "Principals" if v != "(none)" => list = List::Principals,
                    "Critical Options" if v != "(none)" => list = List::Critical,
                    "Extensions" if v != "(none)" => list = List::Extensions,
                    _ => {}
                }
                continue;
            }
        }
        match list {
            List::Principals => info.principals.push(t.to_owned()),
            List::Critical => info.critical_options.push(t.to_owned()),
            List::Extensions => info.extensions.push(t.to_owned()),
            List::None => {}
        }
    }
    info
}

/// `from 2026-01-01T00:00:00 to 2026-01-01T01:00:00`, `forever`, `from X to forever`,
/// `before X`, `after X`.
fn parse_validity(v: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let ts = |s: &str| {
        NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|n| n.and_utc())
    };
    if let Some(rest) = v.strip_prefix("from ") {
        let (a, b) = rest.split_once(" to ").unwrap_or((rest, "forever"));
        (ts(a), ts(b))
    } else if let Some(b) = v.strip_prefix("before ") {
        (None, ts(b))
    } else if let Some(a) = v.strip_prefix("after ") {
        (ts(a), None)
    } else {
        (None, None)
    }
}

/// What an SSH client hands a bastion when it logs in with the certificate
/// `cert_line` and the private key in `private` (unencrypted OpenSSH file):
/// RFC 4252 publickey userauth data for a fresh session identifier,
/// signed by that key. With it a test plays the user's client without a
/// bastion, and can forge proofs by changing either half.
pub fn user_proof(private: &Path, cert_line: &str) -> rampart_api::user_proof::UserProof {
    use ssh_key::encoding::Encode as _;
    let key = ssh_key::PrivateKey::read_openssh_file(private).expect("the user's private key");
    let cert =
        ssh_key::Certificate::from_openssh(cert_line.trim()).expect("an OpenSSH certificate");
    // Unique per call is all a test needs of a session identifier.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let session_id: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(
        format!(
            "{:?} {} {n}",
            std::time::SystemTime::now(),
            std::process::id()
        )
        .as_bytes(),
    )
    .into();
    let algorithm = match key.algorithm() {
        ssh_key::Algorithm::Rsa { .. } => "rsa-sha2-512-cert-v01@openssh.com".to_owned(),
        other => format!("{}-cert-v01@openssh.com", other.as_str()),
    };
    let data = rampart_api::user_proof::SignedUserauth {
        session_id: session_id.to_vec(),
        user: "rampart-e2e".into(),
        algorithm,
        key_blob: cert.encode_vec().expect("certificate encodes"),
    }
    .encode();
    let sig: ssh_key::Signature = signature::Signer::try_sign(&key, &data).expect("signs");
    rampart_api::user_proof::UserProof::from_raw(&data, &sig.encode_vec().expect("encodes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "cert.pub:
        Type: ssh-ed25519-cert-v01@openssh.com user certificate
        Public key: ED25519-CERT SHA256:ox5VWuRDx1o2c/VkO8sGfAGOpzoKNoGvO3ryna80nak
        Signing CA: ED25519 SHA256:Bzg/Zw16z0CXYBmiZ8/BKSdFSIj0ki8sQgtHaPU3qrA (using ssh-ed25519)
        Key ID: \"user=alice serial=42 mfa=totp\"
        Serial: 42
        Valid: from 2026-11-28T00:16:35 to 2026-11-28T00:22:35
        Principals: 
                alice
                rampart-e2e
        Critical Options: (none)
        Extensions: 
                mfa-method@rampart UNKNOWN OPTION: 00000004746f7470 (len 8)
                permit-pty
";

    #[test]
    fn parses_a_listing() {
        let c = parse_cert_listing(LISTING);
        assert_eq!(c.serial, 42);
        assert_eq!(c.key_id, "user=alice serial=42 mfa=totp");
        assert_eq!(c.principals, ["alice", "rampart-e2e"]);
        assert!(c.critical_options.is_empty());
        assert!(c.has_extension("permit-pty"));
        assert!(c.has_extension("mfa-method@rampart"));
        assert_eq!(
            c.extension_value("mfa-method@rampart").as_deref(),
            Some("totp")
        );
        assert_eq!(c.extension_value("permit-pty"), None);
        assert!(!c.has_extension("permit-X11-forwarding"));
        let secs = (c.valid_before.unwrap() - c.valid_after.unwrap()).num_seconds();
        assert_eq!(secs, 360);
    }

    #[test]
    fn cert_path_follows_ssh_keygen() {
        assert_eq!(
            cert_path_for(Path::new("/x/id_ed25519.pub")),
            PathBuf::from("/x/id_ed25519-cert.pub")
        );
    }
}
