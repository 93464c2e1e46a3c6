//! `rampart host krl-sync`: install the CA's signed KRL for sshd's `RevokedKeys`.
//!
//! ## The signature format
//!
//! The CA publishes its KRL (OpenSSH binary format, PROTOCOL.krl) at `GET /v1/krl`
//! and, built and cached together with it, an SSHSIG signature (OpenSSH
//! PROTOCOL.sshsig) at `GET /v1/krl.sig`:
//!
//! - signed with the **user CA key**, the key hosts already trust with
//!   `TrustedUserCAKeys`, so no new key has to be distributed;
//! - over the exact KRL bytes, hash SHA-512, namespace `rampart-krl@rampart`
//!   ([`rampart_api::KRL_SIG_NAMESPACE`]), armored (`-----BEGIN SSH SIGNATURE-----`).
//!
//! Stock OpenSSH checks it too: with an `allowed_signers` line
//! `rampart-ca namespaces="rampart-krl@rampart" ssh-ed25519 AAAA…` (the user CA key),
//! `ssh-keygen -Y verify -f allowed_signers -I rampart-ca -n rampart-krl@rampart
//! -s rampart.krl.sig < rampart.krl` prints `Good "rampart-krl@rampart" signature`.
//! (PROTOCOL.krl's own signature section is not used: OpenSSH >= 9.4 refuses KRLs
//! that carry one.)
//!
//! ## What krl-sync does
//!
//! Fetch both, verify the signature against every key in `--ca-key`, parse the KRL
//! header (`"SSHKRL\n\0"`, format version 1, `krl_version`, `generated_date`; the
//! reader is `rampart_signer::read_krl_header`) and
//! walk its sections, then compare with the installed file:
//! - fetched version < installed: refused (exit 21), a rollback would un-revoke;
//! - same version and same bytes: nothing to do (exit 0, files untouched);
//! - same version, newer `generated_date`: replaced (the CA re-signs hourly, so
//!   the installed file's signed date shows how fresh it is);
//! - newer version, or nothing valid installed: installed.
//!
//! The KRL goes in first and `<out>.sig` next, each through a temporary file in
//! the same directory (fsync, rename, fsync of the directory), mode 0644. Any
//! failure before the rename leaves the installed KRL exactly as it was.

use std::fs::{self, File};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_api::{paths, Client, Fingerprint, CA_KEYS_SIG_NAMESPACE, KRL_SIG_NAMESPACE};
use rampart_signer::{read_krl_header, KrlHeader};
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::cli::KrlSyncArgs;
use crate::error::CliError;
use crate::host::HostError;

/// Largest KRL accepted (a KRL revoking a million serials as a list is 8 MB).
pub const MAX_KRL_BYTES: usize = 16 * 1024 * 1024;
/// Largest signature accepted (an RSA-16384 SSHSIG is under 6 KiB armored).
const MAX_SIG_BYTES: usize = 64 * 1024;
/// Largest CA key file read.
const MAX_CA_KEY_FILE: u64 = 64 * 1024;
/// Fetches of the KRL/signature pair (and of the CA key set and its signature)
/// before giving up: a revocation (or a CA restart) landing between the two
/// requests makes one pair mismatch, the next fetch matches.
const FETCH_ATTEMPTS: usize = 3;

/// Read a `TrustedUserCAKeys`-style file: one OpenSSH public key per line, `#`
/// comments and blank lines ignored. At least one key is required.
pub fn read_ca_keys(path: &Path) -> Result<Vec<PublicKey>, CliError> {
    let file = File::open(path).map_err(|e| CliError::no_input(path, &e))?;
    let mut text = String::new();
    file.take(MAX_CA_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(|e| CliError::no_input(path, &e))?;
    parse_ca_keys(&text).map_err(|detail| CliError::NoInput {
        path: path.display().to_string(),
        detail,
    })
}

/// The keys of a `TrustedUserCAKeys`-style text; at least one.
pub fn parse_ca_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = PublicKey::from_openssh(line)
            .map_err(|e| format!("line {} is not an OpenSSH public key: {e}", i + 1))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("no public key in the file".to_owned());
    }
    Ok(keys)
}

/// Check that `sig_pem` is an SSHSIG over exactly `krl`, in namespace
/// `rampart-krl@rampart`, by one of `trusted`.
pub fn verify_krl_signature(
    trusted: &[PublicKey],
    krl: &[u8],
    sig_pem: &[u8],
) -> Result<(), String> {
    verify_signature(trusted, KRL_SIG_NAMESPACE, "the KRL", krl, sig_pem)
}

