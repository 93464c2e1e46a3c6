//! Real headless Chromium (Debian's `chromium`), driven over the DevTools protocol
//! (CDP), with a virtual WebAuthn authenticator: the browser half of the security-key
//! tests.
//!
//! It owns starting the browser in a fresh `--user-data-dir` with
//! `--remote-debugging-port=0` (the chosen port is read back from
//! `DevToolsActivePort`, so two tests never race for a port), a small synchronous
//! CDP client over one websocket to the page target (commands answered by `id`,
//! events kept for inspection), the `WebAuthn` domain's virtual authenticator, and
//! killing the whole browser process group on `Drop`.
//!
//! It must never stand in for the browser: the pages, `navigator.credentials` and the
//! authenticator's CTAP2 answers are Chromium's own. A missing `chromium` panics
//! ([`crate::require_peer`]), so no test passes without it.
//!
//! TLS: the CA serves HTTPS with a self-signed certificate, and WebAuthn only runs in a
//! secure context on a page without certificate errors. [`ChromiumOptions::trusting_ca`]
//! makes Chromium accept exactly that certificate's key
//! (`--ignore-certificate-errors-spki-list`), not every certificate.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tungstenite::{Message, WebSocket};

use crate::process::describe;
use crate::{require_peer, tempdir};

/// How long one CDP command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long Chromium may take to start and write `DevToolsActivePort` (a loaded
/// 2-core machine has been seen to need several seconds).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How Chromium is started.
#[derive(Debug, Clone, Default)]
pub struct ChromiumOptions {
    /// Base64 SHA-256 hashes of SubjectPublicKeyInfos whose certificates Chromium
    /// accepts despite errors (`--ignore-certificate-errors-spki-list`).
    pub trusted_spki: Vec<String>,
    /// `--ignore-certificate-errors`: accept every certificate. Only a fallback; the
    /// tests use [`ChromiumOptions::trusted_spki`].
    pub ignore_all_certificate_errors: bool,
}

impl ChromiumOptions {
    /// Trust the TLS certificate of this CA (and nothing else that is not already
    /// trusted).
    pub fn trusting_ca(ca: &crate::Ca) -> ChromiumOptions {
        ChromiumOptions {
            trusted_spki: vec![spki_sha256_base64(&ca_tls_cert(ca))],
            ignore_all_certificate_errors: false,
        }
    }
}

/// The CA's TLS certificate file: `[tls] cert` of its config (relative to the CA's
/// directory), `tls/cert.pem` by default.
pub fn ca_tls_cert(ca: &crate::Ca) -> PathBuf {
    let text = fs::read_to_string(ca.config_path()).expect("read config.toml");
    let table: toml::Table = text.parse().expect("config.toml is TOML");
    let rel = table
        .get("tls")
        .and_then(|t| t.get("cert"))
        .and_then(toml::Value::as_str)
        .unwrap_or("tls/cert.pem");
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        ca.dir().join(p)
    }
}

/// `base64(sha256(SubjectPublicKeyInfo DER))` of the first certificate in a PEM file:
/// the form `--ignore-certificate-errors-spki-list` takes.
pub fn spki_sha256_base64(cert_pem: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(cert_pem)
        .unwrap_or_else(|e| panic!("read a PEM certificate from {}: {e}", cert_pem.display()));
    let spki = certificate_spki(&der)
        .unwrap_or_else(|| panic!("no SubjectPublicKeyInfo in {}", cert_pem.display()));
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki))
}

