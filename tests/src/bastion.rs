//! A real `rampart-bastion`, joined to a harness [`Ca`] with a token from
//! `rampart admin bastion-token`, serving on a loopback port, and the stock
//! `ssh` client configuration that reaches targets through it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::Enrolled;
use crate::process::{describe, kill9, run_timeout, terminate, CmdOutput};
use crate::sshd::{Sshd, SshdOptions, TEST_ACCOUNT};
use crate::{bin, free_port, require_peer, tempdir, Ca, KeyPair};

/// One target line for the bastion config.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Name users dial.
    pub name: String,
    /// Address the bastion connects to.
    pub address: String,
    /// Port.
    pub port: u16,
    /// `host-ca` or a pinned public key line.
    pub host_key: String,
}

impl TargetSpec {
    /// A target on this host at `port` whose host certificate the bastion
    /// checks against the host CA (the usual test target).
    pub fn host_ca(name: &str, port: u16) -> TargetSpec {
        TargetSpec {
            name: name.to_owned(),
            address: "127.0.0.1".into(),
            port,
            host_key: "host-ca".into(),
        }
    }

    /// Its `[[targets]]` table in bastion.toml (label `env = "test"`).
    pub fn toml(&self) -> String {
        format!(
            "\n[[targets]]\nname = \"{}\"\naddress = \"{}\"\nport = {}\nlabels = {{ env = \"test\" }}\nhost_key = \"{}\"\n",
            self.name, self.address, self.port, self.host_key
        )
    }
}

/// A real sshd target that trusts only `ca`'s user CA and presents a host key
/// that `admin` had certified by the Rampart host CA for 127.0.0.1 (so the
/// bastion can check it with `host_key = "host-ca"`); `TEST_ACCOUNT` may log in
/// as itself. `extra_config`: more sshd_config lines. May be called more than
/// once per CA (each sshd gets its own host key directory).
pub fn host_ca_target(ca: &Ca, admin: &Enrolled, extra_config: Vec<String>) -> Sshd {
    let hostdir = (0..)
        .map(|i| match i {
            0 => ca.root().join("target-host"),
            i => ca.root().join(format!("target-host-{i}")),
        })
        .find(|d| !d.exists())
        .expect("a free host key directory");
    fs::create_dir_all(&hostdir).expect("mkdir target-host");
    let host_key = KeyPair::ed25519(&hostdir, "ssh_host_ed25519_key");
    let host_cert = hostdir.join("ssh_host_ed25519_key-cert.pub");
    admin
        .cli
        .admin(&[
            "host-cert",
            "--name",
            "127.0.0.1",
            "--pubkey",
            &host_key.public.display().to_string(),
            "-o",
            &host_cert.display().to_string(),
        ])
        .assert_success("rampart admin host-cert");
    let sshd = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![ca.user_ca_pub()],
        host_key: Some(host_key),
        host_cert: Some(host_cert),
        host_ca_line: Some(ca.host_ca_pub()),
        extra_config,
        ..SshdOptions::default()
    });
    sshd.set_principals(TEST_ACCOUNT, &[TEST_ACCOUNT]);
    sshd
}

/// A joined bastion. Killed on drop.
#[derive(Debug)]
pub struct Bastion {
    dir: tempfile::TempDir,
    name: String,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    starts: u32,
    /// The `$NOTIFY_SOCKET` of the running serve (systemd's readiness protocol).
    notify: Option<UnixDatagram>,
}

