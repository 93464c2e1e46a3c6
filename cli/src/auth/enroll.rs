//! `rampart enroll`: redeem an invite, register TOTP or a security key, receive
//! recovery codes; or (`--oidc`) redeem it with a login at an identity provider,
//! which links the provider account to the invited user and logs in.

use std::process::ExitCode;

use rampart_api::{
    paths, EnrollFinishRequest, EnrollFinishResponse, EnrollStartRequest, EnrollStartResponse,
};

use crate::auth::code::read_code;
use crate::auth::webauthn::{self, Via};
use crate::ca::{missing_fingerprint, CaTarget};
use crate::cli::EnrollArgs;
use crate::error::CliError;
use crate::home::{Config, Home};

/// Run `rampart enroll`.
pub fn run(home: &Home, args: EnrollArgs) -> Result<ExitCode, CliError> {
    let mut config = home.load_config()?;
    // A saved pin only counts for the same CA; a new URL needs its own pin.
    let saved_fp = (config.ca_url.as_deref() == Some(args.ca.as_str()))
        .then(|| config.ca_fingerprint.clone())
        .flatten();
    let fp = args
        .ca_fingerprint
        .clone()
        .or(saved_fp)
        .ok_or_else(missing_fingerprint)?;
    let target = CaTarget::resolve(Some(&args.ca), Some(&fp), &config)?;
    let client = target.client()?;
    if args.webauthn || args.fido2 {
        return enroll_key(home, &mut config, &target, &client, &args);
    }
    if let Some(provider) = &args.oidc {
        return enroll_oidc(home, &mut config, &target, &client, provider, &args);
    }

    let start: EnrollStartResponse = client.post_json(
        paths::ENROLL_START,
        &EnrollStartRequest {
            invite: args.invite.trim().to_owned().into(),
        },
    )?;

    println!("Enrolling {} at {}.", start.user, target.url);
    // The QR code is terminal art: draw it for a person, not into a pipe or a log.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!("Scan this QR code with your authenticator app:");
        match qr2term::generate_qr_string(start.totp_uri.expose()) {
            Ok(qr) => print!("{qr}"),
            Err(e) => {
                eprintln!("rampart: warning: cannot draw the QR code ({e}); use the URI below")
            }
        }
        println!("Or add it by hand:");
    } else {
        println!("Add this secret to your authenticator app:");
    }
    println!("  URI:    {}", start.totp_uri.expose());
    println!("  secret: {}", start.totp_secret.expose());
    println!(
        "This enrolment must be finished before {}.",
        start.expires_at.to_rfc3339()
    );

    let _ = std::io::Write::flush(&mut std::io::stdout());
    let code = read_code("Enter the current 6-digit code: ", args.code_stdin)?;
    let finish: EnrollFinishResponse = client.post_json(
        paths::ENROLL_FINISH,
        &EnrollFinishRequest {
            enrollment_token: start.enrollment_token.clone(),
            totp_code: code.to_string().into(),
        },
    )?;

    target.remember(&mut config);
    config.user = Some(finish.user.clone());
    home.save_config(&config)?;

    println!("Enrolled {}.", finish.user);
    print_recovery_codes(&finish.recovery_codes);
    println!("Next: rampart login");
    Ok(ExitCode::SUCCESS)
}

/// `rampart enroll --webauthn` / `--fido2`: the invite's first factor is a
/// security key, enrolled on the CA's page in a browser or from this terminal.
fn enroll_key(
    home: &Home,
    config: &mut Config,
    target: &CaTarget,
    client: &rampart_api::Client,
    args: &EnrollArgs,
) -> Result<ExitCode, CliError> {
    let via = if args.fido2 {
        Via::Ctap2
    } else {
        Via::Browser {
            open: !args.no_browser,
        }
    };
    let reg = webauthn::register(client, Some(args.invite.trim()), &args.key_name, via, None)?;

    target.remember(config);
    config.user = Some(reg.user.clone());
    home.save_config(config)?;

    println!(
        "Enrolled {} with the security key {:?} (ID {}, AAGUID {}).",
        reg.user, reg.key.name, reg.key.id, reg.key.aaguid
    );
    if !reg.recovery_codes.is_empty() {
        print_recovery_codes(&reg.recovery_codes);
    }
    println!(
        "Next: rampart login --mfa {}",
        if args.fido2 { "fido2" } else { "webauthn" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `rampart enroll --oidc PROVIDER`: the invite rides on an OIDC login. The CA
/// links the provider account to the invited user (unless the account is linked
/// already: then the login is that user's and the invite stays unspent), and
/// the session certifies the file key as `rampart login` would.
fn enroll_oidc(
    home: &Home,
    config: &mut Config,
    target: &CaTarget,
    client: &rampart_api::Client,
    provider: &str,
    args: &EnrollArgs,
) -> Result<ExitCode, CliError> {
    let invite = Some(args.invite.trim());
    let login = if args.device {
        crate::auth::oidc::device_login(client, provider, invite)?
    } else {
        crate::auth::oidc::login(client, provider, None, invite, !args.no_browser)?
    };
    // Said this way because it is true either way: newly linked, or linked before.
    println!(
        "Your {provider} account is linked to {} at {}.",
        login.user, target.url
    );
    // Saves the CA, its pin and the user, like the other enrolments.
    let code = crate::auth::login::certify_file_key(home, config, target, client, login)?;
    println!("Next time: rampart login --mfa oidc --provider {provider}");
    Ok(code)
}

/// Recovery codes are shown exactly once, with a warning.
fn print_recovery_codes(codes: &[rampart_api::WireSecret]) {
    println!();
    println!("Recovery codes (each works once; they are shown only now):");
    for code in codes {
        println!("  {}", code.expose());
    }
    println!();
    println!("WARNING: store these codes somewhere safe and offline, e.g. a password manager.");
    println!("They are your only way in if you lose your authenticator.");
    println!();
}
