//! `rampart audit …`: verifying an audit log or export, and exporting events.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `rampart audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit database (hash chain and signed checkpoints), or prove a
    /// JSON Lines export complete and unaltered.
    #[command(group(clap::ArgGroup::new("input").required(true).args(["db", "export"])))]
    Verify {
        /// The audit database: an SQLite file, or a postgres:// URL for a log
        /// several CAs share (password from PGPASSWORD when the URL has none).
        #[arg(long, value_name = "FILE|URL")]
        db: Option<PathBuf>,
        /// A JSON Lines export (`rampart audit export --format jsonl`) to check offline.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The audit public key (OpenSSH format) to check checkpoint signatures
        /// with; required with --export.
        #[arg(long, value_name = "FILE", required_unless_present = "db")]
        audit_pubkey: Option<PathBuf>,
        /// Also check every sealed session recording against the digest the log
        /// sealed: in DIR (the CA's `recordings/` directory), or in the shared
        /// PostgreSQL audit database at URL (the same URL as --db); needs --db.
        #[arg(long, value_name = "DIR|URL", requires = "db")]
        recordings: Option<PathBuf>,
        /// A witness file (the CA's `[audit] witness_file`, or a copy of it from
        /// another host): fail when the database is behind any line of it, holds
        /// another hash at a witnessed sequence, or has a retention anchor the
        /// witness never saw. Needs --db.
        #[arg(long, value_name = "FILE", requires = "db")]
        witness: Option<PathBuf>,
        /// A head recorded elsewhere (the newest event's `seq` and `hash` in the
        /// SIEM, or a head this command printed before), as SEQ:HASH: fail when the
        /// database is behind it or has another hash there. Needs --db.
        #[arg(long, value_name = "SEQ:HASH", requires = "db")]
        expect_head: Option<String>,
    },
    /// Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog.
    Export(AuditExportArgs),
}

/// Formats of `rampart audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// JSON Lines in Rampart's schema, with hashes and signed checkpoints.
    Jsonl,
    /// ArcSight Common Event Format.
    Cef,
    /// OCSF 1.3.0 JSON, one event per line.
    Ocsf,
    /// RFC 5424 syslog with structured data.
    Syslog,
}

/// `rampart audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// The audit database, opened read-only: an SQLite file, or a postgres://
    /// URL (password from PGPASSWORD when the URL has none).
    #[arg(long, value_name = "FILE|URL")]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormatArg,
    /// Only events at or after this time (RFC 3339, e.g. 2025-03-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<String>,
    /// Only this kind, by name or code (repeatable; not with --format jsonl).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Only events about this user (not with --format jsonl).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
