//! The writer thread behind [`super::AuditLog`]: group commit, checkpoints by
//! count and by time, the witness copy, and the batch built under the store's
//! write lock ([`prepare`], [`checkpoint_batch`]).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{lock, Admitted, Appended, AuditConfig, Cmd, Pending, Reply, Shared};
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::event::{canonical_time, chain_hash, encode_body, Sealed};
use crate::store::{Backend, BackendError, Batch, ChainState, EventRow};
use crate::AuditError;

pub(super) struct Writer<B: Backend> {
    pub(super) backend: B,
    pub(super) key: Option<Arc<dyn CheckpointSigner>>,
    pub(super) config: AuditConfig,
    /// The chain head as last committed or read. It only decides when a
    /// checkpoint is due: every append reads the stored head afresh under the
    /// store's write lock, so a stale copy (another writer appended, or a
    /// failed write) costs nothing.
    pub(super) state: ChainState,
    pub(super) last_cp_at: Instant,
    pub(super) ulids: ulid::Generator,
    pub(super) shared: Arc<Shared>,
    /// Size of the last committed batch: the next batch waits (briefly) for as many.
    pub(super) last_batch: usize,
    /// How long the next batch may wait for more events.
    pub(super) linger: Duration,
    /// The witness file holds a line (it was there at open, or this writer
    /// wrote one). From then on a missing file is a failure, not a new file:
    /// a witness deleted under a running writer must not quietly begin again
    /// at the next checkpoint.
    pub(super) witness_begun: std::cell::Cell<bool>,
}

/// Upper bound on the group-commit wait, whatever a commit costs.
const MAX_LINGER: Duration = Duration::from_millis(2);

