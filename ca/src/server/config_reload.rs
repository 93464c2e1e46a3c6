//! SIGHUP for `config.toml`: the SIEM forwarders (`[[audit.forwarders]]`) are
//! re-read and replaced without a restart. The whole file is validated as at
//! start-up and every new forwarder's CA file, token file and address are
//! loaded before anything changes; a file or forwarder that does not check
//! out is refused (audited, logged) and the running forwarders go on. A
//! replaced forwarder continues from its durable cursor, so the SIEM misses
//! nothing. Other settings (listen address, keys, databases, limits) take
//! effect at the next restart, which the reload says when they changed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rampart_audit::{AuditStore, EventKind, NewEvent, Outcome};

use crate::authority::Authority;
use crate::config::Config;
use crate::error::CaError;
use crate::forwarders::Forwarders;

/// What a SIGHUP re-reads of `config.toml`, and what it compares with.
#[derive(Debug)]
pub struct ConfigReload {
    path: PathBuf,
    audit_db: AuditStore,
    forwarders: Arc<Mutex<Forwarders>>,
    /// The file's settings other than the forwarders, as the CA started.
    fixed: Option<toml::Table>,
}

/// `text` as TOML without `[[audit.forwarders]]` (`None` if it is not TOML).
fn without_forwarders(text: &str) -> Option<toml::Table> {
    let mut table: toml::Table = text.parse().ok()?;
    if let Some(toml::Value::Table(audit)) = table.get_mut("audit") {
        audit.remove("forwarders");
    }
    Some(table)
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))
}

impl ConfigReload {
    /// For the CA started from `config` with `forwarders` running.
    pub fn new(config: &Config, forwarders: Arc<Mutex<Forwarders>>) -> ConfigReload {
        ConfigReload {
            path: config.path.clone(),
            audit_db: config.audit_database.clone(),
            forwarders,
            fixed: read(&config.path)
                .ok()
                .as_deref()
                .and_then(without_forwarders),
        }
    }

    /// Re-read the file and replace the forwarders when they changed; the
    /// names now running, or `None` when nothing changed.
    pub fn reload(&self, auth: &Authority) -> Result<Option<Vec<String>>, CaError> {
        let checked = read(&self.path).and_then(|text| {
            let config = Config::load(&self.path)?;
            Forwarders::check(&config.forwarders)?;
            Ok((text, config.forwarders))
        });
        let event = |outcome| {
            NewEvent::new(EventKind::CaConfigReloaded, outcome, auth.now())
                .actor("rampart-ca")
                .detail("path", self.path.display().to_string())
        };
        let refused = |e: CaError| -> Result<Option<Vec<String>>, CaError> {
            auth.record(event(Outcome::Failure).reason(&rampart_api::report::one_line(&e)))?;
            Err(e)
        };
        let (text, configs) = match checked {
            Ok(c) => c,
            Err(e) => return refused(e),
        };
        let restart_needed = without_forwarders(&text) != self.fixed;
        if restart_needed {
            tracing::warn!(path = %self.path.display(),
                "settings other than [[audit.forwarders]] changed; they take effect at the next restart");
        }
        let mut running = self
            .forwarders
            .lock()
            .map_err(|_| CaError::Internal("forwarders lock poisoned".into()))?;
        if running.configs() == configs.as_slice() {
            return Ok(None);
        }
        let names: Vec<String> = configs.iter().map(|f| f.name.clone()).collect();
        // Audited before the change, like every change the CA makes.
        auth.record(
            event(Outcome::Success)
                .detail("forwarders", names.clone())
                .detail("restart_needed", restart_needed),
        )?;
        match running.replace(&configs, &self.audit_db) {
            Ok(()) => Ok(Some(names)),
            Err(e) => refused(e),
        }
    }
}
