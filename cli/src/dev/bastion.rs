//! The bastion half of `rampart dev`: join a local `rampart-bastion` to the dev
//! CA, register a demo target, and run it beside the CA.
//!
//! Owns the `DIR/bastion/` directory (the bastion's host key, CA credential,
//! `bastion.toml` and recordings) and the dev-only policy role that lets the
//! demo user through it. Everything here goes through the same public
//! interfaces an operator uses: `POST /v1/admin/bastion-tokens` with the admin's
//! session, `rampart-bastion join`, and the bastion config file.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_api::{paths, BastionTokenRequest, BastionTokenResponse, Client};

use crate::ca::CaTarget;
use crate::error::{io_detail, CliError};

/// The bastion's name with the CA: the principal of its host certificate, so
/// clients must dial it by this name for `StrictHostKeyChecking` to pass.
pub const BASTION_NAME: &str = "localhost";
/// Name of the dev policy role added for the demo user.
const DEV_ROLE: &str = "dev-bastion";
/// How long the bastion may take to accept TCP connections after start.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A target for the dev bastion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevTarget {
    /// The name users type (`ssh -J … login@NAME`).
    pub name: String,
    /// Where the bastion dials it.
    pub address: String,
    /// Its SSH port.
    pub port: u16,
    /// A pinned host public key line, or `None` for "host-CA-signed".
    pub host_key: Option<String>,
}

/// Parse `NAME=HOST[:PORT]`.
pub fn parse_target(spec: &str) -> Result<(String, String, u16), String> {
    let (name, addr) = spec
        .split_once('=')
        .ok_or_else(|| format!("--target {spec:?}: expected NAME=HOST[:PORT]"))?;
    let valid_name = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.starts_with('-');
    if !valid_name {
        return Err(format!(
            "--target {spec:?}: the name must be a host name (letters, digits, '-', '.')"
        ));
    }
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("--target {spec:?}: bad port {p:?}"))?,
        ),
        _ => (addr, 22),
    };
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('"') {
        return Err(format!("--target {spec:?}: bad host {host:?}"));
    }
    Ok((name.to_owned(), host.to_owned(), port))
}

/// The target to register: the one given, else the local sshd when port 22
/// answers and its Ed25519 host key is readable (pinned, since a stock local
/// sshd has no host certificate), else none.
pub fn choose_target(
    given: Option<&str>,
    host_key_file: Option<&Path>,
) -> Result<Option<DevTarget>, CliError> {
    let pinned = |file: &Path| -> Result<String, CliError> {
        let text = std::fs::read_to_string(file).map_err(|e| CliError::no_input(file, &e))?;
        let line = text.lines().next().unwrap_or("").trim().to_owned();
        if line.split_whitespace().count() < 2 {
            return Err(CliError::Dev(format!(
                "{} does not hold an OpenSSH public key",
                file.display()
            )));
        }
        Ok(line)
    };
    if let Some(spec) = given {
        let (name, address, port) = parse_target(spec).map_err(CliError::Usage)?;
        let host_key = host_key_file.map(pinned).transpose()?;
        return Ok(Some(DevTarget {
            name,
            address,
            port,
            host_key,
        }));
    }
    let local: SocketAddr = ([127, 0, 0, 1], 22).into();
    if TcpStream::connect_timeout(&local, Duration::from_millis(300)).is_err() {
        return Ok(None);
    }
    let key = host_key_file.unwrap_or(Path::new("/etc/ssh/ssh_host_ed25519_key.pub"));
    match pinned(key) {
        Ok(line) => Ok(Some(DevTarget {
            name: LOCAL_TARGET.to_owned(),
            address: "127.0.0.1".to_owned(),
            port: 22,
            host_key: Some(line),
        })),
        Err(_) => Ok(None),
    }
}

/// Name of the target `rampart dev` finds on its own (the local sshd).
pub const LOCAL_TARGET: &str = "local-sshd";

