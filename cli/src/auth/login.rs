//! `rampart login`: prove a factor, get a certificate, wire it into OpenSSH.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_api::{
    paths, AttestedCertRequest, CertResponse, ClientError, FactorProof, LoginRequest,
    LoginResponse, SshHosts,
};

use crate::auth::code::read_code;
use crate::ca::{not_enrolled, CaTarget};
use crate::cli::{KeyChoice, LoginArgs, MfaMethod};
use crate::duration::human;
use crate::error::CliError;
use crate::home::{write_atomic, Home, Session};
use crate::ssh;

/// The key to certify when it is not the file key.
enum OtherKey {
    /// `--agent-key`: a key held by ssh-agent.
    Agent(ssh_key::PublicKey),
    /// `--key piv`: the key in YubiKey PIV slot 9a, with its attestation.
    Piv(Box<crate::auth::piv::PivKey>),
}

/// Run `rampart login`.
pub fn run(home: &Home, args: LoginArgs) -> Result<ExitCode, CliError> {
    let mut config = home.load_config()?;
    if args.ca.is_none() && config.ca_url.is_none() {
        return Err(not_enrolled());
    }
    let target = CaTarget::resolve(args.ca.as_deref(), args.ca_fingerprint.as_deref(), &config)?;
    // Check what is checkable before a factor is spent (a code is single-use).
    if let Some(bad) = args.ssh_hosts.iter().find(|h| !ssh::host_pattern_ok(h)) {
        return Err(CliError::Usage(format!(
            "--ssh-host {bad:?} is not a host name or pattern (letters, digits, `.-_:` and \
             the wildcards `*` `?`, naming at least one letter or digit; never every host)"
        )));
    }
    let oidc = args.mfa == MfaMethod::Oidc;
    let user = args
        .user
        .clone()
        .or_else(|| config.user.clone())
        // With OIDC the identity provider says who the user is.
        .or_else(|| oidc.then(String::new))
        .ok_or_else(|| {
            CliError::NotLoggedIn(
                "no user configured: pass --user NAME (or run `rampart enroll` first)".to_owned(),
            )
        })?;
    // Resolve the agent key before asking for a code: a code is single-use.
    // Likewise the YubiKey (`--key piv`): find it, generate the key once, read its
    // attestation, before the factor is spent.
    let key = match (&args.agent_key, args.key) {
        (Some(fp), _) => Some(OtherKey::Agent(ssh::agent_key(fp)?)),
        (None, KeyChoice::Piv) => Some(OtherKey::Piv(Box::new(crate::auth::piv::prepare()?))),
        (None, KeyChoice::File) => None,
    };
    let client = target.client()?;

    let login = if oidc {
        let provider = args.provider.as_deref().ok_or_else(|| {
            CliError::Usage("--mfa oidc needs --provider NAME (ask your admin)".to_owned())
        })?;
        let hint = (!user.is_empty()).then_some(user.as_str());
        if args.device {
            crate::auth::oidc::device_login(&client, provider, None)?
        } else {
            crate::auth::oidc::login(&client, provider, hint, None, !args.no_browser)?
        }
    } else if let Some(via) = crate::auth::webauthn::via_for(args.mfa, args.no_browser) {
        crate::auth::webauthn::login(&client, &user, via)?
    } else {
        login_with_code(&client, &target, &user, &args)?
    };
    let wanted = Wanted {
        ttl: args.ttl,
        ssh_hosts: &args.ssh_hosts,
    };
    finish(home, &mut config, &target, &client, login, &wanted, key)
}

/// What a login asks of its certificate beyond the session.
#[derive(Debug, Default)]
struct Wanted<'a> {
    /// `--ttl`.
    ttl: Option<std::time::Duration>,
    /// `--ssh-host`: replaces the saved list unless empty.
    ssh_hosts: &'a [String],
}

/// Certify the file key with a session another command opened (`rampart
/// enroll --oidc`) and wire it into OpenSSH, as a plain `rampart login` does.
pub(crate) fn certify_file_key(
    home: &Home,
    config: &mut crate::home::Config,
    target: &CaTarget,
    client: &rampart_api::Client,
    login: LoginResponse,
) -> Result<ExitCode, CliError> {
    finish(
        home,
        config,
        target,
        client,
        login,
        &Wanted::default(),
        None,
    )
}

