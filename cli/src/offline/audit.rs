//! `rampart audit verify`: prove the audit log (or an exported copy of it) was not
//! altered, removed from or reordered, using `rampart_audit::verify` and
//! `rampart_audit::export::verify_export`; `rampart audit export`: write the log
//! in a SIEM format with `rampart_audit::export::export`.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rampart_audit::export::{self as audit_export, ExportFilter, ExportFormat, ExportOptions};
use rampart_audit::recording::RecordingStore;
use rampart_audit::witness::{self, Depth, Head};
use rampart_audit::{AuditError, EventKind};

use crate::cli::{AuditCommand, AuditExportArgs, ExportFormatArg};
use crate::error::{io_detail, CliError, EXIT_AUDIT_FAILED};

/// The log a command reads: an SQLite file as given, or a PostgreSQL log
/// (`--db postgres://…`) copied byte for byte into a temporary SQLite file
/// first, so that verify and export run the same code on both.
struct LocalLog {
    path: PathBuf,
    /// What messages call it (a URL without its password).
    shown: String,
    _copy: Option<tempfile::TempDir>,
}

/// Where a PostgreSQL password comes from when the URL has none (the
/// variable libpq reads too).
const PG_PASSWORD_VAR: &str = "PGPASSWORD";

fn local_log(db: &Path) -> Result<LocalLog, CliError> {
    let text = db.to_str().unwrap_or_default();
    if !rampart_audit::is_postgres_url(text) {
        // SQLite would happily create a missing file; refuse before it gets the chance.
        check_regular_file(db)?;
        return Ok(LocalLog {
            path: db.to_path_buf(),
            shown: db.display().to_string(),
            _copy: None,
        });
    }
    let password = std::env::var(PG_PASSWORD_VAR).ok();
    let config = rampart_audit::pg_config(text, password.as_deref())
        .map_err(|e| CliError::Usage(format!("--db: {}", rampart_api::report::one_line(&e))))?;
    let shown = rampart_audit::AuditStore::Postgres(Box::new(config.clone())).to_string();
    let dir = tempfile::Builder::new()
        .prefix("rampart-audit-copy")
        .tempdir()
        .map_err(|e| CliError::Audit(format!("cannot make a temporary directory: {e}")))?;
    let path = dir.path().join("audit.db");
    rampart_audit::copy_to_sqlite(&config, &path).map_err(|e| {
        CliError::Audit(format!(
            "cannot read {shown}: {}",
            rampart_api::report::one_line(&e)
        ))
    })?;
    Ok(LocalLog {
        path,
        shown,
        _copy: Some(dir),
    })
}

/// Where `--recordings` points: a directory, or a `postgres://` URL (password
/// from PGPASSWORD when the URL has none, as for --db).
fn recording_store(place: &Path) -> Result<RecordingStore, CliError> {
    let text = place.to_str().unwrap_or_default();
    if rampart_audit::is_postgres_url(text) {
        let password = std::env::var(PG_PASSWORD_VAR).ok();
        let config = rampart_audit::pg_config(text, password.as_deref()).map_err(|e| {
            CliError::Usage(format!(
                "--recordings: {}",
                rampart_api::report::one_line(&e)
            ))
        })?;
        return Ok(RecordingStore::Postgres(Box::new(config)));
    }
    let meta = std::fs::metadata(place).map_err(|e| CliError::no_input(place, &e))?;
    if !meta.is_dir() {
        return Err(CliError::NoInput {
            path: place.display().to_string(),
            detail: "not a directory".to_owned(),
        });
    }
    Ok(RecordingStore::Dir(place.to_path_buf()))
}