/// The policy text appended on first run: the demo user may reach any target
/// through the bastion as itself or as `os_user` (the account running `rampart
/// dev`, so the local sshd has someone to log in as), and the dev bastion is
/// registered for `target` (the CA signs it host certificates for no other name).
/// `bastion` is where users dial the dev bastion (`rampart ls`, `rampart ssh`).
pub fn dev_policy(
    demo_user: &str,
    os_user: Option<&str>,
    target: &str,
    bastion: SocketAddr,
) -> String {
    let mut logins = vec!["\"{user}\"".to_owned()];
    if let Some(u) = os_user.filter(|u| {
        !u.is_empty()
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    }) {
        logins.push(format!("\"{u}\""));
    }
    format!(
        "\n# Added by `rampart dev`: the demo user may go through the dev bastion to\n\
         # any target, as itself or as the account that ran `rampart dev`.\n\
         [roles.{DEV_ROLE}]\n\
         principals = [\"{{user}}\"]\n\
         max_ttl = \"8h\"\n\
         min_factor = \"otp\"\n\
         extensions = [\"permit-pty\"]\n\
         targets = {{ allow = [\"*\"] }}\n\
         logins = [{}]\n\
         \n[users]\n\
         {demo_user} = [\"{DEV_ROLE}\"]\n\
         \n# The dev bastion may stand in for this target only; add names here\n\
         # (globs such as \"db-*\" work) for more.\n\
         [bastions.{BASTION_NAME}]\n\
         targets = [\"{target}\"]\n\
         address = \"{bastion}\"\n",
        logins.join(", ")
    )
}

/// The account running this process, for the dev policy's extra login.
pub fn os_user() -> Option<String> {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let uid = rustix::process::getuid().as_raw();
            std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
                p.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.get(2) == Some(&uid.to_string().as_str()))
                        .then(|| f.first().map(|s| (*s).to_owned()))
                        .flatten()
                })
            })
        })
}

/// `--bastion-bin`, else `rampart-bastion` beside this executable, else on PATH.
pub fn find_bastion_bin(flag: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(CliError::Dev(format!("{} does not exist", p.display())))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("rampart-bastion")))
        .filter(|p| p.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("rampart-bastion"))
                .find(|p| p.is_file())
        })
    };
    beside.or_else(on_path).ok_or_else(|| {
        CliError::Dev(
            "cannot find `rampart-bastion` next to `rampart` or on PATH (build it with `cargo build -p rampart-bastion`, pass --bastion-bin, or --no-bastion)"
                .to_owned(),
        )
    })
}

/// Join a bastion in `dir` with a fresh token from `admin`, listening on
/// `listen`, with `target` registered. Returns its config file.
pub fn join(
    bin: &Path,
    admin: &Client,
    ca: &CaTarget,
    dir: &Path,
    listen: SocketAddr,
    target: Option<&DevTarget>,
) -> Result<PathBuf, CliError> {
    let token: BastionTokenResponse = admin.post_json(
        paths::ADMIN_BASTION_TOKENS,
        &BastionTokenRequest {
            name: Some(BASTION_NAME.to_owned()),
            ttl_seconds: Some(600),
        },
    )?;
    let token = token.token;
    // The token goes through the environment, not argv (visible in `ps`).
    let out = Command::new(bin)
        .args(["join", "--ca", &ca.url, "--ca-fingerprint"])
        .arg(ca.fingerprint.to_string())
        .args(["--name", BASTION_NAME, "--dir"])
        .arg(dir)
        .env("RAMPART_BASTION_TOKEN", token.expose())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| CliError::Dev(format!("cannot run {}: {}", bin.display(), io_detail(&e))))?;
    if !out.status.success() {
        return Err(CliError::Dev(format!(
            "`rampart-bastion join` failed ({}); see its message above",
            out.status
        )));
    }
    let config = dir.join("bastion.toml");
    let text = std::fs::read_to_string(&config).map_err(|e| CliError::no_input(&config, &e))?;
    let text = with_listen_and_target(&text, listen, target)?;
    crate::home::write_atomic(&config, text.as_bytes(), 0o600)?;
    Ok(config)
}

