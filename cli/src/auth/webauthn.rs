//! The CLI's half of a security-key ceremony, whichever way the key is reached.
//!
//! The wire protocol is `rampart_api::webauthn` (its module doc is the protocol):
//! the CLI starts a ceremony, then either
//! - **browser** (`--mfa webauthn`, `enroll --webauthn`, `keys add`): prints the
//!   page URL and the short code the page will show, opens a browser where one is
//!   available, and long-polls [`WAIT`] until the CA says how it ended; or
//! - **CTAP2** (`--mfa fido2`, `enroll --fido2`, `keys add --fido2`): starts with
//!   `direct: true`, hands the options to a key through [`crate::auth::fido2`], and posts
//!   the key's answer to [`FINISH`].
//!
//! Either way the answer is a [`CeremonyOutcome`]; refusals (denied, expired, a
//! failed check such as a cloned key) are API errors with stable codes, turned
//! into one clear line here. Nothing is saved locally until the CA has answered
//! `LoggedIn`/`Registered`, so Ctrl-C at any point leaves no half-written state
//! (the CA's request simply expires).

use std::time::Duration;

use rampart_api::webauthn::{
    CeremonyOutcome, CeremonyStarted, FinishRequest, LoginStartRequest, RegisterStartRequest,
    WaitRequest, WebauthnKey, FINISH, LOGIN_START, REGISTER_START, WAIT, WAIT_HOLD_SECS,
};
use rampart_api::{Client, ClientError, LoginResponse};

use crate::cli::MfaMethod;
use crate::error::CliError;

/// Extra time a long-poll may take beyond what the CA holds it for: a loaded CA
/// or a slow link must not turn a normal `Pending` into a transport error.
const WAIT_SLACK: Duration = Duration::from_secs(15);
/// After the request's own expiry, how long to keep asking (clock skew between
/// this machine and the CA) before saying it expired.
const EXPIRY_GRACE: chrono::Duration = chrono::Duration::seconds(30);

/// How the person reaches their key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A page the CA serves, in a browser; `true` opens one.
    Browser {
        /// Try to open a browser (else only print the URL).
        open: bool,
    },
    /// CTAP2 from this process (USB, or the test-only software token).
    Ctap2,
}

/// The way `--mfa` reaches a security key, or `None` for the other factors.
pub fn via_for(mfa: MfaMethod, no_browser: bool) -> Option<Via> {
    match mfa {
        MfaMethod::Webauthn => Some(Via::Browser { open: !no_browser }),
        MfaMethod::Fido2 => Some(Via::Ctap2),
        MfaMethod::Totp | MfaMethod::Oidc => None,
    }
}

/// What a registration produced.
#[derive(Debug)]
pub struct Registered {
    /// The user the key belongs to.
    pub user: String,
    /// The new key.
    pub key: WebauthnKey,
    /// Recovery codes (invite enrolments only; shown once).
    pub recovery_codes: Vec<rampart_api::WireSecret>,
}

/// Log `user` in with a security key.
pub fn login(client: &Client, user: &str, via: Via) -> Result<LoginResponse, CliError> {
    let direct = via == Via::Ctap2;
    let started: CeremonyStarted = client
        .post_json(
            LOGIN_START,
            &LoginStartRequest {
                user: user.to_owned(),
                direct,
            },
        )
        .map_err(refusal)?;
    let outcome = match via {
        Via::Browser { open } => {
            announce(&started, &format!("approve the login of {user}"), open);
            wait(client, &started)?
        }
        Via::Ctap2 => {
            eprintln!(
                "Logging in {user} with a security key (request {}).",
                started.short_code
            );
            let options = public_key(&started)?;
            let credential = crate::auth::fido2::authenticate(&started.url, options)?;
            finish(client, &started, credential)?
        }
    };
    match outcome {
        CeremonyOutcome::LoggedIn { login } => Ok(login),
        other => Err(unexpected(&other, "a login")),
    }
}

