//! The Chromium harness itself, before any CA page is involved: real headless
//! Chromium, a page served by this test on `http://localhost` (a secure context), and
//! Chromium's virtual authenticator answering `navigator.credentials` over CTAP2.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use rampart_e2e::chromium::{AuthenticatorOptions, Chromium};
use serde_json::Value;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title></head>
<body>
<p id="status">idle</p>
<button id="go" onclick="document.getElementById('status').textContent = 'clicked'">Go</button>
</body></html>"#;

/// Serve `PAGE` for every request on 127.0.0.1 (one connection at a time, closed
/// after each answer) until the test process ends. Returns the port.
fn serve_page() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(match s.try_clone() {
                Ok(c) => c,
                Err(_) => continue,
            });
            // Read the request head; the page is the same for every path.
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
        }
    });
    port
}

/// `navigator.credentials.create` for RP `localhost`, resident key and user
/// verification required; resolves to the new credential's ID (base64url) and its
/// flags byte.
const CREATE: &str = r#"(async () => {
  const cred = await navigator.credentials.create({ publicKey: {
    rp: { id: "localhost", name: "harness" },
    user: { id: new TextEncoder().encode("user-1"), name: "alice", displayName: "Alice" },
    challenge: crypto.getRandomValues(new Uint8Array(32)),
    pubKeyCredParams: [{ type: "public-key", alg: -7 }],
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
    attestation: "direct",
    timeout: 20000,
  }});
  const authData = new Uint8Array(cred.response.getAuthenticatorData());
  return { id: cred.id, flags: authData[32] };
})()"#;

/// `navigator.credentials.get` for credential `id` (base64url) with user
/// verification `uv` (`required`/`discouraged`); resolves to the flags byte and the
/// sign count of the assertion.
fn get_js(uv: &str, id: &str) -> String {
    format!(
        r#"(async () => {{
  const b64 = "{id}".replace(/-/g, "+").replace(/_/g, "/");
  const raw = Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), c => c.charCodeAt(0));
  const a = await navigator.credentials.get({{ publicKey: {{
    rpId: "localhost",
    challenge: crypto.getRandomValues(new Uint8Array(32)),
    allowCredentials: [{{ type: "public-key", id: raw }}],
    userVerification: "{uv}",
    timeout: 5000,
  }}}});
  const d = new DataView(a.response.authenticatorData);
  return {{ id: a.id, flags: d.getUint8(32), signCount: d.getUint32(33) }};
}})()"#
    )
}

fn b64url_to_std(s: &str) -> String {
    let mut t: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while t.len() % 4 != 0 {
        t.push('=');
    }
    t
}

const FLAG_UP: u64 = 0x01;
const FLAG_UV: u64 = 0x04;

#[test]
fn virtual_authenticator_creates_and_asserts_a_credential_on_localhost() {
    let port = serve_page();
    let mut chromium = Chromium::start();
    let auth = chromium.enable_virtual_authenticator(AuthenticatorOptions::default());
    assert!(!auth.is_empty());
    assert!(
        chromium.credentials().is_empty(),
        "a new authenticator is empty"
    );

    let url = format!("http://localhost:{port}/");
    chromium.navigate(&url);
    assert_eq!(chromium.url(), url);
    assert_eq!(
        chromium.eval("window.isSecureContext"),
        Value::Bool(true),
        "http://localhost is a secure context"
    );

    // A real mouse click reaches the page's handler.
    chromium.click("#go");
    chromium.wait_for(
        "document.getElementById('status').textContent === 'clicked'",
        Duration::from_secs(10),
    );
    assert!(chromium.text().contains("clicked"));

    let created = chromium.eval(CREATE);
    let id = created["id"].as_str().expect("credential id").to_owned();
    let flags = created["flags"].as_u64().expect("flags");
    assert_eq!(
        flags & (FLAG_UP | FLAG_UV),
        FLAG_UP | FLAG_UV,
        "UP and UV set"
    );

    let creds = chromium.credentials();
    assert_eq!(creds.len(), 1, "one credential held: {creds:?}");
    let c = &creds[0];
    assert_eq!(c["rpId"], "localhost");
    assert_eq!(c["isResidentCredential"], true);
    assert_eq!(
        c["credentialId"].as_str().map(|s| s.trim_end_matches('=')),
        Some(b64url_to_std(&id).trim_end_matches('=')),
        "the page's credential is the one the authenticator holds"
    );

    // An assertion with UV; the authenticator's counter moves.
    let a = chromium.eval(&get_js("required", &id));
    assert_eq!(a["id"].as_str(), Some(id.as_str()));
    assert_eq!(a["flags"].as_u64().unwrap() & FLAG_UV, FLAG_UV);
    let count = a["signCount"].as_u64().unwrap();
    assert!(count >= 1, "sign count {count}");
    assert_eq!(chromium.credentials()[0]["signCount"].as_u64(), Some(count));

    // set_user_verified(false): the PIN now fails, so a get that asks for user
    // verification is refused in the browser; one that discourages it still gets a
    // presence-only assertion (UV = 0).
    chromium.set_user_verified(false);
    let err = chromium
        .try_eval(&get_js("required", &id))
        .expect_err("UV cannot succeed");
    assert!(err.contains("NotAllowedError"), "{err}");
    let a = chromium.eval(&get_js("discouraged", &id));
    assert_eq!(
        a["flags"].as_u64().unwrap() & (FLAG_UP | FLAG_UV),
        FLAG_UP,
        "{a}"
    );
}

#[test]
fn navigating_to_a_closed_port_is_an_error_not_a_hang() {
    let port = rampart_e2e::free_port();
    let mut chromium = Chromium::start();
    let err = chromium
        .try_navigate(&format!("http://localhost:{port}/"))
        .expect_err("nothing listens there");
    assert!(err.contains("ERR_CONNECTION_REFUSED"), "{err}");
}