/// The joined config with our listen address and the target appended.
fn with_listen_and_target(
    text: &str,
    listen: SocketAddr,
    target: Option<&DevTarget>,
) -> Result<String, CliError> {
    let mut replaced = false;
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if !replaced && line.trim_start().starts_with("listen =") {
            let _ = writeln!(out, "listen = \"{listen}\"");
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        return Err(CliError::Dev(
            "the bastion config written by `join` has no `listen =` line".to_owned(),
        ));
    }
    if let Some(t) = target {
        let host_key = t.host_key.as_deref().unwrap_or("host-ca");
        let _ = write!(
            out,
            "\n# Added by `rampart dev`.\n[[targets]]\nname = \"{}\"\naddress = \"{}\"\nport = {}\nhost_key = \"{}\"\n",
            t.name, t.address, t.port, host_key
        );
    }
    Ok(out)
}

/// Start `rampart-bastion serve` in its own process group and wait until it
/// accepts TCP connections on `listen`.
pub fn spawn_serve(bin: &Path, config: &Path, listen: SocketAddr) -> Result<Child, CliError> {
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Dev(format!("cannot run {}: {}", bin.display(), io_detail(&e))))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::Dev(format!(
                "rampart-bastion exited before it was ready ({status}); see its message above"
            )));
        }
        if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CliError::Dev(format!(
                "rampart-bastion did not listen on {listen} within {}s",
                READY_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lines that tell the user how to go through the bastion.
pub fn usage_lines(
    listen: SocketAddr,
    target: Option<&DevTarget>,
    login: &str,
    config: &Path,
) -> Vec<String> {
    let jump = if listen.ip().is_loopback() {
        format!("rampart@{BASTION_NAME}:{}", listen.port())
    } else {
        format!("rampart@{listen}")
    };
    let mut lines = vec![format!(
        "Bastion (rampart-bastion) is listening on {listen}, joined as {BASTION_NAME:?}."
    )];
    match target {
        Some(t) => {
            lines.push(format!(
                "  target {:?} -> {}:{} ({})",
                t.name,
                t.address,
                t.port,
                if t.host_key.is_some() {
                    "pinned host key"
                } else {
                    "host certificate from the Rampart host CA"
                }
            ));
            // The CLI's ssh_config offers the certificate to the bastion (the
            // CA names it) and to the `--ssh-host` patterns: the inner hop of
            // `-J` dials the target's name, so it must be one of them.
            lines.push(format!(
                "  after `rampart login --ssh-host {0}` as demo:  ssh -J {jump} {login}@{0}",
                t.name
            ));
            lines.push(format!(
                "  or with no ssh config:          ssh -p {} {login}+{}@{BASTION_NAME}",
                listen.port(),
                t.name
            ));
            lines.push(
                "  (the target's sshd must trust the user CA: see TrustedUserCAKeys below)"
                    .to_owned(),
            );
        }
        // The target is chosen when the bastion first joins; later runs keep
        // the config, so say how to change it rather than suggest a flag.
        None => lines.push(format!(
            "  no target yet (nothing listened on 127.0.0.1:22): add a [[targets]] entry to {} \
             and run again, or remove {} and run again with --target NAME=HOST[:PORT]",
            config.display(),
            config
                .parent()
                .map_or_else(|| config.display().to_string(), |d| d.display().to_string())
        )),
    }
    lines
}

/// Where a user on this machine dials a bastion listening on `listen`: the
/// loopback address when it listens on every address.
pub fn dial_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Resolve `host:port` text (for `--bastion-listen`) to one address.
pub fn resolve_listen(text: &str) -> Result<SocketAddr, CliError> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::Usage(format!("--bastion-listen {text:?}: not an address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_refuse_garbage() {
        assert_eq!(
            parse_target("db-1=10.0.0.5:2200").unwrap(),
            ("db-1".into(), "10.0.0.5".into(), 2200)
        );
        assert_eq!(
            parse_target("web=web.internal").unwrap(),
            ("web".into(), "web.internal".into(), 22)
        );
        for bad in [
            "db-1",
            "=h",
            "db 1=h",
            "-x=h",
            "db=h:0",
            "db=h:99999",
            "db=h:x",
            "db=",
            "db=a\"b",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dev_policy_parses_and_grants_the_demo_user() {
        let text = format!(
            "{}{}",
            include_str!("../../../ca/src/default_policy.toml"),
            dev_policy(
                "demo",
                Some("root"),
                "local-sshd",
                dial_address("0.0.0.0:2222".parse().unwrap())
            )
        );
        let policy = rampart_policy::Policy::from_toml(&text).unwrap();
        let now = chrono::Utc::now();
        let req = rampart_policy::AccessRequest {
            user: "demo",
            groups: &["engineers".to_owned()],
            factor: rampart_policy::Factor::Totp,
            mfa_time: now,
            login: "root",
            target: "local-sshd",
            labels: &Default::default(),
        };
        assert!(rampart_policy::evaluate_access(&req, &policy, now).is_ok());
        let other = rampart_policy::AccessRequest {
            user: "mallory",
            ..req
        };
        assert!(rampart_policy::evaluate_access(&other, &policy, now).is_err());
        // A user name that is not a plain account name is not added as a login.
        let any = "127.0.0.1:2222".parse().unwrap();
        assert!(!dev_policy("demo", Some("a\"b"), "t", any).contains("a\"b"));
        // Users dial the bastion where it listens, loopback for "every address".
        assert_eq!(
            policy.bastion_address(BASTION_NAME),
            ("127.0.0.1".to_owned(), 2222)
        );
        assert_eq!(
            dial_address("[::]:2200".parse().unwrap()).to_string(),
            "[::1]:2200"
        );
        // The dev bastion serves the chosen target and nothing else.
        assert!(rampart_policy::bastion_may_serve(&policy, BASTION_NAME, "local-sshd").is_ok());
        assert!(rampart_policy::bastion_may_serve(&policy, BASTION_NAME, "prod-db").is_err());
    }

    #[test]
    fn without_a_target_the_lines_say_how_to_add_one() {
        let config = Path::new("/d/bastion/bastion.toml");
        let lines = usage_lines("127.0.0.1:2222".parse().unwrap(), None, "root", config);
        let text = lines.join("\n");
        assert!(
            text.contains("[[targets]] entry to /d/bastion/bastion.toml"),
            "{text}"
        );
        assert!(
            text.contains("remove /d/bastion and run again with --target"),
            "{text}"
        );
        let t = DevTarget {
            name: "box".into(),
            address: "10.0.0.5".into(),
            port: 22,
            host_key: None,
        };
        let text =
            usage_lines("127.0.0.1:2222".parse().unwrap(), Some(&t), "root", config).join("\n");
        assert!(
            text.contains("after `rampart login --ssh-host box` as demo:  ssh -J rampart@localhost:2222 root@box"),
            "{text}"
        );
        assert!(text.contains("ssh -p 2222 root+box@localhost"), "{text}");
    }

    #[test]
    fn config_gets_listen_and_target() {
        let text = "version = 1\nname = \"localhost\"\nlisten = \"127.0.0.1:2222\"\n[ca]\n";
        let t = DevTarget {
            name: "local-sshd".into(),
            address: "127.0.0.1".into(),
            port: 22,
            host_key: Some("ssh-ed25519 AAAAC3Nz".into()),
        };
        let out =
            with_listen_and_target(text, "127.0.0.1:2300".parse().unwrap(), Some(&t)).unwrap();
        assert!(out.contains("listen = \"127.0.0.1:2300\"\n"));
        assert!(!out.contains("2222"));
        assert!(out.ends_with(
            "[[targets]]\nname = \"local-sshd\"\naddress = \"127.0.0.1\"\nport = 22\nhost_key = \"ssh-ed25519 AAAAC3Nz\"\n"
        ));
        assert!(
            with_listen_and_target("version = 1\n", "127.0.0.1:1".parse().unwrap(), None).is_err()
        );
    }
}