/// The SubjectPublicKeyInfo TLV of an X.509 certificate (RFC 5280 §4.1):
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, … } … }`.
///
/// A few lines of DER walking instead of an X.509 crate: the harness needs this one
/// field, of certificates the CA under test wrote.
fn certificate_spki(cert: &[u8]) -> Option<&[u8]> {
    let (_, cert_body, _) = der_tlv(cert)?;
    let (_, tbs, _) = der_tlv(cert_body)?;
    let mut rest = tbs;
    // An explicit version is context tag [0], constructed.
    if rest.first() == Some(&0xa0) {
        rest = der_tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = der_tlv(rest)?.2;
    }
    let (whole, _, _) = der_tlv(rest)?;
    Some(whole)
}

/// One DER TLV at the start of `input`: (the whole TLV, its contents, what follows).
fn der_tlv(input: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (&_tag, after_tag) = input.split_first()?;
    let (&first, after_len) = after_tag.split_first()?;
    let (len, header_len, body) = if first < 0x80 {
        (usize::from(first), 2, after_len)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len_bytes = after_len.get(..n)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n, after_len.get(n..)?)
    };
    let contents = body.get(..len)?;
    let whole = input.get(..header_len + len)?;
    Some((whole, contents, body.get(len..)?))
}

/// `WebAuthn.addVirtualAuthenticator` options (CTAP2 over USB; the booleans are the
/// protocol's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatorOptions {
    /// Can hold discoverable (resident) credentials.
    pub has_resident_key: bool,
    /// Supports user verification (a PIN or biometric).
    pub has_user_verification: bool,
    /// Whether user verification succeeds.
    pub is_user_verified: bool,
    /// Touches happen by themselves (no prompt to answer).
    pub automatic_presence_simulation: bool,
}

impl Default for AuthenticatorOptions {
    /// A security key with a PIN that the user enters correctly and touches.
    fn default() -> Self {
        AuthenticatorOptions {
            has_resident_key: true,
            has_user_verification: true,
            is_user_verified: true,
            automatic_presence_simulation: true,
        }
    }
}

/// One headless Chromium with one page, driven over CDP. Killed (with every process
/// it started) on drop; its profile directory removed.
pub struct Chromium {
    // Field order matters on drop: the socket first, then the profile directory
    // (after `Drop::drop` has killed the browser).
    ws: WebSocket<TcpStream>,
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: PathBuf,
    next_id: u64,
    events: Vec<Value>,
    console: Vec<String>,
    authenticator: Option<String>,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("dir", &self.dir.path())
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("authenticator", &self.authenticator)
            .finish_non_exhaustive()
    }
}

impl Chromium {
    /// Start Chromium trusting no extra certificate.
    pub fn start() -> Chromium {
        Self::start_with(&ChromiumOptions::default())
    }

    /// Start headless Chromium with `opts`, on `about:blank`, and connect to its page.
    pub fn start_with(opts: &ChromiumOptions) -> Chromium {
        let program = require_peer("chromium");
        let dir = tempdir("chromium");
        let profile = dir.path().join("profile");
        fs::create_dir_all(&profile).expect("create the profile directory");
        let log = dir.path().join("chromium.log");
        let mut c = Command::new(program);
        // The flags the machine notes list as working headless as root; without the
        // background-networking ones Chromium keeps dialling Google on a closed network.
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--password-store=basic",
            "--mute-audio",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
        if !opts.trusted_spki.is_empty() {
            c.arg(format!(
                "--ignore-certificate-errors-spki-list={}",
                opts.trusted_spki.join(",")
            ));
        }
        if opts.ignore_all_certificate_errors {
            c.arg("--ignore-certificate-errors");
        }
        c.arg("about:blank")
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("create chromium.log"))
            .stderr(
                File::options()
                    .append(true)
                    .open(&log)
                    .expect("open chromium.log"),
            )
            // Its own process group, so that Drop can end the renderer, GPU and
            // utility processes with the browser.
            .process_group(0);
        let desc = describe(&c);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));

        let port = match wait_devtools_port(&profile, &mut child) {
            Ok(p) => p,
            Err(why) => {
                kill_group(&mut child);
                panic!(
                    "chromium did not open its DevTools port: {why}\n`{desc}`\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let ws_url = match page_websocket(port) {
            Ok(u) => u,
            Err(why) => {
                kill_group(&mut child);
                panic!("chromium has no page target: {why}");
            }
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        let _ = stream.set_nodelay(true);
        // Chromium checks the Origin header of DevTools websockets; tungstenite's
        // client sends none, which Chromium accepts.
        let (ws, _) = match tungstenite::client::client(ws_url.as_str(), stream) {
            Ok(x) => x,
            Err(e) => {
                kill_group(&mut child);
                panic!("websocket handshake with {ws_url}: {e}");
            }
        };
        let mut chromium = Chromium {
            ws,
            child: Some(child),
            dir,
            log,
            next_id: 0,
            events: Vec::new(),
            console: Vec::new(),
            authenticator: None,
        };
        chromium.cdp("Page.enable", json!({}));
        chromium.cdp("Runtime.enable", json!({}));
        chromium
    }

    /// Send one CDP command to the page and wait for its answer; panics on a protocol
    /// error.
    pub fn cdp(&mut self, method: &str, params: Value) -> Value {
        self.try_cdp(method, params)
            .unwrap_or_else(|e| panic!("CDP {method} failed: {e}"))
    }

    /// Send one CDP command and wait for its answer; a protocol error (the command's
    /// `error` member) is returned. Events that arrive meanwhile are kept.
    pub fn try_cdp(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(Message::text(msg))
            .unwrap_or_else(|e| panic!("send CDP {method}: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let Some(v) = self.read_message(deadline) else {
                panic!("CDP {method}: no answer within {COMMAND_TIMEOUT:?}");
            };
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(err.to_string());
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    }

    /// Read one message (an event is also recorded) or `None` at `deadline`.
    fn read_message(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let _ = self.ws.get_ref().set_read_timeout(Some(wait));
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("CDP sent non-JSON ({e}): {t}"));
                    if v.get("method").is_some() {
                        self.record_event(&v);
                    }
                    return Some(v);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!(
                    "DevTools connection lost ({e}); chromium log:\n{}",
                    self.log()
                ),
            }
        }
    }

    fn record_event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = v["params"]["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                x.get("value")
                                    .map(|v| {
                                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                                    })
                                    .or_else(|| x["description"].as_str().map(str::to_owned))
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.console.push(format!(
                    "console.{}: {}",
                    v["params"]["type"].as_str().unwrap_or("log"),
                    args.join(" ")
                ));
            }
            Some("Runtime.exceptionThrown") => {
                let d = &v["params"]["exceptionDetails"];
                self.console.push(format!(
                    "uncaught: {}",
                    d["exception"]["description"]
                        .as_str()
                        .or_else(|| d["text"].as_str())
                        .unwrap_or("?")
                ));
            }
            Some("Inspector.targetCrashed") => {
                panic!("the page crashed; chromium log:\n{}", self.log());
            }
            _ => {}
        }
        self.events.push(v.clone());
    }

    /// Every CDP event seen so far (`{"method": …, "params": …}`).
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// What the page printed to its console, and its uncaught exceptions.
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// Wait for the first event named `method` at or after position `from` of
    /// [`Chromium::events`]; `None` after `timeout`.
    pub fn wait_event(&mut self, method: &str, from: usize, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self
                .events
                .get(from..)
                .unwrap_or_default()
                .iter()
                .find(|e| e["method"] == method)
            {
                return Some(e.clone());
            }
            self.read_message(deadline)?;
        }
    }

    /// Run `js` in every document the page loads from now on, before the page's own
    /// scripts (`Page.addScriptToEvaluateOnNewDocument`): e.g. to take an API away
    /// and see how a page copes with a browser that lacks it.
    pub fn run_before_page_scripts(&mut self, js: &str) {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": js }),
        );
    }

    /// Hold every request whose URL matches `url_pattern` (CDP `Fetch` wildcards,
    /// e.g. `*/answer`) before it is sent; see [`Chromium::next_held_request`].
    pub fn hold_requests(&mut self, url_pattern: &str) {
        self.cdp(
            "Fetch.enable",
            json!({ "patterns": [{ "urlPattern": url_pattern, "requestStage": "Request" }] }),
        );
    }

    /// The next request held by [`Chromium::hold_requests`] after event position
    /// `from`: its `Fetch.requestPaused` parameters (`requestId`, `request.url`, …).
    pub fn next_held_request(&mut self, from: usize, timeout: Duration) -> Value {
        match self.wait_event("Fetch.requestPaused", from, timeout) {
            Some(e) => e["params"].clone(),
            None => panic!(
                "no request was held within {timeout:?}\npage text:\n{}",
                self.text()
            ),
        }
    }

    /// Stop holding requests (`Fetch.disable`); held ones are let go.
    pub fn stop_holding_requests(&mut self) {
        self.cdp("Fetch.disable", json!({}));
    }

    /// Let a held request go on, unchanged.
    pub fn release_request(&mut self, request_id: &str) {
        self.cdp("Fetch.continueRequest", json!({ "requestId": request_id }));
    }

    /// Chromium's own stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `WebAuthn.enable`, then `WebAuthn.addVirtualAuthenticator` (CTAP2 over USB);
    /// returns the authenticator's ID, which later calls use.
    pub fn enable_virtual_authenticator(&mut self, opts: AuthenticatorOptions) -> String {
        // enableUI false: the virtual authenticator answers without any prompt.
        self.cdp("WebAuthn.enable", json!({ "enableUI": false }));
        let r = self.cdp(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": opts.has_resident_key,
                "hasUserVerification": opts.has_user_verification,
                "isUserVerified": opts.is_user_verified,
                "automaticPresenceSimulation": opts.automatic_presence_simulation,
            }}),
        );
        let id = r["authenticatorId"]
            .as_str()
            .unwrap_or_else(|| panic!("addVirtualAuthenticator answered {r}"))
            .to_owned();
        self.authenticator = Some(id.clone());
        id
    }

    /// The virtual authenticator's ID; panics before
    /// [`Chromium::enable_virtual_authenticator`].
    pub fn authenticator_id(&self) -> &str {
        self.authenticator
            .as_deref()
            .expect("enable_virtual_authenticator first")
    }

    /// `WebAuthn.setUserVerified`: whether the next user verification succeeds.
    pub fn set_user_verified(&mut self, verified: bool) {
        let id = self.authenticator_id().to_owned();
        self.cdp(
            "WebAuthn.setUserVerified",
            json!({ "authenticatorId": id, "isUserVerified": verified }),
        );
    }

    /// `WebAuthn.getCredentials`: what the authenticator holds (`credentialId`
    /// base64, `rpId`, `userHandle`, `signCount`, `isResidentCredential`,
    /// `privateKey` PKCS#8 base64).
    pub fn credentials(&mut self) -> Vec<Value> {
        let id = self.authenticator_id().to_owned();
        let r = self.cdp("WebAuthn.getCredentials", json!({ "authenticatorId": id }));
        r["credentials"].as_array().cloned().unwrap_or_default()
    }

    /// Navigate the page to `url` and wait for its `load` event; panics if the
    /// navigation fails (e.g. a certificate error).
    pub fn navigate(&mut self, url: &str) {
        if let Err(e) = self.try_navigate(url) {
            panic!("navigate to {url}: {e}\nconsole: {:#?}", self.console);
        }
    }

    /// Navigate to `url`; a network-level failure (`net::ERR_…`) is returned.
    pub fn try_navigate(&mut self, url: &str) -> Result<(), String> {
        let seen = self.events.len();
        let r = self.cdp("Page.navigate", json!({ "url": url }));
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            return Err(e.to_owned());
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if self
                .events
                .get(seen..)
                .unwrap_or_default()
                .iter()
                .any(|e| e["method"] == "Page.loadEventFired")
            {
                return Ok(());
            }
            if self.read_message(deadline).is_none() {
                return Err(format!("no load event within {COMMAND_TIMEOUT:?}"));
            }
        }
    }

    /// Evaluate `js` in the page (promises awaited, the value returned by value, as
    /// a user gesture); panics if it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        self.try_eval(js).unwrap_or_else(|e| {
            panic!(
                "page script threw: {e}\nscript: {js}\nconsole: {:#?}",
                self.console
            )
        })
    }

    /// Evaluate `js`; what it threw (or the promise rejected with) is returned as
    /// the exception's description, e.g. `NotAllowedError: …`.
    pub fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let r = self.cdp(
            "Runtime.evaluate",
            json!({
                "expression": js,
                "awaitPromise": true,
                "returnByValue": true,
                "userGesture": true,
            }),
        );
        if let Some(d) = r.get("exceptionDetails") {
            return Err(d["exception"]["description"]
                .as_str()
                .or_else(|| d["exception"]["value"].as_str())
                .or_else(|| d["text"].as_str())
                .unwrap_or("exception")
                .to_owned());
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// A real mouse click (`Input.dispatchMouseEvent`) in the middle of the first
    /// element matching the CSS `selector`, after scrolling it into view. Panics if
    /// nothing matches or it has no size.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("a string serialises");
        let rect = self.eval(&format!(
            "(() => {{ const el = document.querySelector({sel}); \
             if (!el) return null; el.scrollIntoView({{block: 'center'}}); \
             const r = el.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height]; }})()"
        ));
        let Some([x, y, w, h]) = rect.as_array().and_then(|a| {
            let f: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
            <[f64; 4]>::try_from(f).ok()
        }) else {
            panic!(
                "click: no element matches {selector}\npage text:\n{}",
                self.text()
            );
        };
        assert!(
            w > 0.0 && h > 0.0,
            "click: {selector} has no size (hidden?)"
        );
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.cdp(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Poll `js_predicate` (every 100 ms) until it yields a truthy value, which is
    /// returned; panics with the page's text after `timeout`. A throwing predicate
    /// counts as not yet.
    pub fn wait_for(&mut self, js_predicate: &str, timeout: Duration) -> Value {
        match self.try_wait_for(js_predicate, timeout) {
            Some(v) => v,
            None => panic!(
                "waited {timeout:?} for `{js_predicate}`\nurl: {}\npage text:\n{}\nconsole: {:#?}",
                self.url(),
                self.text(),
                self.console
            ),
        }
    }

    /// Like [`Chromium::wait_for`], but `None` at the timeout.
    pub fn try_wait_for(&mut self, js_predicate: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(v) = self.try_eval(js_predicate) {
                if truthy(&v) {
                    return Some(v);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's visible text (`document.body.innerText`).
    pub fn text(&mut self) -> String {
        self.try_eval("document.body ? document.body.innerText : ''")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The page's current URL.
    pub fn url(&mut self) -> String {
        self.try_eval("location.href")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
        if thread::panicking() {
            eprintln!(
                "----- chromium console -----\n{}\n----- chromium log ({}) -----\n{}",
                self.console.join("\n"),
                self.log.display(),
                tail(&self.log(), 8000)
            );
        }
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s.get(start..).unwrap_or(s)
}

/// SIGKILL the browser's whole process group (through kill(1): this crate forbids
/// `unsafe`), then reap the browser.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Wait for Chromium to write `DevToolsActivePort` (line 1: the port) in its
/// profile directory.
fn wait_devtools_port(profile: &Path, child: &mut Child) -> Result<u16, String> {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(text) = fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(_path)) = (lines.next(), lines.next()) {
                return port
                    .trim()
                    .parse()
                    .map_err(|e| format!("DevToolsActivePort says {port:?}: {e}"));
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("chromium exited ({st})"));
        }
        if Instant::now() >= deadline {
            return Err(format!("no {} within {START_TIMEOUT:?}", file.display()));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The `webSocketDebuggerUrl` of the first page target, from `GET /json/list`.
fn page_websocket(port: u16) -> Result<String, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let got = http_get_json(port, "/json/list").map(|targets| {
            targets
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                .map(str::to_owned)
        });
        match got {
            Ok(Some(u)) => return Ok(u),
            Ok(None) if Instant::now() >= deadline => return Err("no page target".into()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            _ => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// One `GET` to Chromium's DevTools HTTP server, answered with JSON. It keeps the
/// connection open (HTTP/1.1), so the body is read up to its `Content-Length`.
fn http_get_json(port: u16, path: &str) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default());
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
            let body = buf.get(head_end + 4..).unwrap_or_default();
            if body.len() >= len {
                let body = body.get(..len).unwrap_or_default();
                return serde_json::from_slice(body)
                    .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(body)));
            }
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "connection closed after {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_of_a_generated_certificate_is_its_public_key_info() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            certificate_spki(cert.der()).unwrap(),
            key.public_key_der().as_slice()
        );
        let dir = tempdir("spki");
        let pem = dir.path().join("cert.pem");
        fs::write(&pem, cert.pem()).unwrap();
        assert_eq!(
            spki_sha256_base64(&pem),
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_der()))
        );
    }

    #[test]
    fn der_walker_refuses_truncated_input() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        for cut in [0, 1, 2, 10, der.len() / 2] {
            assert!(certificate_spki(&der[..cut]).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn truthiness_follows_javascript() {
        assert!(!truthy(&Value::Null));
        assert!(!truthy(&json!(false)));
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!("")));
        assert!(truthy(&json!("x")));
        assert!(truthy(&json!(1)));
        assert!(truthy(&json!([])));
    }
}
