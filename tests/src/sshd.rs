//! A private OpenSSH `sshd` on a loopback port, trusting a user CA, and the real
//! `ssh` client that logs in to it.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::keys::KeyPair;
use crate::process::{describe, kill9, run, run_timeout, stall_report, CmdOutput, START_TIMEOUT};
use crate::{on_a_free_port, require_peer, tempdir};

/// The local account the tests log in to. A dedicated, password-less account, so a
/// test cannot lock anyone out of the machine.
pub const TEST_ACCOUNT: &str = "rampart-e2e";

/// Make sure [`TEST_ACCOUNT`] exists and can log in with a key under `UsePAM no`.
///
/// Serialised across test processes with flock(1) on a lock file (nextest runs
/// every test in its own process, and two concurrent `useradd`s race on
/// /etc/passwd). The password field is set to `*`: a locked `!` password makes
/// sshd refuse even key logins when PAM is off.
pub fn ensure_test_account() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = format!(
            "id -u {a} >/dev/null 2>&1 || useradd -m -s /bin/sh {a}; \
             usermod -p '*' {a}",
            a = TEST_ACCOUNT
        );
        let mut c = Command::new(require_peer("flock"));
        c.args([
            "-w",
            "60",
            "/tmp/rampart-e2e-account.lock",
            "sh",
            "-c",
            &script,
        ]);
        run(c).assert_success("create the test account (tests run as root)");
    });
}

/// Options of a private sshd.
#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// Lines for `TrustedUserCAKeys` (OpenSSH public key lines).
    pub user_ca_keys: Vec<String>,
    /// A host CA (as an `ssh-keygen` key) to certify the host key with; clients
    /// then trust `@cert-authority` instead of pinning the host key.
    pub host_ca: Option<KeyPair>,
    /// Use this host key instead of generating one (e.g. one a test had certified
    /// by Rampart's host CA).
    pub host_key: Option<KeyPair>,
    /// `HostCertificate` for [`SshdOptions::host_key`], made by someone else.
    pub host_cert: Option<PathBuf>,
    /// Host CA public key line for the `@cert-authority` known_hosts entry when
    /// `host_cert` came from elsewhere.
    pub host_ca_line: Option<String>,
    /// Extra config lines appended verbatim.
    pub extra_config: Vec<String>,
    /// `TrustedUserCAKeys` and `RevokedKeys` files someone else keeps (those
    /// `rampart host install` wrote, which `rampart host krl-sync` updates),
    /// instead of the ones this helper writes from `user_ca_keys`.
    pub trust_files: Option<(PathBuf, PathBuf)>,
}

/// A running sshd. Killed on drop.
#[derive(Debug)]
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    config: PathBuf,
    log: PathBuf,
    principals_dir: PathBuf,
    revoked_keys: PathBuf,
    known_hosts: PathBuf,
    host_key: KeyPair,
}

impl Sshd {
    /// Start an sshd trusting exactly `user_ca_key` (one OpenSSH public key line).
    pub fn start(user_ca_key: &str) -> Sshd {
        Self::start_with(SshdOptions {
            user_ca_keys: vec![user_ca_key.to_owned()],
            ..SshdOptions::default()
        })
    }