impl<B: Backend> Writer<B> {
    pub(super) fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let first = match rx.recv_timeout(self.next_timeout()) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_due();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone without close(): still seal what we have.
                    if let Err(e) = self.checkpoint() {
                        tracing::error!(error = %rampart_api::report::one_line(&e), "final audit checkpoint failed");
                    }
                    return;
                }
            };
            let mut batch = Vec::new();
            let mut control = None;
            match first {
                Cmd::Append(ev, reply) => batch.push((ev, reply)),
                Cmd::Group(group) => batch.extend(group),
                other => control = Some(other),
            }
            // Group commit. Appenders block until their batch is durable, so right
            // after a commit the queue is nearly empty and refills within
            // microseconds as the woken threads send their next event. Taking only
            // what is queued would alternate tiny and large batches (and fsyncs);
            // instead wait briefly for as many events as the last batch had — never
            // longer than `linger`, a fraction of what a commit costs anyway.
            let want = self.last_batch.min(self.config.max_batch);
            let deadline = Instant::now() + self.linger;
            while control.is_none() && batch.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(Cmd::Append(ev, reply)) => batch.push((ev, reply)),
                    // A group is never split: it may take the batch past max_batch.
                    Ok(Cmd::Group(group)) => batch.extend(group),
                    Ok(other) => control = Some(other),
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        let now = Instant::now();
                        if batch.len() >= want || now >= deadline {
                            break;
                        }
                        match rx.recv_timeout(deadline - now) {
                            Ok(Cmd::Append(ev, reply)) => batch.push((ev, reply)),
                            Ok(Cmd::Group(group)) => batch.extend(group),
                            Ok(other) => control = Some(other),
                            Err(_) => break,
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let n = batch.len();
                let started = Instant::now();
                self.commit_batch(batch);
                // Adapt: linger at most a quarter of the last commit's duration.
                self.linger = (started.elapsed() / 4).min(MAX_LINGER);
                self.last_batch = n;
            }
            match control {
                None => self.checkpoint_if_due(),
                Some(Cmd::Checkpoint(reply)) => {
                    let _ = reply.send(self.checkpoint());
                }
                Some(Cmd::Close(reply)) => {
                    let _ = reply.send(self.checkpoint().map(|_| ()));
                    return;
                }
                Some(Cmd::Append(..) | Cmd::Group(_)) => {} // never stored in `control`
            }
        }
    }

    fn next_timeout(&self) -> Duration {
        let every = self.config.checkpoint_every;
        if self.key.is_some() && self.state.seq > self.state.checkpoint_seq {
            every
                .saturating_sub(self.last_cp_at.elapsed())
                .max(Duration::from_millis(1))
        } else {
            every
        }
    }

    fn set_healthy(&self, ok: bool) {
        self.shared.healthy.store(ok, Ordering::SeqCst);
    }

    fn publish(&mut self, next: ChainState) {
        *lock(&self.shared.head) = (next.seq, next.hash);
        self.state = next;
    }

    fn reload(&mut self) -> Result<(), AuditError> {
        let state = self.backend.load_state()?;
        self.publish(state);
        Ok(())
    }

    fn new_ulid(&mut self, time: DateTime<Utc>) -> ulid::Ulid {
        let t = std::time::SystemTime::from(time);
        // The generator keeps IDs strictly increasing within a millisecond; on its
        // (80-bit) overflow fall back to a fresh random ULID.
        self.ulids
            .generate_from_datetime(t)
            .unwrap_or_else(|_| ulid::Ulid::from_datetime(t))
    }

    /// Refuse pre-allocated IDs that already exist; assign IDs to the rest.
    fn admit(
        &mut self,
        batch: Vec<Pending>,
    ) -> Result<Vec<Admitted>, (AuditError, Vec<Reply<Appended>>)> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(batch.len());
        let mut iter = batch.into_iter();
        while let Some((ev, reply)) = iter.next() {
            let id = match ev.id {
                Some(id) => {
                    let exists = match self.backend.id_exists(&id.to_string()) {
                        Ok(b) => b,
                        Err(e) => {
                            let mut replies: Vec<_> = out.into_iter().map(|(_, _, r)| r).collect();
                            replies.push(reply);
                            replies.extend(iter.map(|(_, r)| r));
                            return Err((e, replies));
                        }
                    };
                    if exists || !seen.insert(id) {
                        let _ = reply.send(Err(AuditError::DuplicateId(id)));
                        continue;
                    }
                    id
                }
                None => self.new_ulid(ev.time),
            };
            out.push((ev, id, reply));
        }
        Ok(out)
    }

    /// Drop from `events` those whose pre-allocated ID another writer stored
    /// meanwhile, refusing each alone with [`AuditError::DuplicateId`].
    fn drop_stored_ids(&mut self, events: Vec<Admitted>) -> Result<Vec<Admitted>, AuditError> {
        let mut kept = Vec::with_capacity(events.len());
        for (ev, id, reply) in events {
            if ev.id.is_some() && self.backend.id_exists(&id.to_string())? {
                let _ = reply.send(Err(AuditError::DuplicateId(id)));
            } else {
                kept.push((ev, id, reply));
            }
        }
        Ok(kept)
    }

    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let fail = |this: &mut Self, err: AuditError, replies: Vec<Reply<Appended>>| {
            tracing::error!(error = %rampart_api::report::one_line(&err), events = replies.len(), "audit batch not written");
            this.set_healthy(false);
            // Every event of the batch fails for the same reason: share it.
            let cause: Arc<dyn std::error::Error + Send + Sync> = Arc::new(err);
            for r in replies {
                let _ = r.send(Err(AuditError::WriteFailed {
                    reason: "its batch was not committed".into(),
                    source: Some(Arc::clone(&cause)),
                }));
            }
            // Continue from what is really stored, not from what we hoped to store.
            if let Err(e) = this.reload() {
                tracing::error!(error = %rampart_api::report::one_line(&e), "reloading the audit chain head failed");
            }
        };
        let mut events = match self.admit(batch) {
            Ok(ev) => ev,
            Err((e, replies)) => return fail(self, e, replies),
        };
        // A pre-allocated ID stored by another writer between `admit` and the
        // append fails the batch as a whole; drop it and try once more.
        for attempt in 0..2 {
            if events.is_empty() {
                return;
            }
            let every = self.config.checkpoint_every_events;
            let key = self.key.as_deref();
            let result = self
                .backend
                .append_with(&mut |state| prepare(key, every, state, &events));
            let err = match result {
                Ok(batch) => {
                    if !batch.checkpoints.is_empty() {
                        self.last_cp_at = Instant::now();
                        self.witness(&batch.checkpoints);
                    }
                    self.publish(batch.next);
                    self.set_healthy(true);
                    for ((_, id, reply), row) in events.into_iter().zip(batch.rows) {
                        let _ = reply.send(Ok(Appended {
                            seq: row.seq,
                            id,
                            hash: row.hash,
                        }));
                    }
                    return;
                }
                Err(BackendError::DuplicateId) if attempt == 0 => {
                    match self.drop_stored_ids(events) {
                        Ok(kept) => {
                            events = kept;
                            continue;
                        }
                        Err(e) => {
                            // The replies went with the events; none is left to answer.
                            tracing::error!(error = %rampart_api::report::one_line(&e), "checking audit event IDs failed");
                            return;
                        }
                    }
                }
                Err(BackendError::DuplicateId) => {
                    AuditError::write_failed("an event ID was stored twice meanwhile")
                }
                Err(BackendError::Other(e)) => e,
            };
            let replies = events.into_iter().map(|(_, _, r)| r).collect();
            return fail(self, err, replies);
        }
    }

    /// Copy committed checkpoints to the witness file. After the commit, so the
    /// witness is never ahead of the database. A failure is logged and counted
    /// ([`AuditLog::witness_failures`]), not fatal: the checkpoint is durable in
    /// the database, and the next one is witnessed again (the witness only falls
    /// behind).
    fn witness(&self, checkpoints: &[Checkpoint]) {
        let Some(path) = &self.config.witness else {
            return;
        };
        for cp in checkpoints {
            let create = !self.witness_begun.get();
            match crate::witness::append_checkpoint_to(path, cp, create) {
                Ok(()) => self.witness_begun.set(true),
                Err(e) => {
                    self.shared.witness_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %rampart_api::report::one_line(&e), seq = cp.seq, "audit checkpoint not witnessed");
                }
            }
        }
    }

    fn checkpoint_if_due(&mut self) {
        if self.key.is_some()
            && self.state.seq > self.state.checkpoint_seq
            && self.last_cp_at.elapsed() >= self.config.checkpoint_every
        {
            if let Err(e) = self.checkpoint() {
                tracing::error!(error = %rampart_api::report::one_line(&e), "periodic audit checkpoint failed");
                // Try again after another interval rather than spin.
                self.last_cp_at = Instant::now();
            }
        }
    }

    /// Sign and store a checkpoint for the current head, if there is anything
    /// new (the head as stored: another writer may have moved it).
    fn checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
        let Some(key) = self.key.clone() else {
            return Ok(None);
        };
        let result = self
            .backend
            .append_with(&mut |state| checkpoint_batch(key.as_ref(), state));
        match result {
            Ok(batch) => {
                let cp = batch.checkpoints.first().cloned();
                self.publish(batch.next);
                self.last_cp_at = Instant::now();
                if let Some(cp) = &cp {
                    self.witness(std::slice::from_ref(cp));
                }
                self.set_healthy(true);
                Ok(cp)
            }
            Err(e) => {
                self.set_healthy(false);
                let _ = self.reload();
                Err(match e {
                    BackendError::DuplicateId => AuditError::write_failed(
                        "a checkpoint append reported a duplicate event ID",
                    ),
                    BackendError::Other(e) => e,
                })
            }
        }
    }
}

