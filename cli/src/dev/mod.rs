//! `rampart dev`: a one-command local demo. It runs `rampart-ca` as a child
//! process, enrols the bootstrap admin through the public API on the first run,
//! creates a `demo` user with an invite, and prints the commands to try next.
//!
//! It never touches the user's own `$RAMPART_HOME`: the admin's session lives in
//! `DIR/admin/`, its secrets in `DIR/admin-secrets.txt` (0600).
//!
//! Shutdown: SIGINT, SIGTERM and SIGHUP are caught and forwarded to the child,
//! which runs in its own process group (so a terminal Ctrl-C reaches it exactly
//! once, through us); a second signal kills it. Every error path stops the child
//! too (see [`ChildGuard`]), so no CA is left running without its parent.
//!
//! With `--bastion`, [`bastion`] joins a local `rampart-bastion` to this CA and runs
//! it beside it.
//!
//! # Files
//!
//! - `mod.rs`: the run itself and `DIR/dev.json`.
//! - `child.rs`: the `rampart-ca` child process, its start, readiness, stop
//!   and signals.
//! - `setup.rs`: the first run (admin, demo policy, demo user) and the admin's
//!   later logins.
//! - `bastion.rs`: `--bastion`.

mod bastion;
mod child;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::Duration;

use anyhow::Context as _;
use rampart_api::{Client, Fingerprint};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ca::CaTarget;
use crate::cli::DevArgs;
use crate::error::CliError;
use crate::home::{write_atomic, Home};

use child::{ca_init, find_ca_bin, spawn_serve, wait_ready, ChildGuard, SignalForwarder};
use setup::{add_dev_policy, admin_login_from_secrets, first_run, print_first_run};

/// How long the CA may take to answer `/v1/health` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping CA gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Name of the demo user and its group.
const DEMO_USER: &str = "demo";
const DEMO_GROUP: &str = "engineers";

/// `DIR/dev.json` (0600): what later runs need. Holds the admin invite only until
/// first-run setup completes.
#[derive(Serialize, Deserialize)]
struct DevState {
    config: PathBuf,
    url: String,
    tls_fingerprint: String,
    admin_user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    admin_invite: Option<String>,
    setup_complete: bool,
}

impl std::fmt::Debug for DevState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevState")
            .field("config", &self.config)
            .field("url", &self.url)
            .field("setup_complete", &self.setup_complete)
            .finish_non_exhaustive()
    }
}

