//! `rampart login --mfa oidc`: the browser half of an OIDC login.
//!
//! The CLI listens on a loopback port (RFC 8252 §7.3), asks the CA to start a
//! login with that redirect URI, opens the provider's authorisation URL in a
//! browser (or prints it), receives the code on the listener and hands
//! `{state, code}` to the CA. The CA holds the client secret, the nonce and the
//! PKCE verifier; the CLI only checks that the `state` it receives is the one the
//! CA gave it, so another page cannot feed it a code. If the CA answers that the
//! user's roles need a stronger or fresher authentication, the CLI says why and
//! repeats with the new URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rampart_api::oidc::{
    OidcDevicePollRequest, OidcDevicePollResponse, OidcDeviceStartRequest, OidcDeviceStartResponse,
    OidcFinishRequest, OidcFinishResponse, OidcPendingRequest, OidcPendingResponse,
    OidcStartRequest, OidcStartResponse, DEVICE_POLL, DEVICE_START, FINISH, PENDING, START,
};
use rampart_api::{Client, ClientError, LoginResponse};

use crate::error::CliError;

/// How long to wait for the browser (the CA's login state lasts 10 minutes).
const WAIT: Duration = Duration::from_secs(10 * 60);
/// How often the CLI asks the CA, while it waits for the browser, whether the
/// login can still finish (the provider may go away meanwhile).
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Step-ups before giving up (each one is a full login at the provider).
const MAX_STEP_UPS: usize = 3;
/// Longest request line read from the browser.
const MAX_LINE: usize = 8 * 1024;

/// The CA's answer to an OIDC call, with a way forward when the provider is
/// down: another factor the user's roles may accept.
fn oidc_answer<T>(answer: Result<T, ClientError>) -> Result<T, CliError> {
    answer.map_err(|e| match &e {
        ClientError::Api { code, message, .. }
            if *code == rampart_api::ErrorCode::OidcProviderUnavailable =>
        {
            CliError::Refused(format!(
                "{message} ({code}); if your roles allow another factor, log in with it \
                 (`rampart login --mfa totp` or `--mfa webauthn`)"
            ))
        }
        _ => e.into(),
    })
}

/// Log in through `provider`; `user`, if known, lets the CA ask up front for
/// what the user's roles need. An `invite` (`rampart enroll --oidc`) links the
/// provider account to the invite's user if no user holds it yet.
pub fn login(
    client: &Client,
    provider: &str,
    user: Option<&str>,
    invite: Option<&str>,
    open_browser: bool,
) -> Result<LoginResponse, CliError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1 for the redirect: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| anyhow::anyhow!("listener address: {e}"))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let started: OidcStartResponse = oidc_answer(client.post_json(
        START,
        &OidcStartRequest {
            provider: provider.to_owned(),
            redirect_uri,
            user: user.map(str::to_owned),
        },
    ))?;
    let (mut state, mut url) = (started.state, started.authorize_url);
    for _ in 0..=MAX_STEP_UPS {
        eprintln!("Log in at {provider} in your browser:\n  {url}");
        if open_browser {
            try_open(&url);
        }
        let still_pending = || -> Result<(), CliError> {
            let _: OidcPendingResponse = oidc_answer(client.post_json(
                PENDING,
                &OidcPendingRequest {
                    state: state.clone(),
                },
            ))?;
            Ok(())
        };
        let code = wait_for_code(&listener, state.expose(), still_pending)?;
        let answer: OidcFinishResponse = oidc_answer(client.post_json(
            FINISH,
            &OidcFinishRequest {
                state: state.clone(),
                code: code.into(),
                // Sent again after a step-up: by then the account is linked,
                // and the CA leaves the (spent) invite alone.
                invite: invite.map(Into::into),
            },
        ))?;
        match answer {
            OidcFinishResponse::LoggedIn { login } => return Ok(login),
            OidcFinishResponse::StepUpRequired {
                code,
                reason,
                state: s,
                authorize_url,
            } => {
                eprintln!("Step-up needed ({code}): {reason}");
                state = s;
                url = authorize_url;
            }
        }
    }
    Err(CliError::Refused(format!(
        "the provider's login did not satisfy the policy after {MAX_STEP_UPS} step-ups"
    )))
}

