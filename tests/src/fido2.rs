//! FIDO2/CTAP2 without hardware: webauthn-authenticator-rs's software token, in a
//! file per person, used two ways.
//!
//! - Through the real `rampart` CLI ([`SoftKey::command`]): the CLI's test-only
//!   `RAMPART_FIDO2_SOFT_TOKEN` selects the file instead of a USB key, and
//!   `RAMPART_FIDO2_TEST_ORIGIN` lets a test claim a wrong origin. The file does
//!   not exist until the first enrolment creates it.
//! - Directly ([`SoftKey::sign`]), for answers no honest client would send: the
//!   same authenticator library, fed options the test has altered (another
//!   user's credential ID, user verification not asked for), then posted to the
//!   CA's `FINISH` by the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_api::webauthn::{
    CeremonyOutcome, CeremonyStarted, FinishRequest, LoginStartRequest, FINISH, LOGIN_START,
};
use rampart_api::{Client, ClientError};
use webauthn_authenticator_rs::prelude::{RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softtoken::SoftTokenFile;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;

use crate::process::{run_timeout, CmdOutput, DEFAULT_TIMEOUT};
use crate::Cli;

/// The CLI's test-only software-token switch (see `cli/src/fido2.rs`).
pub const SOFT_TOKEN_ENV: &str = "RAMPART_FIDO2_SOFT_TOKEN";
/// The CLI's test-only origin override (honoured only with the soft token).
pub const TEST_ORIGIN_ENV: &str = "RAMPART_FIDO2_TEST_ORIGIN";

/// One person's software security key: a file.
#[derive(Debug, Clone)]
pub struct SoftKey {
    /// The token file (absent until the first enrolment).
    pub path: PathBuf,
}

impl SoftKey {
    /// A key whose file will be `dir/NAME.softtoken`.
    pub fn new(dir: &Path, name: &str) -> SoftKey {
        SoftKey {
            path: dir.join(format!("{name}.softtoken")),
        }
    }

    /// `rampart ARGS` for `cli`, with this key as its "USB key".
    pub fn command(&self, cli: &Cli, args: &[&str]) -> Command {
        let mut c = cli.command();
        c.env(SOFT_TOKEN_ENV, &self.path)
            .env_remove(TEST_ORIGIN_ENV)
            .env("BROWSER", "")
            .args(args);
        c
    }

    /// Run `rampart ARGS` with this key.
    pub fn run(&self, cli: &Cli, args: &[&str]) -> CmdOutput {
        run_timeout(self.command(cli, args), None, DEFAULT_TIMEOUT)
    }

    /// Run `rampart ARGS` with this key, claiming `origin`.
    pub fn run_with_origin(&self, cli: &Cli, args: &[&str], origin: &str) -> CmdOutput {
        let mut c = self.command(cli, args);
        c.env(TEST_ORIGIN_ENV, origin);
        run_timeout(c, None, DEFAULT_TIMEOUT)
    }

    /// Copy the token file (its credentials and signature counter) to `dest`.
    pub fn save_to(&self, dest: &Path) {
        std::fs::copy(&self.path, dest)
            .unwrap_or_else(|e| panic!("copy {}: {e}", self.path.display()));
    }

    /// Put a saved copy back: the token then presents an old counter.
    pub fn restore_from(&self, src: &Path) {
        std::fs::copy(src, &self.path)
            .unwrap_or_else(|e| panic!("restore {}: {e}", self.path.display()));
    }

    /// Answer `options` (`{"publicKey": …}` request options) for `origin` with this
    /// token, after `tweak` has changed them; returns the W3C JSON credential.
    /// `Err` is the authenticator library's refusal.
    pub fn sign(
        &self,
        origin: &str,
        options: &serde_json::Value,
        tweak: impl FnOnce(&mut serde_json::Value),
    ) -> Result<serde_json::Value, String> {
        let mut options = options.clone();
        tweak(&mut options);
        let options: RequestChallengeResponse =
            serde_json::from_value(options).map_err(|e| format!("request options: {e}"))?;
        let origin = Url::parse(origin).map_err(|e| format!("origin: {e}"))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| format!("open {}: {e}", self.path.display()))?;
        let mut token = SoftTokenFile::open(file).map_err(|e| format!("soft token: {e}"))?;
        let cred = token
            .do_authentication(origin, options)
            .map_err(|e| format!("authenticator: {e}"))?;
        // Dropping the token saves its new counter.
        drop(token);
        serde_json::to_value(&cred).map_err(|e| format!("encode: {e}"))
    }
}

/// `POST /v1/webauthn/login/start` with `direct: true` for `user`.
pub fn start_direct_login(api: &Client, user: &str) -> CeremonyStarted {
    api.post_json(
        LOGIN_START,
        &LoginStartRequest {
            user: user.to_owned(),
            direct: true,
        },
    )
    .unwrap_or_else(|e| panic!("webauthn login/start for {user}: {e}"))
}

/// The options a direct start carries.
pub fn options_of(started: &CeremonyStarted) -> serde_json::Value {
    started
        .public_key
        .clone()
        .unwrap_or_else(|| panic!("a direct start must carry public_key options: {started:?}"))
}

/// The web origin of the ceremony's page (what the CA expects in clientDataJSON).
pub fn origin_of(started: &CeremonyStarted) -> String {
    let url =
        Url::parse(&started.url).unwrap_or_else(|e| panic!("page url {:?}: {e}", started.url));
    url.origin().ascii_serialization()
}

/// `POST /v1/webauthn/finish` with `credential`, not judged.
pub fn finish(
    api: &Client,
    started: &CeremonyStarted,
    credential: &serde_json::Value,
) -> Result<CeremonyOutcome, ClientError> {
    api.post_json(
        FINISH,
        &FinishRequest {
            request_id: started.request_id.clone(),
            poll_token: started.poll_token.clone(),
            credential: credential.clone(),
        },
    )
}
