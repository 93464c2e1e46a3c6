//! A real OpenID provider for the OIDC tests: panva's `oidc-provider` from npm
//! (tests/oidc-provider, installed by scripts/test with `npm ci`), started with
//! `node` on a free loopback port in a temporary directory, killed on drop.
//!
//! Also a scripted "browser": [`OidcProvider::authenticate`] follows the
//! authorisation URL through the provider's login and consent prompts with plain
//! HTTP (cookies carried by hand) until the provider redirects to the client's
//! loopback redirect URI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::process::{drain, kill9, stall_report, START_TIMEOUT};
use crate::{on_a_free_port, require_peer, tempdir, workspace_root};

/// The client the CA uses at the provider.
pub const CLIENT_ID: &str = "rampart-ca";
/// Its secret (test only).
pub const CLIENT_SECRET: &str = "rampart-test-client-secret-0123456789";
/// Every test account's password.
pub const PASSWORD: &str = "correct horse";

/// A running provider.
#[derive(Debug)]
pub struct OidcProvider {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// Where the provider's node package lives.
pub fn package_dir() -> PathBuf {
    workspace_root().join("tests/oidc-provider")
}

/// One test account: `(name, groups, amr)`.
pub fn account(groups: &[&str], amr: &[&str]) -> Value {
    json!({ "password": PASSWORD, "groups": groups, "amr": amr })
}

impl OidcProvider {
    /// Start the provider with these accounts (`{"alice": account(..), …}`).
    ///
    /// Panics when `node` or the installed package is missing: the tests never
    /// pass without their peer.
    pub fn start(accounts: Value) -> OidcProvider {
        let node = require_peer("node");
        let pkg = package_dir();
        assert!(
            pkg.join("node_modules/oidc-provider").is_dir(),
            "tests/oidc-provider/node_modules is missing: run scripts/test (npm ci --prefix \
             tests/oidc-provider)"
        );
        on_a_free_port("oidc-provider", |port| {
            Self::launch(&node, &pkg, &accounts, port)
        })
    }

