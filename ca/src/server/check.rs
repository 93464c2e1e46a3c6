//! `rampart-ca check`: everything `serve` loads, without serving, and what it
//! would warn about.

use std::path::Path;

use rampart_policy::LintSeverity;

use super::policy::load_policy;
use super::{load_tls, witness_missing_hint, WITNESS_HINT};
use crate::config::{Config, Database};
use crate::error::CaError;

/// `rampart-ca check`: everything `serve` loads, without serving. Returns a short
/// human summary.
pub fn check(config_path: &Path) -> Result<String, CaError> {
    let config = Config::load(config_path)?;
    let pass = config.read_passphrase()?;
    let keys = crate::keys::load(&config, &pass)?;
    let audit_public = keys.audit.public_key().clone();
    drop(keys);
    let policy = load_policy(&config.policy)?;
    // The policy's own lints, plus the one only the CA can judge: roles needing
    // phishing-resistant keys when `[webauthn]` vouches for no key model.
    let warnings = policy
        .lint()
        .into_iter()
        .chain(policy.lint_key_attestation(config.webauthn.verifies_key_models()))
        .filter(|l| l.severity == LintSeverity::Warning)
        .map(|l| format!("policy warning: {l}"))
        .collect::<Vec<_>>();
    load_tls(&config)?;
    for f in &config.forwarders {
        crate::forwarders::sink_for(f)?; // the TLS CA file must load
    }
    let files = [
        config.database.sqlite_path(),
        config.audit_database.sqlite_path(),
    ];
    for db in files.into_iter().flatten() {
        if !db.exists() {
            return Err(CaError::Config(format!("{} does not exist", db.display())));
        }
    }
    let schema_lines = check_schemas(&config)?;
    let witness_line = check_witness(&config, &audit_public)?;
    let rotation_lines = crate::rotation::describe(&config)?;
    let mut out = format!(
        "configuration OK: {} (listen {}, keys decrypt, policy valid, TLS loads)",
        config.path.display(),
        config.listen
    );
    for line in schema_lines
        .iter()
        .chain([&witness_line])
        .chain(&rotation_lines)
    {
        out.push('\n');
        out.push_str(line);
    }
    let warnings = passphrase_beside_keys(&config).into_iter().chain(warnings);
    for w in warnings {
        out.push('\n');
        out.push_str(&w);
    }
    Ok(out)
}

/// `check`'s view of the two databases' schema versions, read without upgrading
/// anything: an error for a database `serve` would refuse (newer than this
/// binary, or not Rampart's), else a line each saying the version and whether
/// the next start upgrades it.
fn check_schemas(config: &Config) -> Result<[String; 2], CaError> {
    let ca = match &config.database {
        Database::Sqlite(path) => crate::store::sqlite::inspect(path),
        Database::Postgres(pg) => crate::store::postgres::inspect(&pg.target()?),
    }
    .map_err(|e| {
        CaError::Config(format!(
            "CA database {}: {}; `serve` would refuse to start",
            config.database,
            rampart_api::report::one_line(&e)
        ))
    })?;
    let ca_line = if ca.needs_upgrade() {
        format!(
            "CA database {}: schema version {}; the next start upgrades it to {} \
             (back it up first)",
            config.database, ca.found, ca.supported
        )
    } else {
        format!(
            "CA database OK: {} (schema version {})",
            config.database, ca.found
        )
    };
    let audit = config.audit_database.schema_version().map_err(|e| {
        CaError::Config(format!(
            "audit database {}: {}",
            config.audit_database,
            rampart_api::report::one_line(&e)
        ))
    })?;
    let audit_line = if audit == 0 {
        format!(
            "audit database {}: no audit tables yet; the next start creates them",
            config.audit_database
        )
    } else {
        format!(
            "audit database OK: {} (schema version {audit})",
            config.audit_database
        )
    };
    Ok([ca_line, audit_line])
}

/// `check`'s view of the audit witness: an error when the database is behind or
/// disagrees with it, or when it is missing or empty beside a database with
/// checkpoints (what `serve` would refuse), else one line saying where the
/// witnessed head is.
fn check_witness(config: &Config, audit_key: &ssh_key::PublicKey) -> Result<String, CaError> {
    let w = &config.audit_witness;
    let absent = rampart_audit::witness::is_absent(w).map_err(|e| {
        CaError::Config(format!(
            "audit witness: {}",
            rampart_api::report::one_line(&e)
        ))
    })?;
    if absent {
        return match config
            .audit_database
            .absent_witness_problem(w)
            .map_err(|e| {
                CaError::Config(format!(
                    "audit witness: {}",
                    rampart_api::report::one_line(&e)
                ))
            })? {
            Some(p) => Err(CaError::Config(format!(
                "{p}; `serve` would refuse to start: {}",
                witness_missing_hint(config)
            ))),
            None => Ok(format!(
                "audit witness {} is not started yet: the audit database has no \
                 checkpoint, and the first one begins it",
                w.display()
            )),
        };
    }
    let report = config
        .audit_database
        .check_witness(w, Some(audit_key))
        .map_err(|e| {
            CaError::Config(format!(
                "audit witness: {}",
                rampart_api::report::one_line(&e)
            ))
        })?;
    if let Some(p) = report.problem {
        return Err(CaError::Config(format!(
            "audit witness {}: {p}; `serve` would refuse to start: {WITNESS_HINT}",
            w.display()
        )));
    }
    Ok(match report.witnessed_head {
        Some((h, _)) => format!(
            "audit witness OK: {} (database head {}, witnessed head {h})",
            w.display(),
            report.db_head
        ),
        None => format!("audit witness {} is empty", w.display()),
    })
}

/// A warning when the key passphrase is a file inside the CA directory or a key
/// directory: then whoever copies the directory (a backup, a snapshot, a stolen
/// disk image) has the encrypted keys and their passphrase together, and the
/// encryption protects nothing.
pub fn passphrase_beside_keys(config: &Config) -> Option<String> {
    let file = config.passphrase_path()?;
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let file = real(&file);
    let dirs = std::iter::once(config.path.as_path())
        .chain(config.key_files())
        .filter_map(Path::parent);
    let dir = dirs.map(real).find(|d| file.starts_with(d))?;
    let name = crate::init::SYSTEMD_CREDENTIAL;
    Some(format!(
        "warning: the key passphrase file {file} is inside {dir}, beside the encrypted keys: \
         a copy of that directory holds both. Move it into a systemd credential \
         (systemd-creds encrypt --name={name} {file} /etc/rampart/ca-passphrase.cred, set \
         passphrase_credential = \"{name}\" in [keys], then shred -u {file})",
        file = file.display(),
        dir = dir.display(),
    ))
}
