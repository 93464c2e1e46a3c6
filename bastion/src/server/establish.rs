//! A session's start, step by step: the session limits, a per-session key and
//! certificate from the CA (which may ask for per-session MFA first), the
//! dial to the target, and the `session_started` event the CA must
//! acknowledge before anything flows (fail closed).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rampart_api::user_proof::UserProof;
use rampart_api::{
    BastionEvent, BastionEventKind, ClientError, SessionCertRequest, SessionCertResponse,
};
use russh::keys::ssh_key::{Certificate, PrivateKey};
use russh::server::Auth;

use super::channels::TargetSession;
use super::conn::{Conn, Mode};
use super::events::{refuse_event, with_session};
use super::mfa::MfaProof;
use crate::audit::{detail, event};
use crate::auth::OuterUser;
use crate::bridge::{self, Traffic};
use crate::config::{Limits, Target};
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
    /// Start the session `plan` describes: check the limits, ask the CA for a
    /// per-session certificate, dial the target, audit the start, keep it.
    /// Whatever refuses it after the user is known lets the login through and
    /// answers the first session request with the reason (see the module
    /// documentation of `server`).
    pub(super) async fn establish(&mut self, plan: SessionPlan, proof: Option<MfaProof>) -> Auth {
        let (mine, total) = self.shared.count_sessions(&plan.user.name);
        let config = self.shared.config();
        if let Some(why) = session_limit(&plan.user.name, mine, total, &config.limits) {
            self.refuse(Some(&plan.user), &why);
            return self.accept_refused(why);
        }
        if !self.shared.auditor.accepting_sessions() {
            // Fail closed: the CA has not taken this bastion's events for a
            // while and the spool that keeps them is full.
            crate::metrics::start_refused_spool_full();
            let why = "the bastion cannot deliver audit events to the CA and its event spool is \
                       full; new sessions are refused until the CA takes them"
                .to_owned();
            self.refuse(Some(&plan.user), &why);
            return self.accept_refused(why);
        }
        let (key, public_key) = match session_key() {
            Ok(k) => k,
            Err(e) => return self.accept_refused(rampart_api::report::one_line(&e)),
        };
        let req = cert_request(
            &plan,
            public_key,
            self.peer,
            proof.as_ref(),
            self.user_proof.clone(),
        );
        let answer = self.shared.ca.session_cert(&req).await;
        let policy = match classify(answer, proof.as_ref()) {
            CertOutcome::Issued(policy) => policy,
            CertOutcome::NeedApproval => return self.start_approval(plan).await,
            CertOutcome::NeedTotp { retry } => return self.ask_mfa(plan, None, !retry),
            // The CA audited its decision already.
            CertOutcome::Denied(why) => return self.accept_refused(why),
            CertOutcome::Unreachable(why) => {
                self.refuse(Some(&plan.user), &why);
                return self.accept_refused(why);
            }
        };
        let dialed = match self.dial(&plan, key, &policy).await {
            Ok(d) => d,
            Err(e) => return self.accept_refused(rampart_api::report::one_line(&e)),
        };
        // Fail closed: no session unless its start is in the audit chain.
        let start = self.started_event(&plan, &policy, proof.as_ref());
        if let Err(e) = self.shared.auditor.record(vec![start]).await {
            let _ = dialed
                .client
                .disconnect(russh::Disconnect::ByApplication, "audit unavailable", "en")
                .await;
            return self.accept_refused(format!(
                "the session cannot be audited, so it is refused ({e})"
            ));
        }
        self.keep_session(plan, policy, dialed);
        self.authed.store(true, Ordering::Relaxed);
        Auth::Accept
    }

    /// Dial the target as the plan's login, with the session key and the
    /// CA's certificate. A target that cannot be reached is audited here; the
    /// reason comes back for the user either way.
    async fn dial(
        &self,
        plan: &SessionPlan,
        key: PrivateKey,
        policy: &SessionCertResponse,
    ) -> Result<Dialed, DialRefused> {
        let cert = Certificate::from_openssh(policy.certificate.certificate.trim())
            .map_err(DialRefused::UnreadableCertificate)?;
        let agent = bridge::AgentSlot::default();
        let remote = bridge::RemoteForwards::default();
        let revoked_keys = self
            .shared
            .revocations
            .read()
            .map_err(|_| DialRefused::RevocationsUnavailable)?
            .key_fingerprints
            .clone();
        let trust = bridge::HostTrust {
            host_ca: self.shared.ca_keys().host.clone(),
            revoked_keys,
            clock: self.shared.clock.clone(),
        };
        match bridge::connect(
            &plan.target,
            trust,
            &plan.login,
            key,
            cert,
            agent.clone(),
            remote.clone(),
        )
        .await
        {
            Ok(client) => Ok(Dialed {
                client,
                agent,
                remote,
            }),
            Err(e) => {
                let why = rampart_api::report::one_line(&e);
                let event =
                    refuse_event(self.peer, Some(&plan.user), &why, self.shared.clock.now());
                self.shared
                    .auditor
                    .enqueue(with_session(event, plan, self.peer));
                Err(e.into())
            }
        }
    }

    /// The `session_started` event: the session's fields, how it came
    /// (ProxyJump or the direct form) and the per-session MFA it passed.
    fn started_event(
        &self,
        plan: &SessionPlan,
        policy: &SessionCertResponse,
        proof: Option<&MfaProof>,
    ) -> BastionEvent {
        let start = with_session(
            event(
                BastionEventKind::SessionStarted,
                true,
                self.shared.clock.now(),
            ),
            plan,
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
            policy.session_mfa,
        );
        match proof {
            Some(p) => detail(start, "session_mfa_method", p.method().as_str()),
            None => start,
        }
    }

    /// Keep the started session on this connection, with its recording
    /// marker and counters. It enters the registry once authentication has
    /// succeeded (`Conn::register`).
    fn keep_session(&mut self, plan: SessionPlan, policy: SessionCertResponse, dialed: Dialed) {
        let traffic = Arc::new(Traffic::default());
        traffic.touch();
        let config = self.shared.config();
        recording::write_marker(
            &config.recording_dir,
            &recording::Marker {
                session_id: plan.id.clone(),
                user: plan.user.name.clone(),
                login: plan.login.clone(),
                target: plan.target.name.clone(),
                source: self.peer.ip().to_string(),
                serial: plan.user.serial,
            },
        );
        self.session = Some(TargetSession {
            plan,
            client: dialed.client,
            policy,
            traffic,
            channels: Arc::new(Mutex::new(Vec::new())),
            end_reason: Arc::new(Mutex::new(None)),
            started: Instant::now(),
            started_at: self.shared.clock.now(),
            recorder: None,
            agent: dialed.agent,
            remote: dialed.remote,
            config,
        });
    }
}

