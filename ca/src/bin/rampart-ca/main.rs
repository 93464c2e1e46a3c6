//! `rampart-ca`: initialise, check and serve a Rampart CA. Thin: parses arguments,
//! starts tracing, and calls the library.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use rampart_ca::init::{InitOptions, PassphraseChoice};
use rampart_ca::{server, Config};
use secrecy::SecretString;
use zeroize::Zeroizing;

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
    Init(Box<InitArgs>),
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
    /// When no admin can log in: make a one-time invite for an admin, on the
    /// CA host (the daemon may keep running). Audited as
    /// `admin_recovery_invite`, severity high.
    RecoverAdmin {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// The admin to invite.
        user: String,
        /// How long the invite is valid.
        #[arg(long, value_parser = rampart_policy::parse_duration, default_value = "1h", value_name = "DURATION")]
        ttl: std::time::Duration,
    },
    /// Begin a new audit witness from the audit database's newest checkpoint,
    /// on the CA host, when the old witness is missing or empty (`serve`
    /// refuses to start then). Compare the database with the SIEM's copy of the
    /// checkpoints first. Audited as `audit_witness_restarted`, severity high.
    WitnessRestart {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Replace the user or host CA key in three steps, on the CA host, each
    /// followed by a restart of the CA: `prepare` makes and publishes the next
    /// key, `activate` signs with it and keeps trusting the old one, `retire`
    /// drops the old one once what it signed has expired. Audited as
    /// `ca_key_rotated`, severity high. Key files (`K.next`, `K.previous`) or
    /// labels in a PKCS#11 token (`L.next`, `L.previous`).
    RotateKey {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Which key.
        #[arg(value_enum)]
        ca: RotateCa,
        /// Which step.
        #[arg(value_enum)]
        step: RotateStep,
        /// With `retire`: drop the old key although certificates it signed are
        /// still valid (they stop working at once): for a compromised key.
        #[arg(long)]
        force: bool,
    },
    /// Copy the CA's directory into a new directory while the daemon runs:
    /// consistent snapshots of both databases, the audit witness and the sealed
    /// recordings, checked (audit chain, witness, recording digests) before the
    /// directory gets its name. The key passphrase is never copied.
    Backup {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// The directory to create (must not exist, nor lie inside the CA directory).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print a shell completion script (the Debian package installs the bash, zsh
    /// and fish ones).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: rampart_completions::Shell,
    },
}

/// `rotate-key`'s CA.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RotateCa {
    /// The user CA key (user certificates, KRL signatures).
    User,
    /// The host CA key (host certificates).
    Host,
}

/// `rotate-key`'s step.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RotateStep {
    /// Make the next key; the CA publishes it beside the signing one.
    Prepare,
    /// Sign with the next key; keep trusting the one it replaces.
    Activate,
    /// Stop trusting the replaced key.
    Retire,
}

