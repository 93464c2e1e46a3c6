//! The forwarder's thread: read after the cursor, send, confirm, advance;
//! reconnect with backoff on any error (the engine the module above describes).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cursor::{Cursors, Lease};
use super::{lock, Delivery, ForwardError, ForwarderSettings, ForwarderStatus, Sink, StopFlag};

pub(super) struct Worker {
    pub(super) settings: ForwarderSettings,
    pub(super) store: Box<dyn Cursors>,
    pub(super) sink: Box<dyn Sink>,
    pub(super) stop: Arc<StopFlag>,
    pub(super) status: Arc<Mutex<ForwarderStatus>>,
    /// The durable cursor.
    pub(super) acked: u64,
    /// Last sequence written on the current connection.
    pub(super) sent: u64,
    /// The newest checkpoint known delivered (with its event or on its own).
    pub(super) cp_acked: u64,
    /// The newest checkpoint written on the current connection.
    pub(super) cp_sent: u64,
    pub(super) head: u64,
    /// Written but unconfirmed batches: (last seq of the batch, newest checkpoint
    /// written so far, when written).
    pub(super) pending: VecDeque<(u64, u64, Instant)>,
    pub(super) connected: bool,
    pub(super) backoff: Duration,
}

/// How often (at least) a standby forwarder tries to take the lease.
const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// How often (at most) a lagging forwarder logs its lag.
const LAG_LOG_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    pub(super) fn run(mut self) {
        let name = self.settings.name.clone();
        tracing::info!(
            forwarder = %name, destination = %self.sink.destination(), cursor = self.acked,
            head = self.head, "forwarder started"
        );
        let mut drain_deadline: Option<Instant> = None;
        let mut last_lag_log = Instant::now();
        loop {
            if drain_deadline.is_none() && self.stop.is_set() {
                drain_deadline = Some(Instant::now() + self.settings.drain_timeout);
                // Send up to the head as it is now, not chase a moving one.
                if let Ok(h) = self.store.head() {
                    self.head = h;
                }
            }
            if let Some(deadline) = drain_deadline {
                // Caught up includes the checkpoint that closing the log signs
                // over the last event, so the SIEM gets the final signed head.
                let caught_up = self.sent >= self.head
                    && self
                        .store
                        .checkpoint_upto(self.sent)
                        .map_or(true, |cp| cp <= self.cp_sent);
                if caught_up || Instant::now() >= deadline || !self.connected {
                    self.finish(deadline);
                    break;
                }
            }
            if drain_deadline.is_none() && !self.hold_lease() {
                self.stop
                    .sleep(self.settings.poll_interval.max(STANDBY_RETRY));
                continue;
            }
            if !self.connected {
                if let Err(e) = self.sink.connect() {
                    self.failed(&e);
                    // A stop wakes this sleep; the next round then ends the loop.
                    self.stop.sleep(self.backoff);
                    self.backoff = (self.backoff * 2).min(self.settings.retry_max);
                    continue;
                }
                self.connected = true;
                self.sent = self.acked;
                self.cp_sent = self.cp_acked;
                self.pending.clear();
                let mut st = lock(&self.status);
                st.connects += 1;
                st.connected = true;
                drop(st);
                tracing::info!(forwarder = %name, destination = %self.sink.destination(),
                    resume_after = self.acked, "forwarder connected");
            }
            let step = self.step();
            match step {
                Ok(full) => {
                    self.succeeded();
                    if !full && drain_deadline.is_none() {
                        self.stop.sleep(self.settings.poll_interval);
                    }
                }
                Err(e) => {
                    if matches!(e, ForwardError::Rejected { .. }) {
                        // A configuration error will not fix itself in 250 ms.
                        self.backoff = self.settings.retry_max;
                    }
                    self.failed(&e);
                    self.sink.disconnect();
                    self.connected = false;
                    self.sent = self.acked;
                    self.cp_sent = self.cp_acked;
                    self.pending.clear();
                    lock(&self.status).connected = false;
                    if drain_deadline.is_none() {
                        self.stop.sleep(self.backoff);
                    }
                    self.backoff = (self.backoff * 2).min(self.settings.retry_max);
                }
            }
            if self.head > self.sent && last_lag_log.elapsed() >= LAG_LOG_EVERY {
                last_lag_log = Instant::now();
                let st = self.status_snapshot();
                tracing::info!(
                    forwarder = %name, cursor = st.acked_seq, sent = st.sent_seq,
                    head = st.head_seq, lag = st.lag, last_error = st.last_error.as_deref(),
                    "forwarder lagging"
                );
            }
        }
        lock(&self.status).stopped = true;
        tracing::info!(forwarder = %name, cursor = self.acked, head = self.head, "forwarder stopped");
    }

    /// Whether this forwarder may send now (see [`Lease`]). On taking over, the
    /// cursor is read again: another holder moved it meanwhile.
    fn hold_lease(&mut self) -> bool {
        match self.store.hold_lease(&self.settings.name) {
            Ok(Lease::Held { fresh }) => {
                if fresh {
                    if let Err(e) = self.resume_from_shared_cursor() {
                        self.failed(&e);
                        return false;
                    }
                }
                true
            }
            Ok(Lease::Elsewhere) => {
                let mut st = lock(&self.status);
                if !st.standby {
                    tracing::info!(forwarder = %self.settings.name,
                        "another CA is sending this forwarder's events; standing by");
                }
                st.standby = true;
                st.connected = false;
                drop(st);
                if self.connected {
                    self.sink.disconnect();
                    self.connected = false;
                }
                false
            }
            Err(e) => {
                self.failed(&ForwardError::Audit(e));
                false
            }
        }
    }

    fn resume_from_shared_cursor(&mut self) -> Result<(), ForwardError> {
        self.acked = self.acked.max(self.store.load(&self.settings.name)?);
        self.cp_acked = self.store.checkpoint_upto(self.acked)?;
        self.sent = self.acked;
        self.cp_sent = self.cp_acked;
        self.pending.clear();
        let mut st = lock(&self.status);
        if st.standby {
            tracing::info!(forwarder = %self.settings.name, resume_after = self.acked,
                "forwarder took over from the shared cursor");
        }
        st.standby = false;
        st.acked_seq = self.acked;
        st.sent_seq = self.acked;
        Ok(())
    }

    /// One round: send the next batch (if any), confirm what has settled.
    /// Returns whether the batch was full (more is probably waiting).
    fn step(&mut self) -> Result<bool, ForwardError> {
        let mut batch = self.store.read_after(self.sent, self.settings.batch_size)?;
        let full = u32::try_from(batch.len()).is_ok_and(|n| n >= self.settings.batch_size);
        if batch.is_empty() {
            // Caught up: a checkpoint signed since over an event already sent?
            if let Some(late) = self.store.late_checkpoint(self.cp_sent, self.sent)? {
                batch.push(late);
            }
        }
        if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
            if !last.checkpoint_only && first.event.seq != self.sent + 1 {
                tracing::warn!(forwarder = %self.settings.name, expected = self.sent + 1,
                    found = first.event.seq, "gap in the audit log; run `rampart audit verify`");
            }
            let last_seq = last.event.seq;
            if self.sink.wants_prev_hash() {
                let prev = self.store.hash_before(first.event.seq)?;
                self.sink.set_prev_hash(prev);
            }
            let delivery = self.sink.send(&batch)?;
            self.sent = self.sent.max(last_seq);
            if let Some(cp) = batch.iter().rev().find_map(|r| r.checkpoint.as_ref()) {
                self.cp_sent = self.cp_sent.max(cp.seq);
            }
            let events = batch.iter().filter(|r| !r.checkpoint_only).count();
            lock(&self.status).events_sent += events as u64;
            match delivery {
                Delivery::Acknowledged => self.advance(last_seq, self.cp_sent)?,
                Delivery::Written => {
                    self.pending
                        .push_back((last_seq, self.cp_sent, Instant::now()));
                }
            }
        }
        if !full {
            self.head = self.store.head()?;
        } else {
            self.head = self.head.max(self.sent);
        }
        self.confirm()?;
        self.publish();
        Ok(full)
    }

    /// Advance the cursor over batches written at least `settle` ago, if the
    /// connection still stands.
    fn confirm(&mut self) -> Result<(), ForwardError> {
        let settle = self.settings.settle;
        let settled = self
            .pending
            .iter()
            .take_while(|(_, _, at)| at.elapsed() >= settle)
            .count();
        if settled == 0 {
            return Ok(());
        }
        self.sink.check()?;
        let mut upto = None;
        for _ in 0..settled {
            upto = self.pending.pop_front().map(|(s, cp, _)| (s, cp));
        }
        if let Some((seq, cp)) = upto {
            self.advance(seq, cp)?;
        }
        Ok(())
    }

    fn advance(&mut self, seq: u64, cp: u64) -> Result<(), ForwardError> {
        if seq > self.acked {
            self.store.save(&self.settings.name, seq)?;
            self.acked = seq;
        }
        self.cp_acked = self.cp_acked.max(cp);
        Ok(())
    }

    /// The drain is over: close gracefully and record what the receiver proved.
    fn finish(&mut self, deadline: Instant) {
        if !self.connected {
            return;
        }
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(500));
        match self.sink.close(timeout) {
            Ok(true) => {
                let (sent, cp) = (self.sent, self.cp_sent);
                self.pending.clear();
                if let Err(e) = self.advance(sent, cp) {
                    self.failed(&e);
                }
            }
            Ok(false) => {
                // Not proven: settle what can be, the rest is resent next time.
                if let Err(e) = self.confirm_without_check() {
                    self.failed(&e);
                }
            }
            Err(e) => self.failed(&e),
        }
        self.connected = false;
        self.publish();
        lock(&self.status).connected = false;
    }

    fn confirm_without_check(&mut self) -> Result<(), ForwardError> {
        let settle = self.settings.settle;
        let mut upto = None;
        while let Some((s, cp, at)) = self.pending.front().copied() {
            if at.elapsed() < settle {
                break;
            }
            upto = Some((s, cp));
            self.pending.pop_front();
        }
        if let Some((s, cp)) = upto {
            self.advance(s, cp)?;
        }
        Ok(())
    }

    fn publish(&self) {
        let mut st = lock(&self.status);
        st.head_seq = self.head;
        st.sent_seq = self.sent;
        st.acked_seq = self.acked;
        st.lag = self.head.saturating_sub(self.sent);
    }

    fn status_snapshot(&self) -> ForwarderStatus {
        lock(&self.status).clone()
    }

    fn succeeded(&mut self) {
        self.backoff = self.settings.retry_initial;
        lock(&self.status).consecutive_failures = 0;
    }

    fn failed(&mut self, e: &ForwardError) {
        let mut st = lock(&self.status);
        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
        st.last_error = Some(rampart_api::report::one_line(e));
        st.connected = false;
        let failures = st.consecutive_failures;
        drop(st);
        if matches!(e, ForwardError::Rejected { .. }) {
            tracing::error!(
                forwarder = %self.settings.name, destination = %self.sink.destination(),
                cursor = self.acked, failures, retry_in = ?self.backoff, error = %rampart_api::report::one_line(e),
                "forwarder configuration error: the receiver refuses our requests; \
                 events stay in the database and are retried"
            );
            return;
        }
        tracing::warn!(
            forwarder = %self.settings.name, destination = %self.sink.destination(),
            cursor = self.acked, head = self.head, lag = self.head.saturating_sub(self.acked),
            failures, retry_in = ?self.backoff, error = %rampart_api::report::one_line(e),
            "forwarder error; will reconnect and resend from the cursor"
        );
    }
}
