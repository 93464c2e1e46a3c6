//! `rampart-ca backup`: a consistent copy of a CA's directory, taken while the
//! daemon runs, that proves itself before it is called a backup.
//!
//! What goes in: every file under the directory of `config.toml` (config,
//! policy, the encrypted keys, TLS files, OIDC and SIEM secrets kept there),
//! with the two SQLite databases as snapshots (`VACUUM INTO`, one read
//! transaction each, so a write in flight is either wholly in or wholly out),
//! the audit witness and the sealed recordings. What stays out: the key
//! passphrase (a backup that carried it would open the keys it holds; a file
//! source is skipped, a credential or variable never lies there) and the
//! databases' `-wal`/`-shm` files (the snapshots replace them).
//!
//! The order matters for the audit log's protections, which a restore must pass:
//! the witness is copied *before* the audit snapshot, so every checkpoint it
//! names is in the snapshot (the log only grows; a CA refuses to start behind
//! its witness); the recordings are copied *after* it, so every recording the
//! snapshot says was sealed is there.
//!
//! Before it is renamed into place the copy is checked the way an auditor
//! would: the audit chain and its checkpoint signatures verify, the snapshot
//! agrees with the copied witness line by line, every sealed recording matches
//! its digest, and the CA database is a Rampart database this binary can open.
//! It is built in `OUT.partial` and renamed to `OUT` only then, so a directory
//! named `OUT` is always a whole, checked backup. `MANIFEST.sha256` lists every
//! file in `sha256sum -c` form, for checking a copy later with stock tools.
//! Nothing is written to the CA's directory, so taking a backup needs no
//! passphrase and changes nothing the daemon sees.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rampart_audit::witness::{self, Depth, Head};
use sha2::{Digest, Sha256};

use crate::authority::sessions::RECORDINGS_DIR;
use crate::config::{Config, PassphraseSource};
use crate::error::CaError;

/// The manifest's file name inside a backup.
pub const MANIFEST: &str = "MANIFEST.sha256";

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The backup directory.
    pub out: PathBuf,
    /// The CA database's schema version.
    pub ca_schema: u32,
    /// The audit log's head in the snapshot.
    pub audit_head: Head,
    /// Events and checkpoints verified in the snapshot.
    pub events: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
    /// Lines of the copied witness that agree with the snapshot (0: no witness).
    pub witness_lines: u64,
    /// Sealed recordings copied and matched.
    pub recordings: usize,
    /// Files in the backup (the manifest excluded).
    pub files: usize,
    /// Files the config names outside the CA's directory, not copied: the
    /// operator must keep them some other way.
    pub outside: Vec<PathBuf>,
    /// Entries under the directory that are neither files nor directories
    /// (symlinks, sockets), not copied.
    pub skipped: Vec<PathBuf>,
}