/// Run `rampart dev`. `user_home` is only used to print the Include line.
pub fn run(user_home: &Home, args: DevArgs) -> Result<ExitCode, CliError> {
    let bin = find_ca_bin(args.ca_bin.as_deref())?;
    let dir = absolute(&args.dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let state_path = dir.join("dev.json");

    let mut state = match read_state(&state_path)? {
        Some(s) => s,
        None => {
            let init = ca_init(&bin, &dir, &args)?;
            add_dev_policy(&init.config, args.target.as_deref(), &args.bastion_listen)?;
            let s = DevState {
                config: init.config,
                url: init.url,
                tls_fingerprint: init.tls_fingerprint,
                admin_user: init.admin_user,
                admin_invite: Some(init.admin_invite),
                setup_complete: false,
            };
            save_state(&state_path, &s)?;
            s
        }
    };
    let fingerprint = Fingerprint::parse(&state.tls_fingerprint).map_err(|_| {
        CliError::Dev(format!(
            "{} has an invalid tls_fingerprint; remove {} and run `rampart dev` again",
            state_path.display(),
            dir.display()
        ))
    })?;

    let child = spawn_serve(&bin, &state.config)?;
    let mut guard = ChildGuard::new(child);
    let forwarder = SignalForwarder::install(guard.pid())?;

    let client = Client::new(&state.url, fingerprint)?;
    if let Err(e) = wait_ready(&client, &mut guard) {
        // Stopped on request while starting: that is a clean stop, not a failure.
        return if forwarder.signalled() {
            let _ = guard.wait();
            Ok(ExitCode::SUCCESS)
        } else {
            Err(e)
        };
    }

    let target = CaTarget {
        url: state.url.clone(),
        fingerprint,
    };
    let mut admin: Option<Client> = None;
    if !state.setup_complete {
        let invite = state.admin_invite.clone().ok_or_else(|| {
            CliError::Dev(format!(
                "first-run setup did not finish and the admin invite is gone; remove {} and run `rampart dev` again",
                dir.display()
            ))
        })?;
        let report = first_run(&client, &target, &dir, &invite).map_err(|e| {
            CliError::Dev(format!(
                "first-run setup failed: {}; remove {} and run `rampart dev` again",
                e.one_line(),
                dir.display()
            ))
        })?;
        state.admin_invite = None;
        state.setup_complete = true;
        save_state(&state_path, &state)?;
        print_first_run(user_home, &target, &dir, &report);
        admin = Some(report.admin);
    } else {
        println!("Rampart dev CA is running at {}", target.url);
        println!("  TLS fingerprint: {}", target.fingerprint);
        println!(
            "  admin:           rampart --home {} admin user list",
            dir.join("admin").display()
        );
        println!(
            "  (the admin session expires; log in again with the TOTP secret in {})",
            dir.join("admin-secrets.txt").display()
        );
    }
    // Declared after `guard`, so dropped (stopped) before the CA on every return.
    let _bastion = if args.no_bastion {
        None
    } else {
        let child = start_bastion(&args, &client, admin, &target, &dir).map_err(|e| {
            CliError::Dev(format!(
                "the dev bastion did not start: {}; the CA is fine: run with --no-bastion to use it alone",
                e.one_line()
            ))
        })?;
        Some(ChildGuard::new(child))
    };
    println!("Press Ctrl-C to stop.");

    let status = guard.wait()?;
    forwarder.close();
    if status.success() || forwarder.signalled() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Dev(format!("rampart-ca stopped: {status}")))
    }
}

/// Join the dev bastion on its first start (with the first run's admin session,
/// or a fresh admin login from the saved TOTP secret), then run it.
fn start_bastion(
    args: &DevArgs,
    client: &Client,
    admin: Option<Client>,
    target: &CaTarget,
    dir: &Path,
) -> Result<Child, CliError> {
    let bin = bastion::find_bastion_bin(args.bastion_bin.as_deref())?;
    let listen = bastion::resolve_listen(&args.bastion_listen)?;
    let bastion_dir = dir.join("bastion");
    let config = bastion_dir.join("bastion.toml");
    let demo_target = if config.is_file() {
        read_bastion_target(&config)
    } else {
        let demo_target =
            bastion::choose_target(args.target.as_deref(), args.target_host_key.as_deref())?;
        let admin = match admin {
            Some(a) => a,
            None => admin_login_from_secrets(client, dir)?,
        };
        // A join interrupted half-way leaves a directory `join` would refuse.
        if bastion_dir.exists() {
            std::fs::remove_dir_all(&bastion_dir)
                .with_context(|| format!("cannot remove {}", bastion_dir.display()))?;
        }
        bastion::join(
            &bin,
            &admin,
            target,
            &bastion_dir,
            listen,
            demo_target.as_ref(),
        )?;
        demo_target
    };
    let child = bastion::spawn_serve(&bin, &config, listen)?;
    let login = bastion::os_user().unwrap_or_else(|| DEMO_USER.to_owned());
    println!();
    for line in bastion::usage_lines(listen, demo_target.as_ref(), &login, &config) {
        println!("{line}");
    }
    Ok(child)
}

/// The first `[[targets]]` entry of a dev bastion config, for the usage lines
/// of a restart (best effort: a config the user edited may have none).
fn read_bastion_target(config: &Path) -> Option<bastion::DevTarget> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        targets: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
        address: String,
        port: Option<u16>,
        host_key: Option<String>,
    }
    let text = std::fs::read_to_string(config).ok()?;
    let file: File = toml::from_str(&text).ok()?;
    let e = file.targets.into_iter().next()?;
    Some(bastion::DevTarget {
        name: e.name,
        address: e.address,
        port: e.port.unwrap_or(22),
        host_key: e.host_key.filter(|k| k != "host-ca"),
    })
}