impl Bastion {
    /// `rampart admin bastion-token --name NAME` as `admin`, then
    /// `rampart-bastion join`, then the targets and a free port written into the
    /// config. Not started yet.
    pub fn join(ca: &Ca, admin: &Enrolled, name: &str, targets: &[TargetSpec]) -> Bastion {
        let out = admin.cli.admin(&["bastion-token", "--name", name]);
        out.assert_success("rampart admin bastion-token");
        // Run the join command exactly as printed, only with the package's state
        // directory swapped for a temporary one: it must be complete (every
        // argument the bastion requires) and parse with the bastion's own parser.
        let printed: Vec<String> = out
            .stdout
            .lines()
            .find_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let at = words
                    .windows(2)
                    .position(|w| w == ["rampart-bastion", "join"])?;
                Some(words.get(at + 2..)?.iter().map(|w| w.to_string()).collect())
            })
            .unwrap_or_else(|| panic!("no `rampart-bastion join` line\n{out}"));
        let value = |flag: &str| {
            printed
                .iter()
                .position(|w| w == flag)
                .and_then(|i| printed.get(i + 1))
                .cloned()
        };
        assert_eq!(value("--name").as_deref(), Some(name), "{out}");
        assert_eq!(value("--ca").as_deref(), Some(ca.url()), "{out}");
        assert_eq!(
            value("--ca-fingerprint").as_deref(),
            Some(ca.fingerprint()),
            "{out}"
        );
        assert!(
            printed.iter().any(|w| w.starts_with("--token=")),
            "`--token=T`: a token must never read as a flag\n{out}"
        );
        let dir = tempdir("bastion");
        let d = dir.path().join("etc");
        let mut args = printed.into_iter();
        let mut c = Command::new(bin("rampart-bastion"));
        c.arg("join");
        while let Some(w) = args.next() {
            if w == "--dir" {
                let _package_dir = args.next();
                c.arg("--dir").arg(&d);
            } else {
                c.arg(w);
            }
        }
        let out = run_timeout(c, None, Duration::from_secs(60));
        out.assert_success("rampart-bastion join");
        let config = d.join("bastion.toml");
        let port = free_port();
        let mut text = fs::read_to_string(&config).expect("read bastion.toml");
        text = text.replace(
            "listen = \"127.0.0.1:2222\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        );
        text = text.replace("# revocation_poll_ms = 2000", "revocation_poll_ms = 500");
        for t in targets {
            text.push_str(&t.toml());
        }
        fs::write(&config, text).expect("write bastion.toml");
        let log = dir.path().join("bastion.log");
        Bastion {
            dir,
            name: name.to_owned(),
            port,
            child: None,
            log,
            starts: 0,
            notify: None,
        }
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("etc/bastion.toml")
    }

    /// The directory holding the identity, config and recordings.
    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The bastion's name (its host certificate's principal).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SSH port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rampart-bastion check --config`.
    pub fn check(&self) -> CmdOutput {
        let mut c = Command::new(bin("rampart-bastion"));
        c.arg("check").arg("--config").arg(self.config_path());
        run_timeout(c, None, Duration::from_secs(30))
    }

    /// Start `serve` and wait (≤ 60 s) for its readiness line.
    pub fn start(&mut self) {
        self.start_while(|_| {});
    }

    /// [`Bastion::start`], calling `starting` with the process ID about ten
    /// times a second until the bastion is ready (to signal it mid-start-up).
    pub fn start_while(&mut self, mut starting: impl FnMut(u32)) {
        assert!(self.child.is_none(), "bastion already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open bastion log");
        let _ = writeln!(
            log,
            "===== rampart-bastion serve (start #{}) =====",
            self.starts
        );
        // A service manager's notify socket: serve must say READY=1 once it
        // listens, as Type=notify in packaging/systemd expects.
        let notify_path = self.dir.path().join(format!("notify-{}.sock", self.starts));
        let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
        notify
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("notify timeout");
        let mut c = Command::new(bastion_bin());
        c.arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RAMPART_LOG", "info,russh=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let desc = describe(&c);
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + crate::process::START_TIMEOUT;
        loop {
            starting(child.id());
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with("rampart-bastion listening on ") => break,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = child.wait().ok();
                    panic!("rampart-bastion serve exited ({st:?})\n{}", self.log());
                }
            }
            if Instant::now() > deadline {
                kill9(&mut child);
                panic!(
                    "rampart-bastion serve not ready within 60 s\n{}",
                    self.log()
                );
            }
        }
        let mut buf = [0u8; 256];
        let n = notify.recv(&mut buf).unwrap_or_else(|e| {
            kill9(&mut child);
            panic!("no READY=1 on $NOTIFY_SOCKET: {e}\n{}", self.log())
        });
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("READY=1\nSTATUS=listening on 127.0.0.1:{}\n", self.port),
            "sd_notify readiness"
        );
        self.notify = Some(notify);
        self.child = Some(child);
    }

    /// SIGTERM, wait up to 15 s; the daemon must have said STOPPING=1.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let status = terminate(&mut c, Duration::from_secs(15));
            if let Some(notify) = self.notify.take() {
                let mut buf = [0u8; 64];
                let n = notify.recv(&mut buf).unwrap_or(0);
                assert_eq!(
                    &buf[..n],
                    b"STOPPING=1\n",
                    "sd_notify on SIGTERM (exit {status:?})\n{}",
                    self.log()
                );
            }
        }
    }

    /// SIGHUP, as `systemctl reload rampart-bastion` sends, then wait (≤ 20 s)
    /// until the bastion logs whether it took the file. Returns what it logged
    /// since the signal: a line with `config reloaded` or `config reload refused`.
    pub fn reload(&self) -> String {
        let pid = self.child.as_ref().expect("bastion running").id();
        let mark = self.log().len();
        let mut c = Command::new("kill");
        c.args(["-HUP", &pid.to_string()]);
        run_timeout(c, None, Duration::from_secs(10)).assert_success("kill -HUP rampart-bastion");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let since = self.log().get(mark..).unwrap_or_default().to_owned();
            if since.contains("config reloaded") || since.contains("config reload refused") {
                return since;
            }
            assert!(
                Instant::now() < deadline,
                "the bastion said nothing about the reload within 20 s\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }

    /// Whether the serve process still runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The file the bastion logs to (stderr of every start).
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// Everything the bastion logged.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An ssh client config (for `ssh -F`) that reaches `targets` through this
    /// bastion with ProxyJump, using `user`'s key and certificate from `rampart
    /// login`, with `known_hosts` holding ONLY the `@cert-authority` line that
    /// `rampart login` wrote, and strict host key checking.
    pub fn ssh_config(&self, user: &Enrolled, dir: &Path, targets: &[&str]) -> PathBuf {
        let kh = user.cli.known_hosts();
        let kh_text = fs::read_to_string(&kh).expect("read known_hosts");
        let lines: Vec<&str> = kh_text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("@cert-authority "),
            "known_hosts must hold only the @cert-authority line:\n{kh_text}"
        );
        let path = dir.join(format!("ssh_config-{}", user.cli.user));
        let text = format!(
            "Host *\n  IdentityFile {id}\n  CertificateFile {cert}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  \
             BatchMode yes\n  PreferredAuthentications publickey\n  ConnectTimeout 15\n  LogLevel INFO\n  \
             ControlMaster no\n  ControlPath none\n\
             Host {name}\n  HostName 127.0.0.1\n  HostKeyAlias {name}\n  Port {port}\n  User rampart\n\
             Host {targets}\n  ProxyJump {name}\n",
            id = user.cli.identity().display(),
            cert = user.cli.cert().display(),
            kh = kh.display(),
            name = self.name,
            port = self.port,
            targets = targets.join(" "),
        );
        fs::write(&path, text).expect("write ssh config");
        path
    }
}

