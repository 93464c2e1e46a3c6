//! Session audit events, sent to the CA's audit chain (`POST /v1/bastion/events`).
//!
//! **Owns:** building [`BastionEvent`]s and delivering them. Two paths:
//! [`Auditor::record`] awaits the CA's acknowledgement — used where the action
//! must not happen unless the event is durably in the chain (a session start:
//! fail closed) — and [`Auditor::enqueue`] queues events (refusals, exec, file
//! operations, session ends) that a background task sends in batches of at most
//! [`rampart_api::MAX_EVENTS_PER_BATCH`], retrying in order until the CA takes them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use rampart_api::{BastionEvent, BastionEventBatch, BastionEventKind, ClientError};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::ca_client::CaClient;

/// Most events waiting in memory; beyond it new refusal events are dropped
/// with an error log (a flood of refusals must not exhaust memory).
const MAX_QUEUED: usize = 100_000;

/// The event sink.
#[derive(Debug, Clone)]
pub struct Auditor {
    ca: CaClient,
    queue: mpsc::Sender<BastionEvent>,
}

/// Start a bare event of `kind`.
pub fn event(kind: BastionEventKind, success: bool) -> BastionEvent {
    BastionEvent {
        kind,
        success,
        at: Utc::now(),
        session_id: None,
        user: None,
        login: None,
        target: None,
        source: None,
        serial: None,
        reason: None,
        details: BTreeMap::new(),
    }
}

/// Add a detail to an event.
pub fn detail(mut e: BastionEvent, key: &str, value: impl Into<Value>) -> BastionEvent {
    e.details.insert(key.to_owned(), value.into());
    e
}

impl Auditor {
    /// An auditor posting to `ca`; spawns the background sender.
    pub fn start(ca: CaClient) -> Auditor {
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(sender(ca.clone(), rx));
        Auditor { ca, queue: tx }
    }

    /// Send `events` now and wait until the CA has them in its chain.
    pub async fn record(&self, events: Vec<BastionEvent>) -> Result<(), ClientError> {
        let result = self
            .ca
            .events(&BastionEventBatch {
                events: events.clone(),
            })
            .await
            .map(|_| ());
        match &result {
            Ok(()) => events.iter().for_each(crate::metrics::observe),
            Err(_) => {
                if events
                    .iter()
                    .any(|e| e.kind == BastionEventKind::SessionStarted)
                {
                    crate::metrics::start_unaudited();
                }
            }
        }
        result
    }

    /// Queue an event for the background sender.
    pub fn enqueue(&self, e: BastionEvent) {
        crate::metrics::observe(&e);
        if let Err(e) = self.queue.try_send(e) {
            tracing::error!("audit queue full or closed; event dropped: {e}");
        }
    }

    /// Wait (up to `max`) until the queue has been sent.
    pub async fn drain(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.queue.capacity() < MAX_QUEUED && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn sender(ca: CaClient, mut rx: mpsc::Receiver<BastionEvent>) {
    let mut pending: Vec<BastionEvent> = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(e) => pending.push(e),
                None => return,
            }
        }
        while pending.len() < rampart_api::MAX_EVENTS_PER_BATCH {
            match rx.try_recv() {
                Ok(e) => pending.push(e),
                Err(_) => break,
            }
        }
        let batch = BastionEventBatch {
            events: pending.clone(),
        };
        match ca.events(&batch).await {
            Ok(_) => pending.clear(),
            Err(ClientError::Api {
                status,
                code,
                message,
            }) if status == 400 || status == 413 || status == 422 => {
                // The CA will never take this batch: keep the chain moving and say so.
                tracing::error!(
                    "CA refused {} audit events ({code}): {message}",
                    pending.len()
                );
                pending.clear();
            }
            Err(e) => {
                tracing::warn!("cannot send {} audit events, retrying: {e}", pending.len());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