/// Run an audit command.
pub fn run(cmd: AuditCommand) -> Result<ExitCode, CliError> {
    match cmd {
        AuditCommand::Verify {
            db: Some(db),
            audit_pubkey,
            recordings,
            witness,
            expect_head,
            ..
        } => {
            let expect_head = expect_head
                .as_deref()
                .map(|h| Head::parse(h).map_err(|e| CliError::Usage(format!("--expect-head: {e}"))))
                .transpose()?;
            verify(
                &local_log(&db)?,
                audit_pubkey.as_deref(),
                recordings.as_deref(),
                witness.as_deref(),
                expect_head.as_ref(),
            )
        }
        AuditCommand::Verify {
            export: Some(file),
            audit_pubkey,
            ..
        } => verify_export(&file, audit_pubkey.as_deref()),
        // clap's "input" group requires one of --db / --export.
        AuditCommand::Verify { .. } => Err(CliError::Usage(
            "give --db FILE or --export FILE".to_owned(),
        )),
        AuditCommand::Export(args) => export(args),
    }
}

fn check_regular_file(path: &Path) -> Result<(), CliError> {
    let meta = std::fs::metadata(path).map_err(|e| CliError::no_input(path, &e))?;
    if !meta.is_file() {
        return Err(CliError::NoInput {
            path: path.display().to_string(),
            detail: "not a regular file".to_owned(),
        });
    }
    Ok(())
}

fn parse_time(flag: &str, s: &str) -> Result<chrono::DateTime<chrono::Utc>, CliError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            CliError::Usage(format!(
                "{flag} {s:?} is not an RFC 3339 time like 2025-03-01T00:00:00Z ({e})"
            ))
        })
}

/// The HOSTNAME of RFC 5424 lines: this machine's name, or `-`.
fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let s = std::fs::read_to_string(p).ok()?;
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        })
        .unwrap_or_else(|| "-".to_owned())
}