impl Drop for Bastion {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }
}

/// The bastion binary: `RAMPART_BASTION_BIN` if set (benchmarks point it at a
/// release build), else the workspace's debug build.
/// A copy of the ssh config `base` (from [`Bastion::ssh_config`]) that lets ssh
/// use keyboard-interactive, as a person at a terminal would: `BatchMode no`,
/// keyboard-interactive after publickey, one round of prompts. Written next to
/// `base` as `ssh_config-<tag>`.
pub fn interactive_ssh_config(base: &Path, tag: &str) -> PathBuf {
    let text = fs::read_to_string(base)
        .expect("read ssh config")
        .replace("BatchMode yes", "BatchMode no")
        .replace(
            "PreferredAuthentications publickey",
            "PreferredAuthentications publickey,keyboard-interactive\n  NumberOfPasswordPrompts 1",
        );
    let path = base.with_file_name(format!("ssh_config-{tag}"));
    fs::write(&path, text).expect("write ssh config");
    path
}

pub fn bastion_bin() -> PathBuf {
    match std::env::var_os("RAMPART_BASTION_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => bin("rampart-bastion"),
    }
}

/// Replace `key = …` under `[limits]` in the bastion config (benchmarks lift the
/// per-source connection rate).
pub fn set_limit(config: &Path, key: &str, value: u64) {
    let text = fs::read_to_string(config).expect("read bastion.toml");
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(&format!("{key} =")) {
                format!("{key} = {value}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    fs::write(config, out.join("\n") + "\n").expect("write bastion.toml");
}

/// `ssh -F config ARGS…` with no agent, stdin from `stdin`, under a deadline.
pub fn ssh(config: &Path, args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let mut c = Command::new(require_peer("ssh"));
    c.env_remove("SSH_AUTH_SOCK")
        .arg("-F")
        .arg(config)
        .args(args);
    run_timeout(c, stdin, timeout)
}

/// Spawn `ssh -F config ARGS…` in the background (stdout/stderr to files in `dir`).
pub fn ssh_spawn(config: &Path, args: &[&str], dir: &Path, tag: &str) -> (Child, PathBuf, PathBuf) {
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}.err"));
    let mut c = Command::new(require_peer("ssh"));
    c.env_remove("SSH_AUTH_SOCK")
        .arg("-F")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("create out"))
        .stderr(File::create(&err).expect("create err"));
    let child = c.spawn().expect("spawn ssh");
    (child, out, err)
}

/// A directory for a test's scratch files.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempdir(prefix)
}
