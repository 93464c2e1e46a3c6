//! Session audit events, sent to the CA's audit chain (`POST /v1/bastion/events`).
//!
//! **Owns:** building [`BastionEvent`]s and delivering every one of them, in
//! order. Two entry points feed one pipeline: [`Auditor::record`] awaits the
//! CA's acknowledgement — used where the action must not happen unless the
//! event is durably in the chain (a session start: fail closed) — and
//! [`Auditor::enqueue`] hands over events (refusals, exec, file operations,
//! session ends) that a background task sends in batches of at most
//! [`rampart_api::MAX_EVENTS_PER_BATCH`].
//!
//! No event is dropped:
//! - every event is [`sanitize`]d to the bounds the CA enforces, and should the
//!   CA still refuse one, it writes `audit_event_rejected` in its place and
//!   keeps the rest of the batch;
//! - when the CA cannot be reached, queued events go to the [`spool`] on disk
//!   (fsynced) and are resent from there, oldest first, before anything newer;
//!   each event carries its own ULID, so a resend after a crash or a lost
//!   answer is written once;
//! - when the spool is full the bastion refuses new sessions
//!   ([`Auditor::accepting_sessions`]) rather than lose events; live sessions
//!   still spool theirs up to a hard limit, past which they wait in memory.
//!
//! [`Auditor::record`]'s events go after everything queued before them; they
//! are never spooled, since the action they record is refused when they cannot
//! be delivered now.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api::{BastionEvent, BastionEventBatch, BastionEventKind, ClientError};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::ca_client::CaClient;

mod sanitize;
pub mod spool;

pub use sanitize::sanitize;
use spool::EventSpool;

/// How long to wait before trying the CA again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// What the pipeline is asked to deliver.
enum Work {
    /// Deliver when possible (spooled while the CA is away).
    Queued(BastionEvent),
    /// Deliver now, after everything before it, and say whether it worked.
    Now(Vec<BastionEvent>, oneshot::Sender<Result<(), ClientError>>),
}

/// Counters the pipeline shares with the handles.
#[derive(Debug, Default)]
struct Status {
    /// Events handed over and not yet acknowledged by the CA nor on disk.
    in_memory: AtomicUsize,
    /// Bytes in the spool.
    spooled_bytes: AtomicU64,
    /// The spool is full: new sessions are refused.
    spool_full: AtomicBool,
}

/// The event sink.
#[derive(Debug, Clone)]
pub struct Auditor {
    queue: mpsc::UnboundedSender<Work>,
    status: Arc<Status>,
}

