//! The real `rampart-ca`: `init` into a temporary directory, `serve` on loopback,
//! stop gracefully or with SIGKILL, restart on the same port.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde::Deserialize;

use crate::process::{describe, kill9, run, terminate};
use crate::{bin, free_port, tempdir};

/// What `rampart-ca init --json` prints: one JSON object on stdout.
#[derive(Debug, Clone, Deserialize)]
pub struct InitInfo {
    /// Path of the written `config.toml`.
    pub config: PathBuf,
    /// `https://127.0.0.1:<port>` (the port may be 0 when init was given port 0).
    pub url: String,
    /// `SHA256:…` of the CA's self-signed TLS certificate.
    pub tls_fingerprint: String,
    /// Name of the bootstrap admin user.
    pub admin_user: String,
    /// One-time invite for that admin.
    pub admin_invite: String,
    /// When the invite expires (RFC 3339).
    pub invite_expires_at: String,
    /// The user CA public key line.
    pub user_ca: String,
    /// The host CA public key line.
    pub host_ca: String,
}

/// One `rampart-ca` instance in its own temporary directory. Killed on drop.
#[derive(Debug)]
pub struct Ca {
    dir: tempfile::TempDir,
    ca_dir: PathBuf,
    init: InitInfo,
    child: Option<Child>,
    url: String,
    log: PathBuf,
    starts: u32,
    /// For a CA made with `init --database URL`: the URL, where its audit
    /// log lives too (shared with every CA on that database).
    postgres: Option<String>,
}

impl Ca {
    /// `rampart-ca init` with its default policy and config.
    pub fn init() -> Ca {
        Self::init_with(None, "")
    }

    /// `rampart-ca init --dir <tmp>/ca --listen 127.0.0.1:<free port> --json
    /// --insecure-passphrase-beside-keys`, then
    /// replace `policy.toml` with `policy` (if given) and merge the TOML snippet
    /// `config_overrides` (e.g. `"[totp]\nmax_failures = 3"`) into `config.toml`.
    ///
    /// A fixed free port instead of port 0 keeps the URL stable across
    /// [`Ca::restart`], so a CLI that stored it keeps working.
    pub fn init_with(policy: Option<&str>, config_overrides: &str) -> Ca {
        Self::init_with_args(policy, config_overrides, &[])
    }

    /// [`Ca::init_e2e`] with the CA's state in the PostgreSQL database at `url`
    /// (`init --database URL`): no `ca.db`.
    pub fn init_postgres(url: &str, config_overrides: &str) -> Ca {
        let ca = Self::init_with_args(None, config_overrides, &["--database", url]);
        ca.write_policy(&crate::policy::standard_policy(&ca.info().admin_user));
        ca
    }

    /// Another CA from a copy of this one's directory (same keys, config and
    /// database settings; an SQLite audit log is copied, a PostgreSQL one
    /// shared) on a new port. Copy while this one is stopped, so that an
    /// SQLite audit database is at rest.
    pub fn copy_as_another_ca(&self) -> Ca {
        let dir = tempdir("ca");
        let ca_dir = dir.path().join("ca");
        let mut c = Command::new("cp");
        c.arg("-a").arg(&self.ca_dir).arg(&ca_dir);
        run(c).assert_success("cp -a the CA directory");
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let ca = Ca {
            url: url.clone(),
            log: dir.path().join("rampart-ca.log"),
            dir,
            init: InitInfo {
                config: ca_dir.join("config.toml"),
                url,
                ..self.init.clone()
            },
            ca_dir,
            child: None,
            starts: 0,
            postgres: self.postgres.clone(),
        };
        ca.merge_config(&format!("listen = \"127.0.0.1:{port}\""));
        ca
    }

