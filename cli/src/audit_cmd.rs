//! `rampart audit verify`: prove the audit log was not altered, removed from or
//! reordered, using `rampart_audit::verify`.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::AuditCommand;
use crate::error::{CliError, EXIT_AUDIT_FAILED};

/// Run an audit command.
pub fn run(cmd: AuditCommand) -> Result<ExitCode, CliError> {
    match cmd {
        AuditCommand::Verify { db, audit_pubkey } => verify(&db, audit_pubkey.as_deref()),
    }
}

fn verify(db: &Path, pubkey_file: Option<&Path>) -> Result<ExitCode, CliError> {
    // SQLite would happily create a missing file; refuse before it gets the chance.
    let meta = std::fs::metadata(db).map_err(|e| CliError::no_input(db, &e))?;
    if !meta.is_file() {
        return Err(CliError::NoInput {
            path: db.display().to_string(),
            detail: "not a regular file".to_owned(),
        });
    }
    let pubkey = match pubkey_file {
        Some(p) => Some(read_pubkey(p)?),
        None => None,
    };
    // A log that cannot even be read as an audit log fails verification (exit 6):
    // for an integrity check, "could not tell" is not a pass.
    let report = rampart_audit::verify(db, pubkey.as_ref())
        .map_err(|e| CliError::Audit(format!("cannot verify {}: {e}", db.display())))?;
    match &report.problem {
        None => {
            println!(
                "OK: {} events, {} checkpoints verified",
                report.events, report.checkpoints
            );
            if !report.signatures_checked {
                println!("  checkpoint signatures were not checked (pass --audit-pubkey FILE)");
            }
            if report.last_seq > report.last_checkpoint_seq {
                println!(
                    "  events after sequence {} are chained but not yet covered by a signed checkpoint",
                    report.last_checkpoint_seq
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(p) => {
            println!("FAILED at sequence {}: {}", p.seq, p.reason);
            println!(
                "  {} events and {} checkpoints verified before it",
                report.events, report.checkpoints
            );
            Ok(ExitCode::from(EXIT_AUDIT_FAILED))
        }
    }
}

/// The audit public key, OpenSSH one-line format.
fn read_pubkey(path: &Path) -> Result<ssh_key::PublicKey, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::no_input(path, &e))?;
    ssh_key::PublicKey::from_openssh(text.trim()).map_err(|e| {
        CliError::Usage(format!(
            "{} is not an OpenSSH public key: {e}",
            path.display()
        ))
    })
}
