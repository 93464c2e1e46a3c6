//! The first run against a new CA: enrol the bootstrap admin, add the demo
//! policy, create the `demo` user with an invite, and print what to try
//! next; on later runs, log the admin in again from its saved secrets.

use std::path::{Path, PathBuf};

use rampart_api::{
    paths, Client, ClientError, CreateUserRequest, EnrollFinishRequest, EnrollFinishResponse,
    EnrollStartRequest, EnrollStartResponse, FactorProof, InviteRequest, InviteResponse,
    LoginRequest, LoginResponse,
};
use zeroize::Zeroizing;

use super::{bastion, DEMO_GROUP, DEMO_USER};
use crate::admin::enroll_command;
use crate::ca::CaTarget;
use crate::error::CliError;
use crate::home::{write_atomic, Config, Home, Session};
use crate::ssh;

/// Log in as the bootstrap admin with the TOTP secret `first_run` saved.
pub(super) fn admin_login_from_secrets(client: &Client, dir: &Path) -> Result<Client, CliError> {
    let path = dir.join("admin-secrets.txt");
    let text =
        Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| CliError::no_input(&path, &e))?);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .ok_or_else(|| CliError::Dev(format!("{} has no {name} line", path.display())))
    };
    let user = field("user:")?;
    let uri = Zeroizing::new(field("totp_uri:")?);
    // This step's code may already have been used (a restart within 30 s):
    // the CA refuses a replay, so fall back to the next step's.
    let mut last = None;
    for offset in [0, 30] {
        let code = totp_code_at(&uri, unix_now() + offset)?;
        match client.post_json::<_, LoginResponse>(
            paths::LOGIN,
            &LoginRequest {
                user: user.clone(),
                factor: FactorProof::Totp {
                    code: code.to_string().into(),
                },
            },
        ) {
            Ok(login) => return Ok(client.clone().with_token(login.session_token.expose())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || CliError::Dev("admin login failed".to_owned()),
        Into::into,
    ))
}

/// Append the dev bastion role to the new CA's policy (before it first starts),
/// with the bastion registered for the target given (or the local sshd).
pub(super) fn add_dev_policy(
    config: &Path,
    target_spec: Option<&str>,
    bastion_listen: &str,
) -> Result<(), CliError> {
    let bastion = bastion::dial_address(bastion::resolve_listen(bastion_listen)?);
    let target = match target_spec {
        Some(spec) => bastion::parse_target(spec).map_err(CliError::Usage)?.0,
        None => bastion::LOCAL_TARGET.to_owned(),
    };
    let policy = config
        .parent()
        .map(|d| d.join("policy.toml"))
        .ok_or_else(|| CliError::Dev(format!("{} has no directory", config.display())))?;
    let mut text = match std::fs::read_to_string(&policy) {
        Ok(t) => t,
        // Not where `init` puts it: leave the policy alone (bastion access is then
        // refused by policy, with the reason shown to the user).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "rampart: {} not found; the demo user gets no bastion role",
                policy.display()
            );
            return Ok(());
        }
        Err(e) => return Err(CliError::no_input(&policy, &e)),
    };
    text.push_str(&bastion::dev_policy(
        DEMO_USER,
        bastion::os_user().as_deref(),
        &target,
        bastion,
    ));
    write_atomic(&policy, text.as_bytes(), 0o644)
}

/// What the first run produced, for printing.
pub(super) struct FirstRun {
    pub(super) admin_secrets: PathBuf,
    pub(super) admin_home: PathBuf,
    pub(super) demo_invite: InviteResponse,
    pub(super) user_ca_path: PathBuf,
    /// The bootstrap admin's fresh session, for joining the dev bastion.
    pub(super) admin: Client,
}

pub(super) fn print_first_run(user_home: &Home, target: &CaTarget, dir: &Path, r: &FirstRun) {
    println!();
    println!("Rampart dev CA is running at {}", target.url);
    println!("  TLS fingerprint: {}", target.fingerprint);
    println!(
        "  admin secrets:   {} (TOTP URI and recovery codes)",
        r.admin_secrets.display()
    );
    println!(
        "  act as admin:    rampart --home {} admin user list",
        r.admin_home.display()
    );
    println!();
    println!(
        "Try it as user `{DEMO_USER}` (group {DEMO_GROUP}); the invite expires {}:",
        r.demo_invite.expires_at.to_rfc3339()
    );
    println!("  {}", enroll_command(target, r.demo_invite.code.expose()));
    println!("  rampart login");
    println!("Then put this line at the top of ~/.ssh/config:");
    println!("  {}", ssh::include_line(user_home));
    println!();
    println!("To let an sshd accept Rampart certificates:");
    println!(
        "  sudo cp {} /etc/ssh/rampart_user_ca.pub",
        r.user_ca_path.display()
    );
    println!("  and add to /etc/ssh/sshd_config, then reload sshd:");
    println!("    TrustedUserCAKeys /etc/ssh/rampart_user_ca.pub");
    println!(
        "(state is kept in {}; run `rampart dev` again to restart it)",
        dir.display()
    );
}

