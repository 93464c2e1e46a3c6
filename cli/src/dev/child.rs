//! The `rampart-ca` child: finding the binary, `init --json`, `serve` in
//! its own process group, waiting until it answers, stopping it on every
//! way out ([`ChildGuard`]) and passing signals on ([`SignalForwarder`]).

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rampart_api::{Client, ClientError};
use serde::Deserialize;

use super::{READY_TIMEOUT, STOP_GRACE};
use crate::cli::DevArgs;
use crate::error::{io_detail, CliError};

/// What `rampart-ca init --json` prints (one JSON object on stdout).
#[derive(Deserialize)]
pub(super) struct InitOutput {
    pub(super) config: PathBuf,
    pub(super) url: String,
    pub(super) tls_fingerprint: String,
    pub(super) admin_user: String,
    pub(super) admin_invite: String,
    #[serde(default)]
    pub(super) invite_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for InitOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutput")
            .field("config", &self.config)
            .field("url", &self.url)
            .field("admin_user", &self.admin_user)
            .field("invite_expires_at", &self.invite_expires_at)
            .finish_non_exhaustive()
    }
}

/// `--ca-bin`, else `rampart-ca` beside this executable, else on `PATH`.
pub(super) fn find_ca_bin(flag: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(CliError::Dev(format!("{} does not exist", p.display())))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("rampart-ca")));
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("rampart-ca"))
            .find(|p| p.is_file())
    });
    beside
        .filter(|p| p.is_file())
        .or(on_path)
        .ok_or_else(|| {
            CliError::Dev(
                "cannot find `rampart-ca` next to `rampart` or on PATH (build it with `cargo build -p rampart-ca`, or pass --ca-bin)"
                    .to_owned(),
            )
        })
}

/// `rampart-ca init --dir DIR --listen ADDR --json --insecure-passphrase-beside-keys`.
pub(super) fn ca_init(bin: &Path, dir: &Path, args: &DevArgs) -> Result<InitOutput, CliError> {
    println!("Initialising a dev CA in {} …", dir.display());
    let out = Command::new(bin)
        .arg("init")
        .arg("--dir")
        .arg(dir)
        .arg("--listen")
        .arg(args.listen.to_string())
        .arg("--json")
        // A dev CA is throwaway: its passphrase may sit beside its keys.
        .arg("--insecure-passphrase-beside-keys")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| CliError::Dev(format!("cannot run {}: {}", bin.display(), io_detail(&e))))?;
    if !out.status.success() {
        return Err(CliError::Dev(format!(
            "`rampart-ca init` failed ({}); see its message above",
            out.status
        )));
    }
    parse_init(&String::from_utf8_lossy(&out.stdout))
}

/// The JSON object `init --json` prints (the last non-empty line, in case the CA
/// prints something before it).
pub(super) fn parse_init(stdout: &str) -> Result<InitOutput, CliError> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line.trim()).map_err(|e| {
        CliError::Dev(format!(
            "`rampart-ca init --json` printed something unexpected: {e}"
        ))
    })
}

/// Start `rampart-ca serve --config FILE` in its own process group, passing its
/// stdout through line by line (stderr is inherited).
pub(super) fn spawn_serve(bin: &Path, config: &Path) -> Result<Child, CliError> {
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Dev(format!("cannot run {}: {}", bin.display(), io_detail(&e))))?;
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                match line {
                    Ok(l) => println!("{l}"),
                    Err(_) => break,
                }
            }
        });
    }
    Ok(child)
}

/// Poll `/v1/health` until the CA answers, the child dies, or time runs out.
pub(super) fn wait_ready(client: &Client, guard: &mut ChildGuard) -> Result<(), CliError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = guard.try_wait()? {
            return Err(CliError::Dev(format!(
                "rampart-ca exited before it was ready ({status}); see its message above"
            )));
        }
        match client.health() {
            Ok(_) => return Ok(()),
            Err(ClientError::Transport { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(CliError::Dev(format!(
                    "rampart-ca did not become ready: {e}"
                )))
            }
        }
    }
}

/// Owns the CA child: on drop (any early return), asks it to stop with SIGTERM,
/// waits a grace period, then kills it.
pub(super) struct ChildGuard {
    child: Option<Child>,
}

impl std::fmt::Debug for ChildGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildGuard")
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

impl ChildGuard {
    pub(super) fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    pub(super) fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .unwrap_or(0)
    }

    pub(super) fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>, CliError> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait().context("cannot check on rampart-ca")?),
            None => Ok(None),
        }
    }

    /// Wait for the child to exit on its own (or because a signal was forwarded).
    pub(super) fn wait(&mut self) -> Result<std::process::ExitStatus, CliError> {
        match self.child.take() {
            Some(mut c) => Ok(c.wait().context("cannot wait for rampart-ca")?),
            None => Err(CliError::Dev("rampart-ca is not running".to_owned())),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::TERM,
            );
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// Forwards SIGINT/SIGTERM/SIGHUP to the child; a second signal sends SIGKILL.
pub(super) struct SignalForwarder {
    handle: signal_hook::iterator::Handle,
    signalled: Arc<AtomicBool>,
}

impl std::fmt::Debug for SignalForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalForwarder").finish_non_exhaustive()
    }
}

impl SignalForwarder {
    pub(super) fn install(pid: i32) -> Result<Self, CliError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("cannot install signal handlers")?;
        let handle = signals.handle();
        let signalled = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&signalled);
        let target = Arc::new(AtomicI32::new(pid));
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let Some(pid) = rustix::process::Pid::from_raw(target.load(Ordering::SeqCst))
                else {
                    continue;
                };
                let first = !seen.swap(true, Ordering::SeqCst);
                let forward = if first {
                    rustix::process::Signal::from_named_raw(sig)
                } else {
                    Some(rustix::process::Signal::KILL)
                };
                if let Some(s) = forward {
                    let _ = rustix::process::kill_process(pid, s);
                }
                if first {
                    eprintln!("rampart: stopping rampart-ca (signal again to kill it)");
                }
            }
        });
        Ok(SignalForwarder { handle, signalled })
    }

    pub(super) fn signalled(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }

    pub(super) fn close(&self) {
        self.handle.close();
    }
}
