//! Finished recordings on their way to the CA: finishing a `.cast` into the
//! spool, uploading it with its SHA-256, retrying the spool in the
//! background, and setting aside a file the CA will never take.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::recording::finish_recording;

use crate::server::Shared;

/// How often the spool is retried.
const SPOOL_RETRY: Duration = Duration::from_secs(5);

/// Finish `cast` and upload it; on failure it stays in the spool for the retrier.
pub async fn finish_and_upload(
    shared: Arc<Shared>,
    cast: PathBuf,
    session_id: String,
    abnormal: bool,
) {
    let finished = match tokio::task::spawn_blocking(move || finish_recording(&cast)).await {
        Ok(Ok(f)) => {
            crate::metrics::recording_finished(f.bytes);
            f
        }
        Ok(Err(e)) => {
            tracing::error!(
                session = %session_id,
                "finishing the recording failed: {}",
                rampart_api::report::one_line(&e)
            );
            return;
        }
        Err(e) => {
            tracing::error!("finishing task failed: {e}");
            return;
        }
    };
    let spool = shared
        .config()
        .spool_dir
        .join(spool_name(&session_id, abnormal));
    if let Err(e) = std::fs::rename(&finished.path, &spool) {
        tracing::error!("moving the recording to the spool failed: {e}");
        return;
    }
    if let Err(e) = upload_one(&shared, &spool).await {
        tracing::warn!(
            session = %session_id,
            "recording upload failed, will retry: {}",
            rampart_api::report::one_line(&e)
        );
    }
}

fn spool_name(session_id: &str, abnormal: bool) -> String {
    if abnormal {
        format!("{session_id}.abnormal.cast.zst")
    } else {
        format!("{session_id}.cast.zst")
    }
}

/// Why a spooled recording was not uploaded (this time).
#[derive(Debug, thiserror::Error)]
enum UploadError {
    /// The spool file's name is not UTF-8.
    #[error("bad spool file name")]
    BadName,
    /// The spool file could not be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// The CA will never take the file; it was set aside.
    #[error("the CA refused the recording ({code}: {message}); kept as {}", aside.display())]
    Refused {
        /// The CA's error code.
        code: String,
        /// The CA's message.
        message: String,
        /// Where the file now lies.
        aside: PathBuf,
    },
    /// The CA could not be reached or failed; the next round retries.
    #[error(transparent)]
    Ca(#[from] rampart_api::ClientError),
}

/// Upload one spooled file and remove it once the CA has sealed it.
async fn upload_one(shared: &Shared, path: &Path) -> Result<(), UploadError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(UploadError::BadName)?
        .to_owned();
    let abnormal = name.contains(".abnormal.");
    let session_id = name.split('.').next().unwrap_or_default().to_owned();
    let bytes = tokio::fs::read(path).await?;
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    match shared
        .ca()
        .upload_recording(&session_id, bytes, &sha, abnormal)
        .await
    {
        Ok(sealed) => {
            tracing::info!(session = %session_id, sha256 = %sealed.sha256, "recording sealed");
            let _ = tokio::fs::remove_file(path).await;
            Ok(())
        }
        Err(rampart_api::ClientError::Api {
            status,
            code,
            message,
        }) if (400..500).contains(&status) && status != 401 && status != 408 && status != 429 => {
            // The CA will never take this file (e.g. 409 `recording_exists`: a
            // different recording is sealed for the session). Keep it aside for
            // an operator instead of retrying forever.
            let aside = path.with_extension("zst.rejected");
            let _ = tokio::fs::rename(path, &aside).await;
            Err(UploadError::Refused {
                code,
                message,
                aside,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Retry the spool in the background.
pub fn spawn_uploader(shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SPOOL_RETRY).await;
            let dir = shared.config().spool_dir.clone();
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.to_string_lossy().ends_with(".cast.zst") {
                    if let Err(err) = upload_one(&shared, &p).await {
                        tracing::warn!(
                            "spooled recording {} not uploaded yet: {}",
                            p.display(),
                            rampart_api::report::one_line(&err)
                        );
                    }
                }
            }
        }
    });
}