/// `rampart-ca init`'s options.
#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Directory to create.
    #[arg(long)]
    dir: PathBuf,
    /// API listen address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Name of the bootstrap admin.
    #[arg(long, default_value = "admin")]
    admin: String,
    /// Read the key passphrase from this file (0600); the daemon reads it from
    /// there too. Without a passphrase option, init reads the systemd credential
    /// `ca-passphrase` from $CREDENTIALS_DIRECTORY, or else asks on the terminal,
    /// and the daemon reads that credential.
    #[arg(long, group = "passphrase")]
    passphrase_file: Option<PathBuf>,
    /// Read the key passphrase from this environment variable (init and daemon).
    #[arg(long, group = "passphrase")]
    passphrase_env: Option<String>,
    /// INSECURE, for a throwaway CA only (`rampart dev`, tests): generate a
    /// passphrase and store it in DIR/secrets/passphrase, beside the keys it
    /// encrypts, so that a copy of DIR holds both. `rampart-ca check` warns.
    #[arg(long, group = "passphrase")]
    insecure_passphrase_beside_keys: bool,
    /// Extra DNS name or IP address for the TLS certificate (repeatable).
    #[arg(long = "tls-name")]
    tls_names: Vec<String>,
    /// Make the user and host CA keys inside a PKCS#11 token (an HSM, or
    /// SoftHSM2) with this module, instead of key files; they never leave it.
    #[arg(long, requires_all = ["pkcs11_token", "pkcs11_pin_file"])]
    pkcs11_module: Option<PathBuf>,
    /// The token's label (with --pkcs11-module).
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// File holding the token's user PIN, mode 0600 (with --pkcs11-module);
    /// the daemon reads it from there too.
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_pin_file: Option<PathBuf>,
    /// Keep the CA's state in this empty PostgreSQL database
    /// (postgres://user@host:port/db) instead of DIR/ca.db.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// The PostgreSQL password, from this file (0600).
    #[arg(long, value_name = "FILE", requires = "database")]
    database_password_file: Option<PathBuf>,
    /// Connect to PostgreSQL over TLS, accepting only a server certificate
    /// that chains to the CA certificates in this PEM file and names the host.
    #[arg(long, value_name = "FILE", requires = "database")]
    database_tls_ca_file: Option<PathBuf>,
    /// Print the outcome as one JSON object (for scripts).
    #[arg(long)]
    json: bool,
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
            eprintln!(
                "rampart-ca: error: {}",
                rampart_api::report::one_line(e.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

/// Where the passphrase of a new CA came from when no option named a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredentialOrigin {
    /// `$CREDENTIALS_DIRECTORY/ca-passphrase`: it already exists as a credential.
    Credential,
    /// Typed at the terminal: the operator still has to create the credential.
    Typed,
}

/// The key passphrase of a new CA that the daemon will read from the systemd
/// credential `ca-passphrase`: that credential, when init runs with one (e.g.
/// under `systemd-run -p LoadCredentialEncrypted=…`), or else typed twice on the
/// terminal. Without either there is nobody to ask, and a production CA gets no
/// passphrase by default: fail and say how to give one.
fn credential_passphrase() -> anyhow::Result<(SecretString, CredentialOrigin)> {
    let name = rampart_ca::init::SYSTEMD_CREDENTIAL;
    if let Some(path) = rampart_ca::config::credential_path(name) {
        if path.exists() {
            let pass = rampart_ca::config::read_credential(name)?;
            return Ok((pass, CredentialOrigin::Credential));
        }
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "init needs a passphrase for the CA keys, and there is no terminal to ask for it \
             and no credential ${}/{name}: run init on a terminal, or pass \
             --passphrase-file FILE or --passphrase-env VAR \
             (--insecure-passphrase-beside-keys stores a generated one next to the keys, for \
             a throwaway CA only)",
            rampart_ca::config::CREDENTIALS_DIRECTORY
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password(
        "New passphrase for the CA keys: ",
    )?);
    if first.chars().count() < MIN_PASSPHRASE_CHARS {
        anyhow::bail!("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters");
    }
    let again = Zeroizing::new(rpassword::prompt_password("The same passphrase again: ")?);
    if first.as_bytes() != again.as_bytes() {
        anyhow::bail!("the two passphrases differ; nothing was created");
    }
    Ok((
        SecretString::from(first.as_str().to_owned()),
        CredentialOrigin::Typed,
    ))
}

/// Shortest typed passphrase accepted: it is all that stands between a copy of
/// the key files (a backup, a snapshot) and the CA keys.
const MIN_PASSPHRASE_CHARS: usize = 12;

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => {
            let InitArgs {
                dir,
                listen,
                admin,
                passphrase_file,
                passphrase_env,
                insecure_passphrase_beside_keys,
                tls_names,
                pkcs11_module,
                pkcs11_token,
                pkcs11_pin_file,
                database,
                database_password_file,
                database_tls_ca_file,
                json,
            } = *args;
            let mut origin = None;
            let passphrase = match (passphrase_file, passphrase_env) {
                (Some(f), _) => PassphraseChoice::File(f),
                (None, Some(v)) => PassphraseChoice::Env(v),
                (None, None) if insecure_passphrase_beside_keys => {
                    PassphraseChoice::InsecureBesideKeys
                }
                (None, None) => {
                    let (pass, from) = credential_passphrase()?;
                    origin = Some(from);
                    PassphraseChoice::SystemdCredential(pass)
                }
            };
            let out = rampart_ca::init::init(&InitOptions {
                dir,
                listen,
                admin,
                passphrase,
                extra_names: tls_names,
                pkcs11: match (pkcs11_module, pkcs11_token, pkcs11_pin_file) {
                    (Some(module), Some(token), Some(pin_file)) => {
                        Some(rampart_ca::init::Pkcs11Init {
                            module,
                            token,
                            pin_file,
                        })
                    }
                    _ => None,
                },
                database: database.map(|url| rampart_ca::init::InitPostgres {
                    url,
                    password_file: database_password_file,
                    tls_ca_file: database_tls_ca_file,
                }),
            })?;
            // A passphrase file the operator named, that turns out to lie inside the
            // CA directory: say so now, not only at the next `check`. (The insecure
            // flag asked for exactly that, and says so in its name.)
            if !insecure_passphrase_beside_keys {
                if let Some(w) = Config::load(&out.config)
                    .ok()
                    .and_then(|c| server::passphrase_beside_keys(&c))
                {
                    eprintln!("rampart-ca: {w}");
                }
            }
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
                writeln!(stdout, "  {}", out.admin_invite.expose())?;
                writeln!(stdout)?;
                writeln!(stdout, "Next:")?;
                let name = rampart_ca::init::SYSTEMD_CREDENTIAL;
                match origin {
                    Some(CredentialOrigin::Typed) => {
                        writeln!(
                            stdout,
                            "  The CA reads its key passphrase from the systemd credential {name}. \
                             As root, type the passphrase once more to encrypt it for the \
                             packaged unit:"
                        )?;
                        writeln!(
                            stdout,
                            "    systemd-ask-password -n 'CA key passphrase:' | systemd-creds \
                             encrypt --name={name} - /etc/rampart/ca-passphrase.cred"
                        )?;
                        writeln!(stdout, "    systemctl start rampart-ca")?;
                    }
                    Some(CredentialOrigin::Credential) => {
                        writeln!(
                            stdout,
                            "  The CA reads its key passphrase from the systemd credential \
                             {name}, as this init did:"
                        )?;
                        writeln!(stdout, "    systemctl start rampart-ca")?;
                    }
                    None => {
                        writeln!(
                            stdout,
                            "  rampart-ca serve --config {}",
                            out.config.display()
                        )?;
                    }
                }
                writeln!(
                    stdout,
                    "  rampart enroll --ca {} --ca-fingerprint {} --invite {}",
                    out.url,
                    out.tls_fingerprint,
                    out.admin_invite.expose()
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
        Command::Backup { config, out } => {
            let r = rampart_ca::backup::backup(&config, &out)?;
            println!(
                "Backup of the CA in {}: {} files; CA database schema version {}; audit log \
                 verified ({} events, {} signed checkpoints{}); {} sealed recordings.",
                r.out.display(),
                r.files,
                r.ca_schema,
                r.events,
                r.checkpoints,
                if r.witness_lines > 0 {
                    format!(", agrees with the {} witness lines", r.witness_lines)
                } else {
                    String::new()
                },
                r.recordings,
            );
            println!(
                "head: {}:{}",
                r.audit_head.seq,
                hex::encode(r.audit_head.hash)
            );
            println!(
                "The key passphrase is not in the backup: keep it apart from it. Check a copy \
                 later with: cd {} && sha256sum -c {}",
                r.out.display(),
                rampart_ca::backup::MANIFEST
            );
            for p in &r.outside {
                eprintln!(
                    "warning: {} is outside the CA directory and not in the backup; keep it \
                     some other way",
                    p.display()
                );
            }
            for p in &r.skipped {
                eprintln!(
                    "warning: {} is not a regular file or directory and was not copied",
                    p.display()
                );
            }
            Ok(())
        }
        Command::Completions { shell } => {
            rampart_completions::print(shell, Cli::command(), "rampart-ca")
                .context("cannot write the completion script")
        }
        Command::WitnessRestart { config } => {
            let r = rampart_ca::witness_restart::witness_restart(&config)?;
            eprintln!(
                "New audit witness {} (audited as audit_witness_restarted at sequence {}).",
                r.witness.display(),
                r.event_seq
            );
            eprintln!(
                "It restarts from the database's newest checkpoint before that, {}; \
                 history up to there is witnessed only by the SIEM's copy.",
                r.from
            );
            println!(
                "head: {}:{}",
                r.started_at.seq,
                hex::encode(r.started_at.hash)
            );
            Ok(())
        }
        Command::RotateKey {
            config,
            ca,
            step,
            force,
        } => {
            use rampart_ca::rotation::{self, CaRole, Step};
            let role = match ca {
                RotateCa::User => CaRole::User,
                RotateCa::Host => CaRole::Host,
            };
            let step = match step {
                RotateStep::Prepare => Step::Prepare,
                RotateStep::Activate => Step::Activate,
                RotateStep::Retire => Step::Retire,
            };
            let done = rotation::rotate(&config, role, step, force)?;
            let name = role.as_str();
            match done.step {
                Step::Prepare => eprintln!(
                    "Next {name} CA key {} made; {} still signs. Restart the CA (every CA \
                     host, with the new key files unless they share the token) so it publishes \
                     both; activate once hosts ran krl-sync and users logged in again.",
                    done.key, done.signer
                ),
                Step::Activate => eprintln!(
                    "{name} CA key {} signs after the CA restarts; the replaced key stays \
                     trusted{}. Restart the CA now.",
                    done.key,
                    done.retire_after.map_or(String::new(), |t| format!(
                        " (its last certificate expires {}: retire it after that)",
                        t.to_rfc3339()
                    ))
                ),
                Step::Retire => eprintln!(
                    "Replaced {name} CA key {} is no longer published; restart the CA. Hosts \
                     drop it at their next krl-sync.",
                    done.key
                ),
            }
            println!("{}", done.key);
            Ok(())
        }
        Command::RecoverAdmin { config, user, ttl } => {
            let r = rampart_ca::recover::recover_admin(&config, &user, ttl)?;
            eprintln!(
                "Recovery invite for {} (audited as admin_recovery_invite), valid until {}.",
                r.user,
                r.expires_at.to_rfc3339()
            );
            eprintln!("Hand this to {} over a channel you trust:", r.user);
            println!(
                "rampart enroll --ca {} --ca-fingerprint {} --invite {}",
                r.url,
                r.tls_fingerprint,
                r.code.expose()
            );
            Ok(())
        }
    }
}