/// Check that `sig_pem` is an SSHSIG over exactly `data` (called `what` in
/// messages), in `namespace`, by one of `trusted`.
fn verify_signature(
    trusted: &[PublicKey],
    namespace: &str,
    what: &str,
    data: &[u8],
    sig_pem: &[u8],
) -> Result<(), String> {
    let sig = SshSig::from_pem(sig_pem)
        .map_err(|e| format!("{what}'s signature is not an SSH signature: {e}"))?;
    if sig.namespace() != namespace {
        return Err(format!(
            "{what}'s signature is for namespace {:?}, not {namespace:?}",
            sig.namespace()
        ));
    }
    let key = trusted
        .iter()
        .find(|k| k.key_data() == sig.public_key())
        .ok_or_else(|| {
            format!(
                "{what} is signed by {}, which is not a trusted CA key",
                sig.public_key().fingerprint(HashAlg::Sha256)
            )
        })?;
    key.verify(namespace, data, &sig)
        .map_err(|_| format!("{what}'s signature does not verify: {what} was altered"))
}

/// Bring the trusted user CA keys (`--ca-key`) in line with the CA's set, when
/// a key already trusted signed that set (so a rotation reaches hosts with no
/// new trust step, and nobody without a trusted key can add one). Returns the
/// keys to check the KRL with.
fn sync_ca_keys(
    client: &Client,
    path: &Path,
    trusted: Vec<PublicKey>,
) -> Result<Vec<PublicKey>, HostError> {
    let refused =
        |why: String| HostError::CaKeysRefused(format!("refusing the CA's user CA keys: {why}"));
    // The set and its signature are two requests: a CA restarted between them
    // (a rotation step) serves a pair that does not match; the next one does.
    let mut last = String::new();
    let mut verified = None;
    for _ in 0..FETCH_ATTEMPTS {
        let (set, sig) = match client.user_ca_signed() {
            Ok(pair) => pair,
            // A CA from before rotations: keep the keys as they are.
            Err(rampart_api::ClientError::Api { status: 404, .. }) => return Ok(trusted),
            Err(e) => return Err(CliError::from(e).into()),
        };
        if set.len() as u64 > MAX_CA_KEY_FILE || sig.len() > MAX_SIG_BYTES {
            return Err(refused("implausibly large".to_owned()));
        }
        match verify_signature(&trusted, CA_KEYS_SIG_NAMESPACE, "the key set", &set, &sig) {
            Ok(()) => {
                verified = Some(set);
                break;
            }
            Err(e) => last = e,
        }
    }
    let Some(set) = verified else {
        return Err(refused(last));
    };
    let text = std::str::from_utf8(&set).map_err(|_| refused("not text".to_owned()))?;
    let keys = parse_ca_keys(text).map_err(refused)?;
    if fs::read(path).ok().as_deref() != Some(set.as_slice()) {
        write_atomic(path, &set)?;
        let fingerprints: Vec<String> = keys
            .iter()
            .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
            .collect();
        println!(
            "installed the CA's user CA keys at {}: {}",
            path.display(),
            fingerprints.join(", ")
        );
    }
    Ok(keys)
}

/// What to do with a verified KRL, given what is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Install it (nothing valid installed, newer version, or fresher signature).
    Install,
    /// The installed KRL is the same or equally new: leave it.
    Unchanged,
}

/// Decide, refusing rollbacks. `installed` is the installed file's header and bytes.
pub fn plan(
    installed: Option<(KrlHeader, &[u8])>,
    fetched: KrlHeader,
    fetched_bytes: &[u8],
) -> Result<Plan, (u64, u64)> {
    let Some((inst, inst_bytes)) = installed else {
        return Ok(Plan::Install);
    };
    if fetched.version < inst.version {
        return Err((fetched.version, inst.version));
    }
    if fetched.version > inst.version {
        return Ok(Plan::Install);
    }
    if fetched_bytes != inst_bytes && fetched.generated_at > inst.generated_at {
        return Ok(Plan::Install);
    }
    Ok(Plan::Unchanged)
}

/// `rampart host krl-sync`.
pub fn run(a: &KrlSyncArgs) -> Result<(), HostError> {
    let trusted = read_ca_keys(&a.ca_key)?;
    let pin = Fingerprint::parse(&a.ca_fingerprint).map_err(CliError::from)?;
    let client = Client::new(&a.ca, pin).map_err(CliError::from)?;
    // A refused key set still lets a KRL signed by a key trusted now in:
    // revocations must not wait for the key question to be settled.
    let (trusted, keys_refused) = match sync_ca_keys(&client, &a.ca_key, trusted.clone()) {
        Ok(keys) => (keys, None),
        Err(HostError::CaKeysRefused(why)) => (trusted, Some(why)),
        Err(e) => return Err(e),
    };
    sync_krl(a, &client, &trusted)?;
    match keys_refused {
        Some(why) => Err(HostError::CaKeysRefused(why)),
        None => Ok(()),
    }
}

