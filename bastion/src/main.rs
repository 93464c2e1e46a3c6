//! `rampart-bastion`: join the CA, check a config, serve SSH. Thin: parse
//! arguments, start tracing, call the library, print a failure as one
//! `rampart-bastion: error: …` line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use rampart_bastion::{daemon, join, Config};

#[derive(Debug, Parser)]
#[command(
    name = "rampart-bastion",
    version,
    about = "Rampart SSH bastion: certificate-authenticated ProxyJump host that records and audits every session"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a CA with a token from `rampart admin bastion-token`; writes DIR/bastion.toml.
    Join {
        /// CA URL, https://host:port.
        #[arg(long)]
        ca: String,
        /// CA TLS certificate fingerprint (SHA256:…), as printed by `rampart-ca init`.
        #[arg(long)]
        ca_fingerprint: String,
        /// The join token.
        #[arg(long, env = "RAMPART_BASTION_TOKEN", hide_env_values = true)]
        token: String,
        /// This bastion's name (a host name; its host certificate's principal).
        #[arg(long)]
        name: String,
        /// Directory for the identity and config.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Validate a config file and the identity files it names.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the SSH daemon; SIGHUP re-reads the config (targets, limits) without dropping sessions.
    Serve {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a shell completion script (the Debian package installs the bash, zsh
    /// and fish ones).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: rampart_completions::Shell,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(rampart_bastion::log_filter())
        .with_writer(std::io::stderr)
        .init();
    rampart_bastion::install_crypto_provider();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "rampart-bastion: error: {}",
                rampart_api::report::one_line(e.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Join {
            ca,
            ca_fingerprint,
            token,
            name,
            dir,
        } => {
            let path = join::join(&join::JoinArgs {
                ca_url: ca,
                ca_fingerprint,
                token,
                name: name.clone(),
                dir,
            })
            .await?;
            println!("joined as {name}");
            println!("config: {}", path.display());
            println!(
                "add targets to it, then: rampart-bastion serve --config {}",
                path.display()
            );
            Ok(())
        }
        Command::Check { config } => {
            let c = Config::load(&config)?;
            c.check_files()?;
            println!(
                "config OK: {} listening on {}, {} target(s)",
                c.name,
                c.listen,
                c.targets.len()
            );
            Ok(())
        }
        Command::Serve { config } => Ok(daemon::serve(&config).await?),
        Command::Completions { shell } => {
            rampart_completions::print(shell, Cli::command(), "rampart-bastion")
                .context("cannot write the completion script")
        }
    }
}