/// Enrol the bootstrap admin through the API, log in as admin, create the demo user
/// and its invite, and fetch the user CA key.
pub(super) fn first_run(
    client: &Client,
    target: &CaTarget,
    dir: &Path,
    invite: &str,
) -> Result<FirstRun, CliError> {
    let start: EnrollStartResponse = client.post_json(
        paths::ENROLL_START,
        &EnrollStartRequest {
            invite: invite.to_owned().into(),
        },
    )?;
    let code = totp_code_at(start.totp_uri.expose(), unix_now())?;
    let finish: EnrollFinishResponse = client.post_json(
        paths::ENROLL_FINISH,
        &EnrollFinishRequest {
            enrollment_token: start.enrollment_token.clone(),
            totp_code: code.to_string().into(),
        },
    )?;

    let admin_secrets = dir.join("admin-secrets.txt");
    let mut text = Zeroizing::new(format!(
        "# Rampart dev CA bootstrap admin. Keep this file private.\n\
         user: {}\nca: {}\nca_fingerprint: {}\ntotp_uri: {}\ntotp_secret: {}\nrecovery_codes:\n",
        finish.user,
        target.url,
        target.fingerprint,
        start.totp_uri.expose(),
        start.totp_secret.expose()
    ));
    for c in &finish.recovery_codes {
        text.push_str(&format!("  {}\n", c.expose()));
    }
    write_atomic(&admin_secrets, text.as_bytes(), 0o600)?;

    // The CA refuses a TOTP step that was already used (the enrolment's) and
    // accepts one step of skew, so log in with the code of the *next* 30 s step.
    let code = totp_code_at(start.totp_uri.expose(), unix_now() + 30)?;
    let login: LoginResponse = client.post_json(
        paths::LOGIN,
        &LoginRequest {
            user: finish.user.clone(),
            factor: FactorProof::Totp {
                code: code.to_string().into(),
            },
        },
    )?;

    // Keep the admin session in DIR/admin, never in the user's own home.
    let admin_home = Home::new(dir.join("admin"));
    let mut config = Config::default();
    target.remember(&mut config);
    config.user = Some(login.user.clone());
    admin_home.save_config(&config)?;
    admin_home.save_session(&Session {
        token: login.session_token.clone(),
        user: login.user.clone(),
        admin: login.admin,
        mfa_method: login.mfa_method.clone(),
        mfa_time: login.mfa_time,
        expires_at: login.expires_at,
        cert_file: None,
        agent_added_key: None,
    })?;

    let admin = client.clone().with_token(login.session_token.expose());
    match admin.post_json::<_, serde_json::Value>(
        paths::ADMIN_USERS,
        &CreateUserRequest {
            name: DEMO_USER.to_owned(),
            groups: vec![DEMO_GROUP.to_owned()],
            admin: false,
        },
    ) {
        // 409: a previous, interrupted first run already created it.
        Ok(_) | Err(ClientError::Decode(_)) | Err(ClientError::Api { status: 409, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let demo_invite: InviteResponse = admin.post_json(
        paths::ADMIN_INVITES,
        &InviteRequest {
            user: DEMO_USER.to_owned(),
            ttl_seconds: None,
        },
    )?;

    let user_ca = client.user_ca()?;
    let user_ca_path = dir.join("user_ca.pub");
    write_atomic(&user_ca_path, format!("{user_ca}\n").as_bytes(), 0o644)?;
    Ok(FirstRun {
        admin_secrets,
        admin_home: admin_home.dir().to_path_buf(),
        demo_invite,
        user_ca_path,
        admin,
    })
}

/// The RFC 6238 code of `uri` (an `otpauth://totp/…` URI) at Unix time `unix`.
pub(super) fn totp_code_at(uri: &str, unix: u64) -> Result<Zeroizing<String>, CliError> {
    // `unchecked`: the CA chose the parameters; we only compute with them.
    let totp = totp_rs::TOTP::from_url_unchecked(uri)
        .map_err(|e| CliError::Dev(format!("the CA sent an unusable TOTP URI: {e:?}")))?;
    Ok(Zeroizing::new(totp.generate(unix)))
}

pub(super) fn unix_now() -> u64 {
    crate::clock::unix_secs()
}
