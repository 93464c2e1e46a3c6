//! Session channels: each user-side channel is bridged to a channel opened on
//! the target; requests are passed on and their answers relayed, every shell,
//! exec and subsystem channel is recorded (with or without a pty, into the
//! session's one recording), and SFTP subsystems are tracked into `file_op`
//! events.
//!
//! Recording fails closed: a channel whose recording cannot start is refused
//! with "session recording unavailable; refusing" on its stderr, and a
//! recording that fails mid-session ends the session (`session_ended` with
//! reason `recording_failed`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_api::{BastionEventKind, SessionCertResponse};
use russh::server::{self, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use super::conn::Conn;
use super::establish::SessionPlan;
use super::events;
use crate::audit::{detail, Auditor};
use crate::bridge::{self, Traffic};
use crate::config::Config;
use crate::recording::{self, Recorder};
use crate::sftp::FileOps;

/// An established session to a target.
pub(super) struct TargetSession {
    /// Who, as which login on which target, under which session ID.
    pub(super) plan: SessionPlan,
    pub(super) client: russh::client::Handle<bridge::TargetClient>,
    pub(super) policy: SessionCertResponse,
    pub(super) traffic: Arc<Traffic>,
    pub(super) channels: Arc<Mutex<Vec<ChannelId>>>,
    pub(super) end_reason: Arc<Mutex<Option<String>>>,
    pub(super) started: Instant,
    pub(super) started_at: chrono::DateTime<chrono::Utc>,
    /// The session's recording, once its first shell, exec or subsystem
    /// request started it.
    pub(super) recorder: Option<Recorder>,
    /// Agent channels from the target go here once allowed.
    pub(super) agent: bridge::AgentSlot,
    /// Remote forwards (`ssh -R`) granted in this session.
    pub(super) remote: bridge::RemoteForwards,
    /// The config the session started under: a reload changes what new
    /// sessions get, never this one's idle timeout or recording bound.
    pub(super) config: Arc<Config>,
}

/// One bridged channel.
pub(super) struct Bridged {
    pub(super) to_target: ChannelWriteHalf<russh::client::Msg>,
    pub(super) replies: mpsc::UnboundedReceiver<bool>,
    pub(super) exec: Arc<Mutex<Option<String>>>,
    pub(super) bytes_up: u64,
    /// `pty-req` as asked: TERM, columns, rows.
    pub(super) pty: Option<(String, u32, u32)>,
    /// The session's recording, once this channel is recorded.
    pub(super) rec: Arc<Mutex<Option<Recorder>>>,
    /// The SFTP file-operation tracker, once the channel is an sftp subsystem.
    pub(super) sftp: Arc<Mutex<Option<FileOps>>>,
}

impl Bridged {
    fn new(
        to_target: ChannelWriteHalf<russh::client::Msg>,
        replies: mpsc::UnboundedReceiver<bool>,
    ) -> Bridged {
        Bridged {
            to_target,
            replies,
            exec: Arc::new(Mutex::new(None)),
            bytes_up: 0,
            pty: None,
            rec: Arc::new(Mutex::new(None)),
            sftp: Arc::new(Mutex::new(None)),
        }
    }
}

/// The target → user direction of a bridged channel, copied by [`bridge::pump`].
pub(super) struct Pump {
    from_target: ChannelReadHalf,
    to_user: ChannelWriteHalf<Msg>,
    replies: mpsc::UnboundedSender<bool>,
}

impl Pump {
    /// The user-side channel.
    pub(super) fn id(&self) -> ChannelId {
        self.to_user.id()
    }

    /// Copy until the target channel ends; see [`bridge::pump`].
    pub(super) async fn run(
        self,
        user: server::Handle,
        traffic: Arc<Traffic>,
        tap: Option<Box<dyn bridge::OutputTap>>,
    ) -> bridge::ChannelEnd {
        bridge::pump(
            self.from_target,
            self.to_user,
            user,
            self.replies,
            traffic,
            tap,
        )
        .await
    }
}

/// Bridge a channel opened on the target to the user's channel: the user →
/// target direction (kept in `Conn::channels` under the user's channel ID)
/// and the other, to run.
pub(super) fn join(target: Channel<russh::client::Msg>, user: Channel<Msg>) -> (Bridged, Pump) {
    let (from_target, to_target) = target.split();
    let (_from_user, to_user) = user.split();
    let (replies_tx, replies) = mpsc::unbounded_channel();
    let pump = Pump {
        from_target,
        to_user,
        replies: replies_tx,
    };
    (Bridged::new(to_target, replies), pump)
}

/// Output tap: feeds whatever recording the channel has by then, and the
/// SFTP tracker, whose finished operations become `file_op` events.
pub(super) struct SlotTap {
    channel: u32,
    rec: Arc<Mutex<Option<Recorder>>>,
    sftp: Arc<Mutex<Option<FileOps>>>,
    auditor: Auditor,
    base: rampart_api::BastionEvent,
    /// Stamps the `file_op` events.
    clock: Arc<dyn crate::clock::Clock>,
}

impl bridge::OutputTap for SlotTap {
    fn output(&mut self, data: &[u8], ext: Option<u32>) {
        if let Ok(g) = self.rec.lock() {
            if let Some(r) = g.as_ref() {
                r.output(self.channel, data);
            }
        }
        if ext.is_some() {
            return;
        }
        let ops = match self.sftp.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(f) => f.server_data(data),
                None => return,
            },
            Err(_) => return,
        };
        for op in ops {
            let mut e = self.base.clone();
            e.kind = BastionEventKind::FileOp;
            e.success = op.success;
            e.at = self.clock.now();
            let mut e = detail(detail(e, "op", op.op), "path", op.path);
            if let Some(to) = op.to {
                e = detail(e, "to", to);
            }
            if let Some(b) = op.bytes {
                e = detail(e, "bytes", b);
            }
            self.auditor.enqueue(e);
        }
    }
}