/// `rampart login --mfa oidc --device`: the device authorisation grant (RFC
/// 8628) for a terminal without a browser. The CA talks to the provider; the CLI
/// shows the code and polls the CA at the provider's interval. `invite` as for
/// [`login`].
pub fn device_login(
    client: &Client,
    provider: &str,
    invite: Option<&str>,
) -> Result<LoginResponse, CliError> {
    let d: OidcDeviceStartResponse = oidc_answer(client.post_json(
        DEVICE_START,
        &OidcDeviceStartRequest {
            provider: provider.to_owned(),
        },
    ))?;
    eprintln!("On a device with a browser, open\n  {}", d.verification_uri);
    eprintln!("and enter the code: {}", d.user_code);
    if let Some(c) = &d.verification_uri_complete {
        eprintln!("(or open {c})");
    }
    let interval = Duration::from_secs(d.interval_seconds.clamp(1, 60));
    loop {
        let answer: OidcDevicePollResponse = oidc_answer(client.post_json(
            DEVICE_POLL,
            &OidcDevicePollRequest {
                handle: d.handle.clone(),
                invite: invite.map(Into::into),
            },
        ))?;
        match answer {
            OidcDevicePollResponse::LoggedIn { login } => return Ok(login),
            OidcDevicePollResponse::Pending => std::thread::sleep(interval),
        }
    }
}

/// Open `url` with `$BROWSER` (else `xdg-open`); an empty `$BROWSER` opens
/// nothing. A failure only prints a hint: the URL is always printed as well.
pub fn try_open(url: &str) {
    let opener = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".to_owned());
    if opener.is_empty() {
        return;
    }
    if std::process::Command::new(&opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_err()
    {
        eprintln!("(could not start {opener}; open the URL yourself)");
    }
}

/// Accept connections until one brings `?code=…&state=<ours>` (or an error
/// from the provider), answering each with a short page. Every
/// [`CHECK_EVERY`], `still_pending` asks the CA whether the login can still
/// finish; its error ends the wait.
fn wait_for_code(
    listener: &TcpListener,
    state: &str,
    still_pending: impl Fn() -> Result<(), CliError>,
) -> Result<String, CliError> {
    let deadline = Instant::now() + WAIT;
    let mut next_check = Instant::now() + CHECK_EVERY;
    listener
        .set_nonblocking(true)
        .map_err(|e| anyhow::anyhow!("listener: {e}"))?;
    loop {
        if Instant::now() > deadline {
            return Err(CliError::Refused(
                "no answer from the browser within 10 minutes".to_owned(),
            ));
        }
        if Instant::now() >= next_check {
            still_pending()?;
            next_check = Instant::now() + CHECK_EVERY;
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(anyhow::anyhow!("accept: {e}").into()),
        };
        match handle(stream, state) {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn handle(mut stream: TcpStream, state: &str) -> Result<Option<String>, CliError> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    if BufReader::new((&stream).take(MAX_LINE as u64))
        .read_line(&mut line)
        .is_err()
    {
        return Ok(None);
    }
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let Some(query) = target.strip_prefix("/callback?") else {
        respond(&mut stream, "404 Not Found", "Not the Rampart callback.");
        return Ok(None);
    };
    let params = parse_query(query);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("state").as_deref() != Some(state) {
        respond(
            &mut stream,
            "400 Bad Request",
            "This is not the login rampart started.",
        );
        return Ok(None);
    }
    if let Some(err) = get("error") {
        respond(
            &mut stream,
            "200 OK",
            "The provider refused the login; see the terminal.",
        );
        let detail = get("error_description").unwrap_or_default();
        return Err(CliError::Refused(format!(
            "the identity provider answered {err} {detail}"
        )));
    }
    match get("code") {
        Some(code) if !code.is_empty() => {
            respond(
                &mut stream,
                "200 OK",
                "Rampart received the login. You can close this window.",
            );
            Ok(Some(code))
        }
        _ => {
            respond(&mut stream, "400 Bad Request", "No code in the redirect.");
            Ok(None)
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><title>Rampart</title><p>{text}</p>\n");
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let p = parse_query("code=a%2Fb+c&state=x%3D&bad=%zz&empty");
        assert_eq!(
            p,
            vec![
                ("code".into(), "a/b c".into()),
                ("state".into(), "x=".into()),
                ("bad".into(), "%zz".into()),
                ("empty".into(), "".into()),
            ]
        );
    }
}
