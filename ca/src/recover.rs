//! `rampart-ca recover-admin`: the way back in when no admin can log in (a lost
//! factor, a locked account, the only admin gone). It runs on the CA host and
//! writes a one-time invite for an admin straight into the CA's own database;
//! the daemon may keep running (the invite lives in the store it reads, and the
//! audit log takes a second writer by reloading the chain head it sees move).
//!
//! Who can run it already holds the CA's keys and their passphrase, so it
//! grants nothing they did not have; what it must not be is quiet. The invite
//! is preceded by an `admin_recovery_invite` event (severity high) in the audit
//! chain, which the SIEM forwarders ship like any other.

use rampart_api::ErrorCode;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api::{Fingerprint, InviteRequest};
use rampart_audit::{EventKind, NewEvent, Outcome};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::CaError;
use crate::server;

/// What the operator hands the admin.
#[derive(Debug)]
pub struct RecoveryInvite {
    /// The admin.
    pub user: String,
    /// The invite code (shown once).
    pub code: rampart_api::WireSecret,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The CA's URL, from its listen address.
    pub url: String,
    /// The CA's TLS certificate fingerprint, for `--ca-fingerprint`.
    pub tls_fingerprint: String,
}

/// Who ran a command on the CA host (`sudo`'s caller when there is one), for
/// the audit events the offline commands write.
pub(crate) fn os_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default()
}

/// Make a recovery invite for the admin `user`, valid for `ttl`.
pub fn recover_admin(
    config_path: &Path,
    user: &str,
    ttl: Duration,
) -> Result<RecoveryInvite, CaError> {
    let config = Config::load(config_path)?;
    let loaded = server::open(&config, Arc::new(SystemClock))?;
    let auth = loaded.authority;
    let Some(account) = auth.list_users()?.into_iter().find(|u| u.name == user) else {
        return Err(CaError::not_found(
            ErrorCode::UserUnknown,
            format!("no user named {user:?}"),
        ));
    };
    if !account.admin {
        return Err(CaError::bad_request(
            ErrorCode::NotAdmin,
            format!(
                "{user} is not an admin; an admin invites other users (`rampart admin invite`)"
            ),
        ));
    }
    if account.disabled {
        return Err(CaError::bad_request(
            ErrorCode::UserDisabled,
            format!("{user} is disabled; recovery does not undo another admin's decision"),
        ));
    }
    // Audit first: the invite exists only once the log says who made it.
    auth.record(
        NewEvent::new(EventKind::AdminRecoveryInvite, Outcome::Success, auth.now())
            .actor("rampart-ca recover-admin")
            .user(user)
            .detail("ttl_seconds", ttl.as_secs())
            .detail("os_user", os_user()),
    )?;
    let invite = auth.create_offline_invite(
        "rampart-ca recover-admin",
        &InviteRequest {
            user: user.to_owned(),
            ttl_seconds: Some(ttl.as_secs()),
        },
    )?;
    auth.audit_log()
        .close()
        .map_err(CaError::AuditUnavailable)?;
    let der = CertificateDer::from_pem_file(&config.tls_cert)
        .map_err(|e| CaError::Config(format!("{}: {e}", config.tls_cert.display())))?;
    Ok(RecoveryInvite {
        user: invite.user,
        code: invite.code,
        expires_at: invite.expires_at,
        url: crate::init::url_for(&config.listen.to_string()),
        tls_fingerprint: Fingerprint::of_der(&der).to_string(),
    })
}
