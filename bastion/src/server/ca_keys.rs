//! The CA keys the bastion checks certificates against, kept in step with the
//! CA while it rotates a key.
//!
//! **Owns:** [`CaKeys`] and their refresh. The CA publishes its user and host
//! CA keys (the signing one first, then, during a rotation, the next and the
//! replaced one); the bastion fetches both sets over its pinned connection at
//! start, on SIGHUP and every [`REFRESH_EVERY`], swaps them in for new connections and
//! sessions, and writes them to the identity files so a restart while the CA
//! is away starts from the latest set. A fetch that fails or does not parse
//! keeps the keys as they are.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_api::paths;
use russh::keys::ssh_key::{HashAlg, PublicKey};

use super::Shared;
use crate::join::parse_ca_keys;

/// How often the sets are fetched again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// The CA keys trusted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaKeys {
    /// User certificates (the outer connection) are signed by one of these.
    pub user: Arc<[PublicKey]>,
    /// Targets' host certificates are signed by one of these.
    pub host: Arc<[PublicKey]>,
}

/// Fetch both sets and take them in when they changed.
pub async fn refresh_ca_keys(shared: &Shared) {
    let fetch = |path| async move {
        let text = shared.ca.ca_keys(path).await.map_err(|e| e.to_string())?;
        parse_ca_keys(&text).map(|keys| (text, keys))
    };
    let (user, host) = match (
        fetch(paths::USER_CA_PUB).await,
        fetch(paths::HOST_CA_PUB).await,
    ) {
        (Ok(u), Ok(h)) => (u, h),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("the CA's keys were not refreshed (the ones held stay): {e}");
            return;
        }
    };
    let new = CaKeys {
        user: user.1.into(),
        host: host.1.into(),
    };
    if *shared.ca_keys() == new {
        return;
    }
    let config = shared.config();
    for (path, text) in [
        (&config.user_ca_file, &user.0),
        (&config.host_ca_file, &host.0),
    ] {
        if let Err(e) = write_replace(path, text) {
            tracing::warn!("{}: {e}", path.display());
        }
    }
    tracing::info!(
        user_ca = %fingerprints(&new.user),
        host_ca = %fingerprints(&new.host),
        "the CA's keys changed (a key rotation): trusting these from now on"
    );
    *shared
        .ca_keys
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
}

/// Refresh the sets forever.
pub async fn ca_keys_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(REFRESH_EVERY).await;
        refresh_ca_keys(&shared).await;
    }
}

fn fingerprints(keys: &[PublicKey]) -> String {
    keys.iter()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Write through a temporary file and a rename, so a crash leaves the old
/// file or the new one, never half of one.
fn write_replace(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{}\n", text.trim()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