/// Back up the CA whose config is `config_path` into the new directory `out`.
pub fn backup(config_path: &Path, out: &Path) -> Result<BackupReport, CaError> {
    let config = Config::load(config_path)?;
    let Some(ca_db_path) = config.database.sqlite_path() else {
        return Err(CaError::Config(format!(
            "the CA's state is in PostgreSQL ({}): `rampart-ca backup` copies SQLite \
             databases only; back the PostgreSQL database up with its own tools (pg_dump)",
            config.database
        )));
    };
    let Some(audit_db_path) = config.audit_database.sqlite_path() else {
        return Err(CaError::Config(format!(
            "the audit log is in PostgreSQL ({}): `rampart-ca backup` copies SQLite \
             databases only; back the PostgreSQL database up with its own tools (pg_dump)",
            config.audit_database
        )));
    };
    let root = canonical(config.path.parent().unwrap_or(Path::new(".")))?;
    let out = absolute(out)?;
    if out.starts_with(&root) {
        return Err(CaError::Config(format!(
            "{} is inside the CA directory {}: the next backup would copy this one; \
             choose a directory elsewhere (another disk, ideally another host)",
            out.display(),
            root.display()
        )));
    }
    if out.exists() {
        return Err(CaError::Config(format!(
            "{} already exists: a backup goes into a new directory",
            out.display()
        )));
    }
    let staging = partial_path(&out);
    if staging.exists() {
        return Err(CaError::Config(format!(
            "{} exists: an earlier backup was interrupted there; remove it and run again",
            staging.display()
        )));
    }
    // The live files, by their place under the CA directory.
    let ca_db = inside(&root, ca_db_path, "database")?;
    let audit_db = inside(&root, audit_db_path, "[audit] database")?;
    let witness_rel = inside(&root, &config.audit_witness, "[audit] witness_file")?;
    let recordings_rel = audit_db
        .parent()
        .unwrap_or(Path::new(""))
        .join(RECORDINGS_DIR);

    let mut dirs = fs::DirBuilder::new();
    dirs.mode(0o700).recursive(false);
    dirs.create(&staging)
        .map_err(|e| CaError::io(&staging, e))?;
    match take(
        &config,
        &root,
        &staging,
        &ca_db,
        &audit_db,
        &witness_rel,
        &recordings_rel,
    ) {
        Ok(mut report) => {
            fs::rename(&staging, &out).map_err(|e| CaError::io(&out, e))?;
            sync_dir(out.parent().unwrap_or(Path::new("/")))?;
            report.out = out;
            Ok(report)
        }
        Err(e) => {
            // A half-made backup must not be mistaken for one.
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// The steps inside the staging directory, in the order the module docs give.
fn take(
    config: &Config,
    root: &Path,
    staging: &Path,
    ca_db: &Path,
    audit_db: &Path,
    witness_rel: &Path,
    recordings_rel: &Path,
) -> Result<BackupReport, CaError> {
    let live_witness = root.join(witness_rel);
    let has_witness = live_witness.exists();
    if has_witness {
        copy_file(&live_witness, &staging.join(witness_rel))?;
    }
    snapshot(&root.join(ca_db), &staging.join(ca_db))?;
    snapshot(&root.join(audit_db), &staging.join(audit_db))?;
    let live_recordings = root.join(recordings_rel);
    if live_recordings.is_dir() {
        copy_tree(
            &live_recordings,
            &staging.join(recordings_rel),
            &|_| false,
            &mut Vec::new(),
        )?;
    }

    // Everything else under the directory, but not what was handled above, the
    // live databases' journals, or the passphrase.
    let passphrase = match &config.passphrase {
        PassphraseSource::File(p) => p.canonicalize().ok(),
        PassphraseSource::Credential(_) | PassphraseSource::Env(_) => None,
    };
    let handled: Vec<PathBuf> = [ca_db, audit_db]
        .iter()
        .flat_map(|db| {
            ["", "-wal", "-shm", "-journal"].map(|suffix| {
                let mut name = db.as_os_str().to_owned();
                name.push(suffix);
                root.join(name)
            })
        })
        .chain([live_witness.clone(), live_recordings.clone()])
        .chain(passphrase)
        .collect();
    let mut skipped = Vec::new();
    copy_tree(
        root,
        staging,
        &|p| handled.iter().any(|h| h == p),
        &mut skipped,
    )?;

    let outside = [config.policy.as_path(), &config.tls_cert, &config.tls_key]
        .into_iter()
        .chain(config.key_files())
        .filter(|p| p.canonicalize().map_or(true, |c| !c.starts_with(root)))
        .map(Path::to_path_buf)
        .collect();

    let report = prove(
        config,
        root,
        staging,
        ca_db,
        audit_db,
        witness_rel,
        recordings_rel,
        has_witness,
    )?;
    let files = write_manifest(staging)?;
    sync_dir(staging)?;
    Ok(BackupReport {
        files,
        outside,
        skipped,
        ..report
    })
}

/// Check the copy the way an auditor would (module docs).
#[allow(clippy::too_many_arguments)]
fn prove(
    config: &Config,
    root: &Path,
    staging: &Path,
    ca_db: &Path,
    audit_db: &Path,
    witness_rel: &Path,
    recordings_rel: &Path,
    has_witness: bool,
) -> Result<BackupReport, CaError> {
    let failed = |what: String| CaError::Internal(format!("the backup does not check out: {what}"));
    // The backup's own copy of the audit key, when it holds one, checks its log.
    let key_file = config
        .audit_key
        .canonicalize()
        .ok()
        .and_then(|k| k.strip_prefix(root).ok().map(|rel| staging.join(rel)))
        .unwrap_or_else(|| config.audit_key.clone());
    let audit_pubkey = audit_public_key(&key_file)?;
    let ca_schema = crate::store::sqlite::inspect(&staging.join(ca_db))
        .map_err(|e| {
            failed(format!(
                "CA database: {}",
                rampart_api::report::one_line(&e)
            ))
        })?
        .found;
    let audit_copy = staging.join(audit_db);
    let verified = rampart_audit::verify(&audit_copy, Some(&audit_pubkey))
        .map_err(|e| failed(format!("audit log: {}", rampart_api::report::one_line(&e))))?;
    if let Some(p) = &verified.problem {
        return Err(failed(format!(
            "audit log at sequence {}: {} (the live log has the same problem: run \
             `rampart audit verify` on it)",
            p.seq, p.reason
        )));
    }
    let mut witness_lines = 0;
    if has_witness {
        let entries = witness::read(&staging.join(witness_rel))
            .map_err(|e| failed(format!("witness: {}", rampart_api::report::one_line(&e))))?;
        let w = witness::check(&audit_copy, &entries, Some(&audit_pubkey), Depth::All)
            .map_err(|e| failed(format!("witness: {}", rampart_api::report::one_line(&e))))?;
        if let Some(p) = w.problem {
            return Err(failed(format!(
                "the audit snapshot against the witness: {p}"
            )));
        }
        witness_lines = w.lines_checked;
    }
    let recordings = rampart_audit::recording::verify_recordings(
        &audit_copy,
        &rampart_audit::recording::RecordingStore::Dir(staging.join(recordings_rel)),
    )
    .map_err(|e| failed(format!("recordings: {}", rampart_api::report::one_line(&e))))?;
    if let Some(p) = recordings.problems.first() {
        return Err(failed(format!(
            "recording of session {} (sealed at sequence {}): {}",
            p.session, p.seq, p.reason
        )));
    }
    let audit_head = witness::read_head(&audit_copy)
        .map_err(|e| failed(format!("audit head: {}", rampart_api::report::one_line(&e))))?;
    Ok(BackupReport {
        out: staging.to_path_buf(),
        ca_schema,
        audit_head,
        events: verified.events,
        checkpoints: verified.checkpoints,
        witness_lines,
        recordings: recordings.matched,
        files: 0,
        outside: Vec::new(),
        skipped: Vec::new(),
    })
}

/// The audit key's public half, which an OpenSSH private key file carries in
/// the clear: checking the snapshot needs no passphrase.
/// The public half of the audit key file `path` (an encrypted OpenSSH key
/// holds it in the clear), or of `path.pub` when the key itself lives in a
/// token.
fn audit_public_key(path: &Path) -> Result<ssh_key::PublicKey, CaError> {
    let bad =
        |p: &Path, e: ssh_key::Error| CaError::Config(format!("audit key {}: {e}", p.display()));
    if !path.exists() {
        let public = path.with_extension("pub");
        let text = fs::read_to_string(&public).map_err(|e| CaError::io(&public, e))?;
        return ssh_key::PublicKey::from_openssh(text.trim()).map_err(|e| bad(&public, e));
    }
    let text = fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
    let key = ssh_key::PrivateKey::from_openssh(text.as_bytes()).map_err(|e| bad(path, e))?;
    Ok(key.public_key().clone())
}

/// A consistent copy of the SQLite database `from` at `to`, mode 0600.
fn snapshot(from: &Path, to: &Path) -> Result<(), CaError> {
    let db_err =
        |e: rusqlite::Error| CaError::Internal(format!("snapshot of {}: {e}", from.display()));
    if !from.is_file() {
        return Err(CaError::Config(format!(
            "{} does not exist",
            from.display()
        )));
    }
    make_parent(to)?;
    let conn = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(db_err)?;
    let target = to
        .to_str()
        .ok_or_else(|| CaError::Config(format!("{} is not valid UTF-8", to.display())))?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(db_err)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o600)).map_err(|e| CaError::io(to, e))?;
    fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| CaError::io(to, e))
}