fn export(args: AuditExportArgs) -> Result<ExitCode, CliError> {
    let format = match args.format {
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        ExportFormatArg::Cef => ExportFormat::Cef,
        ExportFormatArg::Ocsf => ExportFormat::Ocsf,
        ExportFormatArg::Syslog => ExportFormat::Syslog,
    };
    let mut kinds = Vec::new();
    for k in &args.kinds {
        kinds.push(k.parse::<EventKind>().map_err(|_| {
            CliError::Usage(format!(
                "unknown event kind {k:?} (a name like cert_issued or a code like RA-CERT-001; see audit/SCHEMA.md)"
            ))
        })?);
    }
    if format == ExportFormat::Jsonl && (!kinds.is_empty() || args.user.is_some()) {
        return Err(CliError::Usage(
            "--kind and --user cannot be used with --format jsonl: a provable export is a \
             gap-free range (use --since/--until, and filter in the SIEM)"
                .to_owned(),
        ));
    }
    let filter = ExportFilter {
        since: args
            .since
            .as_deref()
            .map(|s| parse_time("--since", s))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time("--until", s))
            .transpose()?,
        kinds,
        user: args.user.clone(),
    };
    let log = local_log(&args.db)?;
    let opts = ExportOptions {
        format,
        filter,
        hostname: local_hostname(),
    };
    let summary = match &args.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            match audit_export::export(&log.path, &opts, &mut out) {
                // A reader that went away (`| head`) is not an error of ours.
                Err(AuditError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::SUCCESS)
                }
                other => other.map_err(|e| export_error(&log, e))?,
            }
        }
        Some(path) => export_to_file(&log, &opts, path)?,
    };
    if summary.held_back > 0 {
        eprintln!(
            "rampart: note: {} newer events are not under a signed checkpoint yet and were left out; export again after the CA's next checkpoint",
            summary.held_back
        );
    }
    if summary.unsigned_tail {
        eprintln!(
            "rampart: note: no signed checkpoint covers these events yet, so `rampart audit verify --export` cannot prove this copy"
        );
    }
    if let Some(path) = &args.output {
        let range = match (summary.events, format) {
            (0, _) => String::new(),
            (_, ExportFormat::Jsonl) => format!(
                " (sequence {} to {}, {} checkpoints)",
                summary.first_seq, summary.last_seq, summary.checkpoints
            ),
            _ => format!(" (sequence {} to {})", summary.first_seq, summary.last_seq),
        };
        println!(
            "wrote {} events{range} to {}",
            summary.events,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Stream into a temporary file beside `path`, then rename it into place, so a
/// failed export never leaves a truncated file that looks complete.
fn export_to_file(
    db: &LocalLog,
    opts: &ExportOptions,
    path: &Path,
) -> Result<audit_export::ExportSummary, CliError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let file = std::fs::File::create(&tmp).map_err(|e| {
        CliError::Other(anyhow::anyhow!(
            "cannot create {}: {}",
            tmp.display(),
            io_detail(&e)
        ))
    })?;
    let mut out = BufWriter::new(file);
    let result = audit_export::export(&db.path, opts, &mut out)
        .map_err(|e| export_error(db, e))
        .and_then(|s| {
            let file = out.into_inner().map_err(|e| {
                CliError::Other(anyhow::anyhow!(
                    "writing {}: {}",
                    tmp.display(),
                    io_detail(e.error())
                ))
            })?;
            file.sync_all()
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| {
                    CliError::Other(anyhow::anyhow!(
                        "writing {}: {}",
                        path.display(),
                        io_detail(&e)
                    ))
                })?;
            Ok(s)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn export_error(db: &LocalLog, e: AuditError) -> CliError {
    match e {
        AuditError::Config(m) => CliError::Usage(m),
        AuditError::Io(e) => {
            CliError::Other(anyhow::anyhow!("writing the export: {}", io_detail(&e)))
        }
        AuditError::CorruptRow { .. } => CliError::Audit(format!(
            "cannot export {}: {e}; run `rampart audit verify --db`",
            db.shown
        )),
        other => CliError::NoInput {
            path: db.shown.clone(),
            detail: rampart_api::report::one_line(&other),
        },
    }
}

fn verify_export(file: &Path, pubkey_file: Option<&Path>) -> Result<ExitCode, CliError> {
    let Some(pubkey_file) = pubkey_file else {
        return Err(CliError::Usage(
            "--export needs --audit-pubkey FILE: only the audit key's signatures prove a copy"
                .to_owned(),
        ));
    };
    check_regular_file(file)?;
    let key = read_pubkey(pubkey_file)?;
    let f = std::fs::File::open(file).map_err(|e| CliError::no_input(file, &e))?;
    let report = audit_export::verify_export(BufReader::new(f), &key).map_err(|e| match e {
        AuditError::Io(io) => CliError::no_input(file, &io),
        other => CliError::Audit(format!(
            "cannot verify {}: {}",
            file.display(),
            rampart_api::report::one_line(&other)
        )),
    })?;
    match &report.problem {
        None if report.events == 0 => {
            println!("OK: the export holds no events");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!(
                "OK: events {} to {} are complete and unaltered: {} events, {} checkpoints verified",
                report.first_seq, report.last_seq, report.events, report.checkpoints
            );
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

fn verify(
    log: &LocalLog,
    pubkey_file: Option<&Path>,
    recordings: Option<&Path>,
    witness_file: Option<&Path>,
    expect_head: Option<&Head>,
) -> Result<ExitCode, CliError> {
    let db = log.path.as_path();
    let pubkey = match pubkey_file {
        Some(p) => Some(read_pubkey(p)?),
        None => None,
    };
    // Read the witness before the database: a damaged or missing witness is a
    // usage problem to report, not a verdict on the log.
    let witness_entries = match witness_file {
        Some(w) => {
            check_regular_file(w)?;
            Some(witness::read(w).map_err(|e| {
                CliError::Audit(format!(
                    "cannot verify: {}",
                    rampart_api::report::one_line(&e)
                ))
            })?)
        }
        None => None,
    };
    let cannot = |e: AuditError| {
        CliError::Audit(format!(
            "cannot verify {}: {}",
            log.shown,
            rampart_api::report::one_line(&e)
        ))
    };
    // A log that cannot even be read as an audit log fails verification (exit 6):
    // for an integrity check, "could not tell" is not a pass.
    let report = rampart_audit::verify(db, pubkey.as_ref()).map_err(cannot)?;
    let head = witness::read_head(db).map_err(cannot)?;
    // Where the chain starts and ends, whatever the verdict: the head is what to
    // keep elsewhere and pass as --expect-head next time.
    let positions = || {
        match &report.anchor {
            None => println!("  anchor: none (the chain is verified from sequence 1)"),
            Some(a) => println!(
                "  anchor: {}:{} (events up to it were pruned; the chain is verified from {})",
                a.seq,
                hex::encode(a.hash),
                a.seq + 1
            ),
        }
        println!("  head: {}:{}", head.seq, hex::encode(head.hash));
    };
    if let Some(p) = &report.problem {
        println!("FAILED at sequence {}: {}", p.seq, p.reason);
        println!(
            "  {} events and {} checkpoints verified before it",
            report.events, report.checkpoints
        );
        positions();
        return Ok(ExitCode::from(EXIT_AUDIT_FAILED));
    }
    // The chain is sound; now, is it all there?
    let mut problems = Vec::new();
    if let Some(expected) = expect_head {
        if let Some(p) = witness::check_expected(db, expected).map_err(cannot)? {
            problems.push(p);
        }
    }
    let mut witness_note = None;
    if let (Some(entries), Some(w)) = (&witness_entries, witness_file) {
        let r = witness::check(db, entries, pubkey.as_ref(), Depth::All).map_err(cannot)?;
        match (r.problem, &r.witnessed_head) {
            (Some(p), _) => problems.push(format!("{p} (witness {})", w.display())),
            (None, Some((h, line))) => {
                witness_note = Some(format!(
                    "  witness: {} lines agree with the database; witnessed head {}:{} (line {line})",
                    r.lines_checked,
                    h.seq,
                    hex::encode(h.hash)
                ));
            }
            (None, None) => witness_note = Some(format!("  witness: {} is empty", w.display())),
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            println!("FAILED: {p}");
        }
        println!(
            "  the chain itself links up ({} events, {} checkpoints verified), but it is \
             not the one recorded elsewhere",
            report.events, report.checkpoints
        );
        positions();
        return Ok(ExitCode::from(EXIT_AUDIT_FAILED));
    }
    println!(
        "OK: {} events, {} checkpoints verified",
        report.events, report.checkpoints
    );
    positions();
    if let Some(n) = witness_note {
        println!("{n}");
    }
    if !report.signatures_checked {
        println!("  checkpoint signatures were not checked (pass --audit-pubkey FILE)");
    }
    if report.last_seq > report.last_checkpoint_seq {
        println!(
            "  events after sequence {} are chained but not yet covered by a signed checkpoint",
            report.last_checkpoint_seq
        );
    }
    if witness_file.is_none() && expect_head.is_none() {
        println!(
            "  a log cut back to an earlier checkpoint verifies too: pass --witness FILE or \
             --expect-head SEQ:HASH to rule that out"
        );
    }
    match recordings {
        Some(dir) => verify_recordings(db, dir),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Every `recording_sealed` event's recording in `place` (a directory, or a
/// PostgreSQL audit database's recording tables) must have the sealed
/// SHA-256. Runs only after the chain verified, so the digests it compares
/// with are the chain's.
fn verify_recordings(db: &Path, place: &Path) -> Result<ExitCode, CliError> {
    let store = recording_store(place)?;
    let report = rampart_audit::recording::verify_recordings(db, &store).map_err(|e| {
        CliError::Audit(format!(
            "cannot check recordings: {}",
            rampart_api::report::one_line(&e)
        ))
    })?;
    if report.problems.is_empty() {
        println!(
            "OK: {} sealed recordings match their digests",
            report.matched
        );
        return Ok(ExitCode::SUCCESS);
    }
    for p in &report.problems {
        println!(
            "FAILED recording of session {} (sealed at sequence {}): {}",
            p.session, p.seq, p.reason
        );
    }
    println!(
        "  {} of {} sealed recordings match their digests",
        report.matched, report.sealed
    );
    Ok(ExitCode::from(EXIT_AUDIT_FAILED))
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
