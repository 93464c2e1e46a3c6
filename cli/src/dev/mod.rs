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

mod bastion;

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rampart_api::{
    paths, Client, ClientError, CreateUserRequest, EnrollFinishRequest, EnrollFinishResponse,
    EnrollStartRequest, EnrollStartResponse, FactorProof, Fingerprint, InviteRequest,
    InviteResponse, LoginRequest, LoginResponse,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::admin::enroll_command;
use crate::ca::CaTarget;
use crate::cli::DevArgs;
use crate::error::{io_detail, CliError};
use crate::home::{write_atomic, Config, Home, Session};
use crate::ssh;

/// How long the CA may take to answer `/v1/health` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping CA gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Name of the demo user and its group.
const DEMO_USER: &str = "demo";
const DEMO_GROUP: &str = "engineers";

/// What `rampart-ca init --json` prints (one JSON object on stdout).
#[derive(Deserialize)]
struct InitOutput {
    config: PathBuf,
    url: String,
    tls_fingerprint: String,
    admin_user: String,
    admin_invite: String,
    #[serde(default)]
    invite_expires_at: Option<DateTime<Utc>>,
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

/// Log in as the bootstrap admin with the TOTP secret `first_run` saved.
fn admin_login_from_secrets(client: &Client, dir: &Path) -> Result<Client, CliError> {
    let path = dir.join("admin-secrets.txt");
    let text =
        Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| CliError::no_input(&path, &e))?);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .ok_or_else(|| CliError::Dev(format!("{} has no {name} line", path.display())))
    };
    let user = field("user:")?;
    let uri = Zeroizing::new(field("totp_uri:")?);
    // This step's code may already have been used (a restart within 30 s):
    // the CA refuses a replay, so fall back to the next step's.
    let mut last = None;
    for offset in [0, 30] {
        let code = totp_code_at(&uri, unix_now() + offset)?;
        match client.post_json::<_, LoginResponse>(
            paths::LOGIN,
            &LoginRequest {
                user: user.clone(),
                factor: FactorProof::Totp {
                    code: code.to_string(),
                },
            },
        ) {
            Ok(login) => return Ok(client.clone().with_token(login.session_token.as_str())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || CliError::Dev("admin login failed".to_owned()),
        Into::into,
    ))
}

/// Append the dev bastion role to the new CA's policy (before it first starts),
/// with the bastion registered for the target given (or the local sshd).
fn add_dev_policy(
    config: &Path,
    target_spec: Option<&str>,
    bastion_listen: &str,
) -> Result<(), CliError> {
    let bastion = bastion::dial_address(bastion::resolve_listen(bastion_listen)?);
    let target = match target_spec {
        Some(spec) => bastion::parse_target(spec).map_err(CliError::Usage)?.0,
        None => bastion::LOCAL_TARGET.to_owned(),
    };
    let policy = config
        .parent()
        .map(|d| d.join("policy.toml"))
        .ok_or_else(|| CliError::Dev(format!("{} has no directory", config.display())))?;
    let mut text = match std::fs::read_to_string(&policy) {
        Ok(t) => t,
        // Not where `init` puts it: leave the policy alone (bastion access is then
        // refused by policy, with the reason shown to the user).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "rampart: {} not found; the demo user gets no bastion role",
                policy.display()
            );
            return Ok(());
        }
        Err(e) => return Err(CliError::no_input(&policy, &e)),
    };
    text.push_str(&bastion::dev_policy(
        DEMO_USER,
        bastion::os_user().as_deref(),
        &target,
        bastion,
    ));
    write_atomic(&policy, text.as_bytes(), 0o644)
}

/// What the first run produced, for printing.
struct FirstRun {
    admin_secrets: PathBuf,
    admin_home: PathBuf,
    demo_invite: InviteResponse,
    user_ca_path: PathBuf,
    /// The bootstrap admin's fresh session, for joining the dev bastion.
    admin: Client,
}

fn print_first_run(user_home: &Home, target: &CaTarget, dir: &Path, r: &FirstRun) {
    println!();
    println!("Rampart dev CA is running at {}", target.url);
    println!("  TLS fingerprint: {}", target.fingerprint);
    println!(
        "  admin secrets:   {} (TOTP URI and recovery codes)",
        r.admin_secrets.display()
    );
    println!(
        "  act as admin:    rampart --home {} admin user list",
        r.admin_home.display()
    );
    println!();
    println!(
        "Try it as user `{DEMO_USER}` (group {DEMO_GROUP}); the invite expires {}:",
        r.demo_invite.expires_at.to_rfc3339()
    );
    println!("  {}", enroll_command(target, &r.demo_invite.code));
    println!("  rampart login");
    println!("Then put this line at the top of ~/.ssh/config:");
    println!("  {}", ssh::include_line(user_home));
    println!();
    println!("To let an sshd accept Rampart certificates:");
    println!(
        "  sudo cp {} /etc/ssh/rampart_user_ca.pub",
        r.user_ca_path.display()
    );
    println!("  and add to /etc/ssh/sshd_config, then reload sshd:");
    println!("    TrustedUserCAKeys /etc/ssh/rampart_user_ca.pub");
    println!(
        "(state is kept in {}; run `rampart dev` again to restart it)",
        dir.display()
    );
}