fn login_with_code(
    client: &rampart_api::Client,
    target: &CaTarget,
    user: &str,
    args: &LoginArgs,
) -> Result<LoginResponse, CliError> {
    let what = if args.recovery {
        "Recovery code"
    } else {
        "TOTP code"
    };
    let code = read_code(
        &format!("{what} for {user} at {}: ", target.url),
        args.code_stdin,
    )?;
    let factor = if args.recovery {
        FactorProof::Recovery {
            code: code.to_string().into(),
        }
    } else {
        FactorProof::Totp {
            code: code.to_string().into(),
        }
    };
    Ok(client.post_json(
        paths::LOGIN,
        &LoginRequest {
            user: user.to_owned(),
            factor,
        },
    )?)
}

fn finish(
    home: &Home,
    config: &mut crate::home::Config,
    target: &CaTarget,
    client: &rampart_api::Client,
    login: LoginResponse,
    wanted: &Wanted<'_>,
    key: Option<OtherKey>,
) -> Result<ExitCode, CliError> {
    target.remember(config);
    config.user = Some(login.user.clone());
    if !wanted.ssh_hosts.is_empty() {
        config.ssh_hosts = wanted.ssh_hosts.to_vec();
    }
    home.save_config(config)?;

    let mut session = Session {
        token: login.session_token.clone(),
        user: login.user.clone(),
        admin: login.admin,
        mfa_method: login.mfa_method.clone(),
        mfa_time: login.mfa_time,
        expires_at: login.expires_at,
        cert_file: None,
        agent_added_key: None,
    };
    home.save_session(&session)?;

    let (agent_key, piv) = match key {
        Some(OtherKey::Agent(pk)) => (Some(pk), None),
        Some(OtherKey::Piv(p)) => (None, Some(*p)),
        None => (None, None),
    };
    // Which key to certify, and where its certificate goes.
    let (public, key_file, cert_path): (_, Option<PathBuf>, PathBuf) =
        match (piv.as_ref(), agent_key) {
            (Some(p), _) => (p.public.clone(), None, crate::auth::piv::cert_path(home)),
            (None, Some(pk)) => {
                let cert = ssh::agent_cert_path(home, &pk.fingerprint(ssh_key::HashAlg::Sha256));
                (pk, None, cert)
            }
            (None, None) => {
                let (pk, created) = ssh::ensure_file_key(home, &login.user)?;
                if created {
                    println!("Created a new key {}", home.key_path().display());
                }
                (pk, Some(home.key_path()), home.cert_path())
            }
        };
    let public_line = public
        .to_openssh()
        .map_err(|e| anyhow::anyhow!("cannot encode the public key: {e}"))?;

    let authed = client.clone().with_token(login.session_token.expose());
    let cert: CertResponse = authed
        .post_json(
            paths::CERTS,
            &AttestedCertRequest {
                public_key: public_line,
                ttl_seconds: wanted.ttl.map(|d| d.as_secs()),
                piv_attestation: piv.as_ref().map(|p| p.attestation.clone()),
            },
        )
        .map_err(CliError::from_session_call)?;
    write_atomic(
        &cert_path,
        format!("{}\n", cert.certificate.trim()).as_bytes(),
        0o644,
    )?;
    session.cert_file = Some(cert_path.clone());

    let host_ca = authed.host_ca()?;
    let ssh_hosts = ca_ssh_hosts(&authed)?;
    write_atomic(
        &home.known_hosts_path(),
        ssh::known_hosts(&host_ca, &ssh_hosts.revoked_host_keys).as_bytes(),
        0o644,
    )?;
    let (hosts, left_out) = ssh::cert_hosts(&ssh_hosts.hosts, &config.ssh_hosts, &target.url);
    for h in &left_out {
        eprintln!("rampart: warning: the CA named {h:?} as an SSH host; it is not a usable host name, left out");
    }
    let mut ssh_config = match &piv {
        Some(_) => crate::auth::piv::ssh_config(home, &hosts, &cert_path),
        None => ssh::ssh_config(home, &hosts, key_file.as_deref(), &cert_path, None),
    };
    let targets = ca_targets(&authed);
    if let Some(t) = &targets {
        let (blocks, left_out) = ssh::jump_blocks(t);
        for name in &left_out {
            eprintln!(
                "rampart: warning: the CA named {name:?} as a target or bastion; it is not a \
                 usable host name, left out of the ssh config"
            );
        }
        ssh_config.push_str(&blocks);
    }
    write_atomic(&home.ssh_config_path(), ssh_config.as_bytes(), 0o644)?;

    let now = crate::clock::now();
    let left = (cert.valid_before - now).num_seconds();
    if let Some(key) = &key_file {
        if ssh::agent_present() {
            match ssh::agent_add(key, u64::try_from(left).unwrap_or(1)) {
                Ok(()) => {
                    println!(
                        "Added the key and certificate to ssh-agent for {}.",
                        human(left)
                    );
                    session.agent_added_key = Some(key.clone());
                }
                Err(e) => eprintln!("rampart: warning: could not add the key to ssh-agent: {e}"),
            }
        }
    }
    home.save_session(&session)?;

    println!("Logged in as {} ({}).", login.user, login.mfa_method);
    println!("Certificate serial {}", cert.serial);
    println!("  principals:  {}", cert.principals.join(", "));
    println!(
        "  valid until: {} ({} from now)",
        cert.valid_before.to_rfc3339(),
        human(left)
    );
    println!("  file:        {}", cert_path.display());
    if let Some(p) = &piv {
        println!(
            "  key:         YubiKey {} PIV slot 9a{} (attested); ssh signs through {} \
             and asks for the PIN and a touch",
            p.serial,
            if p.generated { ", generated now" } else { "" },
            crate::auth::piv::PKCS11_MODULE
        );
    }
    println!(
        "  ssh offers it to: {} (add hosts with `rampart login --ssh-host PATTERN`)",
        hosts.join(" ")
    );
    if let Some(t) = &targets {
        let names: Vec<&str> = t.targets.iter().map(|r| r.target.as_str()).collect();
        if !names.is_empty() {
            println!(
                "  targets:     {} (`rampart ls`; `ssh TARGET` jumps through its bastion)",
                names.join(" ")
            );
        }
    }
    println!("Put this line at the top of ~/.ssh/config:");
    println!("  {}", ssh::include_line(home));
    Ok(ExitCode::SUCCESS)
}