/// Copy one file, keeping its mode, and make it durable.
fn copy_file(from: &Path, to: &Path) -> Result<(), CaError> {
    make_parent(to)?;
    let mode = fs::metadata(from)
        .map_err(|e| CaError::io(from, e))?
        .permissions()
        .mode();
    let mut src = fs::File::open(from).map_err(|e| CaError::io(from, e))?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .open(to)
        .map_err(|e| CaError::io(to, e))?;
    io::copy(&mut src, &mut dst).map_err(|e| CaError::io(to, e))?;
    dst.sync_all().map_err(|e| CaError::io(to, e))
}

/// Copy the tree `from` into `to` (created as needed), leaving out every path
/// `leave_out` names; what is neither file nor directory goes to `skipped`.
fn copy_tree(
    from: &Path,
    to: &Path,
    leave_out: &dyn Fn(&Path) -> bool,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), CaError> {
    if !to.exists() {
        let mode = fs::metadata(from)
            .map_err(|e| CaError::io(from, e))?
            .permissions()
            .mode();
        fs::DirBuilder::new()
            .mode(mode & 0o777)
            .create(to)
            .map_err(|e| CaError::io(to, e))?;
    }
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(|e| CaError::io(from, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| CaError::io(from, e))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if leave_out(&path) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| CaError::io(&path, e))?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&path, &dest, leave_out, skipped)?;
        } else if kind.is_file() {
            copy_file(&path, &dest)?;
        } else {
            skipped.push(path);
        }
    }
    Ok(())
}