/// Install the CA's KRL if it verifies against `trusted` and is not older.
fn sync_krl(a: &KrlSyncArgs, client: &Client, trusted: &[PublicKey]) -> Result<(), HostError> {
    let (krl, sig) = fetch_verified(client, trusted)?;
    let header = read_krl_header(&krl)
        .map_err(|e| HostError::KrlRefused(format!("refusing the CA's KRL: {e}")))?;
    if let Some(max_age) = a.max_age {
        check_age(header, max_age, unix_now())?;
    }

    let installed_bytes = read_installed(&a.out)?;
    let installed = installed_bytes
        .as_deref()
        .and_then(|b| read_krl_header(b).ok().map(|h| (h, b)));
    let out = a.out.display().to_string();
    let sig_path = sig_path(&a.out);
    match plan(installed, header, &krl) {
        Err((fetched, installed)) => Err(HostError::KrlRollback {
            fetched,
            installed,
            path: out,
        }),
        Ok(Plan::Install) => {
            write_atomic(&a.out, &krl)?;
            write_atomic(&sig_path, &sig)?;
            println!(
                "installed KRL version {} (generated {}) at {out}",
                header.version,
                show_time(header.generated_at)
            );
            Ok(())
        }
        Ok(Plan::Unchanged) => {
            // Same bytes: the signature we hold is valid for the installed KRL;
            // put it back if it went missing or was damaged.
            let same = installed_bytes.as_deref() == Some(krl.as_slice());
            let sig_now = fs::read(&sig_path).ok();
            if same && sig_now.as_deref() != Some(sig.as_slice()) {
                write_atomic(&sig_path, &sig)?;
                println!(
                    "KRL version {} already installed at {out}; restored its signature",
                    header.version
                );
            } else {
                println!(
                    "KRL version {} already installed at {out}; nothing to do",
                    installed.map_or(header.version, |(h, _)| h.version)
                );
            }
            Ok(())
        }
    }
}

/// Fetch the KRL and its signature until a pair verifies (see [`FETCH_ATTEMPTS`]).
fn fetch_verified(client: &Client, trusted: &[PublicKey]) -> Result<(Vec<u8>, Vec<u8>), HostError> {
    let mut last = String::new();
    for _ in 0..FETCH_ATTEMPTS {
        let krl = client.get_bytes(paths::KRL).map_err(CliError::from)?;
        let sig = client.get_bytes(paths::KRL_SIG).map_err(CliError::from)?;
        if krl.len() > MAX_KRL_BYTES {
            return Err(HostError::KrlRefused(format!(
                "refusing the CA's KRL: {} bytes is more than the {MAX_KRL_BYTES}-byte limit",
                krl.len()
            )));
        }
        if sig.len() > MAX_SIG_BYTES {
            return Err(HostError::KrlRefused(
                "refusing the CA's KRL: the signature is implausibly large".to_owned(),
            ));
        }
        match verify_krl_signature(trusted, &krl, &sig) {
            Ok(()) => return Ok((krl, sig)),
            Err(e) => last = e,
        }
    }
    Err(HostError::KrlRefused(format!(
        "refusing the CA's KRL: {last}"
    )))
}

fn check_age(header: KrlHeader, max_age: Duration, now: u64) -> Result<(), HostError> {
    let age = now.saturating_sub(header.generated_at);
    if age > max_age.as_secs() {
        return Err(HostError::KrlRefused(format!(
            "refusing the CA's KRL: generated {} ({}s ago), older than --max-age {}s",
            show_time(header.generated_at),
            age,
            max_age.as_secs()
        )));
    }
    Ok(())
}

fn unix_now() -> u64 {
    crate::clock::unix_secs()
}

pub(super) fn show_time(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || unix.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// The installed KRL, if any (bounded read).
fn read_installed(path: &Path) -> Result<Option<Vec<u8>>, CliError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::no_input(path, &e)),
    };
    let mut bytes = Vec::new();
    file.take(u64::try_from(MAX_KRL_BYTES).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::no_input(path, &e))?;
    Ok(Some(bytes))
}