/// Start a bare event of `kind` at `at` (from the server's clock).
pub fn event(kind: BastionEventKind, success: bool, at: DateTime<Utc>) -> BastionEvent {
    BastionEvent {
        id: None,
        kind,
        success,
        at,
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
    /// An auditor posting to `ca`, spooling to `spool`; spawns the pipeline.
    pub fn start(ca: CaClient, spool: EventSpool) -> Auditor {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Status::default());
        status.spooled_bytes.store(spool.bytes(), Ordering::Relaxed);
        status.spool_full.store(spool.is_full(), Ordering::Relaxed);
        let pipeline = Pipeline {
            ca,
            spool,
            rx,
            status: status.clone(),
            pending: VecDeque::new(),
            spool_refused: false,
        };
        tokio::spawn(pipeline.run());
        Auditor { queue: tx, status }
    }

    /// Send `events` now, after everything queued before them, and wait until
    /// the CA has them in its chain.
    pub async fn record(&self, events: Vec<BastionEvent>) -> Result<(), ClientError> {
        let events: Vec<BastionEvent> = events.into_iter().map(identify).collect();
        let is_start = events
            .iter()
            .any(|e| e.kind == BastionEventKind::SessionStarted);
        let (reply, answer) = oneshot::channel();
        let result = match self.queue.send(Work::Now(events.clone(), reply)) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(unavailable("the audit pipeline stopped"))),
            Err(_) => Err(unavailable("the audit pipeline stopped")),
        };
        match &result {
            Ok(()) => events.iter().for_each(crate::metrics::observe),
            Err(_) if is_start => crate::metrics::start_unaudited(),
            Err(_) => {}
        }
        result
    }

    /// Hand an event to the pipeline (never dropped: see the module docs).
    pub fn enqueue(&self, e: BastionEvent) {
        let e = identify(e);
        crate::metrics::observe(&e);
        self.status.in_memory.fetch_add(1, Ordering::Relaxed);
        if self.queue.send(Work::Queued(e)).is_err() {
            tracing::error!("the audit pipeline stopped; an event could not be handed over");
        }
    }

    /// False while the event spool is full: new sessions must be refused, since
    /// their events could not be kept.
    pub fn accepting_sessions(&self) -> bool {
        !self.status.spool_full.load(Ordering::Relaxed)
    }

    /// Bytes of events waiting in the spool.
    pub fn spooled_bytes(&self) -> u64 {
        self.status.spooled_bytes.load(Ordering::Relaxed)
    }

    /// Wait (up to `max`) until every queued event is with the CA or on disk.
    pub async fn drain(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.status.in_memory.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An event as it enters the pipeline: within the CA's bounds, and with an ID
/// of its own. Events are often built by cloning a template (every file
/// operation of a channel), so the ID is given here, once per event handed
/// over, and kept through the spool and every resend.
fn identify(e: BastionEvent) -> BastionEvent {
    let mut e = sanitize(e);
    e.id = Some(ulid::Ulid::new().to_string());
    e
}

/// The error a caller of [`Auditor::record`] gets when its events could not
/// be delivered for a reason of the bastion's own.
fn unavailable(detail: &str) -> ClientError {
    ClientError::Transport {
        url: "audit pipeline".into(),
        detail: detail.into(),
    }
}

/// Log and count the events the CA replaced by `audit_event_rejected`.
fn report_rejected(ack: &rampart_api::BastionEventAck) {
    for r in &ack.rejected {
        crate::metrics::audit_event_rejected();
        tracing::error!(
            "the CA refused audit event {} of a batch and recorded audit_event_rejected instead: {}",
            r.index,
            r.reason
        );
    }
}

/// The background task that owns delivery order.
struct Pipeline {
    ca: CaClient,
    spool: EventSpool,
    rx: mpsc::UnboundedReceiver<Work>,
    status: Arc<Status>,
    /// Work taken from `rx` and not yet delivered, spooled or answered, in order.
    pending: VecDeque<Work>,
    /// The last spool write failed (full, or a disk error).
    spool_refused: bool,
}

/// How a delivery attempt ended.
enum Sent {
    Delivered,
    /// The CA could not be reached or failed: try again later.
    Unavailable(ClientError),
}

impl Pipeline {
    async fn run(mut self) {
        loop {
            if self.pending.is_empty() && self.spool.is_empty() {
                match self.rx.recv().await {
                    Some(work) => self.pending.push_back(work),
                    None => return,
                }
            }
            while let Ok(work) = self.rx.try_recv() {
                self.pending.push_back(work);
            }
            // Oldest first: the spool, then what waits in memory.
            if !self.spool.is_empty() {
                if !self.deliver_spooled().await {
                    self.give_up_for_now().await;
                }
                continue;
            }
            match self.pending.pop_front() {
                None => {}
                Some(Work::Now(events, reply)) => {
                    let result = match self.send(events).await {
                        Sent::Delivered => Ok(()),
                        Sent::Unavailable(e) => Err(e),
                    };
                    let _ = reply.send(result);
                }
                Some(Work::Queued(first)) => {
                    let mut batch = vec![first];
                    while batch.len() < rampart_api::MAX_EVENTS_PER_BATCH {
                        match self.pending.front() {
                            Some(Work::Queued(_)) => {
                                if let Some(Work::Queued(e)) = self.pending.pop_front() {
                                    batch.push(e);
                                }
                            }
                            _ => break,
                        }
                    }
                    let n = batch.len();
                    match self.send(batch.clone()).await {
                        Sent::Delivered => {
                            self.status.in_memory.fetch_sub(n, Ordering::Relaxed);
                        }
                        Sent::Unavailable(e) => {
                            tracing::warn!("cannot send {n} audit events ({e}); spooling them");
                            for e in batch.into_iter().rev() {
                                self.pending.push_front(Work::Queued(e));
                            }
                            self.give_up_for_now().await;
                        }
                    }
                }
            }
        }
    }

    /// The CA is away: what waits in memory goes to the spool (requests to
    /// deliver now are refused: their actions must not happen), then wait.
    async fn give_up_for_now(&mut self) {
        while let Ok(work) = self.rx.try_recv() {
            self.pending.push_back(work);
        }
        let mut queued = Vec::new();
        for work in std::mem::take(&mut self.pending) {
            match work {
                Work::Queued(e) => queued.push(e),
                Work::Now(_, reply) => {
                    let _ = reply.send(Err(unavailable(
                        "the CA cannot be reached; audit events are being spooled",
                    )));
                }
            }
        }
        let mut rest = queued.into_iter().peekable();
        while rest.peek().is_some() {
            let batch: Vec<BastionEvent> = rest
                .by_ref()
                .take(rampart_api::MAX_EVENTS_PER_BATCH)
                .collect();
            let n = batch.len();
            match self.spool.append(&batch) {
                Ok(()) => {
                    self.spool_refused = false;
                    self.status.in_memory.fetch_sub(n, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(
                        "cannot spool audit events ({e}); they wait in memory and new sessions are refused"
                    );
                    self.spool_refused = true;
                    self.pending.extend(batch.into_iter().map(Work::Queued));
                    self.pending.extend(rest.by_ref().map(Work::Queued));
                }
            }
        }
        self.publish_spool();
        tokio::time::sleep(RETRY).await;
    }

    /// Send the oldest spool segment; true when the CA took it.
    async fn deliver_spooled(&mut self) -> bool {
        let events = match self.spool.oldest() {
            None => return true,
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                tracing::error!("cannot read the audit event spool: {e}");
                return false;
            }
        };
        for chunk in events.chunks(rampart_api::MAX_EVENTS_PER_BATCH) {
            if let Sent::Unavailable(e) = self.send(chunk.to_vec()).await {
                tracing::warn!("cannot resend spooled audit events yet: {e}");
                return false;
            }
        }
        if let Err(e) = self.spool.pop_oldest() {
            tracing::error!("cannot remove a delivered spool segment: {e}");
            return false;
        }
        self.spool_refused = false;
        self.publish_spool();
        true
    }

    /// Tell the handles how full the spool is. Sessions are refused while it
    /// is full or events it could not take wait in memory.
    fn publish_spool(&self) {
        self.status
            .spooled_bytes
            .store(self.spool.bytes(), Ordering::Relaxed);
        crate::metrics::audit_spool_bytes(self.spool.bytes());
        let full = self.spool.is_full() || self.spool_refused;
        self.status.spool_full.store(full, Ordering::Relaxed);
    }

    /// One batch to the CA. A batch the CA refuses as a whole (its size or
    /// encoding: the CA judges events one by one) is sent again event by
    /// event, so only an event the CA cannot take at all is lost, and said so.
    async fn send(&self, events: Vec<BastionEvent>) -> Sent {
        let batch = BastionEventBatch { events };
        match self.ca.events(&batch).await {
            Ok(ack) => {
                report_rejected(&ack);
                Sent::Delivered
            }
            Err(ClientError::Api {
                status,
                code,
                message,
            }) if status == 400 || status == 413 || status == 422 => {
                tracing::error!(
                    "CA refused a batch of {} audit events ({code}): {message}; sending them one by one",
                    batch.events.len()
                );
                for e in batch.events {
                    let one = BastionEventBatch { events: vec![e] };
                    match self.ca.events(&one).await {
                        Ok(ack) => report_rejected(&ack),
                        Err(ClientError::Api {
                            status,
                            code,
                            message,
                        }) if (400..500).contains(&status) && status != 401 && status != 429 => {
                            crate::metrics::audit_event_rejected();
                            tracing::error!(
                                "CA refused an audit event outright ({code}): {message}"
                            );
                        }
                        Err(e) => return Sent::Unavailable(e),
                    }
                }
                Sent::Delivered
            }
            Err(e) => Sent::Unavailable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_event_handed_over_gets_its_own_id_even_a_clone() {
        // File operations of a channel are clones of one template: with a
        // shared ID the CA would take every one after the first for a resend.
        let template = detail(
            event(BastionEventKind::FileOp, true, chrono::Utc::now()),
            "op",
            "write",
        );
        let a = identify(template.clone());
        let b = identify(template);
        let (a, b) = (a.id.unwrap(), b.id.unwrap());
        assert_ne!(a, b);
        assert!(ulid::Ulid::from_string(&a).is_ok());
    }
}