/// Write `MANIFEST.sha256` (every file, sorted, `sha256sum -c` form) and return
/// how many files it lists.
fn write_manifest(dir: &Path) -> Result<usize, CaError> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    files.sort();
    let mut text = String::new();
    for rel in &files {
        let path = dir.join(rel);
        let mut hasher = Sha256::new();
        let mut f = fs::File::open(&path).map_err(|e| CaError::io(&path, e))?;
        io::copy(&mut f, &mut hasher).map_err(|e| CaError::io(&path, e))?;
        text.push_str(&format!(
            "{}  ./{}\n",
            hex::encode(hasher.finalize()),
            rel.display()
        ));
    }
    let path = dir.join(MANIFEST);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CaError::io(&path, e))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| CaError::io(&path, e))?;
    Ok(files.len())
}

fn list_files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CaError> {
    for entry in fs::read_dir(dir).map_err(|e| CaError::io(dir, e))? {
        let entry = entry.map_err(|e| CaError::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            list_files(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

/// `path`'s place under `root`, or an error naming `what`: the databases and
/// the witness must live in the CA directory to be backed up with it.
fn inside(root: &Path, path: &Path, what: &str) -> Result<PathBuf, CaError> {
    let resolved = match path.canonicalize() {
        Ok(p) => p,
        // The witness may not exist yet; its directory must.
        Err(_) => canonical(path.parent().unwrap_or(Path::new(".")))?
            .join(path.file_name().unwrap_or_default()),
    };
    resolved
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .map_err(|_| {
            CaError::Config(format!(
                "{what} {} is outside the CA directory {}: rampart-ca backup copies a CA \
                 whose databases and witness live in its directory (copy this one with \
                 `sqlite3 FILE \".backup OUT\"`)",
                path.display(),
                root.display()
            ))
        })
}

fn canonical(p: &Path) -> Result<PathBuf, CaError> {
    p.canonicalize().map_err(|e| CaError::io(p, e))
}

fn absolute(p: &Path) -> Result<PathBuf, CaError> {
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = p
        .file_name()
        .ok_or_else(|| CaError::Config(format!("{} names no directory", p.display())))?;
    Ok(canonical(parent)?.join(name))
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    out.with_file_name(name)
}

fn make_parent(p: &Path) -> Result<(), CaError> {
    match p.parent() {
        Some(d) if !d.exists() => fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(d)
            .map_err(|e| CaError::io(d, e)),
        _ => Ok(()),
    }
}

fn sync_dir(d: &Path) -> Result<(), CaError> {
    fs::File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|e| CaError::io(d, e))
}