    /// Start an sshd with `opts`. Writes the config, checks it with `sshd -t`, runs
    /// `sshd -D -e -f CONF` and waits until the port accepts connections.
    pub fn start_with(opts: SshdOptions) -> Sshd {
        ensure_test_account();
        let sshd = require_peer("sshd");
        // sshd's privilege-separation directory; it must exist and be root-owned.
        fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");

        let dir = tempdir("sshd");
        let d = dir.path().to_path_buf();
        let host_key = opts
            .host_key
            .clone()
            .unwrap_or_else(|| KeyPair::ed25519(&d, "ssh_host_ed25519_key"));
        let signed_here = opts.host_ca.as_ref().map(|ca| {
            let mut c = Command::new(require_peer("ssh-keygen"));
            c.arg("-q")
                .arg("-s")
                .arg(&ca.private)
                .args(["-h", "-I", "e2e-host", "-n", "127.0.0.1,localhost"])
                .args(["-V", "-5m:+1h"])
                .arg(&host_key.public);
            run(c).assert_success("sign the host key");
            crate::keys::cert_path_for(&host_key.public)
        });
        let host_cert = opts.host_cert.clone().or(signed_here);

        let trusted = d.join("trusted_user_ca_keys");
        let mut lines = opts.user_ca_keys.join("\n");
        lines.push('\n');
        fs::write(&trusted, lines).expect("write TrustedUserCAKeys");
        let principals_dir = d.join("principals");
        fs::create_dir_all(&principals_dir).expect("mkdir principals");
        // An empty RevokedKeys file is a valid, empty revocation list; a missing or
        // unreadable one would make sshd refuse every key.
        let revoked_keys = d.join("revoked_keys");
        fs::write(&revoked_keys, b"").expect("write RevokedKeys");

        let config = d.join("sshd_config");
        // The `Port` line goes in at each start attempt (see below).
        let mut conf = vec![
            "ListenAddress 127.0.0.1".to_owned(),
            format!("HostKey {}", host_key.private.display()),
            format!("PidFile {}", d.join("sshd.pid").display()),
            "UsePAM no".into(),
            "StrictModes no".into(),
            "PasswordAuthentication no".into(),
            "KbdInteractiveAuthentication no".into(),
            "PubkeyAuthentication yes".into(),
            "AuthorizedKeysFile none".into(),
            format!(
                "TrustedUserCAKeys {}",
                opts.trust_files
                    .as_ref()
                    .map_or(&trusted, |t| &t.0)
                    .display()
            ),
            format!("AuthorizedPrincipalsFile {}/%u", principals_dir.display()),
            format!(
                "RevokedKeys {}",
                opts.trust_files
                    .as_ref()
                    .map_or(&revoked_keys, |t| &t.1)
                    .display()
            ),
            "LogLevel VERBOSE".into(),
            "PermitRootLogin prohibit-password".into(),
            "MaxStartups 100".into(),
        ];
        if let Some(cert) = &host_cert {
            conf.push(format!("HostCertificate {}", cert.display()));
        }
        conf.extend(opts.extra_config.iter().cloned());
        conf.push(String::new());
        let write_config = |port: u16| {
            let mut text = conf.clone();
            text.insert(1, format!("Port {port}"));
            fs::write(&config, text.join("\n")).expect("write sshd_config");
        };
        // `-t` binds nothing: any port will do for the check.
        write_config(22);
        let mut check = Command::new(&sshd);
        check.arg("-t").arg("-f").arg(&config);
        run(check).assert_success("sshd -t (config check)");

        // When another process holds the port, sshd exits ("Cannot bind any
        // address") and a plain connect would reach that process and take it
        // for this sshd: readiness is sshd's own "Server listening" line.
        let log = d.join("sshd.log");
        let (port, child) = on_a_free_port("sshd", |port| {
            write_config(port);
            spawn_and_wait(&sshd, &config, &log, port).map(|child| (port, child))
        });

        let known_hosts = d.join("known_hosts");
        let ca_line = opts
            .host_ca_line
            .clone()
            .or_else(|| opts.host_ca.as_ref().map(KeyPair::public_line));
        let kh = match ca_line {
            Some(line) => format!("@cert-authority [127.0.0.1]:{port} {line}\n"),
            None => format!("[127.0.0.1]:{port} {}\n", host_key.public_line()),
        };
        fs::write(&known_hosts, kh).expect("write known_hosts");

        Sshd {
            dir,
            port,
            child,
            config,
            log,
            principals_dir,
            revoked_keys,
            known_hosts,
            host_key,
        }
    }