/// Enrol the bootstrap admin through the API, log in as admin, create the demo user
/// and its invite, and fetch the user CA key.
fn first_run(
    client: &Client,
    target: &CaTarget,
    dir: &Path,
    invite: &str,
) -> Result<FirstRun, CliError> {
    let start: EnrollStartResponse = client.post_json(
        paths::ENROLL_START,
        &EnrollStartRequest {
            invite: invite.to_owned(),
        },
    )?;
    let code = totp_code_at(&start.totp_uri, unix_now())?;
    let finish: EnrollFinishResponse = client.post_json(
        paths::ENROLL_FINISH,
        &EnrollFinishRequest {
            enrollment_token: start.enrollment_token.clone(),
            totp_code: code.to_string(),
        },
    )?;

    let admin_secrets = dir.join("admin-secrets.txt");
    let mut text = Zeroizing::new(format!(
        "# Rampart dev CA bootstrap admin. Keep this file private.\n\
         user: {}\nca: {}\nca_fingerprint: {}\ntotp_uri: {}\ntotp_secret: {}\nrecovery_codes:\n",
        finish.user, target.url, target.fingerprint, start.totp_uri, start.totp_secret
    ));
    for c in &finish.recovery_codes {
        text.push_str(&format!("  {c}\n"));
    }
    write_atomic(&admin_secrets, text.as_bytes(), 0o600)?;

    // The CA refuses a TOTP step that was already used (the enrolment's) and
    // accepts one step of skew, so log in with the code of the *next* 30 s step.
    let code = totp_code_at(&start.totp_uri, unix_now() + 30)?;
    let login: LoginResponse = client.post_json(
        paths::LOGIN,
        &LoginRequest {
            user: finish.user.clone(),
            factor: FactorProof::Totp {
                code: code.to_string(),
            },
        },
    )?;

    // Keep the admin session in DIR/admin, never in the user's own home.
    let admin_home = Home::new(dir.join("admin"));
    let mut config = Config::default();
    target.remember(&mut config);
    config.user = Some(login.user.clone());
    admin_home.save_config(&config)?;
    admin_home.save_session(&Session {
        token: login.session_token.clone(),
        user: login.user.clone(),
        admin: login.admin,
        mfa_method: login.mfa_method.clone(),
        mfa_time: login.mfa_time,
        expires_at: login.expires_at,
        cert_file: None,
        agent_added_key: None,
    })?;

    let admin = client.clone().with_token(login.session_token.as_str());
    match admin.post_json::<_, serde_json::Value>(
        paths::ADMIN_USERS,
        &CreateUserRequest {
            name: DEMO_USER.to_owned(),
            groups: vec![DEMO_GROUP.to_owned()],
            admin: false,
        },
    ) {
        // 409: a previous, interrupted first run already created it.
        Ok(_) | Err(ClientError::Decode(_)) | Err(ClientError::Api { status: 409, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let demo_invite: InviteResponse = admin.post_json(
        paths::ADMIN_INVITES,
        &InviteRequest {
            user: DEMO_USER.to_owned(),
            ttl_seconds: None,
        },
    )?;

    let user_ca = client.user_ca()?;
    let user_ca_path = dir.join("user_ca.pub");
    write_atomic(&user_ca_path, format!("{user_ca}\n").as_bytes(), 0o644)?;
    Ok(FirstRun {
        admin_secrets,
        admin_home: admin_home.dir().to_path_buf(),
        demo_invite,
        user_ca_path,
        admin,
    })
}

/// The RFC 6238 code of `uri` (an `otpauth://totp/…` URI) at Unix time `unix`.
fn totp_code_at(uri: &str, unix: u64) -> Result<Zeroizing<String>, CliError> {
    // `unchecked`: the CA chose the parameters; we only compute with them.
    let totp = totp_rs::TOTP::from_url_unchecked(uri)
        .map_err(|e| CliError::Dev(format!("the CA sent an unusable TOTP URI: {e:?}")))?;
    Ok(Zeroizing::new(totp.generate(unix)))
}

fn unix_now() -> u64 {
    crate::clock::unix_secs()
}

/// `--ca-bin`, else `rampart-ca` beside this executable, else on `PATH`.
fn find_ca_bin(flag: Option<&Path>) -> Result<PathBuf, CliError> {
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

/// `rampart-ca init --dir DIR --listen ADDR --json --insecure-passphrase-beside-keys`.
fn ca_init(bin: &Path, dir: &Path, args: &DevArgs) -> Result<InitOutput, CliError> {
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
fn parse_init(stdout: &str) -> Result<InitOutput, CliError> {
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
fn spawn_serve(bin: &Path, config: &Path) -> Result<Child, CliError> {
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
fn wait_ready(client: &Client, guard: &mut ChildGuard) -> Result<(), CliError> {
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
struct ChildGuard {
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
    fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .unwrap_or(0)
    }

    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>, CliError> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait().context("cannot check on rampart-ca")?),
            None => Ok(None),
        }
    }

    /// Wait for the child to exit on its own (or because a signal was forwarded).
    fn wait(&mut self) -> Result<std::process::ExitStatus, CliError> {
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
struct SignalForwarder {
    handle: signal_hook::iterator::Handle,
    signalled: Arc<AtomicBool>,
}

impl std::fmt::Debug for SignalForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalForwarder").finish_non_exhaustive()
    }
}

impl SignalForwarder {
    fn install(pid: i32) -> Result<Self, CliError> {
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

    fn signalled(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.handle.close();
    }
}

#[cfg(test)]
mod tests {
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
