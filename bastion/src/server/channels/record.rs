//! Recording fails closed: a channel is recorded in the session's one
//! recording (started by the session's first shell, exec or subsystem
//! request) before it runs, and refused when the recording cannot start.

use rampart_api::BastionEventKind;
use russh::server::Session;
use russh::ChannelId;

use crate::audit::detail;
use crate::recording::{self, Recorder};
use crate::server::conn::Conn;

impl Conn {
    /// Record `channel`, which is about to run `what`, in the session's
    /// recording, starting that on the session's first such request. When the
    /// recording cannot start, the channel is refused (the user reads why) and
    /// `false` comes back: nothing runs unrecorded.
    pub(in crate::server) async fn record_channel(
        &mut self,
        channel: ChannelId,
        what: &str,
        session: &mut Session,
    ) -> bool {
        let Some(pty) = self.channels.get(&channel).map(|b| b.pty.clone()) else {
            return true;
        };
        let Some(s) = self.session.as_ref() else {
            return true;
        };
        let recorder = match &s.recorder {
            Some(r) => r.clone(),
            None => match self.start_recorder(pty.as_ref()).await {
                Ok(r) => {
                    if let Some(s) = self.session.as_mut() {
                        s.recorder = Some(r.clone());
                    }
                    r
                }
                Err(e) => {
                    let mut ev = self.session_event(BastionEventKind::RequestRefused, false);
                    ev.reason = Some(format!(
                        "session recording unavailable ({}); {what} refused",
                        rampart_api::report::one_line(&e)
                    ));
                    self.shared.auditor.enqueue(detail(ev, "request", what));
                    self.refuse_channel(
                        channel,
                        "session recording unavailable; refusing",
                        session,
                    )
                    .await;
                    return false;
                }
            },
        };
        // Bulk data (exec, subsystem) may be metered; a shell is what the
        // user types and reads, kept in full.
        let bulk = what != "shell";
        let what = match &pty {
            Some((term, cols, rows)) => format!("{what} (pty {term} {cols}x{rows})"),
            None => format!("{what} (no pty)"),
        };
        recorder.open_channel(u32::from(channel), &what, pty.is_some(), bulk);
        if let Some(b) = self.channels.get(&channel) {
            if let Ok(mut g) = b.rec.lock() {
                *g = Some(recorder);
            }
        }
        true
    }

    /// Start this session's recording; the header takes the terminal of the
    /// channel that starts it (80x24 without a pty). A write that fails later
    /// ends the session.
    async fn start_recorder(
        &self,
        pty: Option<&(String, u32, u32)>,
    ) -> Result<Recorder, RecorderUnavailable> {
        let Some(s) = self.session.as_ref() else {
            return Err(RecorderUnavailable::NoSession);
        };
        let (term, cols, rows) = match pty {
            Some((term, cols, rows)) => (Some(term.clone()), *cols, *rows),
            None => (None, 80, 24),
        };
        let header = rampart_audit::recording::RecordingHeader {
            session_id: s.plan.id.clone(),
            user: s.plan.user.name.clone(),
            login: s.plan.login.clone(),
            target: s.plan.target.name.clone(),
            width: cols,
            height: rows,
            started: s.started_at,
            record_input: s.policy.record_input,
            term,
        };
        let shared = self.shared.clone();
        let id = s.plan.id.clone();
        let on_failure: recording::FailureHook = Box::new(move |why: String| {
            tracing::error!(session = %id, "{why}; ending the session");
            tokio::spawn(async move {
                shared.end_session(&id, "recording_failed", &why).await;
            });
        });
        Recorder::start(
            &s.config.recording_dir,
            &header,
            s.config.recording_max_stored,
            s.policy
                .record_metered_mib
                .map(|mib| mib.saturating_mul(1024 * 1024)),
            on_failure,
        )
        .await
        .map_err(RecorderUnavailable::from)
        .inspect_err(|e| {
            tracing::error!(
                session = %s.plan.id,
                "cannot start the recording: {}",
                rampart_api::report::one_line(e)
            )
        })
    }

    /// Refuse a bridged channel's request: `message` on its stderr, exit
    /// status 1, the channel closed on both sides.
    async fn refuse_channel(&mut self, channel: ChannelId, message: &str, session: &mut Session) {
        let _ = session.channel_success(channel);
        let _ = session.extended_data(channel, 1, format!("rampart: {message}\r\n").into_bytes());
        let _ = session.exit_status_request(channel, 1);
        let _ = session.eof(channel);
        let _ = session.close(channel);
        if let Some(b) = self.channels.remove(&channel) {
            let _ = b.to_target.close().await;
        }
    }
}

/// Why a channel's recording could not start (the channel is then refused).
#[derive(Debug, thiserror::Error)]
enum RecorderUnavailable {
    /// The connection has no target session (yet).
    #[error("no session")]
    NoSession,
    /// The recording file could not be created.
    #[error(transparent)]
    Start(#[from] rampart_audit::AuditError),
}
