//! Per-session MFA: the prompt pending on a connection, and the security-key
//! approval the CA may ask for instead of a TOTP code.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rampart_api::{webauthn, ClientError};
use russh::server::Auth;
use russh::{MethodKind, MethodSet};

use super::conn::Conn;
use super::unix_now;
use crate::auth::OuterUser;
use crate::config::Target;

/// A per-session MFA prompt in progress.
pub(super) struct PendingMfa {
    pub(super) login: String,
    pub(super) target: Target,
    pub(super) user: OuterUser,
    /// The session ID the CA was (and will be) asked about: an approval is
    /// bound to it.
    pub(super) session_id: String,
    /// A security-key approval waiting for the user, when the CA asked for one
    /// (its `poll_token` is a secret: `CeremonyStarted`'s Debug redacts it).
    pub(super) approval: Option<webauthn::CeremonyStarted>,
}

/// Fresh per-session MFA the user gave, for the session-cert request.
pub(super) enum MfaProof {
    /// A TOTP code typed at the keyboard-interactive prompt.
    Totp(String),
    /// A security-key approval the user gave in a browser.
    Approval(webauthn::WaitRequest),
}

impl MfaProof {
    pub(super) fn method(&self) -> &'static str {
        match self {
            MfaProof::Totp(_) => "totp",
            MfaProof::Approval(_) => "webauthn",
        }
    }
}

/// The longest the bastion waits for a security-key approval, whatever
/// expiry the CA gives it.
const MAX_APPROVAL_WAIT: Duration = Duration::from_secs(15 * 60);

impl Conn {
    /// The CA wants a security-key approval for this session: start one and
    /// ask for keyboard-interactive, whose prompt shows its URL and short code.
    pub(super) async fn start_approval(
        &mut self,
        user: OuterUser,
        login: String,
        target: Target,
        session_id: String,
    ) -> Auth {
        let req = webauthn::BastionApprovalStartRequest {
            user: user.name.clone(),
            session_id: session_id.clone(),
            target: target.name.clone(),
            login: login.clone(),
        };
        match self.shared.ca.approval_start(&req).await {
            Ok(started) => {
                let until = u64::try_from(started.expires_at.timestamp()).unwrap_or(0);
                let cap = unix_now() + MAX_APPROVAL_WAIT.as_secs();
                self.auth_hold.store(until.min(cap) + 10, Ordering::Relaxed);
                self.mfa = Some(PendingMfa {
                    login,
                    target,
                    user,
                    session_id,
                    approval: Some(started),
                });
                Auth::Reject {
                    proceed_with_methods: Some(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )),
                    partial_success: true,
                }
            }
            // The CA audited its refusal (no usable key, locked out, …).
            Err(ClientError::Api { message, .. }) => {
                self.accept_refused(format!("access denied: {message}"))
            }
            Err(e) => {
                let why =
                    format!("the CA cannot be reached to start a security-key approval ({e})");
                self.refuse(Some(&user), &why);
                self.accept_refused(why)
            }
        }
    }

    /// Wait until the approval is no longer pending (approved, or refused:
    /// denied, expired), at most until it expires. The CA decides what it
    /// amounts to when the session certificate is asked for; this returns the
    /// CA's words when it refused the approval, for the user.
    pub(super) async fn await_approval(
        &self,
        wait: &webauthn::WaitRequest,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Option<String> {
        let left = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_APPROVAL_WAIT);
        // A little past the expiry, so the CA has declared it expired.
        let deadline = Instant::now() + left + Duration::from_secs(2);
        loop {
            match self.shared.ca.approval_wait(wait).await {
                Ok(webauthn::CeremonyOutcome::Pending { .. }) => {}
                Ok(_) => return None,
                Err(ClientError::Api { code, message, .. }) => {
                    tracing::info!("security-key approval refused ({code}): {message}");
                    return Some(message);
                }
                Err(e) => {
                    tracing::warn!("waiting for a security-key approval: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }
}