/// Hash `events` onto `state` (and sign a checkpoint every `every` events when
/// there is a key): the batch one append stores.
fn prepare(
    key: Option<&dyn CheckpointSigner>,
    every: u64,
    state: &ChainState,
    events: &[Admitted],
) -> Result<Batch, AuditError> {
    let mut next = state.clone();
    let mut rows = Vec::with_capacity(events.len());
    let mut checkpoints = Vec::new();
    for (ev, id, _) in events {
        let seq = next.seq + 1;
        let id = id.to_string();
        let time = canonical_time(&ev.time);
        let body = encode_body(&Sealed {
            seq,
            id: &id,
            time: &time,
            ev,
        })?;
        let hash = chain_hash(&next.hash, &body);
        if let Some(key) = key {
            if every > 0 && seq - next.checkpoint_seq >= every {
                checkpoints.push(Checkpoint::sign(key, seq, hash, ev.time)?);
                next.checkpoint_seq = seq;
            }
        }
        rows.push(EventRow {
            seq,
            id,
            time: time.clone(),
            kind: ev.kind,
            user: ev.user.clone(),
            serial: ev.serial,
            body,
            hash,
        });
        next.seq = seq;
        next.hash = hash;
        next.time = Some(time);
    }
    Ok(Batch {
        rows,
        checkpoints,
        next,
    })
}

/// A checkpoint over `state`'s head, unless it is already covered.
fn checkpoint_batch(key: &dyn CheckpointSigner, state: &ChainState) -> Result<Batch, AuditError> {
    let mut next = state.clone();
    let mut checkpoints = Vec::new();
    if let (Some(time), true) = (&state.time, state.seq > state.checkpoint_seq) {
        let time = DateTime::parse_from_rfc3339(time)
            .map_err(|e| AuditError::CorruptRow {
                seq: state.seq,
                reason: format!("time: {e}"),
            })?
            .with_timezone(&Utc);
        checkpoints.push(Checkpoint::sign(key, state.seq, state.hash, time)?);
        next.checkpoint_seq = state.seq;
    }
    Ok(Batch {
        rows: Vec::new(),
        checkpoints,
        next,
    })
}
