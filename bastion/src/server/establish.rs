//! A session's start: limits, a per-session key and certificate from the CA
//! (which may ask for per-session MFA first), the dial to the target, and the
//! `session_started` event the CA must acknowledge before anything flows.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rampart_api::{BastionEventKind, ClientError, SessionCertRequest};
use russh::keys::ssh_key::Certificate;
use russh::server::Auth;

use super::channels::TargetSession;
use super::conn::{Conn, Mode};
use super::events::{refuse_event, with_session};
use super::mfa::MfaProof;
use crate::audit::{detail, event};
use crate::auth::OuterUser;
use crate::bridge::{self, Traffic};
use crate::config::Target;
use crate::recording;

/// The session a user asked for: who, as which login on which target, and
/// the ID the CA knows it by (a security-key approval is bound to it).
#[derive(Debug, Clone)]
pub(super) struct SessionPlan {
    pub(super) id: String,
    pub(super) user: OuterUser,
    pub(super) login: String,
    pub(super) target: Target,
}

impl Conn {
    /// Ask the CA for a per-session certificate, dial the target, audit the start.
    pub(super) async fn establish(&mut self, plan: SessionPlan, proof: Option<MfaProof>) -> Auth {
        let SessionPlan {
            id: session_id,
            user,
            login,
            target,
        } = &plan;
        let (mine, total) = self.shared.count_sessions(&user.name);
        let limits = &self.shared.config.limits;
        if mine >= limits.max_sessions_per_user || total >= limits.max_sessions {
            let why = if mine >= limits.max_sessions_per_user {
                format!(
                    "too many sessions for {} (limit {})",
                    user.name, limits.max_sessions_per_user
                )
            } else {
                format!(
                    "the bastion is at its session limit ({})",
                    limits.max_sessions
                )
            };
            self.refuse(Some(user), &why);
            return self.accept_refused(why);
        }
        if !self.shared.auditor.accepting_sessions() {
            // Fail closed: the CA has not taken this bastion's events for a
            // while and the spool that keeps them is full.
            crate::metrics::start_refused_spool_full();
            let why = "the bastion cannot deliver audit events to the CA and its event spool is \
                       full; new sessions are refused until the CA takes them"
                .to_owned();
            self.refuse(Some(&user), &why);
            return self.accept_refused(why);
        }
        let key = match crate::join::generate_ed25519() {
            Ok(k) => k,
            Err(e) => return self.accept_refused(format!("internal error: {e}")),
        };
        let public = match key.public_key().to_openssh() {
            Ok(p) => p,
            Err(e) => return self.accept_refused(format!("internal error: {e}")),
        };
        let req = SessionCertRequest {
            user_certificate: user.cert_line.clone(),
            login: login.clone(),
            target: target.name.clone(),
            target_labels: target.labels.clone(),
            session_id: session_id.clone(),
            public_key: public,
            source: Some(self.peer.ip().to_string()),
            totp_code: match &proof {
                Some(MfaProof::Totp(code)) => Some(code.clone()),
                _ => None,
            },
            webauthn_approval: match &proof {
                Some(MfaProof::Approval(a)) => Some(a.clone()),
                _ => None,
            },
        };
        let totp = matches!(proof, Some(MfaProof::Totp(_)));
        let resp = match self.shared.ca.session_cert(&req).await {
            Ok(r) => r,
            Err(ClientError::Api { code, .. })
                if code == rampart_api::SESSION_APPROVAL_REQUIRED && proof.is_none() =>
            {
                return self.start_approval(plan).await;
            }
            Err(ClientError::Api { code, message, .. })
                if code == rampart_api::SESSION_MFA_REQUIRED
                    && !matches!(proof, Some(MfaProof::Approval(_))) =>
            {
                if totp {
                    // A code was sent and the CA still wants one: wrong or replayed.
                    tracing::info!("per-session code refused: {message}");
                }
                return self.ask_mfa(plan, None, !totp);
            }
            Err(ClientError::Api { code, message, .. }) if totp && code.starts_with("totp") => {
                tracing::info!("per-session code refused ({code}): {message}");
                return self.ask_mfa(plan, None, false);
            }
            Err(ClientError::Api { message, .. }) => {
                // The CA audited its decision already.
                return self.accept_refused(format!("access denied: {message}"));
            }
            Err(e) => {
                let why = format!("the CA cannot be reached to authorise this session ({e})");
                self.refuse(Some(user), &why);
                return self.accept_refused(why);
            }
        };
        let cert = match Certificate::from_openssh(resp.certificate.certificate.trim()) {
            Ok(c) => c,
            Err(e) => {
                return self
                    .accept_refused(format!("the CA's session certificate is unreadable: {e}"))
            }
        };
        let agent = bridge::AgentSlot::default();
        let remote = bridge::RemoteForwards::default();
        let client = match bridge::connect(
            target,
            &self.shared.host_ca,
            login,
            key,
            cert,
            agent.clone(),
            remote.clone(),
        )
        .await
        {
            Ok(c) => c,
            Err(why) => {
                let e = refuse_event(self.peer, Some(user), &why);
                self.shared
                    .auditor
                    .enqueue(with_session(e, &plan, self.peer));
                return self.accept_refused(why);
            }
        };
        // Fail closed: no session unless its start is in the audit chain.
        let start = with_session(
            event(BastionEventKind::SessionStarted, true),
            &plan,
            self.peer,
        );
        let start = detail(
            detail(
                start,
                "mode",
                if matches!(self.mode, Mode::Inner(_)) {
                    "proxyjump"
                } else {
                    "direct"
                },
            ),
            "session_mfa",
            resp.session_mfa,
        );
        let start = match &proof {
            Some(p) => detail(start, "session_mfa_method", p.method()),
            None => start,
        };
        if let Err(e) = self.shared.auditor.record(vec![start]).await {
            let _ = client
                .disconnect(russh::Disconnect::ByApplication, "audit unavailable", "en")
                .await;
            return self.accept_refused(format!(
                "the session cannot be audited, so it is refused ({e})"
            ));
        }
        let traffic = Arc::new(Traffic::default());
        traffic.touch();
        recording::write_marker(
            &self.shared.config.recording_dir,
            &recording::Marker {
                session_id: session_id.clone(),
                user: user.name.clone(),
                login: login.clone(),
                target: target.name.clone(),
                source: self.peer.ip().to_string(),
                serial: user.serial,
            },
        );
        self.session = Some(TargetSession {
            plan,
            client,
            policy: resp,
            traffic,
            channels: Arc::new(Mutex::new(Vec::new())),
            end_reason: Arc::new(Mutex::new(None)),
            started: Instant::now(),
            started_at: chrono::Utc::now(),
            recorder: None,
            agent,
            remote,
        });
        self.authed.store(true, Ordering::Relaxed);
        Auth::Accept
    }
}
