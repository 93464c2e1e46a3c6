//! Session channels: each user-side channel is bridged to a channel opened on
//! the target; requests are passed on and their answers relayed, pty sessions
//! are recorded, and SFTP subsystems are tracked into `file_op` events.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_api::{BastionEventKind, SessionCertResponse};
use russh::server::{self, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelWriteHalf};
use tokio::sync::mpsc;

use super::conn::Conn;
use crate::audit::{detail, event, Auditor};
use crate::auth::OuterUser;
use crate::bridge::{self, Traffic};
use crate::config::Target;
use crate::recording::{self, Recorder};
use crate::sftp::FileOps;

/// An established session to a target.
pub(super) struct TargetSession {
    pub(super) id: String,
    pub(super) login: String,
    pub(super) target: Target,
    pub(super) user: OuterUser,
    pub(super) client: russh::client::Handle<bridge::TargetClient>,
    pub(super) policy: SessionCertResponse,
    pub(super) traffic: Arc<Traffic>,
    pub(super) channels: Arc<Mutex<Vec<ChannelId>>>,
    pub(super) end_reason: Arc<Mutex<Option<String>>>,
    pub(super) started: Instant,
    pub(super) started_at: chrono::DateTime<chrono::Utc>,
    /// Whether this session's recording has been started (one per session).
    pub(super) recording: bool,
    /// Agent channels from the target go here once allowed.
    pub(super) agent: bridge::AgentSlot,
    /// Remote forwards (`ssh -R`) granted in this session.
    pub(super) remote: bridge::RemoteForwards,
}

/// One bridged channel.
pub(super) struct Bridged {
    pub(super) to_target: ChannelWriteHalf<russh::client::Msg>,
    pub(super) replies: mpsc::UnboundedReceiver<bool>,
    pub(super) exec: Arc<Mutex<Option<String>>>,
    pub(super) bytes_up: u64,
    /// `pty-req` as asked: TERM, columns, rows.
    pub(super) pty: Option<(String, u32, u32)>,
    /// The recording of this channel, once it started.
    pub(super) rec: Arc<Mutex<Option<Recorder>>>,
    /// The SFTP file-operation tracker, once the channel is an sftp subsystem.
    pub(super) sftp: Arc<Mutex<Option<FileOps>>>,
}

/// Output tap: feeds whatever recording the channel has by then, and the
/// SFTP tracker, whose finished operations become `file_op` events.
pub(super) struct SlotTap {
    rec: Arc<Mutex<Option<Recorder>>>,
    sftp: Arc<Mutex<Option<FileOps>>>,
    auditor: Auditor,
    base: rampart_api::BastionEvent,
}

impl bridge::OutputTap for SlotTap {
    fn output(&mut self, data: &[u8], ext: Option<u32>) {
        if let Ok(mut g) = self.rec.lock() {
            if let Some(r) = g.as_mut() {
                bridge::OutputTap::output(r, data, ext);
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
            e.at = chrono::Utc::now();
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
                tracing::warn!("target {} refused a session channel: {e}", s.target.name);
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return;
            }
        };
        reply.accept().await;
        let (tr, tw) = tc.split();
        let (_ur, uw) = channel.split();
        let id = uw.id();
        if let Ok(mut c) = s.channels.lock() {
            c.push(id);
        }
        let (rtx, rrx) = mpsc::unbounded_channel();
        let exec = Arc::new(Mutex::new(None));
        let rec: Arc<Mutex<Option<Recorder>>> = Arc::new(Mutex::new(None));
        let sftp: Arc<Mutex<Option<FileOps>>> = Arc::new(Mutex::new(None));
        self.channels.insert(
            id,
            Bridged {
                to_target: tw,
                replies: rrx,
                exec: exec.clone(),
                bytes_up: 0,
                pty: None,
                rec: rec.clone(),
                sftp: sftp.clone(),
            },
        );
        let traffic = s.traffic.clone();
        let handle = session.handle();
        let auditor = self.shared.auditor.clone();
        let mut base = event(BastionEventKind::Exec, true);
        base.session_id = Some(s.id.clone());
        base.user = Some(s.user.name.clone());
        base.login = Some(s.login.clone());
        base.target = Some(s.target.name.clone());
        base.source = Some(self.peer.ip().to_string());
        base.serial = Some(s.user.serial);
        let chans = s.channels.clone();
        let shared = self.shared.clone();
        let session_id = s.id.clone();
        tokio::spawn(async move {
            let tap: Box<dyn bridge::OutputTap> = Box::new(SlotTap {
                rec: rec.clone(),
                sftp,
                auditor: auditor.clone(),
                base: base.clone(),
            });
            let end = bridge::pump(tr, uw, handle, rtx, traffic, Some(tap)).await;
            let recorder = rec.lock().ok().and_then(|mut g| g.take());
            if let Some(cast) = recorder.and_then(|r| r.close()) {
                tokio::spawn(recording::finish_and_upload(
                    shared, cast, session_id, false,
                ));
            }
            if let Ok(mut c) = chans.lock() {
                c.retain(|c| *c != id);
            }
            let command = exec.lock().ok().and_then(|c| c.clone());
            if let Some(command) = command {
                let mut e = base;
                e.success = end.exit_status == Some(0);
                let mut e = detail(e, "command", command);
                if let Some(st) = end.exit_status {
                    e = detail(e, "exit_status", st);
                }
                if let Some(sig) = end.exit_signal {
                    e = detail(e, "exit_signal", sig);
                }
                auditor.enqueue(detail(e, "bytes_down", end.bytes_down));
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
                    r.input(data);
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

    /// `exec`: recorded (with a pty), remembered for the exec event, passed on.
    pub(super) async fn exec_requested(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) {
        if self.explain_and_close(channel, session) {
            return;
        }
        self.start_recording(channel);
        if let Some(b) = self.channels.get(&channel) {
            if let Ok(mut c) = b.exec.lock() {
                *c = Some(String::from_utf8_lossy(data).chars().take(4000).collect());
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

    /// Start the session's recording on `channel` if it has a pty and the
    /// session has no recording yet.
    pub(super) fn start_recording(&mut self, channel: ChannelId) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let Some(b) = self.channels.get(&channel) else {
            return;
        };
        let Some((term, cols, rows)) = b.pty.clone() else {
            return;
        };
        if s.recording {
            return;
        }
        s.recording = true;
        let header = rampart_audit::recording::RecordingHeader {
            session_id: s.id.clone(),
            user: s.user.name.clone(),
            login: s.login.clone(),
            target: s.target.name.clone(),
            width: cols,
            height: rows,
            started: s.started_at,
            record_input: s.policy.record_input,
            term: Some(term),
        };
        match Recorder::start(&self.shared.config.recording_dir, &header) {
            Ok(r) => {
                if let Ok(mut g) = b.rec.lock() {
                    *g = Some(r);
                }
            }
            Err(e) => tracing::error!(session = %s.id, "cannot start the recording: {e}"),
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
