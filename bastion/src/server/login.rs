//! Logging in: the user certificate on the outer connection (or the inner
//! session of a ProxyJump), which names the target or not, and the
//! keyboard-interactive rounds, which either explain a refusal or ask for
//! per-session MFA.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use rampart_api::webauthn;
use russh::keys::ssh_key::Certificate;
use russh::server::{self, Auth};

use super::conn::{split_direct, Conn, InnerOf, Mode};
use super::establish::SessionPlan;
use super::events::refuse_event;
use super::mfa::MfaProof;

impl Conn {
    /// A user certificate offered for `user` (the SSH user name): checked, then
    /// the session started at once when the target is known (ProxyJump inner
    /// session, or `login+target`); a plain outer login waits for a
    /// `direct-tcpip` channel to name it.
    pub(super) async fn certificate_login(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Auth {
        let outer = match self.shared.check_cert(certificate, self.peer.ip()) {
            Ok(u) => u,
            Err(refused) => {
                let why = rampart_api::report::one_line(&refused);
                let mut e = refuse_event(self.peer, None, &why, self.shared.clock.now());
                e.user = crate::auth::key_id_user(certificate.key_id()).map(str::to_owned);
                e.serial = Some(certificate.serial());
                self.shared.auditor.enqueue(e);
                self.certificate_refusal = Some(why);
                return Auth::reject();
            }
        };
        match self.mode.clone() {
            Mode::Inner(i) => {
                let InnerOf {
                    target, outer_user, ..
                } = *i;
                if outer.key_fingerprint != outer_user.key_fingerprint
                    || outer.name != outer_user.name
                {
                    self.refuse(
                        Some(&outer),
                        "inner session authenticated with another key than the outer connection",
                    );
                    return Auth::reject();
                }
                self.user = Some(outer.clone());
                let plan = SessionPlan {
                    id: ulid::Ulid::new().to_string(),
                    user: outer,
                    login: user.to_owned(),
                    target,
                };
                self.establish(plan, None).await
            }
            Mode::Outer => {
                self.user = Some(outer.clone());
                if let Some((login, target)) = split_direct(user) {
                    let Some(t) = self.shared.config().targets.get(target).cloned() else {
                        let why = format!("unknown target {target:?}");
                        let mut e =
                            refuse_event(self.peer, Some(&outer), &why, self.shared.clock.now());
                        e.target = Some(target.chars().take(256).collect());
                        e.login = Some(login.chars().take(256).collect());
                        self.shared.auditor.enqueue(e);
                        return self.accept_refused(why);
                    };
                    let plan = SessionPlan {
                        id: ulid::Ulid::new().to_string(),
                        user: outer,
                        login: login.to_owned(),
                        target: t,
                    };
                    self.establish(plan, None).await
                } else {
                    self.authed.store(true, Ordering::Relaxed);
                    Auth::Accept
                }
            }
        }
    }

    /// A keyboard-interactive round: with no per-session MFA pending, it only
    /// explains a refusal; else it prompts (a TOTP code, or a security-key
    /// approval's URL and code), then tries the session again with the answer.
    pub(super) async fn keyboard_interactive(
        &mut self,
        user: &str,
        response: Option<server::Response<'_>>,
    ) -> Auth {
        let Some(p) = &self.mfa else {
            return self.explain_refusal(user);
        };
        match response {
            None if p.approval.is_some() => {
                let (url, code) = p
                    .approval
                    .as_ref()
                    .map(|a| (a.url.clone(), a.short_code.clone()))
                    .unwrap_or_default();
                // ASCII only: OpenSSH shows a server's instructions through its
                // log, which escapes other bytes.
                Auth::Partial {
                    name: Cow::Borrowed("Rampart"),
                    instructions: Cow::Owned(format!(
                        "This session to {}@{} needs your security key.",
                        p.plan.login, p.plan.target.name
                    )),
                    prompts: Cow::Owned(vec![(
                        Cow::Owned(format!(
                            "Approve at {url} (type the code {code} there), then press Enter: "
                        )),
                        true,
                    )]),
                }
            }
            None => Auth::Partial {
                name: Cow::Borrowed("Rampart"),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(
                    Cow::Owned(format!(
                        "Rampart per-session code for {}@{}: ",
                        p.plan.login, p.plan.target.name
                    )),
                    false,
                )]),
            },
            Some(mut r) => {
                let code = r
                    .next()
                    .map(|b| {
                        String::from_utf8_lossy(&b)
                            .trim()
                            .chars()
                            .take(16)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let Some(p) = self.mfa.take() else {
                    return Auth::reject();
                };
                if let Some(a) = p.approval {
                    let wait = webauthn::WaitRequest {
                        request_id: a.request_id,
                        poll_token: a.poll_token,
                    };
                    let refused = self.await_approval(&wait, a.expires_at).await;
                    let auth = self.establish(p.plan, Some(MfaProof::Approval(wait))).await;
                    // The CA refused the session; its approval's own refusal
                    // (denied, expired) says best why.
                    if let (Some(why), Some(_)) = (refused, &self.refusal) {
                        self.refusal = Some(format!("access denied: {why}"));
                    }
                    return auth;
                }
                self.establish(p.plan, Some(MfaProof::Totp(code))).await
            }
        }
    }
}