/// The hosts the CA names (its joined bastions). A CA from before
/// `/v1/ssh-hosts` answers 404: no hosts, quietly. Any other failure is a
/// warning, not a failed login: the certificate is already issued, and the
/// user's own `--ssh-host` list (or the CA's host) still applies.
/// The hosts to offer the certificate to and the revoked host keys. A CA that
/// predates the endpoint (404) names none; any other failure fails the login,
/// since a known_hosts written without the revoked keys would trust them.
fn ca_ssh_hosts(client: &rampart_api::Client) -> Result<SshHosts, CliError> {
    match client.get_json::<SshHosts>(paths::SSH_HOSTS) {
        Ok(h) => Ok(h),
        Err(ClientError::Api { status: 404, .. }) => Ok(SshHosts::default()),
        Err(e) => Err(CliError::from_session_call(e)),
    }
}

/// The targets the user may reach, for the per-target Host blocks. A login
/// does not fail for them: the certificate is issued already and the blocks
/// are a convenience (`rampart ssh` asks again). A CA from before
/// `/v1/targets` (404) names none, quietly; anything else is a warning.
fn ca_targets(client: &rampart_api::Client) -> Option<rampart_api::Targets> {
    match client.get_json::<rampart_api::Targets>(paths::TARGETS) {
        Ok(t) => Some(t),
        Err(ClientError::Api { status: 404, .. }) => None,
        Err(e) => {
            eprintln!(
                "rampart: warning: could not list your targets, the ssh config names none: {e}"
            );
            None
        }
    }
}