/// The session's connection to its target.
struct Dialed {
    client: russh::client::Handle<bridge::TargetClient>,
    /// Agent channels from the target go here once allowed.
    agent: bridge::AgentSlot,
    /// Remote forwards granted in the session.
    remote: bridge::RemoteForwards,
}

/// Why a session's leg to its target was not opened.
#[derive(Debug, thiserror::Error)]
enum DialRefused {
    /// The certificate the CA issued for the session does not parse.
    #[error("the CA's session certificate is unreadable")]
    UnreadableCertificate(#[source] russh::keys::ssh_key::Error),
    /// The revocation state's lock was poisoned.
    #[error("revocation state unavailable")]
    RevocationsUnavailable,
    /// The target could not be reached, refused its host key check or the login.
    #[error(transparent)]
    Target(#[from] bridge::DialError),
}

/// The session's key could not be made or encoded (never expected).
#[derive(Debug, thiserror::Error)]
enum SessionKeyError {
    /// Generating the key failed.
    #[error("internal error")]
    Generate(#[source] crate::BastionError),
    /// Encoding its public half failed.
    #[error("internal error")]
    Encode(#[source] russh::keys::ssh_key::Error),
}

/// Why one more session for `user` would break the limits, when it would:
/// `mine` of the user's sessions and `total` sessions are live.
fn session_limit(user: &str, mine: usize, total: usize, limits: &Limits) -> Option<String> {
    if mine >= limits.max_sessions_per_user {
        Some(format!(
            "too many sessions for {} (limit {})",
            user, limits.max_sessions_per_user
        ))
    } else if total >= limits.max_sessions {
        Some(format!(
            "the bastion is at its session limit ({})",
            limits.max_sessions
        ))
    } else {
        None
    }
}

/// A fresh key for the session's leg to the target, and its public half in
/// OpenSSH form for the CA.
fn session_key() -> Result<(PrivateKey, String), SessionKeyError> {
    let key = crate::join::generate_ed25519().map_err(SessionKeyError::Generate)?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(SessionKeyError::Encode)?;
    Ok((key, public))
}

/// The request for the session's certificate, with the MFA the user gave
/// and the connection's proof that the user logged in to it.
fn cert_request(
    plan: &SessionPlan,
    public_key: String,
    peer: SocketAddr,
    proof: Option<&MfaProof>,
    user_proof: Option<UserProof>,
) -> SessionCertRequest {
    SessionCertRequest {
        user_certificate: plan.user.cert_line.clone(),
        login: plan.login.clone(),
        target: plan.target.name.clone(),
        target_labels: plan.target.labels.clone(),
        session_id: plan.id.clone(),
        public_key,
        source: Some(peer.ip().to_string()),
        totp_code: match proof {
            Some(MfaProof::Totp(code)) => Some(code.clone().into()),
            _ => None,
        },
        webauthn_approval: match proof {
            Some(MfaProof::Approval(a)) => Some(a.clone()),
            _ => None,
        },
        user_proof,
    }
}

/// What the CA's answer to a session-certificate request means for the
/// session.
#[derive(Debug, PartialEq, Eq)]
enum CertOutcome {
    /// The certificate, and the policy decision behind it.
    Issued(SessionCertResponse),
    /// The CA wants a security-key approval first.
    NeedApproval,
    /// The CA wants a TOTP code: asked for the first time, or again
    /// (`retry`) because the one sent was wrong or replayed.
    NeedTotp { retry: bool },
    /// The CA refused the session (and audited that); the reason for the user.
    Denied(String),
    /// The CA could not be asked; the reason for the user and the audit.
    Unreachable(String),
}

/// Classify the CA's answer, given the MFA the request carried: the CA asks
/// for a security-key approval only when none was tried, and for a code
/// unless an approval was just given.
fn classify(
    answer: Result<SessionCertResponse, ClientError>,
    proof: Option<&MfaProof>,
) -> CertOutcome {
    let totp = matches!(proof, Some(MfaProof::Totp(_)));
    match answer {
        Ok(r) => CertOutcome::Issued(r),
        Err(ClientError::Api { code, .. })
            if code == rampart_api::ErrorCode::SessionApprovalRequired && proof.is_none() =>
        {
            CertOutcome::NeedApproval
        }
        Err(ClientError::Api { code, message, .. })
            if code == rampart_api::ErrorCode::SessionMfaRequired
                && !matches!(proof, Some(MfaProof::Approval(_))) =>
        {
            if totp {
                // A code was sent and the CA still wants one: wrong or replayed.
                tracing::info!("per-session code refused: {message}");
            }
            CertOutcome::NeedTotp { retry: totp }
        }
        Err(ClientError::Api { code, message, .. }) if totp && code.starts_with("totp") => {
            tracing::info!("per-session code refused ({code}): {message}");
            CertOutcome::NeedTotp { retry: true }
        }
        Err(ClientError::Api { message, .. }) => {
            CertOutcome::Denied(format!("access denied: {message}"))
        }
        Err(e) => CertOutcome::Unreachable(format!(
            "the CA cannot be reached to authorise this session ({e})"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rampart_api::{webauthn, CertResponse};

    fn limits() -> Limits {
        Limits {
            max_sessions_per_user: 2,
            max_sessions: 5,
            ..Limits::default()
        }
    }

    #[test]
    fn session_limits_per_user_first_then_the_whole_bastion() {
        let l = limits();
        assert_eq!(session_limit("alice", 0, 0, &l), None);
        assert_eq!(session_limit("alice", 1, 4, &l), None);
        assert_eq!(
            session_limit("alice", 2, 2, &l).as_deref(),
            Some("too many sessions for alice (limit 2)")
        );
        assert_eq!(
            session_limit("alice", 1, 5, &l).as_deref(),
            Some("the bastion is at its session limit (5)")
        );
        // Both reached: the user's own limit is the reason given.
        assert_eq!(
            session_limit("alice", 3, 9, &l).as_deref(),
            Some("too many sessions for alice (limit 2)")
        );
        // The registry could not be counted (usize::MAX): refused.
        assert!(session_limit("alice", usize::MAX, usize::MAX, &l).is_some());
    }

    fn issued() -> SessionCertResponse {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        SessionCertResponse {
            certificate: CertResponse {
                certificate: "ssh-ed25519-cert-v01@openssh.com AAAA".into(),
                serial: 7,
                key_id: "session".into(),
                principals: vec!["root".into()],
                valid_after: at,
                valid_before: at,
            },
            user: "alice".into(),
            roles: vec!["ops".into()],
            session_mfa: false,
            record_input: false,
            record_metered_mib: None,
            port_forwarding: false,
            agent_forwarding: false,
        }
    }

    fn api(code: &str) -> Result<SessionCertResponse, ClientError> {
        Err(ClientError::Api {
            status: 403,
            code: code.into(),
            message: "no".into(),
        })
    }

    fn totp() -> MfaProof {
        MfaProof::Totp("123456".into())
    }

    fn approval() -> MfaProof {
        MfaProof::Approval(webauthn::WaitRequest {
            request_id: "r".into(),
            poll_token: "t".into(),
        })
    }

    #[test]
    fn the_cas_answer_is_classified_by_code_and_the_mfa_already_given() {
        use CertOutcome::*;
        let approval_required = rampart_api::ErrorCode::SessionApprovalRequired.as_str();
        let mfa_required = rampart_api::ErrorCode::SessionMfaRequired.as_str();
        assert_eq!(classify(Ok(issued()), None), Issued(issued()));
        assert_eq!(classify(Ok(issued()), Some(&totp())), Issued(issued()));

        // A security-key approval is started only when no MFA was tried yet.
        assert_eq!(classify(api(approval_required), None), NeedApproval);
        let denied = Denied("access denied: no".into());
        assert_eq!(classify(api(approval_required), Some(&totp())), denied);
        assert_eq!(classify(api(approval_required), Some(&approval())), denied);

        // A code is asked for, again when one was sent, never after an approval.
        let first = NeedTotp { retry: false };
        assert_eq!(classify(api(mfa_required), None), first);
        let again = NeedTotp { retry: true };
        assert_eq!(classify(api(mfa_required), Some(&totp())), again);
        assert_eq!(classify(api(mfa_required), Some(&approval())), denied);

        // A code the CA refused (totp_*) is asked for again; without a code
        // such an answer is a refusal.
        assert_eq!(classify(api("totp_replayed"), Some(&totp())), again);
        assert_eq!(classify(api("totp_replayed"), None), denied);
        assert_eq!(classify(api("policy_denied"), Some(&totp())), denied);

        let transport = Err(ClientError::Transport {
            url: "https://ca:8443".into(),
            detail: "connection refused".into(),
        });
        assert_eq!(
            classify(transport, None),
            Unreachable(
                "the CA cannot be reached to authorise this session \
                 (cannot reach the CA at https://ca:8443: connection refused)"
                    .into()
            )
        );
    }
}