/// `p` made absolute, without `.` components (the path ends up in printed
/// commands and in the CA's config).
fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(p)
    };
    Ok(joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect())
}

fn read_state(path: &Path) -> Result<Option<DevState>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CliError::Dev(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::no_input(path, &e)),
    }
}

fn save_state(path: &Path, state: &DevState) -> Result<(), CliError> {
    let text =
        Zeroizing::new(serde_json::to_string_pretty(state).context("cannot encode dev.json")?);
    write_atomic(path, text.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Instant;

    use super::child::parse_init;
    use super::setup::totp_code_at;
    use super::*;

    #[test]
    fn totp_codes_match_rfc6238_vectors() {
        // RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", 8 digits.
        let uri = "otpauth://totp/Rampart:admin?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Rampart&digits=8&period=30&algorithm=SHA1";
        assert_eq!(totp_code_at(uri, 59).unwrap().as_str(), "94287082");
        assert_eq!(
            totp_code_at(uri, 1_111_111_109).unwrap().as_str(),
            "07081804"
        );
        // The next-step code differs from the current one.
        assert_ne!(
            totp_code_at(uri, 1_111_111_109).unwrap().as_str(),
            totp_code_at(uri, 1_111_111_109 + 30).unwrap().as_str()
        );
        assert!(totp_code_at("https://not-otpauth", 0).is_err());
    }

    #[test]
    fn init_output_parses_and_is_redacted() {
        let out = "some banner\n{\"config\":\"/d/rampart-ca.toml\",\"url\":\"https://127.0.0.1:8443\",\"tls_fingerprint\":\"SHA256:x\",\"admin_user\":\"admin\",\"admin_invite\":\"INV-SECRET\",\"invite_expires_at\":\"2030-01-01T00:00:00Z\"}\n\n";
        let init = parse_init(out).unwrap();
        assert_eq!(init.url, "https://127.0.0.1:8443");
        assert_eq!(init.admin_invite, "INV-SECRET");
        assert!(!format!("{init:?}").contains("INV-SECRET"));
        assert_eq!(
            parse_init("nope").unwrap_err().exit_code(),
            crate::error::EXIT_DEV
        );
    }

    #[test]
    fn state_round_trips_privately() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("dev.json");
        assert!(read_state(&p).unwrap().is_none());
        let s = DevState {
            config: "/d/c.toml".into(),
            url: "https://127.0.0.1:1".into(),
            tls_fingerprint: "SHA256:x".into(),
            admin_user: "admin".into(),
            admin_invite: Some("INV".into()),
            setup_complete: false,
        };
        save_state(&p, &s).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = read_state(&p).unwrap().unwrap();
        assert_eq!(back.admin_invite.as_deref(), Some("INV"));
        assert!(!format!("{back:?}").contains("INV\""));
    }

    #[test]
    fn dir_is_made_absolute_and_clean() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute(Path::new("./.rampart-dev")).unwrap(),
            cwd.join(".rampart-dev")
        );
        assert_eq!(absolute(Path::new("/a/./b")).unwrap(), Path::new("/a/b"));
    }

    #[test]
    fn missing_ca_binary_is_a_clear_error() {
        let e = find_ca_bin(Some(Path::new("/nonexistent/rampart-ca"))).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/rampart-ca does not exist");
        assert_eq!(e.exit_code(), crate::error::EXIT_DEV);
    }

    #[test]
    fn guard_stops_a_running_child() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let guard = ChildGuard::new(child);
        let started = Instant::now();
        drop(guard);
        assert!(started.elapsed() < STOP_GRACE);
        // The process is gone (reaped), so /proc has no entry for it.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
