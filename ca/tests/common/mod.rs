//! A CA authority for integration tests: temporary databases, fresh keys, a manual
//! clock stopped at a fixed instant, and the production defaults for everything the
//! test does not name.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_audit::{AuditConfig, AuditLog};
use rampart_ca::authority::{Authority, Caller, Keys, Settings};
use rampart_ca::clock::{Clock, ManualClock};
use rampart_ca::config::Limits;
use rampart_ca::secrets::Sealer;
use rampart_ca::store::sqlite::SqliteStore;
use rampart_signer::FileCaKey;
use secrecy::SecretString;

/// Where every test clock starts (5 s into a TOTP step).
pub fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T10:00:05Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An authority and what the test needs to drive it. Each test file adds
/// its own helpers to it (`impl TestAuthority` in that file), and not every
/// file reads every field.
#[allow(dead_code)]
pub struct TestAuthority {
    /// Holds the databases; removed on drop.
    pub dir: tempfile::TempDir,
    /// The authority's clock.
    pub clock: Arc<ManualClock>,
    /// The authority.
    pub auth: Authority,
    /// Where the test's requests come from (loopback unless a test moves it).
    pub caller: Caller,
}

/// An authority with `policy` and `limits`; the audit log goes to `audit_db` when
/// given, else beside the store.
pub fn authority(policy: &str, limits: Limits, audit_db: Option<&Path>) -> TestAuthority {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let audit_db = audit_db
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.path().join("audit.db"));
    let audit = AuditLog::open(
        &audit_db,
        Some(FileCaKey::generate("audit").unwrap().private_key().clone()),
        AuditConfig::default(),
    )
    .unwrap();
    let auth = Authority::new(
        Arc::new(SqliteStore::open(&dir.path().join("ca.db")).unwrap()),
        audit,
        rampart_policy::Policy::from_toml(policy).unwrap(),
        Keys::from_files(
            FileCaKey::generate("user").unwrap(),
            FileCaKey::generate("host").unwrap(),
        ),
        Sealer::derive(&SecretString::from("pw".to_owned()), b"0123456789abcdef").unwrap(),
        clock.clone() as Arc<dyn Clock>,
        Settings {
            limits,
            totp_issuer: "Rampart".into(),
            session_ttl: Duration::from_secs(8 * 3600),
            invite_default_ttl: Duration::from_secs(24 * 3600),
            invite_max_ttl: Duration::from_secs(7 * 86400),
            admin_max_mfa_age: Duration::from_secs(3600),
            admin_allow_recovery: false,
            recordings_dir: audit_db.parent().unwrap().join("recordings"),
            recordings_database: None,
        },
    )
    .unwrap();
    TestAuthority {
        dir,
        clock,
        auth,
        caller: Caller {
            source: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        },
    }
}

/// Private keys of the outer certificates the tests were issued, by
/// certificate line, so that a test can sign a bastion login with one.
static SUBJECT_KEYS: std::sync::Mutex<Vec<(String, ssh_key::PrivateKey)>> =
    std::sync::Mutex::new(Vec::new());

/// Remember the private key behind an issued certificate.
#[allow(dead_code)]
pub fn remember_key(cert_line: &str, key: &ssh_key::PrivateKey) {
    SUBJECT_KEYS
        .lock()
        .unwrap()
        .push((cert_line.trim().to_owned(), key.clone()));
}

/// What a user's SSH client would hand a bastion when logging in with
/// `cert_line` (a certificate whose key [`remember_key`] knows): RFC 4252
/// userauth data for a fresh random session, signed by the certificate's key.
#[allow(dead_code)]
pub fn user_proof(cert_line: &str) -> rampart_api::user_proof::UserProof {
    use ssh_key::encoding::Encode as _;
    let key = SUBJECT_KEYS
        .lock()
        .unwrap()
        .iter()
        .find(|(line, _)| line == cert_line.trim())
        .map(|(_, k)| k.clone())
        .expect("the certificate's key was remembered");
    let cert = ssh_key::Certificate::from_openssh(cert_line.trim()).unwrap();
    let data = rampart_api::user_proof::SignedUserauth {
        session_id: rand::random::<[u8; 32]>().to_vec(),
        user: "alice".into(),
        algorithm: format!("{}-cert-v01@openssh.com", key.algorithm().as_str()),
        key_blob: cert.encode_vec().unwrap(),
    }
    .encode();
    let sig: ssh_key::Signature = signature::Signer::try_sign(&key, &data).unwrap();
    rampart_api::user_proof::UserProof::from_raw(&data, &sig.encode_vec().unwrap())
}
