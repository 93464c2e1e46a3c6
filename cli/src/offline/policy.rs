//! `rampart policy check` and `rampart policy test`: the policy file through
//! `rampart_policy`, with no CA involved (`check --ca-config` reads the CA's
//! config file for the lints that depend on it, but talks to no CA).

use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr as _;

use rampart_policy::{evaluate, CertRequest, Decision, Factor, LintSeverity, Policy, PolicyError};

use crate::cli::{FactorArg, PolicyCommand, PolicyTestArgs};
use crate::duration::human;
use crate::error::{CliError, EXIT_POLICY_DENIED};

/// Run a policy command.
pub fn run(cmd: PolicyCommand) -> Result<ExitCode, CliError> {
    match cmd {
        PolicyCommand::Check { file, ca_config } => check(&file, ca_config.as_deref()),
        PolicyCommand::Test(args) => test(&args),
    }
}

/// Read and parse a policy file: exit 9 if unreadable, 8 if invalid.
fn load(file: &Path) -> Result<Policy, CliError> {
    let src = std::fs::read_to_string(file).map_err(|e| CliError::no_input(file, &e))?;
    Policy::from_toml(&src)
        .map_err(|e| CliError::PolicyInvalid(format!("{}: {}", file.display(), describe(&e, &src))))
}

/// One line for a parse error (toml's own `Display` draws a multi-line
/// source snippet).
fn describe(err: &PolicyError, src: &str) -> String {
    match err {
        PolicyError::Syntax(te) => rampart_api::report::at_line(src, te.span(), te.message()),
        other => other.to_string(),
    }
}

fn check(file: &Path, ca_config: Option<&Path>) -> Result<ExitCode, CliError> {
    let policy = load(file)?;
    let mut lints = policy.lint();
    if let Some(config) = ca_config {
        lints.extend(policy.lint_key_attestation(verifies_key_models(config)?));
    }
    let errors = lints
        .iter()
        .filter(|l| l.severity == LintSeverity::Error)
        .count();
    let warnings = lints.len() - errors;
    for lint in &lints {
        println!("{}: {lint}", file.display());
    }
    if errors > 0 {
        return Err(CliError::PolicyInvalid(format!(
            "{}: {errors} error(s), {warnings} warning(s)",
            file.display()
        )));
    }
    println!("{}: OK ({warnings} warning(s))", file.display());
    Ok(ExitCode::SUCCESS)
}

/// Whether the CA config's `[webauthn]` vouches for any key model: non-empty
/// `attestation_roots` or `allowed_aaguids`, as `rampart-ca` reads them. Only
/// these two keys are looked at; `rampart-ca check` validates the rest.
fn verifies_key_models(config: &Path) -> Result<bool, CliError> {
    let src = std::fs::read_to_string(config).map_err(|e| CliError::no_input(config, &e))?;
    let table: toml::Table = toml::from_str(&src)
        .map_err(|e| CliError::Usage(format!("{}: {}", config.display(), e.message())))?;
    let non_empty = |key: &str| {
        table
            .get("webauthn")
            .and_then(|w| w.get(key))
            .and_then(toml::Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    Ok(non_empty("attestation_roots") || non_empty("allowed_aaguids"))
}

fn factor(arg: FactorArg) -> Result<Factor, CliError> {
    let name = match arg {
        FactorArg::Totp => "totp",
        FactorArg::Recovery => "recovery",
        FactorArg::Webauthn => "webauthn",
        FactorArg::WebauthnUv => "webauthn-uv",
        FactorArg::WebauthnUnattested => "webauthn-unattested",
        FactorArg::WebauthnUvUnattested => "webauthn-uv-unattested",
        FactorArg::WebauthnLink => "webauthn-link",
        FactorArg::WebauthnUvLink => "webauthn-uv-link",
        FactorArg::WebauthnUnattestedLink => "webauthn-unattested-link",
        FactorArg::WebauthnUvUnattestedLink => "webauthn-uv-unattested-link",
        FactorArg::Oidc => "oidc",
    };
    Factor::from_str(name).map_err(|e| CliError::Usage(e.to_string()))
}

fn test(args: &PolicyTestArgs) -> Result<ExitCode, CliError> {
    let policy = load(&args.file)?;
    let now = crate::clock::now();
    let age = chrono::Duration::from_std(args.mfa_age)
        .map_err(|_| CliError::Usage("--mfa-age is too large".to_owned()))?;
    let groups: Vec<String> = args
        .groups
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    let req = CertRequest {
        user: &args.user,
        groups: &groups,
        factor: factor(args.factor)?,
        mfa_time: now - age,
        requested_ttl: args.ttl,
        login: args.login.as_deref(),
    };
    let decision = evaluate(&req, &policy, now);
    if args.json {
        println!("{}", crate::output::json(&decision)?);
    } else {
        print!("{}", render(&decision));
    }
    Ok(match decision {
        Decision::Allow(_) => ExitCode::SUCCESS,
        Decision::Deny(_) => ExitCode::from(EXIT_POLICY_DENIED),
    })
}

/// The decision for people.
fn render(decision: &Decision) -> String {
    match decision {
        Decision::Allow(g) => {
            let mut out = format!("ALLOW {}\n", g.user());
            let ext: Vec<&str> = g.extensions().keys().map(String::as_str).collect();
            let src: Vec<String> = g.source_address().iter().map(ToString::to_string).collect();
            let ttl = g.ttl().as_secs();
            out.push_str(&format!("  roles:          {}\n", g.roles().join(", ")));
            out.push_str(&format!(
                "  principals:     {}\n",
                g.principals().join(", ")
            ));
            out.push_str(&format!(
                "  ttl:            {} ({ttl}s)\n",
                human(i64::try_from(ttl).unwrap_or(i64::MAX))
            ));
            out.push_str(&format!(
                "  extensions:     {}\n",
                if ext.is_empty() {
                    "none".to_owned()
                } else {
                    ext.join(", ")
                }
            ));
            out.push_str(&format!(
                "  source-address: {}\n",
                if src.is_empty() {
                    "any".to_owned()
                } else {
                    src.join(", ")
                }
            ));
            if !g.reasons().is_empty() {
                out.push_str("  because:\n");
                for r in g.reasons() {
                    out.push_str(&format!("    - {r}\n"));
                }
            }
            out
        }
        Decision::Deny(d) => format!("DENY ({}): {}\n", d.code.as_str(), d.reason),
    }
}
