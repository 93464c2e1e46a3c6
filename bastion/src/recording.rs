//! Session recordings: asciicast v2 for pty sessions (placeholder until the
//! recording writer lands).

use std::sync::Arc;

use crate::server::Shared;

/// Finish and upload recordings a crash left behind.
pub async fn recover(_shared: Arc<Shared>) {}

/// Retry uploads of spooled recordings in the background.
pub fn spawn_uploader(_shared: Arc<Shared>) {}