    /// One start on `port`. `Err` with the provider's log when another
    /// process held the port; any other failure to start panics.
    fn launch(
        node: &Path,
        pkg: &Path,
        accounts: &Value,
        port: u16,
    ) -> Result<OidcProvider, String> {
        let dir = tempdir("oidc");
        let config = json!({
            "port": port,
            "keys_file": crate::target_dir().join("oidc-provider-keys.json"),
            "accounts": accounts,
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "application_type": "native",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
                "response_types": ["code"],
            }],
        });
        let cfg = dir.path().join("provider.json");
        std::fs::write(&cfg, config.to_string()).expect("write provider config");
        let mut child = Command::new(node)
            .arg(pkg.join("provider.js"))
            .arg(&cfg)
            .current_dir(pkg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node provider.js");
        let stderr = child.stderr.take().map(drain);
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY ") {
                    let _ = tx.send(());
                }
            }
        });
        let mut p = OidcProvider {
            dir,
            child: Some(child),
            port,
            stderr,
        };
        if let Err(e) = rx.recv_timeout(START_TIMEOUT) {
            let state = match e {
                RecvTimeoutError::Timeout => p
                    .child
                    .as_ref()
                    .map_or_else(String::new, |c| stall_report(c.id())),
                RecvTimeoutError::Disconnected => "it exited".to_owned(),
            };
            let log = p.stop();
            if e == RecvTimeoutError::Disconnected && log.contains("EADDRINUSE") {
                return Err(log);
            }
            panic!(
                "oidc-provider did not become ready within {} s ({state}):\n{log}",
                START_TIMEOUT.as_secs()
            );
        }
        Ok(p)
    }

    /// The issuer URL.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `[[oidc.providers]]` config snippet for a CA in `ca_dir` (writes the
    /// client secret file there, mode 0600).
    pub fn ca_config(&self, ca_dir: &std::path::Path, name: &str, extra: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let secret = ca_dir.join(format!("oidc-{name}.secret"));
        std::fs::write(&secret, CLIENT_SECRET).expect("write secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        format!(
            "[[oidc.providers]]\nname = \"{name}\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_file = \"{}\"\n{extra}\n",
            self.issuer(),
            secret.display()
        )
    }

    /// Change an account (e.g. `{"amr": ["pwd", "hwk"]}`).
    pub fn set_account(&self, id: &str, patch: Value) {
        let resp = http()
            .post(format!("{}/_test/accounts/{id}", self.issuer()))
            .body(patch.to_string())
            .send()
            .expect("provider control endpoint");
        assert!(resp.status().is_success(), "set_account: {}", resp.status());
    }

    /// Flip a test switch of provider.js: `{"clock_offset": seconds}` or
    /// `{"jwks": "normal" | "empty" | "wrong_key"}`.
    pub fn set_mode(&self, patch: Value) {
        let resp = http()
            .post(format!("{}/_test/mode", self.issuer()))
            .body(patch.to_string())
            .send()
            .expect("provider control endpoint");
        assert!(resp.status().is_success(), "set_mode: {}", resp.status());
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        let v: Value = http()
            .get(format!("{}/_test/stats", self.issuer()))
            .send()
            .and_then(|r| r.json())
            .expect("provider stats");
        v["jwks_fetches"].as_u64().expect("jwks_fetches")
    }

    /// Stop it (SIGKILL: an outage, not a shutdown) and return its log.
    pub fn stop(&mut self) -> String {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Temporary directory of this provider.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Log in at the provider as `login` by following `authorize_url` through
    /// the login (and, first time, consent) prompts. Returns the URL the provider
    /// finally redirects to (the client's redirect URI with `code` and `state`),
    /// without fetching it.
    pub fn authenticate(&self, authorize_url: &str, login: &str) -> reqwest::Url {
        self.drive(authorize_url, login, None)
            .unwrap_or_else(|| panic!("the provider did not redirect back to the client"))
    }

    /// Approve a device login (RFC 8628) as `login`: open the verification URI,
    /// enter `user_code`, log in, confirm.
    pub fn approve_device(&self, verification_uri: &str, user_code: &str, login: &str) {
        if let Some(url) = self.drive(verification_uri, login, Some(user_code)) {
            panic!("device approval ended in a redirect to {url}");
        }
    }

    /// Follow the provider's pages; `Some(url)` when it redirects off the
    /// provider, `None` when a device login reports success.
    fn drive(&self, start: &str, login: &str, user_code: Option<&str>) -> Option<reqwest::Url> {
        let client = http();
        let mut cookies: Vec<(String, String)> = Vec::new();
        let mut url = reqwest::Url::parse(start).expect("start URL");
        let mut method_post: Option<String> = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..20 {
            assert!(Instant::now() < deadline, "provider login took over 30 s");
            if url.port() != Some(self.port) {
                return Some(url);
            }
            let cookie = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let req = match method_post.take() {
                Some(form) => client
                    .post(url.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form),
                None => client.get(url.clone()),
            };
            let resp = req
                .header("cookie", cookie)
                .send()
                .expect("provider request");
            for sc in resp.headers().get_all("set-cookie") {
                let kv = sc.to_str().unwrap_or("").split(';').next().unwrap_or("");
                if let Some((k, v)) = kv.split_once('=') {
                    cookies.retain(|(ck, _)| ck != k.trim());
                    if !v.is_empty() {
                        cookies.push((k.trim().to_owned(), v.to_owned()));
                    }
                }
            }
            let status = resp.status();
            if status.is_redirection() {
                let loc = resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .expect("redirect without location");
                url = url.join(loc).expect("location URL");
                continue;
            }
            let body = resp.text().unwrap_or_default();
            assert!(
                status.is_success(),
                "provider answered {status} at {url}: {body}"
            );
            // Our interaction endpoint: JSON naming the prompt.
            let v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("unexpected page at {url} ({e}): {body}"));
            if let Some(page) = v["page"].as_str() {
                let xsrf = v["xsrf"].as_str().unwrap_or_default().to_owned();
                let code = user_code.expect("a device page outside a device login");
                url = url.join("/device").expect("url");
                match page {
                    "input" => {
                        assert!(v["error"].is_null(), "device code refused: {body}");
                        method_post = Some(format!("xsrf={xsrf}&user_code={code}"));
                    }
                    "confirm" => {
                        method_post = Some(format!("xsrf={xsrf}&user_code={code}&confirm=yes"));
                    }
                    "success" => return None,
                    other => panic!("unexpected device page {other}: {body}"),
                }
                continue;
            }
            let uid = v["uid"].as_str().expect("uid").to_owned();
            match v["prompt"].as_str() {
                Some("login") => {
                    url = url.join(&format!("/interaction/{uid}/login")).expect("url");
                    method_post = Some(format!(
                        "login={login}&password={}",
                        PASSWORD.replace(' ', "+")
                    ));
                }
                Some("consent") => {
                    url = url
                        .join(&format!("/interaction/{uid}/confirm"))
                        .expect("url");
                    method_post = Some(String::new());
                }
                other => panic!("unexpected prompt {other:?}: {body}"),
            }
        }
        panic!("provider login did not finish in 20 steps (at {url})");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

/// `code` and `state` from the redirect the provider sent.
pub fn code_and_state(redirect: &reqwest::Url) -> (String, String) {
    let get = |k: &str| {
        redirect
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {k} in {redirect}"))
    };
    (get("code"), get("state"))
}