    /// Replace the `TrustedUserCAKeys` lines (sshd reads the file at each
    /// authentication), for a CA that only exists after sshd started.
    pub fn set_user_ca_keys(&self, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(self.dir.path().join("trusted_user_ca_keys"), text)
            .expect("rewrite TrustedUserCAKeys");
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// This sshd's private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file sshd runs with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// A known_hosts file that trusts this sshd's host key (pinned, or through the
    /// host CA with `@cert-authority`).
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// The host key.
    pub fn host_key(&self) -> &KeyPair {
        &self.host_key
    }

    /// Everything sshd logged so far (`-e`: the log goes to stderr, captured here).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines written after byte offset `from` (see [`Sshd::log_len`]), so a
    /// test can look only at what its last connection caused.
    pub fn log_since(&self, from: usize) -> String {
        self.log().get(from..).unwrap_or_default().to_owned()
    }

    /// Current length of the log, to pass to [`Sshd::log_since`] later.
    pub fn log_len(&self) -> usize {
        self.log().len()
    }

    /// Set the principals accepted for local account `login`
    /// (`AuthorizedPrincipalsFile DIR/%u`). sshd reads the file per connection.
    pub fn set_principals(&self, login: &str, principals: &[&str]) {
        let mut text = principals.join("\n");
        text.push('\n');
        write_atomic(&self.principals_dir.join(login), text.as_bytes());
    }

    /// Replace the `RevokedKeys` file (a binary KRL, or an empty file for none).
    /// sshd opens it afresh for every key it checks, so no reload is needed.
    pub fn set_revoked_keys(&self, krl: &[u8]) {
        write_atomic(&self.revoked_keys, krl);
    }

    /// Copy a KRL file into place as `RevokedKeys`.
    pub fn set_krl_file(&self, krl: &Path) {
        let bytes = fs::read(krl).unwrap_or_else(|e| panic!("read {}: {e}", krl.display()));
        self.set_revoked_keys(&bytes);
    }

    /// The `RevokedKeys` path.
    pub fn revoked_keys_path(&self) -> &Path {
        &self.revoked_keys
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        kill9(&mut self.child);
    }
}

/// Write through a temporary file and rename, so sshd never reads half a file.
fn write_atomic(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .unwrap_or_else(|e| panic!("open {}: {e}", tmp.display()));
        std::io::Write::write_all(&mut f, bytes).expect("write");
    }
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// Log in to `sshd` as `login` with the real `ssh` client, using private key
/// `identity` and (if given) certificate `cert`, and run `true`.
///
/// `-F /dev/null` keeps the machine's and the user's ssh config out of the test;
/// `BatchMode` forbids prompts; `IdentitiesOnly` stops ssh from offering any
/// agent key, so the outcome depends on this key and certificate alone.
pub fn ssh_login(sshd: &Sshd, login: &str, identity: &Path, cert: Option<&Path>) -> CmdOutput {
    ssh_login_trusting(sshd, sshd.known_hosts(), None, login, identity, cert)
}

/// [`ssh_login`], checking the host key against `known_hosts` (e.g. the one
/// `rampart login` wrote, with the host CA's `@cert-authority` line) under the
/// name `host_key_alias` (the name a host certificate carries) when given.
pub fn ssh_login_trusting(
    sshd: &Sshd,
    known_hosts: &Path,
    host_key_alias: Option<&str>,
    login: &str,
    identity: &Path,
    cert: Option<&Path>,
) -> CmdOutput {
    let mut c = Command::new(require_peer("ssh"));
    c.env_remove("SSH_AUTH_SOCK")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("IdentityFile={}", identity.display()));
    if let Some(cert) = cert {
        c.arg("-o")
            .arg(format!("CertificateFile={}", cert.display()));
    }
    if let Some(alias) = host_key_alias {
        c.arg("-o").arg(format!("HostKeyAlias={alias}"));
    }
    c.arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-p",
        ])
        .arg(sshd.port().to_string())
        .arg(format!("{login}@127.0.0.1"))
        .arg("true");
    run_timeout(c, None, Duration::from_secs(30))
}

/// Log in to `sshd` as `login` and run `true` with the real `ssh` client driven only
/// by the ssh config file `config` (e.g. the one `rampart login` writes): identity,
/// certificate and known_hosts all come from it. Host keys are checked strictly.
pub fn ssh_with_config(sshd: &Sshd, config: &Path, login: &str) -> CmdOutput {
    let mut c = Command::new(require_peer("ssh"));
    c.env_remove("SSH_AUTH_SOCK")
        .arg("-F")
        .arg(config)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "ConnectTimeout=10",
            "-p",
        ])
        .arg(sshd.port().to_string())
        .arg(format!("{login}@127.0.0.1"))
        .arg("true");
    run_timeout(c, None, Duration::from_secs(30))
}

/// Run `sshd -D -e -f config` logging to `log`, and wait until it says it
/// listens on `port`. `Err` with its log when it could not bind the port
/// (another process took it first); any other early exit or a stall panics.
fn spawn_and_wait(sshd: &Path, config: &Path, log: &Path, port: u16) -> Result<Child, String> {
    let log_file = File::create(log).expect("create sshd log");
    let mut cmd = Command::new(sshd);
    cmd.arg("-D").arg("-e").arg("-f").arg(config);
    let desc = describe(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup log"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));
    let listening = format!("Server listening on 127.0.0.1 port {port}.");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let said = fs::read_to_string(log).unwrap_or_default();
        if said.contains(&listening) {
            return Ok(child);
        }
        if let Ok(Some(st)) = child.try_wait() {
            if said.contains("Address already in use") {
                return Err(said);
            }
            panic!("sshd exited ({st}) before listening on {port}\n{said}");
        }
        if Instant::now() > deadline {
            let state = stall_report(child.id());
            kill9(&mut child);
            panic!(
                "sshd did not listen on {port} within {} s ({state})\n{said}",
                START_TIMEOUT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
