//! Per-session MFA: the prompt pending on a connection, and the security-key
//! approval the CA may ask for instead of a TOTP code.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rampart_api::{webauthn, ClientError};
use russh::server::Auth;
use russh::{MethodKind, MethodSet};

use super::conn::Conn;
use super::establish::SessionPlan;

/// A per-session MFA prompt in progress.
pub(super) struct PendingMfa {
    /// The session the CA was (and will be) asked about: an approval is
    /// bound to its ID.
    pub(super) plan: SessionPlan,
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
    pub(super) fn method(&self) -> rampart_api::MfaMethod {
        match self {
            MfaProof::Totp(_) => rampart_api::MfaMethod::Totp,
            MfaProof::Approval(_) => rampart_api::MfaMethod::Webauthn,
        }
    }
}

/// The longest the bastion waits for a security-key approval, whatever
/// expiry the CA gives it.
const MAX_APPROVAL_WAIT: Duration = Duration::from_secs(15 * 60);

/// How long a person has to type a per-session code once asked.
const CODE_PROMPT_GRACE: Duration = Duration::from_secs(120);

impl Conn {
    /// Keep `plan` waiting for per-session MFA and ask for
    /// keyboard-interactive, whose rounds prompt for it. `partial_success`
    /// tells the client its certificate was good (the first time MFA is
    /// asked for), as opposed to a code that was refused.
    pub(super) fn ask_mfa(
        &mut self,
        plan: SessionPlan,
        approval: Option<webauthn::CeremonyStarted>,
        partial_success: bool,
    ) -> Auth {
        if approval.is_none() {
            // A person types the code: give them what sshd's LoginGraceTime
            // gives, whatever the (shorter) automatic login timeout.
            let until = self.shared.clock.unix_secs() + CODE_PROMPT_GRACE.as_secs();
            self.auth_hold.fetch_max(until, Ordering::Relaxed);
        }
        self.mfa = Some(PendingMfa { plan, approval });
        Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
            partial_success,
        }
    }

    /// The CA wants a security-key approval for this session: start one and
    /// ask for keyboard-interactive, whose prompt shows its URL and short code.
    pub(super) async fn start_approval(&mut self, plan: SessionPlan) -> Auth {
        let req = webauthn::BastionApprovalStartRequest {
            user: plan.user.name.clone(),
            session_id: plan.id.clone(),
            target: plan.target.name.clone(),
            login: plan.login.clone(),
        };
        match self.shared.ca.approval_start(&req).await {
            Ok(started) => {
                let until = u64::try_from(started.expires_at.timestamp()).unwrap_or(0);
                let cap = self.shared.clock.unix_secs() + MAX_APPROVAL_WAIT.as_secs();
                self.auth_hold.store(until.min(cap) + 10, Ordering::Relaxed);
                self.ask_mfa(plan, Some(started), true)
            }
            // The CA audited its refusal (no usable key, locked out, …).
            Err(ClientError::Api { message, .. }) => {
                self.accept_refused(format!("access denied: {message}"))
            }
            Err(e) => {
                let why =
                    format!("the CA cannot be reached to start a security-key approval ({e})");
                self.refuse(Some(&plan.user), &why);
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
        let left = (expires_at - self.shared.clock.now())
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