/// `<out>.sig`.
pub fn sig_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Replace `path` atomically with `bytes`, mode 0644 (see
/// [`crate::home::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    crate::home::write_atomic(path, bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::{Ed25519Keypair, PrivateKey};

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    /// A KRL as `rampart-signer` / ssh-keygen lay it out, with one empty section.
    fn krl(version: u64, generated_at: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"SSHKRL\n\0");
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&generated_at.to_be_bytes());
        v.extend_from_slice(&0u64.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes()); // reserved
        v.extend_from_slice(&3u32.to_be_bytes());
        v.extend_from_slice(b"abc"); // comment
        v.push(1); // section type
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(b"xy");
        v
    }

    fn sign(k: &PrivateKey, ns: &str, msg: &[u8]) -> Vec<u8> {
        k.sign(ns, HashAlg::Sha512, msg)
            .unwrap()
            .to_pem(ssh_key::LineEnding::LF)
            .unwrap()
            .into_bytes()
    }

    #[test]
    fn signature_must_match_bytes_namespace_and_key() {
        let ca = key(1);
        let other = key(2);
        let trusted = vec![ca.public_key().clone()];
        let bytes = krl(3, 100);
        let sig = sign(&ca, KRL_SIG_NAMESPACE, &bytes);
        verify_krl_signature(&trusted, &bytes, &sig).unwrap();

        // One flipped bit anywhere in the KRL.
        for i in [0, 12, bytes.len() - 1] {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let e = verify_krl_signature(&trusted, &t, &sig).unwrap_err();
            assert!(e.contains("does not verify"), "{e}");
        }
        // Another key (not trusted).
        let e = verify_krl_signature(&trusted, &bytes, &sign(&other, KRL_SIG_NAMESPACE, &bytes))
            .unwrap_err();
        assert!(e.contains("not a trusted CA key"), "{e}");
        // The trusted key, wrong namespace (e.g. an audit checkpoint signature).
        let e = verify_krl_signature(&trusted, &bytes, &sign(&ca, "file", &bytes)).unwrap_err();
        assert!(e.contains("namespace"), "{e}");
        // Garbage instead of a signature.
        let e = verify_krl_signature(&trusted, &bytes, b"nope").unwrap_err();
        assert!(e.contains("not an SSH signature"), "{e}");
        // Several trusted keys (CA rotation): any one may sign.
        let both = vec![other.public_key().clone(), ca.public_key().clone()];
        verify_krl_signature(&both, &bytes, &sig).unwrap();
    }

    #[test]
    fn plan_refuses_rollbacks_and_is_idempotent() {
        let h = |v, g| KrlHeader {
            version: v,
            generated_at: g,
        };
        let a = krl(5, 100);
        assert_eq!(plan(None, h(1, 1), &a), Ok(Plan::Install));
        assert_eq!(
            plan(Some((h(5, 100), &a)), h(5, 100), &a),
            Ok(Plan::Unchanged)
        );
        let newer = krl(6, 50);
        assert_eq!(
            plan(Some((h(5, 100), &a)), h(6, 50), &newer),
            Ok(Plan::Install)
        );
        let older = krl(4, 200);
        assert_eq!(plan(Some((h(5, 100), &a)), h(4, 200), &older), Err((4, 5)));
        let resigned = krl(5, 200);
        assert_eq!(
            plan(Some((h(5, 100), &a)), h(5, 200), &resigned),
            Ok(Plan::Install)
        );
        let earlier = krl(5, 50);
        assert_eq!(
            plan(Some((h(5, 100), &a)), h(5, 50), &earlier),
            Ok(Plan::Unchanged)
        );
    }

    #[test]
    fn max_age_refuses_stale_krls() {
        let h = KrlHeader {
            version: 1,
            generated_at: 1000,
        };
        check_age(h, Duration::from_secs(100), 1100).unwrap();
        check_age(h, Duration::from_secs(100), 900).unwrap();
        let e = check_age(h, Duration::from_secs(100), 1101).unwrap_err();
        assert_eq!(e.exit_code(), crate::host::EXIT_KRL_REFUSED);
    }

    #[test]
    fn atomic_write_sets_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rampart.krl");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory that does not exist: an error, nothing created.
        let e = write_atomic(&dir.path().join("nope/rampart.krl"), b"x").unwrap_err();
        assert!(e.one_line().contains("cannot write"), "{}", e.one_line());
    }

    #[test]
    fn ca_key_file_needs_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pub");
        fs::write(&p, "# nothing\n\n").unwrap();
        assert!(read_ca_keys(&p)
            .unwrap_err()
            .to_string()
            .contains("no public key"));
        fs::write(&p, "not a key\n").unwrap();
        assert!(read_ca_keys(&p).unwrap_err().to_string().contains("line 1"));
        let line = key(1).public_key().to_openssh().unwrap();
        fs::write(&p, format!("# ca\n{line}\n")).unwrap();
        assert_eq!(read_ca_keys(&p).unwrap().len(), 1);
    }
}
