//! `rampart-ca`: initialise, check and serve a Rampart CA. Thin: parses arguments,
//! starts tracing, and calls the library.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rampart_ca::init::{InitOptions, PassphraseChoice};
use rampart_ca::{server, Config};

/// The Rampart certificate authority.
#[derive(Debug, Parser)]
#[command(name = "rampart-ca", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new CA in a directory: keys, TLS certificate, databases, config,
    /// policy, and a one-time invite for the bootstrap admin (printed once).
    Init {
        /// Directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// API listen address.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// Name of the bootstrap admin.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// Read the key passphrase from this file (0600) instead of generating one.
        #[arg(long, conflicts_with = "passphrase_env")]
        passphrase_file: Option<PathBuf>,
        /// Read the key passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
        /// Extra DNS name or IP address for the TLS certificate (repeatable).
        #[arg(long = "tls-name")]
        tls_names: Vec<String>,
        /// Print the outcome as one JSON object (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTPS API until SIGTERM or SIGINT.
    Serve {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the config, keys, policy and TLS files without serving.
    Check {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // RAMPART_LOG_FORMAT=json: one JSON object per line, with the request span's
    // fields (request_id, endpoint, session_id) flattened into each line.
    if std::env::var("RAMPART_LOG_FORMAT").is_ok_and(|v| v == "json") {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(filter)
            .init();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart-ca: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            dir,
            listen,
            admin,
            passphrase_file,
            passphrase_env,
            tls_names,
            json,
        } => {
            let passphrase = match (passphrase_file, passphrase_env) {
                (Some(f), _) => PassphraseChoice::File(f),
                (None, Some(v)) => PassphraseChoice::Env(v),
                (None, None) => PassphraseChoice::Generate,
            };
            let out = rampart_ca::init::init(&InitOptions {
                dir,
                listen,
                admin,
                passphrase,
                extra_names: tls_names,
            })?;
            let mut stdout = std::io::stdout().lock();
            if json {
                writeln!(stdout, "{}", serde_json::to_string(&out)?)?;
            } else {
                writeln!(stdout, "Rampart CA created.")?;
                writeln!(stdout, "  config:           {}", out.config.display())?;
                writeln!(stdout, "  API URL:          {}", out.url)?;
                writeln!(stdout, "  TLS fingerprint:  {}", out.tls_fingerprint)?;
                writeln!(stdout, "  user CA:          {}", out.user_ca)?;
                writeln!(stdout, "  host CA:          {}", out.host_ca)?;
                writeln!(stdout)?;
                writeln!(
                    stdout,
                    "One-time invite for the admin {:?} (expires {}; shown only now):",
                    out.admin_user, out.invite_expires_at
                )?;
                writeln!(stdout, "  {}", out.admin_invite)?;
                writeln!(stdout)?;
                writeln!(stdout, "Next:")?;
                writeln!(
                    stdout,
                    "  rampart-ca serve --config {}",
                    out.config.display()
                )?;
                writeln!(
                    stdout,
                    "  rampart enroll --ca {} --ca-fingerprint {} --invite {}",
                    out.url, out.tls_fingerprint, out.admin_invite
                )?;
            }
            Ok(())
        }
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(server::serve(config, |addr| {
                // The one line on stdout: scripts and tests wait for it.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "rampart-ca listening on https://{addr}");
                let _ = out.flush();
                tracing::info!(%addr, "listening");
            }))?;
            Ok(())
        }
        Command::Check { config } => {
            println!("{}", server::check(&config)?);
            Ok(())
        }
    }
}
