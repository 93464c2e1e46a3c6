//! `rampart keys …` (your own security keys) and `rampart admin user keys USER`
//! (anyone's, admin): list, enrol, remove. The CA audits every change; this module
//! only calls it and draws tables.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use rampart_api::webauthn::{KeyRemoveRequest, WebauthnKey, KEYS, KEY_REMOVE};
use rampart_api::{Client, ClientError};

use crate::auth::webauthn::{self, Via};
use crate::ca::CaTarget;
use crate::error::CliError;
use crate::home::Home;

/// `rampart keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Enrol another security key for your account (needs a login).
    Add {
        /// A name for it, e.g. yubikey-blue.
        name: String,
        /// Use a USB key from this terminal (CTAP2) instead of a browser page.
        #[arg(long)]
        fido2: bool,
        /// Print the page's URL instead of opening a browser.
        #[arg(long, conflicts_with = "fido2")]
        no_browser: bool,
        /// The ID of one of your keys that this one replaces (it is removed
        /// once the new key is enrolled). After a recovery-code login this is
        /// the only way to add a key.
        #[arg(long, value_name = "ID")]
        replaces: Option<String>,
    },
    /// List your security keys.
    List,
    /// Remove one of your security keys by ID (see `rampart keys list`).
    Remove {
        /// The key's ID.
        id: String,
    },
}

/// Run `rampart keys …` with the saved session.
pub fn run(home: &Home, cmd: KeysCommand) -> Result<ExitCode, CliError> {
    let session = home.live_session(crate::clock::now())?;
    let config = home.load_config()?;
    let target = CaTarget::for_session(&config)?;
    let client = target.client()?.with_token(session.token.clone());
    match cmd {
        KeysCommand::Add {
            name,
            fido2,
            no_browser,
            replaces,
        } => {
            let via = if fido2 {
                Via::Ctap2
            } else {
                Via::Browser { open: !no_browser }
            };
            let reg = webauthn::register(&client, None, &name, via, replaces.as_deref())?;
            println!(
                "Enrolled the security key {:?} (ID {}) for {}.",
                reg.key.name, reg.key.id, reg.user
            );
            if let Some(old) = &replaces {
                println!("  replaces (removed): {old}");
            }
            println!("  AAGUID: {}", reg.key.aaguid);
            println!(
                "  attested (the CA vouches for this model): {}",
                yes_no(reg.key.attested)
            );
            println!(
                "  user verification at enrolment: {}",
                yes_no(reg.key.user_verified)
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List => {
            let keys = list(&client, None)?;
            if keys.is_empty() {
                println!("No security keys (add one with `rampart keys add NAME`).");
            } else {
                print!("{}", key_table(&keys));
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Remove { id } => {
            remove(&client, &session.user, &id)?;
            println!("Removed the security key {id}.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `rampart admin user keys USER [--remove ID]`, with an admin's client.
pub fn admin_user_keys(
    client: &Client,
    user: &str,
    remove_id: Option<&str>,
) -> Result<(), CliError> {
    match remove_id {
        Some(id) => {
            remove(client, user, id)?;
            println!("Removed the security key {id} of {user}.");
        }
        None => {
            let keys = list(client, Some(user))?;
            if keys.is_empty() {
                println!("{user} has no security keys.");
            } else {
                print!("{}", key_table(&keys));
            }
        }
    }
    Ok(())
}

/// The keys of `user` (admin), or the caller's own.
fn list(client: &Client, user: Option<&str>) -> Result<Vec<WebauthnKey>, CliError> {
    let path = match user {
        Some(u) => format!("{KEYS}?user={}", query_escape(u)),
        None => KEYS.to_owned(),
    };
    client.get_json(&path).map_err(CliError::from_session_call)
}

fn remove(client: &Client, user: &str, id: &str) -> Result<(), CliError> {
    let body = KeyRemoveRequest {
        user: user.to_owned(),
        id: id.to_owned(),
    };
    // Any 2xx is success, whatever its body says.
    match client.post_json::<_, serde_json::Value>(KEY_REMOVE, &body) {
        Ok(_) | Err(ClientError::Decode(_)) => Ok(()),
        Err(e) => Err(CliError::from_session_call(e)),
    }
}

/// Percent-encode a query value (user names are `[a-z0-9._-]`, but be safe).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "never".to_owned())
}

/// The key table: id, name, AAGUID, created, last used, sign count, disabled.
pub fn key_table(keys: &[WebauthnKey]) -> String {
    let header = [
        "ID",
        "NAME",
        "AAGUID",
        "ATTESTED",
        "CREATED",
        "LAST USED",
        "SIGN COUNT",
        "DISABLED",
    ];
    let rows: Vec<[String; 8]> = keys
        .iter()
        .map(|k| {
            [
                k.id.clone(),
                k.name.clone(),
                k.aaguid.clone(),
                yes_no(k.attested).to_owned(),
                when(Some(k.created_at)),
                when(k.last_used_at),
                k.sign_count.to_string(),
                k.disabled_reason.clone().unwrap_or_else(|| "-".to_owned()),
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
        let mut l = String::new();
        for (cell, w) in cells.zip(widths.iter()) {
            l.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
