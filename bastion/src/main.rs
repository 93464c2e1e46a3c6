//! `rampart-bastion`: join the CA, check a config, serve SSH. Thin: parse
//! arguments, start tracing, call the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use rampart_bastion::{join, server, Config};

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

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(rampart_bastion::log_filter())
        .with_writer(std::io::stderr)
        .init();
    rampart_bastion::install_crypto_provider();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(run(cli))
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
        Command::Serve { config } => serve(config).await,
        Command::Completions { shell } => {
            rampart_completions::print(shell, Cli::command(), "rampart-bastion")
                .context("cannot write the completion script")
        }
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // SIGHUP (`systemctl reload`) reloads the config. Its handler comes first,
    // well before readiness: the default action of SIGHUP ends the process, and
    // a reload sent while the bastion starts (recovering recordings, loading
    // the revocation list) must not kill it. One that arrives early is kept
    // and handled once the bastion runs.
    let hangup = signal(SignalKind::hangup()).context("install the SIGHUP handler")?;
    let config = Config::load(&path)?;
    config.check_files()?;
    let identity = join::Identity::load(&config)?;
    let listen = config.listen;
    let shared = server::Shared::new(config, identity)?;
    rampart_bastion::recording::recover(shared.clone()).await;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    // Every certificate is refused until the revocation list is loaded (fail
    // closed); try for a while before announcing readiness.
    server::first_revocations(&shared, std::time::Duration::from_secs(10)).await;
    tokio::spawn(server::revocation_loop(shared.clone()));
    // Before readiness is announced: a SIGTERM that arrives the moment the
    // service manager (or a test) hears READY must stop the daemon cleanly,
    // not kill it with the default action before the handler exists.
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(server::reload_loop(shared.clone(), path.clone(), hangup));
    // The one readiness line on stdout (tests and service managers wait for it).
    let bound = listener.local_addr()?;
    println!("rampart-bastion listening on {bound}");
    // systemd's Type=notify (packaging/systemd/rampart-bastion.service); a
    // no-op without NOTIFY_SOCKET.
    if let Err(e) = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("listening on {bound}")),
    ]) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
    if let Some(addr) = shared.config().metrics_listen {
        let live = shared.clone();
        let bound = rampart_bastion::metrics::serve(addr, Arc::new(move || live.live_sessions()))
            .await
            .with_context(|| format!("[metrics] listen on {addr}"))?;
        tracing::info!("rampart-bastion metrics on http://{bound}/metrics");
    }
    tokio::spawn(server::idle_loop(shared.clone()));
    rampart_bastion::recording::spawn_uploader(shared.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let serve = tokio::spawn(server::serve(Arc::clone(&shared), listener, rx));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = tx.send(true);
    let _ = serve.await;
    shared
        .auditor()
        .drain(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}