/// Enrol a key: from an invite when `client` has no session token, else for the
/// logged-in user (`client` carries the session), optionally replacing the key
/// with ID `replaces`.
pub fn register(
    client: &Client,
    invite: Option<&str>,
    name: &str,
    via: Via,
    replaces: Option<&str>,
) -> Result<Registered, CliError> {
    let direct = via == Via::Ctap2;
    let started: CeremonyStarted = client
        .post_json(
            REGISTER_START,
            &RegisterStartRequest {
                invite: invite.map(|i| i.trim().into()),
                name: name.to_owned(),
                direct,
                replaces: replaces.map(str::to_owned),
            },
        )
        .map_err(|e| match e {
            // Without an invite the start rides on the session: a 401 there
            // means the session is gone.
            ClientError::Api { status: 401, .. } if invite.is_none() => {
                CliError::from_session_call(e)
            }
            e => refusal(e),
        })?;
    let outcome = match via {
        Via::Browser { open } => {
            announce(&started, &format!("enrol the security key {name:?}"), open);
            wait(client, &started)?
        }
        Via::Ctap2 => {
            eprintln!(
                "Enrolling the security key {name:?} (request {}).",
                started.short_code
            );
            let options = public_key(&started)?;
            let credential = crate::auth::fido2::register(&started.url, options)?;
            finish(client, &started, credential)?
        }
    };
    match outcome {
        CeremonyOutcome::Registered {
            user,
            key,
            recovery_codes,
        } => Ok(Registered {
            user,
            key,
            recovery_codes,
        }),
        other => Err(unexpected(&other, "a key enrolment")),
    }
}

/// Tell the person where to go and what the page must show; open a browser.
fn announce(started: &CeremonyStarted, what: &str, open: bool) {
    eprintln!("To {what}, open this page in a browser:");
    eprintln!("  {}", started.url);
    eprintln!(
        "Type this code on the page before you touch your key: {}",
        started.short_code
    );
    eprintln!(
        "Waiting for the approval (until {}; Ctrl-C to give up)...",
        started.expires_at.to_rfc3339()
    );
    if open {
        crate::auth::oidc::try_open(&started.url);
    }
}

/// Long-poll [`WAIT`] until the ceremony ends.
fn wait(client: &Client, started: &CeremonyStarted) -> Result<CeremonyOutcome, CliError> {
    let req = WaitRequest {
        request_id: started.request_id.clone(),
        poll_token: started.poll_token.clone(),
    };
    let timeout = Duration::from_secs(WAIT_HOLD_SECS) + WAIT_SLACK;
    loop {
        let outcome: CeremonyOutcome = client
            .post_json_timeout(WAIT, &req, timeout)
            .map_err(refusal)?;
        match outcome {
            CeremonyOutcome::Pending { expires_at } => {
                if crate::clock::now() > expires_at + EXPIRY_GRACE {
                    return Err(expired());
                }
                // The CA held the call until it had news or its hold ran out; a
                // CA that answers at once (an old one, or a bug) must not be
                // hammered.
                std::thread::sleep(Duration::from_millis(500));
            }
            done => return Ok(done),
        }
    }
}

fn finish(
    client: &Client,
    started: &CeremonyStarted,
    credential: serde_json::Value,
) -> Result<CeremonyOutcome, CliError> {
    client
        .post_json(
            FINISH,
            &FinishRequest {
                request_id: started.request_id.clone(),
                poll_token: started.poll_token.clone(),
                credential,
            },
        )
        .map_err(refusal)
}

/// The `public_key` options a `direct` start must carry.
fn public_key(started: &CeremonyStarted) -> Result<serde_json::Value, CliError> {
    started.public_key.clone().ok_or_else(|| {
        CliError::Unreachable(
            "the CA started the ceremony without key options (is it older than this CLI?)"
                .to_owned(),
        )
    })
}

fn unexpected(outcome: &CeremonyOutcome, wanted: &str) -> CliError {
    let got = match outcome {
        CeremonyOutcome::Pending { .. } => "pending",
        CeremonyOutcome::LoggedIn { .. } => "logged_in",
        CeremonyOutcome::Registered { .. } => "registered",
        CeremonyOutcome::Approved { .. } => "approved",
    };
    CliError::Unreachable(format!(
        "unexpected answer from the CA: {got} where {wanted} was expected"
    ))
}

fn expired() -> CliError {
    CliError::Refused(
        "the request expired before it was approved; run the command again (webauthn_expired)"
            .to_owned(),
    )
}

/// An API refusal in words that say what to do, keeping the CA's code (scripts
/// and people searching the docs key on it). Other errors map as usual.
pub fn refusal(err: ClientError) -> CliError {
    // A refused factor is a 401 here (like a wrong TOTP code): it must not read
    // as "log in again", so no `from_session_call`.
    let ClientError::Api { code, message, .. } = &err else {
        return err.into();
    };
    match hint_for(code) {
        Some(h) => CliError::Refused(worded(h, message, code)),
        None => err.into(),
    }
}

