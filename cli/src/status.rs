//! `rampart status` and `rampart logout`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use rampart_api::paths;
use ssh_key::Certificate;

use crate::ca::CaTarget;
use crate::duration::human;
use crate::error::{CliError, EXIT_FAILURE};
use crate::home::{remove_if_exists, Home};
use crate::ssh;

/// Run `rampart status`: exit 0 with a currently valid certificate, 1 otherwise.
/// With `json`, one object on stdout instead of the text, same exit status.
pub fn status(home: &Home, json: bool) -> Result<ExitCode, CliError> {
    let now = crate::clock::now();
    let config = home.load_config()?;
    let session = home.load_session()?;
    let cert_path = session
        .as_ref()
        .and_then(|s| s.cert_file.clone())
        .unwrap_or_else(|| home.cert_path());
    let cert = ssh::read_cert(&cert_path)?;
    if json {
        let valid = cert.as_ref().is_some_and(|c| describe_cert(c, now).1);
        let report = serde_json::json!({
            "logged_in": valid,
            "user": session.as_ref().map(|s| s.user.clone()).or(config.user.clone()),
            "ca": config.ca_url,
            "ca_fingerprint": config.ca_fingerprint,
            "session": session.as_ref().map(|s| serde_json::json!({
                "user": s.user,
                "mfa_method": s.mfa_method,
                "admin": s.admin,
                "expires_at": s.expires_at,
                "expired": s.expires_at <= now,
            })),
            "certificate": cert.as_ref().map(|c| serde_json::json!({
                "path": cert_path.display().to_string(),
                "serial": c.serial(),
                "key_id": c.key_id(),
                "principals": c.valid_principals(),
                "valid_after": to_time(c.valid_after()),
                "valid_before": to_time(c.valid_before()),
                "valid": valid,
            })),
        });
        println!("{}", crate::output::json(&report)?);
        return Ok(if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILURE)
        });
    }

    if config.ca_url.is_none() && session.is_none() && cert.is_none() {
        println!("not logged in");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    let user = session
        .as_ref()
        .map(|s| s.user.clone())
        .or(config.user.clone())
        .unwrap_or_else(|| "(unknown)".to_owned());
    println!("user:        {user}");
    if let Some(url) = &config.ca_url {
        let fp = config
            .ca_fingerprint
            .as_deref()
            .unwrap_or("no fingerprint saved");
        println!("CA:          {url} ({fp})");
    }
    match &session {
        Some(s) if s.expires_at > now => println!(
            "session:     {} via {}{}, expires {} (in {})",
            s.user,
            s.mfa_method,
            if s.admin { ", admin" } else { "" },
            s.expires_at.to_rfc3339(),
            human((s.expires_at - now).num_seconds())
        ),
        Some(s) => println!("session:     expired at {}", s.expires_at.to_rfc3339()),
        None => println!("session:     none"),
    }
    let valid = match &cert {
        Some(c) => {
            let (line, valid) = describe_cert(c, now);
            println!("certificate: {line}");
            println!("             {}", cert_path.display());
            valid
        }
        None => {
            println!("certificate: none");
            false
        }
    };
    if !valid {
        println!("not logged in");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about a certificate, and whether it is valid at `now`.
fn describe_cert(cert: &Certificate, now: DateTime<Utc>) -> (String, bool) {
    let after = to_time(cert.valid_after());
    let before = to_time(cert.valid_before());
    let principals = cert.valid_principals().join(", ");
    let head = format!("serial {}, principals {principals}", cert.serial());
    match (after, before) {
        (Some(a), _) if now < a => (format!("{head}, not valid until {}", a.to_rfc3339()), false),
        (_, Some(b)) if now < b => (
            format!(
                "{head}, valid for {} (until {})",
                human((b - now).num_seconds()),
                b.to_rfc3339()
            ),
            true,
        ),
        (_, Some(b)) => (format!("{head}, expired at {}", b.to_rfc3339()), false),
        // valid_before beyond what chrono represents: "forever" (u64::MAX in
        // PROTOCOL.certkeys).
        (_, None) => (format!("{head}, valid forever"), true),
    }
}

fn to_time(secs: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

/// Run `rampart logout`.
pub fn logout(home: &Home) -> Result<ExitCode, CliError> {
    let config = home.load_config()?;
    let session = home.load_session().unwrap_or(None);
    if let Some(s) = &session {
        match CaTarget::resolve(None, None, &config).and_then(|t| t.client()) {
            Ok(client) => {
                if let Err(e) = client.with_token(s.token.clone()).post_empty(paths::LOGOUT) {
                    eprintln!("rampart: warning: could not end the session at the CA: {e}");
                }
            }
            Err(e) => eprintln!(
                "rampart: warning: could not end the session at the CA: {}",
                e.one_line()
            ),
        }
    }
    // Remove from the agent before the certificate file goes: ssh-add -d finds the
    // certificate to remove by the `-cert.pub` name beside the key. Only the file
    // key is ever added by `login`; an `--agent-key` key stays the user's business.
    let added: Option<PathBuf> = match &session {
        Some(s) => s.agent_added_key.clone(),
        None => Some(home.key_path()).filter(|_| home.cert_path().exists()),
    };
    if let Some(key) = added.filter(|k| k.exists() && ssh::agent_present()) {
        match ssh::agent_remove(&key) {
            Ok(()) => println!("Removed {} from ssh-agent.", key.display()),
            // Not fatal: the agent may have dropped it already (its lifetime ended).
            Err(e) => eprintln!("rampart: warning: could not remove the key from ssh-agent: {e}"),
        }
    }
    let cert = session
        .as_ref()
        .and_then(|s| s.cert_file.clone())
        .unwrap_or_else(|| home.cert_path());
    let had_cert = remove_if_exists(&cert)?;
    let had_session = remove_if_exists(&home.session_path())?;
    if had_session || had_cert {
        println!("Logged out.");
    } else {
        println!("Not logged in.");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::certificate::{Builder, CertType};
    use ssh_key::{getrandom::SysRng, rand_core::UnwrapErr, Algorithm, PrivateKey};

    fn cert(after: u64, before: u64) -> Certificate {
        let mut rng = UnwrapErr(SysRng);
        let ca = PrivateKey::random(&mut rng, Algorithm::Ed25519).unwrap();
        let user = PrivateKey::random(&mut rng, Algorithm::Ed25519).unwrap();
        let mut b =
            Builder::new_with_random_nonce(&mut rng, user.public_key(), after, before).unwrap();
        b.serial(42).unwrap();
        b.key_id("user=alice").unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal("alice").unwrap();
        b.valid_principal("root").unwrap();
        b.sign(&ca).unwrap()
    }

    #[test]
    fn describes_validity() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = 1_700_000_000u64;
        let (line, ok) = describe_cert(&cert(t - 60, t + 3540), now);
        assert!(ok);
        assert!(
            line.starts_with("serial 42, principals alice, root, valid for 59m"),
            "{line}"
        );
        let (line, ok) = describe_cert(&cert(t - 120, t - 60), now);
        assert!(!ok);
        assert!(line.contains("expired at"), "{line}");
        let (line, ok) = describe_cert(&cert(t + 60, t + 120), now);
        assert!(!ok);
        assert!(line.contains("not valid until"), "{line}");
        let (line, ok) = describe_cert(&cert(0, u64::MAX), now);
        assert!(ok);
        assert!(line.ends_with("valid forever"), "{line}");
    }
}
