//! `rampart sessions …`: list bastion sessions and replay their recordings, with
//! the admin session `rampart login` saved.
//!
//! `play` trusts neither the network nor the CA's disk: it downloads the
//! recording, checks its SHA-256 against the digest the session list reports as
//! sealed in the audit log (the CA also checks before serving), and only then
//! decompresses it, within `rampart_audit::recording`'s bounds.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::SecondsFormat;
use clap::Subcommand;
use rampart_api::{paths, Client, SessionList, SessionSummary};
use rampart_audit::recording::{read_recording, CastEventKind};
use sha2::{Digest, Sha256};

use crate::ca::CaTarget;
use crate::error::CliError;
use crate::home::Home;

/// `rampart sessions …`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List bastion sessions, newest first (admin).
    List {
        /// Only this user's sessions.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only sessions to this target.
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replay a session's recording in this terminal (admin).
    Play {
        /// The session ID (from `rampart sessions list`).
        id: String,
        /// Playback speed; 2 is twice as fast, 0 prints everything at once.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Write the verified asciicast v2 file to stdout instead of replaying it
        /// (for `asciinema play -` or an archive).
        #[arg(long)]
        raw: bool,
    },
}

/// Run a sessions command.
pub fn run(home: &Home, cmd: SessionsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SessionsCommand::List {
            user,
            target,
            limit,
            json,
        } => {
            let client = admin_client(home)?;
            let mut query = vec![("limit", limit.to_string())];
            if let Some(u) = user {
                query.push(("user", u));
            }
            if let Some(t) = target {
                query.push(("target", t));
            }
            let list = fetch(&client, &query)?;
            let mut out = std::io::stdout().lock();
            let text = if json {
                crate::output::json(&list)? + "\n"
            } else {
                table(&list.sessions)
            };
            write_out(&mut out, text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        SessionsCommand::Play { id, speed, raw } => {
            if !speed.is_finite() || speed < 0.0 {
                return Err(CliError::Usage(format!(
                    "--speed {speed} must be 0 or a positive number"
                )));
            }
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(CliError::Usage(format!(
                    "{id:?} is not a session ID (see `rampart sessions list`)"
                )));
            }
            let client = admin_client(home)?;
            play(&client, &id, speed, raw)
        }
    }
}

fn admin_client(home: &Home) -> Result<Client, CliError> {
    let session = home.live_session(crate::clock::now())?;
    let config = home.load_config()?;
    let target = CaTarget::for_session(&config)?;
    Ok(target.client()?.with_token(session.token.clone()))
}

fn fetch(client: &Client, query: &[(&str, String)]) -> Result<SessionList, CliError> {
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    client
        .get_json(&format!("{}?{}", paths::ADMIN_SESSIONS, qs.join("&")))
        .map_err(CliError::from_session_call)
}

/// RFC 3986 §2.3: everything but unreserved characters is percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), CliError> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // A reader that went away (`| head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Other(anyhow::anyhow!(
            "cannot write to stdout: {e}"
        ))),
    }
}

/// Control characters in names would reach the terminal: show them escaped.
fn clean(s: &str) -> String {
    s.chars().flat_map(char::escape_default).collect::<String>()
}

fn table(sessions: &[SessionSummary]) -> String {
    if sessions.is_empty() {
        return "no sessions\n".to_owned();
    }
    let header = [
        "SESSION",
        "USER",
        "LOGIN@TARGET",
        "STARTED",
        "ENDED",
        "RECORDING",
    ];
    let rows: Vec<[String; 6]> = sessions
        .iter()
        .map(|s| {
            let ended = match (s.ended_at, s.ended_normally, &s.end_reason) {
                (None, _, _) => "running".to_owned(),
                (Some(t), normal, reason) => {
                    let mut v = t.to_rfc3339_opts(SecondsFormat::Secs, true);
                    if let Some(r) = reason {
                        v.push_str(&format!(" ({})", clean(r)));
                    }
                    if normal == Some(false) {
                        v.push_str(" ABNORMAL");
                    }
                    v
                }
            };
            let recording = match &s.recording_sha256 {
                Some(sha) => format!("sha256:{}", sha.get(..16).unwrap_or(sha)),
                None => "-".to_owned(),
            };
            [
                clean(&s.session_id),
                clean(&s.user),
                format!("{}@{}", clean(&s.login), clean(&s.target)),
                s.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                ended,
                recording,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    out
}

fn play(client: &Client, id: &str, speed: f64, raw: bool) -> Result<ExitCode, CliError> {
    let list = fetch(client, &[("session", id.to_owned()), ("limit", "1".into())])?;
    let Some(summary) = list.sessions.into_iter().find(|s| s.session_id == id) else {
        return Err(CliError::Refused(format!(
            "the CA knows no bastion session {id}"
        )));
    };
    let Some(sealed) = summary.recording_sha256 else {
        return Err(CliError::Refused(format!(
            "session {id} has no sealed recording (yet)"
        )));
    };
    let bytes = client
        .get_bytes(&paths::for_session(paths::ADMIN_SESSION_RECORDING, id))
        .map_err(CliError::from_session_call)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != sealed {
        return Err(CliError::Audit(format!(
            "the recording of session {id} does not match the digest sealed in the audit log \
             (sealed {sealed}, received {actual}); not playing it"
        )));
    }
    let recording = read_recording(&bytes).map_err(|e| {
        CliError::Audit(format!(
            "the recording of session {id} is unreadable: {}",
            rampart_api::report::one_line(&e)
        ))
    })?;
    let mut out = std::io::stdout().lock();
    if raw {
        let decompressed = rampart_audit::recording::decompress(&bytes).map_err(|e| {
            CliError::Audit(format!(
                "the recording of session {id}: {}",
                rampart_api::report::one_line(&e)
            ))
        })?;
        write_out(&mut out, &decompressed)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut clock = Duration::ZERO;
    for event in &recording.events {
        if event.kind != CastEventKind::Output {
            continue;
        }
        if speed > 0.0 && event.time > clock {
            let gap = (event.time - clock).as_secs_f64() / speed;
            std::thread::sleep(Duration::from_secs_f64(gap.min(3600.0)));
        }
        clock = clock.max(event.time);
        write_out(&mut out, event.data.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> SessionSummary {
        SessionSummary {
            session_id: id.into(),
            bastion: "b1".into(),
            user: "alice".into(),
            login: "root".into(),
            target: "db-1".into(),
            started_at: chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            ended_at: None,
            end_reason: None,
            ended_normally: None,
            recording_sha256: None,
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(percent_encode("db-1.x_y~"), "db-1.x_y~");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn table_has_fixed_columns_and_no_relative_times() {
        let mut ended = summary("01B");
        ended.ended_at = Some(ended.started_at + chrono::Duration::seconds(90));
        ended.end_reason = Some("bastion_restarted".into());
        ended.ended_normally = Some(false);
        ended.recording_sha256 = Some("ab".repeat(32));
        let mut sneaky = summary("01C");
        sneaky.user = "ev\x1b[2Jil".into();
        let text = table(&[summary("01A"), ended, sneaky]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SESSION  USER           LOGIN@TARGET  STARTED               ENDED                                              RECORDING"
        );
        assert!(lines[1].contains("running"));
        assert!(lines[2].contains("2026-01-02T03:05:35Z (bastion_restarted) ABNORMAL"));
        assert!(lines[2].ends_with("sha256:abababababababab"));
        assert!(!text.contains('\x1b'), "control characters are escaped");
        assert!(lines[3].contains("ev\\u{1b}[2Jil"));
        assert_eq!(table(&[]), "no sessions\n");
    }
}
