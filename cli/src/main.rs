//! `rampart`: the engineer and admin command line of Rampart.
//!
//! This binary owns argument parsing, local state (`$RAMPART_HOME`) and talking to
//! the CA through `rampart-api`'s client. It must never contain business logic that
//! belongs in a library, and never link server or signing code (no axum, no direct
//! rusqlite, no `rampart-signer`): policy evaluation comes from `rampart-policy`,
//! audit verification from `rampart-audit`, certificates from the CA.
//!
//! Every failure prints exactly one line, `rampart: error: <message>`, and exits
//! with a fixed code documented in [`error`] and `cli/README.md`.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod admin;
mod auth;
mod ca;
mod cli;
mod clock;
mod dev;
mod duration;
mod error;
mod home;
mod host;
mod keys;
mod offline;
mod output;
mod ssh;
mod ssh_cmd;
mod status;
mod targets;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};

use crate::cli::{Cli, Command};
use crate::error::{CliError, EXIT_OK, EXIT_USAGE};
use crate::home::Home;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart: error: {}", e.one_line());
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // Host helpers run under sshd (AuthorizedPrincipalsCommandUser) or systemd,
    // often without HOME: they must not need a Rampart home.
    let command = match cli.command {
        Command::Host(c) => return host::run(c),
        // Packaging and shell setup run this anywhere, HOME or not.
        Command::Completions { shell } => return completions(shell),
        other => other,
    };
    let home = Home::resolve(cli.home)?;
    match command {
        Command::Enroll(a) => auth::enroll::run(&home, a),
        Command::Login(a) => auth::login::run(&home, a),
        Command::Status { json } => status::status(&home, json),
        Command::Logout => status::logout(&home),
        Command::Ls { json } => targets::ls(&home, json),
        Command::Ssh { args } => ssh_cmd::run(&home, &args),
        Command::Keys(c) => keys::run(&home, c),
        Command::Admin(c) => admin::run(&home, c),
        Command::Audit(c) => offline::audit::run(c),
        Command::Sessions(c) => admin::sessions::run(&home, c),
        Command::Policy(c) => offline::policy::run(c),
        Command::Completions { shell } => completions(shell),
        Command::Dev(a) => dev::run(&home, a),
        Command::Host(c) => host::run(c),
    }
}

fn completions(shell: rampart_completions::Shell) -> Result<ExitCode, CliError> {
    rampart_completions::print(shell, Cli::command(), "rampart")
        .context("cannot write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// `--help` and `--version` print normally; every real parse error becomes one
/// `rampart: error:` line (clap's own layout spans several lines) and exit 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::from(EXIT_OK)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `rampart admin` alone: show what is available, as a usage error.
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            eprintln!("rampart: error: {}", clap_one_line(&e.render().to_string()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Fold clap's rendered error into one line: drop the `error:` prefix and the
/// usage/help footer, join the rest.
fn clap_one_line(rendered: &str) -> String {
    let body = rendered.split("\n\nUsage:").next().unwrap_or(rendered);
    let body = body
        .split("\n\nFor more information")
        .next()
        .unwrap_or(body);
    let body = body.trim().strip_prefix("error:").unwrap_or(body).trim();
    let mut line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    line.push_str(" (see `rampart --help`)");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fold_to_one_line() {
        let e = Cli::try_parse_from(["rampart", "enroll", "--ca", "https://x"]).unwrap_err();
        let line = clap_one_line(&e.render().to_string());
        assert_eq!(
            line,
            "the following required arguments were not provided: --invite <CODE> (see `rampart --help`)"
        );
        let e = Cli::try_parse_from(["rampart", "--bogus"]).unwrap_err();
        let line = clap_one_line(&e.render().to_string());
        assert!(
            line.starts_with("unexpected argument '--bogus' found"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