/// `hint: message (code)`, or `message (code)` when the CA's message already
/// says what the hint would (the CA denies with "the request was denied in the
/// browser"): saying it twice reads as a glitch.
fn worded(hint: &str, message: &str, code: &str) -> String {
    let said = message
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .contains(&hint.to_ascii_lowercase());
    if said {
        format!("{message} ({code})")
    } else {
        format!("{hint}: {message} ({code})")
    }
}

/// What to do about a refusal, where the CA's own sentence does not say it.
/// Matched on parts of the code, so that `webauthn_request_expired` and a later
/// `approval_expired` read the same. Other codes (wrong origin, UV missing, a
/// replay, another user's key) are explained well enough by the CA's message.
fn hint_for(code: &str) -> Option<&'static str> {
    let c = code.to_ascii_lowercase();
    if c.contains("denied") {
        Some("the request was denied in the browser")
    } else if c.contains("expired") {
        Some("the request expired; run the command again")
    } else if c.contains("sign_count") || c.contains("clone") {
        Some("refused as a possibly cloned key (disabled now; ask an admin)")
    } else if c.contains("disabled") {
        Some("this security key is disabled; ask an admin")
    } else if c.contains("request_unknown") {
        // Open requests live in the CA's memory: a restart forgets them.
        Some("the CA no longer knows this request (it may have restarted); run the command again")
    } else if c.contains("no_keys") {
        Some("no usable security key: none is enrolled, or all are disabled")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> ClientError {
        ClientError::Api {
            status: 403,
            code: code.to_owned(),
            message: "refused".to_owned(),
        }
    }

    #[test]
    fn refusals_say_what_happened_and_keep_the_code() {
        let e = refusal(api("webauthn_denied"));
        assert_eq!(e.exit_code(), crate::error::EXIT_REFUSED);
        let s = e.to_string();
        assert!(s.starts_with("the request was denied"), "{s}");
        assert!(s.ends_with("(webauthn_denied)"), "{s}");

        let s = refusal(api("webauthn_expired")).to_string();
        assert!(s.contains("run the command again"), "{s}");
        let s = refusal(api("webauthn_sign_count")).to_string();
        assert!(s.contains("cloned"), "{s}");
        assert!(s.contains("(webauthn_sign_count)"), "{s}");
        // A refused factor (401) is not "log in again".
        let e = refusal(ClientError::Api {
            status: 401,
            code: "webauthn_wrong_origin".into(),
            message: "the browser answered for another web site".into(),
        });
        assert_eq!(e.exit_code(), crate::error::EXIT_REFUSED);
        assert!(e.to_string().ends_with("(webauthn_wrong_origin)"), "{e}");

        // Codes without a hint keep the standard wording.
        let s = refusal(api("not_admin")).to_string();
        assert_eq!(s, "refused (not_admin)");
        // Transport errors stay transport errors.
        let e = refusal(ClientError::Transport {
            url: "https://x".into(),
            detail: "refused".into(),
        });
        assert_eq!(e.exit_code(), crate::error::EXIT_UNREACHABLE);
    }

    /// The CA's own denial (`webauthn_page_deny`) already says "denied in the
    /// browser": the CLI says it once.
    #[test]
    fn a_denial_is_not_said_twice() {
        let e = refusal(ClientError::Api {
            status: 403,
            code: "webauthn_denied".into(),
            message: "the request was denied in the browser".into(),
        });
        assert_eq!(e.exit_code(), crate::error::EXIT_REFUSED);
        assert_eq!(
            e.to_string(),
            "the request was denied in the browser (webauthn_denied)"
        );
        // A message that says something else keeps the hint in front of it.
        assert_eq!(
            refusal(api("webauthn_denied")).to_string(),
            "the request was denied in the browser: refused (webauthn_denied)"
        );
    }

    #[test]
    fn codes_the_ca_explains_itself_get_no_hint() {
        assert_eq!(hint_for("refused"), None);
        assert_eq!(hint_for("webauthn_replayed"), None);
        assert!(hint_for("webauthn_no_keys").is_some());
        assert!(hint_for("webauthn_request_unknown")
            .is_some_and(|h| h.contains("run the command again")));
    }
}