    /// [`Ca::init_with`], passing `extra` to `rampart-ca init` (e.g. the
    /// `--pkcs11-*` options, with which the CA keys are not files).
    pub fn init_with_args(policy: Option<&str>, config_overrides: &str, extra: &[&str]) -> Ca {
        let in_token = extra.contains(&"--pkcs11-module");
        let postgres = extra.contains(&"--database");
        let dir = tempdir("ca");
        let ca_dir = dir.path().join("ca");
        let port = free_port();
        let mut c = Command::new(bin("rampart-ca"));
        c.arg("init")
            .arg("--dir")
            .arg(&ca_dir)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--json"])
            .arg("--insecure-passphrase-beside-keys")
            .args(extra)
            .env("RUST_LOG", "info");
        let out = run(c);
        out.assert_success("rampart-ca init");
        let init: InitInfo = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
            panic!("rampart-ca init --json must print one JSON object: {e}\n{out}")
        });
        assert!(
            init.tls_fingerprint.starts_with("SHA256:"),
            "tls_fingerprint {:?} is not SHA256:…",
            init.tls_fingerprint
        );
        for f in [
            "config.toml",
            "policy.toml",
            "ca.db",
            "audit.db",
            "keys/user_ca.pub",
            "keys/host_ca.pub",
            "keys/audit.pub",
        ] {
            let ca_key = f.starts_with("keys/user_ca") || f.starts_with("keys/host_ca");
            // On PostgreSQL both the state and the audit log live there.
            let database = f == "ca.db" || f == "audit.db";
            let elsewhere = (in_token && ca_key) || (postgres && database);
            assert_eq!(
                ca_dir.join(f).exists(),
                !elsewhere,
                "rampart-ca init and {f} in {} (CA keys in a token: {in_token})",
                ca_dir.display()
            );
        }
        let log = dir.path().join("rampart-ca.log");
        let ca = Ca {
            url: init.url.clone(),
            dir,
            ca_dir,
            init,
            child: None,
            log,
            starts: 0,
            postgres: extra
                .iter()
                .position(|a| *a == "--database")
                .and_then(|i| extra.get(i + 1))
                .map(|u| (*u).to_owned()),
        };
        if let Some(p) = policy {
            ca.write_policy(p);
        }
        if !config_overrides.trim().is_empty() {
            ca.merge_config(config_overrides);
        }
        ca
    }

    /// `init`, install [`crate::policy::standard_policy`], merge `config_overrides`;
    /// not started yet.
    pub fn init_e2e(config_overrides: &str) -> Ca {
        let ca = Self::init_with(None, config_overrides);
        ca.write_policy(&crate::policy::standard_policy(&ca.info().admin_user));
        ca
    }

    /// `init` then `start`.
    pub fn started() -> Ca {
        let mut ca = Self::init();
        ca.start();
        ca
    }

    /// What init printed.
    pub fn info(&self) -> &InitInfo {
        &self.init
    }

    /// The test's temporary directory (the CA's lives in `ca/` below it; CLI homes
    /// may be put beside it).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The CA's own directory.
    pub fn dir(&self) -> &Path {
        &self.ca_dir
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        if self.init.config.is_absolute() {
            self.init.config.clone()
        } else {
            self.ca_dir.join("config.toml")
        }
    }

    /// `policy.toml`.
    pub fn policy_path(&self) -> PathBuf {
        self.ca_dir.join("policy.toml")
    }

    /// `audit.db`; for a CA on PostgreSQL, a fresh byte-for-byte copy of the
    /// shared log in an SQLite file of that shape.
    pub fn audit_db(&self) -> PathBuf {
        let Some(url) = &self.postgres else {
            return self.ca_dir.join("audit.db");
        };
        static COPIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy = self.dir.path().join(format!("audit-copy-{n}.db"));
        let config = rampart_audit::pg_config(url, None).expect("the test cluster's URL");
        rampart_audit::copy_to_sqlite(&config, &copy).expect("copy the shared audit log");
        copy
    }

    /// `ca.db`.
    pub fn ca_db(&self) -> PathBuf {
        self.ca_dir.join("ca.db")
    }

    /// `keys/audit.pub`, the key that signs audit checkpoints.
    pub fn audit_pubkey(&self) -> PathBuf {
        self.ca_dir.join("keys/audit.pub")
    }

    /// `rampart audit verify` on this CA's audit log (`--db audit.db`, or
    /// `--db postgres://…`), checking checkpoint signatures with its audit key.
    pub fn verify_audit(&self) -> crate::CmdOutput {
        let db = match &self.postgres {
            Some(url) => PathBuf::from(url),
            None => self.audit_db(),
        };
        crate::audit_verify_with(&db, Some(&self.audit_pubkey()))
    }

    /// The user CA public key line as init printed it.
    pub fn user_ca_pub(&self) -> String {
        self.init.user_ca.trim().to_owned()
    }

    /// The host CA public key line as init printed it.
    pub fn host_ca_pub(&self) -> String {
        self.init.host_ca.trim().to_owned()
    }

    /// Replace `policy.toml` (before [`Ca::start`], or before a restart).
    pub fn write_policy(&self, text: &str) {
        fs::write(self.policy_path(), text).expect("write policy.toml");
    }

    /// Merge a TOML snippet into `config.toml`: tables are merged key by key, other
    /// values replaced. (Re-serialising drops the comments init wrote; the keys and
    /// values are what matter to the CA.)
    pub fn merge_config(&self, snippet: &str) {
        let path = self.config_path();
        let text = fs::read_to_string(&path).expect("read config.toml");
        let mut base: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("config.toml written by init is not TOML: {e}\n{text}"));
        let over: toml::Table = snippet
            .parse()
            .unwrap_or_else(|e| panic!("override is not TOML: {e}\n{snippet}"));
        merge_tables(&mut base, over);
        fs::write(&path, toml::to_string(&base).expect("serialise config")).expect("write");
    }

    /// Spawn `rampart-ca serve --config CONFIG` and wait (≤ 60 s) for its one
    /// readiness line `rampart-ca listening on https://127.0.0.1:PORT` on stdout.
    /// Its stderr (logs) goes to a file, see [`Ca::log`].
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "CA already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open CA log");
        let _ = writeln!(log, "===== rampart-ca serve (start #{}) =====", self.starts);
        let mut c = Command::new(bin("rampart-ca"));
        c.arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let desc = describe(&c);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let rest = self
            .dir
            .path()
            .join(format!("rampart-ca.stdout.{}", self.starts));
        // Keep reading stdout after the readiness line, so that the CA never blocks
        // or dies of SIGPIPE writing to it.
        thread::spawn(move || {
            let mut sink = File::create(rest).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = sink.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + crate::process::START_TIMEOUT;
        let url = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(u) = line
                        .trim()
                        .strip_prefix("rampart-ca listening on ")
                        .map(str::trim)
                    {
                        break u.trim_end_matches('/').to_owned();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = child.wait().ok();
                    panic!(
                        "rampart-ca serve exited ({st:?}) without printing \
                         `rampart-ca listening on …`\n{}",
                        self.log()
                    );
                }
            }
            if std::time::Instant::now() > deadline {
                kill9(&mut child);
                panic!("rampart-ca serve not ready within 60 s\n{}", self.log());
            }
        };
        assert!(
            url.starts_with("https://127.0.0.1:"),
            "CA must listen on loopback https, said {url}"
        );
        self.url = url;
        self.child = Some(child);
    }

    /// Graceful stop: SIGTERM, wait up to 15 s (then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(15));
        }
    }

    /// SIGKILL, as a crash or power cut would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }

    /// SIGHUP, as `systemctl reload rampart-ca` sends: re-read the policy.
    pub fn reload(&self) {
        let pid = self.child.as_ref().expect("CA running").id();
        let out = run({
            let mut c = Command::new("kill");
            c.args(["-HUP", &pid.to_string()]);
            c
        });
        out.assert_success("kill -HUP rampart-ca");
    }

    /// The serve process's ID (the CA must be running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("CA running").id()
    }

    /// Whether the serve process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stop (gracefully) and start again.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// The URL the running CA announced (or init's before the first start).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pinned TLS fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.init.tls_fingerprint
    }

    /// The fingerprint as the API client's type.
    pub fn pin(&self) -> rampart_api::Fingerprint {
        rampart_api::Fingerprint::parse(&self.init.tls_fingerprint)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An API client that trusts only this CA's certificate.
    pub fn api(&self) -> rampart_api::Client {
        rampart_api::Client::new(&self.url, self.pin()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A raw HTTP client (pinned) for sending malformed requests.
    pub fn raw_http(&self) -> crate::http::RawHttp {
        crate::http::RawHttp::new(&self.url, self.pin())
    }

    /// The CA's log (stderr of every start so far).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
        if std::thread::panicking() {
            eprintln!(
                "----- rampart-ca log ({}) -----\n{}",
                self.log.display(),
                self.log()
            );
        }
    }
}

fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_keys_and_replaces_given_ones() {
        let mut base: toml::Table =
            "listen = \"127.0.0.1:1\"\n[totp]\nmax_failures = 5\nlockout = \"5m\"\n"
                .parse()
                .unwrap();
        merge_tables(
            &mut base,
            "[totp]\nmax_failures = 3\n[invites]\ndefault_ttl = \"1h\"\n"
                .parse()
                .unwrap(),
        );
        assert_eq!(base["listen"].as_str(), Some("127.0.0.1:1"));
        assert_eq!(base["totp"]["max_failures"].as_integer(), Some(3));
        assert_eq!(base["totp"]["lockout"].as_str(), Some("5m"));
        assert_eq!(base["invites"]["default_ttl"].as_str(), Some("1h"));
    }
}