/// A channel request the user sent that the bastion passes on to the target.
pub(super) enum ChannelRequest<'a> {
    Pty {
        term: &'a str,
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &'a [(russh::Pty, u32)],
    },
    Env {
        name: &'a str,
        value: &'a str,
    },
    Shell,
    Exec(&'a [u8]),
    Subsystem(&'a str),
}

impl Conn {
    /// A `session` channel: opened on the target too and bridged, or, with no
    /// target behind this connection, accepted only to explain the refusal.
    pub(super) async fn open_session_channel(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) {
        let Some(s) = &self.session else {
            // No target behind this connection: explain on the first request.
            if self.refusal.is_none() {
                self.refusal = Some(
                    "no target named: use `ssh -J rampart@bastion login@target` or `ssh login+target@bastion`"
                        .into(),
                );
            }
            self.refused_channels.insert(channel.id(), ());
            reply.accept().await;
            return;
        };
        let tc = match s.client.channel_open_session().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "target {} refused a session channel: {e}",
                    s.plan.target.name
                );
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return;
            }
        };
        reply.accept().await;
        let (bridged, pump) = join(tc, channel);
        let id = pump.id();
        if let Ok(mut c) = s.channels.lock() {
            c.push(id);
        }
        let exec = bridged.exec.clone();
        let rec = bridged.rec.clone();
        let sftp = bridged.sftp.clone();
        self.channels.insert(id, bridged);
        let traffic = s.traffic.clone();
        let handle = session.handle();
        let auditor = self.shared.auditor.clone();
        let clock = self.shared.clock.clone();
        let base = self.session_event(BastionEventKind::Exec, true);
        let chans = s.channels.clone();
        let channel_number = u32::from(id);
        tokio::spawn(async move {
            let tap: Box<dyn bridge::OutputTap> = Box::new(SlotTap {
                channel: channel_number,
                rec: rec.clone(),
                sftp,
                auditor: auditor.clone(),
                base: base.clone(),
                clock,
            });
            let end = pump.run(handle, traffic, Some(tap)).await;
            if let Some(r) = rec.lock().ok().and_then(|mut g| g.take()) {
                let how = match (end.exit_status, &end.exit_signal) {
                    (Some(st), _) => format!("exit {st}"),
                    (None, Some(sig)) => format!("signal {sig}"),
                    (None, None) => "closed".to_owned(),
                };
                r.close_channel(channel_number, &how);
            }
            if let Ok(mut c) = chans.lock() {
                c.retain(|c| *c != id);
            }
            let command = exec.lock().ok().and_then(|c| c.clone());
            if let Some(command) = command {
                auditor.enqueue(events::exec_ended(base, command, end));
            }
        });
    }

    /// Data from the user: counted, recorded (input), fed to the SFTP
    /// tracker, passed on.
    pub(super) async fn user_data(&mut self, channel: ChannelId, data: &[u8]) {
        if let Some(b) = self.channels.get_mut(&channel) {
            b.bytes_up += data.len() as u64;
            if let Some(s) = &self.session {
                s.traffic.up.fetch_add(data.len() as u64, Ordering::Relaxed);
                s.traffic.touch();
            }
            if let Ok(g) = b.rec.lock() {
                if let Some(r) = g.as_ref() {
                    r.input(u32::from(channel), data);
                }
            }
            if let Ok(mut g) = b.sftp.lock() {
                if let Some(f) = g.as_mut() {
                    f.client_data(data);
                }
            }
            let _ = b
                .to_target
                .data_bytes(bytes::Bytes::copy_from_slice(data))
                .await;
        }
    }

    /// Extended data from the user, passed on.
    pub(super) async fn user_extended_data(&mut self, channel: ChannelId, code: u32, data: &[u8]) {
        if let Some(b) = self.channels.get_mut(&channel) {
            let _ = b
                .to_target
                .extended_data_bytes(code, bytes::Bytes::copy_from_slice(data))
                .await;
        }
    }

    /// EOF from the user, passed on.
    pub(super) async fn user_eof(&mut self, channel: ChannelId) {
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.to_target.eof().await;
        }
    }

    /// The user closed a channel: close its target side.
    pub(super) async fn user_close(&mut self, channel: ChannelId) {
        if let Some(b) = self.channels.remove(&channel) {
            let _ = b.to_target.close().await;
        }
        self.refused_channels.remove(&channel);
    }

    /// `pty-req`: remembered for the recording, then passed on.
    pub(super) async fn pty_requested(
        &mut self,
        channel: ChannelId,
        request: ChannelRequest<'_>,
        session: &mut Session,
    ) {
        if self.refused_channels.contains_key(&channel) {
            let _ = session.channel_success(channel);
            return;
        }
        if let (
            Some(b),
            ChannelRequest::Pty {
                term, cols, rows, ..
            },
        ) = (self.channels.get_mut(&channel), &request)
        {
            b.pty = Some((term.chars().take(64).collect(), *cols, *rows));
        }
        self.forward_request(channel, request, session).await;
    }

    /// `shell`: recorded, passed on.
    pub(super) async fn shell_requested(&mut self, channel: ChannelId, session: &mut Session) {
        if self.explain_and_close(channel, session) {
            return;
        }
        if !self.record_channel(channel, "shell", session).await {
            return;
        }
        self.forward_request(channel, ChannelRequest::Shell, session)
            .await;
    }

    /// `exec`: recorded, remembered for the exec event, passed on.
    pub(super) async fn exec_requested(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) {
        if self.explain_and_close(channel, session) {
            return;
        }
        let command = String::from_utf8_lossy(data).into_owned();
        let what = format!("exec {:?}", command.chars().take(1000).collect::<String>());
        if !self.record_channel(channel, &what, session).await {
            return;
        }
        if let Some(b) = self.channels.get(&channel) {
            if let Ok(mut c) = b.exec.lock() {
                // Cut to the CA's bounds where events are sent (audit::sanitize).
                *c = Some(command);
            }
        }
        self.forward_request(channel, ChannelRequest::Exec(data), session)
            .await;
    }

    /// `subsystem`: an `sftp` one gets its file operations tracked; passed on.
    pub(super) async fn subsystem_requested(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) {
        if self.explain_and_close(channel, session) {
            return;
        }
        let what = format!("subsystem {}", name.chars().take(64).collect::<String>());
        if !self.record_channel(channel, &what, session).await {
            return;
        }
        if let (Some(b), "sftp") = (self.channels.get(&channel), name) {
            if let Ok(mut g) = b.sftp.lock() {
                *g = Some(FileOps::new());
            }
        }
        self.forward_request(channel, ChannelRequest::Subsystem(name), session)
            .await;
    }

    /// `window-change`: into the recording, and passed on.
    pub(super) async fn window_changed(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
    ) {
        if let Some(b) = self.channels.get(&channel) {
            if let Ok(g) = b.rec.lock() {
                if let Some(r) = g.as_ref() {
                    r.resize(col_width, row_height);
                }
            }
            let _ = b
                .to_target
                .window_change(col_width, row_height, pix_width, pix_height)
                .await;
        }
    }

    /// `signal`, passed on.
    pub(super) async fn user_signal(&mut self, channel: ChannelId, signal: russh::Sig) {
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.to_target.signal(signal).await;
        }
    }

    /// Record `channel`, which is about to run `what`, in the session's
    /// recording, starting that on the session's first such request. When the
    /// recording cannot start, the channel is refused (the user reads why) and
    /// `false` comes back: nothing runs unrecorded.
    pub(super) async fn record_channel(
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
                        crate::error_chain(&e)
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
                crate::error_chain(e)
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

    /// Forward a channel request to the target and relay its answer
    /// (`channel_failure` when it cannot be sent or the target refuses it).
    pub(super) async fn forward_request(
        &mut self,
        channel: ChannelId,
        request: ChannelRequest<'_>,
        session: &mut Session,
    ) {
        let ok = match self.channels.get_mut(&channel) {
            Some(b) => {
                let t = &b.to_target;
                let sent = match request {
                    ChannelRequest::Pty {
                        term,
                        cols,
                        rows,
                        pix_width,
                        pix_height,
                        modes,
                    } => {
                        t.request_pty(true, term, cols, rows, pix_width, pix_height, modes)
                            .await
                    }
                    ChannelRequest::Env { name, value } => t.set_env(true, name, value).await,
                    ChannelRequest::Shell => t.request_shell(true).await,
                    ChannelRequest::Exec(command) => t.exec(true, command.to_vec()).await,
                    ChannelRequest::Subsystem(name) => t.request_subsystem(true, name).await,
                };
                sent.is_ok()
                    && matches!(
                        tokio::time::timeout(Duration::from_secs(30), b.replies.recv()).await,
                        Ok(Some(true))
                    )
            }
            None => false,
        };
        let _ = if ok {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        };
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
