//! `rampart admin …`: thin wrappers over the CA's admin endpoints, using the saved
//! session token.
//!
//! The folder holds the commands only an admin's session can use: `rampart admin …`
//! here, and `rampart sessions …` (bastion sessions and their recordings) in
//! [`sessions`].

pub mod sessions;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rampart_api::{
    paths, CertResponse, Client, ClientError, CreateUserRequest, HostCertRequest, IdpLinkRequest,
    IdpLinkResponse, InviteRequest, InviteResponse, RevokeRequest, RevokeResponse,
    SetGroupsRequest, SetUserStateRequest, User,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ca::CaTarget;
use crate::cli::{AdminCommand, HostCertArgs, RevokeArgs, UserCommand};
use crate::duration::human;
use crate::error::CliError;
use crate::home::{write_atomic, Home};

/// An authenticated admin client and the CA it talks to.
struct Admin {
    client: Client,
    target: CaTarget,
}

impl Admin {
    fn open(home: &Home) -> Result<Self, CliError> {
        let session = home.live_session(crate::clock::now())?;
        let config = home.load_config()?;
        // A session without a saved CA cannot happen through `login`; treat it as
        // no session rather than guessing a CA.
        let target = CaTarget::for_session(&config)?;
        let client = target.client()?.with_token(session.token.clone());
        Ok(Admin { client, target })
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, CliError> {
        self.client
            .post_json(path, body)
            .map_err(CliError::from_session_call)
    }

    /// POST where the API does not name a response type (user create, state,
    /// groups): any 2xx counts, whatever its body.
    fn post_ack<B: Serialize>(&self, path: &str, body: &B) -> Result<(), CliError> {
        match self.client.post_json::<B, serde_json::Value>(path, body) {
            Ok(_) | Err(ClientError::Decode(_)) => Ok(()),
            Err(e) => Err(CliError::from_session_call(e)),
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.client
            .get_json(path)
            .map_err(CliError::from_session_call)
    }
}

/// Run an admin command.
pub fn run(home: &Home, cmd: AdminCommand) -> Result<ExitCode, CliError> {
    // Validate local inputs before touching the session, so a typo in a file name is
    // reported as such even when logged out.
    let host_key = match &cmd {
        AdminCommand::HostCert(a) => Some(read_host_key(&a.pubkey)?),
        _ => None,
    };
    let admin = Admin::open(home)?;
    match cmd {
        AdminCommand::User(u) => user(&admin, u),
        AdminCommand::Invite { user, ttl, oidc } => {
            let inv: InviteResponse = admin.post(
                paths::ADMIN_INVITES,
                &InviteRequest {
                    user,
                    ttl_seconds: Some(ttl.as_secs()),
                },
            )?;
            println!(
                "Invite for {} (single use, expires {}):",
                inv.user,
                inv.expires_at.to_rfc3339()
            );
            println!("  invite code: {}", inv.code.expose());
            println!("Send the user this command:");
            let mut line = enroll_command(&admin.target, inv.code.expose());
            if let Some(provider) = &oidc {
                // Any invite can be redeemed this way; the line only says how.
                line.push_str(&format!(" --oidc {provider}"));
            }
            println!("  {line}");
            if let Some(provider) = &oidc {
                println!(
                    "It logs them in at {provider} and links that account to {}.",
                    inv.user
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Revoke(r) => revoke(&admin, r),
        AdminCommand::Krl { output } => {
            let bytes = admin
                .client
                .get_bytes(paths::KRL)
                .map_err(CliError::from_session_call)?;
            write_atomic(&output, &bytes, 0o644)?;
            println!(
                "Wrote the KRL ({} bytes) to {}",
                bytes.len(),
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::BastionToken { name, ttl } => {
            let tok: rampart_api::BastionTokenResponse = admin.post(
                paths::ADMIN_BASTION_TOKENS,
                &rampart_api::BastionTokenRequest {
                    name,
                    ttl_seconds: Some(ttl.as_secs()),
                },
            )?;
            println!(
                "Bastion join token{} (single use, expires {}):",
                tok.name
                    .as_deref()
                    .map(|n| format!(" for {n}"))
                    .unwrap_or_default(),
                tok.expires_at.to_rfc3339()
            );
            println!("  join token: {}", tok.token.expose());
            println!("On the bastion (installed from the rampart-bastion package), run as root:");
            println!(
                "  runuser -u rampart-bastion -- {}",
                bastion_join_command(&admin.target, tok.token.expose(), tok.name.as_deref())
            );
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::HostToken {
            name,
            principals,
            ttl,
        } => {
            let tok: rampart_api::HostTokenResponse = admin.post(
                paths::ADMIN_HOST_TOKENS,
                &rampart_api::HostTokenRequest {
                    name,
                    extra_principals: principals,
                    ttl_seconds: Some(ttl.as_secs()),
                },
            )?;
            println!(
                "Host join token for {} (single use, expires {}):",
                std::iter::once(&tok.name)
                    .chain(&tok.extra_principals)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                tok.expires_at.to_rfc3339()
            );
            println!("  join token: {}", tok.token.expose());
            println!("On the host (with the rampart package installed), run as root:");
            println!(
                "  {}",
                host_install_command(&admin.target, tok.token.expose())
            );
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::HostTokens { json } => {
            let list: rampart_api::HostTokenList = admin.get(paths::ADMIN_HOST_TOKENS)?;
            if json {
                println!("{}", crate::output::json(&list)?);
            } else {
                print!("{}", host_token_table(&list.tokens));
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::HostCert(h) => {
            // `host_key` is Some exactly for this arm (set above).
            let key = host_key.unwrap_or_default();
            host_cert(&admin, h, key)
        }
    }
}

/// Where the rampart-bastion package keeps the bastion's state (its unit's
/// `StateDirectory=` and `ConditionPathExists=`).
pub const BASTION_PACKAGE_DIR: &str = "/var/lib/rampart-bastion";

/// The `rampart-bastion join` command line for a join token, complete: every
/// argument the bastion requires is present. An unbound token (made without
/// `--name`) leaves the name to the bastion host's own `hostname -f`, which the
/// shell expands. The token goes in as `--token=T`, so that no token can be read
/// as a flag even if it started with `-`.
pub fn bastion_join_command(target: &CaTarget, token: &str, name: Option<&str>) -> String {
    let name = name.unwrap_or("\"$(hostname -f)\"");
    format!(
        "rampart-bastion join --dir {BASTION_PACKAGE_DIR} --name {name} --ca {} --ca-fingerprint {} --token={token}",
        target.url, target.fingerprint
    )
}

/// The `rampart host install` command line that joins a host with a join
/// token: trust, KRL, timers and its first host certificate in one step. The
/// token goes in as `--join-token=T`, so that no token is read as a flag.
pub fn host_install_command(target: &CaTarget, token: &str) -> String {
    format!(
        "rampart host install --write --ca {} --ca-fingerprint {} --join-token={token}",
        target.url, target.fingerprint
    )
}

/// `rampart admin host-tokens` as a table.
fn host_token_table(tokens: &[rampart_api::HostTokenInfo]) -> String {
    if tokens.is_empty() {
        return "no host join tokens\n".to_owned();
    }
    let mut out = format!(
        "{:<16}  {:<24}  {:<10}  {:<20}  {}\n",
        "ID", "HOST", "BY", "EXPIRES", "STATE"
    );
    for t in tokens {
        let state = match t.used_at {
            Some(at) => format!("used {}", at.format("%Y-%m-%dT%H:%M:%SZ")),
            None => "unused".to_owned(),
        };
        let mut host = t.name.clone();
        if !t.extra_principals.is_empty() {
            host.push_str(&format!(" (+{})", t.extra_principals.len()));
        }
        out.push_str(&format!(
            "{:<16}  {:<24}  {:<10}  {:<20}  {}\n",
            t.id,
            host,
            t.created_by,
            t.expires_at.format("%Y-%m-%dT%H:%M:%SZ"),
            state
        ));
    }
    out
}

/// The exact command line a new user runs.
pub fn enroll_command(target: &CaTarget, code: &str) -> String {
    format!(
        "rampart enroll --ca {} --ca-fingerprint {} --invite {code}",
        target.url, target.fingerprint
    )
}

fn user(admin: &Admin, cmd: UserCommand) -> Result<ExitCode, CliError> {
    match cmd {
        UserCommand::Add {
            name,
            groups,
            admin: is_admin,
        } => {
            admin.post_ack(
                paths::ADMIN_USERS,
                &CreateUserRequest {
                    name: name.clone(),
                    groups: groups.clone(),
                    admin: is_admin,
                },
            )?;
            println!(
                "Created user {name} (groups: {}{}).",
                groups_text(&groups),
                if is_admin { "; admin" } else { "" }
            );
            println!("Next: rampart admin invite {name}");
        }
        UserCommand::List { json } => {
            let users: Vec<User> = admin.get(paths::ADMIN_USERS)?;
            if json {
                println!("{}", crate::output::json(&users)?);
            } else {
                print!("{}", user_table(&users));
            }
        }
        UserCommand::Disable { name } => {
            set_state(admin, &name, true)?;
            println!("Disabled {name}; their sessions have ended.");
        }
        UserCommand::Enable { name } => {
            set_state(admin, &name, false)?;
            println!("Enabled {name}.");
        }
        UserCommand::Groups { name, groups } => {
            admin.post_ack(
                paths::ADMIN_USER_GROUPS,
                &SetGroupsRequest {
                    name: name.clone(),
                    groups: groups.clone(),
                },
            )?;
            println!("{name} is now in: {}", groups_text(&groups));
        }
        UserCommand::Link {
            name,
            provider,
            subject,
            unlink,
        } => {
            let answer: IdpLinkResponse = admin.post(
                paths::ADMIN_USER_IDP_LINK,
                &IdpLinkRequest {
                    name,
                    provider,
                    subject: subject.unwrap_or_default(),
                    unlink,
                },
            )?;
            match (answer.linked, answer.subject) {
                (true, Some(sub)) => println!(
                    "{} is linked to {} account {sub:?}: that account logs in as {}.",
                    answer.name, answer.provider, answer.name
                ),
                (false, Some(sub)) => println!(
                    "{} is no longer linked to {} account {sub:?}.",
                    answer.name, answer.provider
                ),
                _ => println!(
                    "{} was not linked to any {} account.",
                    answer.name, answer.provider
                ),
            }
        }
        UserCommand::Keys { name, remove } => {
            crate::keys::admin_user_keys(&admin.client, &name, remove.as_deref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn set_state(admin: &Admin, name: &str, disabled: bool) -> Result<(), CliError> {
    admin.post_ack(
        paths::ADMIN_USER_STATE,
        &SetUserStateRequest {
            name: name.to_owned(),
            disabled,
        },
    )
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        "none".to_owned()
    } else {
        groups.join(", ")
    }
}

/// A fixed-width table of users.
fn user_table(users: &[User]) -> String {
    let header = [
        "NAME", "GROUPS", "ADMIN", "STATE", "TOTP", "RECOVERY", "CREATED",
    ];
    let rows: Vec<[String; 7]> = users
        .iter()
        .map(|u| {
            [
                u.name.clone(),
                if u.groups.is_empty() {
                    "-".to_owned()
                } else {
                    u.groups.join(",")
                },
                if u.admin { "yes" } else { "no" }.to_owned(),
                if u.disabled { "disabled" } else { "active" }.to_owned(),
                if u.totp_enrolled { "yes" } else { "no" }.to_owned(),
                u.recovery_codes_left.to_string(),
                u.created_at.format("%Y-%m-%d").to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    if users.is_empty() {
        out.push_str("(no users)\n");
    }
    out
}

fn revoke(admin: &Admin, r: RevokeArgs) -> Result<ExitCode, CliError> {
    if let Some(id) = r.host_token {
        let t: rampart_api::HostTokenInfo = admin.post(
            paths::ADMIN_HOST_TOKENS_REVOKE,
            &rampart_api::HostTokenRevokeRequest {
                id,
                reason: r.reason,
            },
        )?;
        println!(
            "Revoked the join token {} for {}: it no longer works.",
            t.id, t.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = r.bastion {
        let resp: rampart_api::BastionRevokeResponse = admin.post(
            paths::ADMIN_BASTION_REVOKE,
            &rampart_api::BastionRevokeRequest {
                name,
                reason: r.reason,
            },
        )?;
        println!(
            "Revoked bastion {}: its CA credential no longer works.",
            resp.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let resp: RevokeResponse = admin.post(
        paths::ADMIN_REVOKE,
        &RevokeRequest {
            serial: r.serial,
            user: r.user,
            key_fingerprint: r.key,
            reason: r.reason,
        },
    )?;
    let serials: Vec<String> = resp.revoked_serials.iter().map(u64::to_string).collect();
    println!(
        "Revoked serials: {}",
        if serials.is_empty() {
            "none new".to_owned()
        } else {
            serials.join(", ")
        }
    );
    if !resp.revoked_keys.is_empty() {
        println!("Revoked keys: {}", resp.revoked_keys.join(", "));
    }
    println!(
        "KRL version {}. Distribute it with `rampart admin krl -o FILE`.",
        resp.krl_version
    );
    Ok(ExitCode::SUCCESS)
}

/// Read and check a host public key file (exit 9 if unreadable, 2 if not a key).
fn read_host_key(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::no_input(path, &e))?;
    let line = text.trim();
    ssh_key::PublicKey::from_openssh(line).map_err(|e| {
        CliError::Usage(format!(
            "{} is not an OpenSSH public key: {e}",
            path.display()
        ))
    })?;
    Ok(line.to_owned())
}

/// `<key without .pub>-cert.pub`, as ssh-keygen -s names it.
fn default_cert_path(pubkey: &Path) -> PathBuf {
    let s = pubkey.as_os_str().to_string_lossy();
    let stem = s.strip_suffix(".pub").unwrap_or(&s);
    PathBuf::from(format!("{stem}-cert.pub"))
}

fn host_cert(admin: &Admin, h: HostCertArgs, public_key: String) -> Result<ExitCode, CliError> {
    let cert: CertResponse = admin.post(
        paths::ADMIN_HOST_CERTS,
        &HostCertRequest {
            name: h.name,
            public_key,
            extra_principals: h.principals,
            ttl_seconds: h.ttl.map(|d| d.as_secs()),
        },
    )?;
    let out = h.output.unwrap_or_else(|| default_cert_path(&h.pubkey));
    write_atomic(
        &out,
        format!("{}\n", cert.certificate.trim()).as_bytes(),
        0o644,
    )?;
    // sshd_config wants an absolute path.
    let out = std::fs::canonicalize(&out).unwrap_or(out);
    let left = (cert.valid_before - crate::clock::now()).num_seconds();
    println!(
        "Host certificate serial {} written to {}",
        cert.serial,
        out.display()
    );
    println!("  principals:  {}", cert.principals.join(", "));
    println!(
        "  valid until: {} ({})",
        cert.valid_before.to_rfc3339(),
        human(left)
    );
    println!("Add to the host's sshd_config:");
    println!("  HostCertificate {}", out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> CaTarget {
        CaTarget {
            url: "https://ca.example:8443".into(),
            fingerprint: rampart_api::Fingerprint::of_der(b"cert"),
        }
    }

    #[test]
    fn join_command_names_every_required_argument() {
        let cmd = bastion_join_command(&target(), "-AbC_d", Some("bastion-1"));
        let words: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(words.get(..2), Some(&["rampart-bastion", "join"][..]));
        for (flag, value) in [
            ("--dir", BASTION_PACKAGE_DIR),
            ("--name", "bastion-1"),
            ("--ca", "https://ca.example:8443"),
        ] {
            let at = words.iter().position(|w| *w == flag);
            assert_eq!(
                at.and_then(|i| words.get(i + 1)).copied(),
                Some(value),
                "{flag} in {cmd}"
            );
        }
        assert!(words.contains(&"--ca-fingerprint"), "{cmd}");
        // A token starting with '-' stays glued to its flag.
        assert!(words.contains(&"--token=-AbC_d"), "{cmd}");
        assert!(!words.contains(&"--token"), "{cmd}");
    }

    #[test]
    fn unbound_join_token_takes_the_hosts_own_name() {
        let cmd = bastion_join_command(&target(), "tok", None);
        assert!(cmd.contains(r#"--name "$(hostname -f)""#), "{cmd}");
    }

    #[test]
    fn cert_path_follows_ssh_keygen_naming() {
        assert_eq!(
            default_cert_path(Path::new("/etc/ssh/ssh_host_ed25519_key.pub")),
            Path::new("/etc/ssh/ssh_host_ed25519_key-cert.pub")
        );
        assert_eq!(
            default_cert_path(Path::new("hostkey")),
            Path::new("hostkey-cert.pub")
        );
    }

    #[test]
    fn table_aligns_columns() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let users = vec![
            User {
                name: "admin".into(),
                groups: vec![],
                admin: true,
                disabled: false,
                totp_enrolled: true,
                recovery_codes_left: 10,
                created_at: at,
            },
            User {
                name: "alexandra".into(),
                groups: vec!["eng".into(), "db".into()],
                admin: false,
                disabled: true,
                totp_enrolled: false,
                recovery_codes_left: 0,
                created_at: at,
            },
        ];
        let t = user_table(&users);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "NAME       GROUPS  ADMIN  STATE     TOTP  RECOVERY  CREATED"
        );
        assert_eq!(
            lines[1],
            "admin      -       yes    active    yes   10        2023-11-14"
        );
        assert_eq!(
            lines[2],
            "alexandra  eng,db  no     disabled  no    0         2023-11-14"
        );
        assert_eq!(
            user_table(&[]),
            "NAME  GROUPS  ADMIN  STATE  TOTP  RECOVERY  CREATED\n(no users)\n"
        );
    }

    #[test]
    fn host_key_file_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope.pub");
        let e = read_host_key(&missing).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_NO_INPUT);
        let junk = tmp.path().join("junk.pub");
        std::fs::write(&junk, "not a key").unwrap();
        assert_eq!(
            read_host_key(&junk).unwrap_err().exit_code(),
            crate::error::EXIT_USAGE
        );
    }
}
