//! One bridged channel: the user → target half kept by the connection, the
//! target → user half run as a pump with an output tap that feeds the
//! recording and the SFTP tracker, and opening a `session` channel on the
//! target to bridge a user's channel to.

use std::sync::{Arc, Mutex};

use rampart_api::BastionEventKind;
use russh::server::{self, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use crate::audit::{detail, Auditor};
use crate::bridge::{self, Traffic};
use crate::recording::Recorder;
use crate::server::conn::Conn;
use crate::server::events;
use crate::sftp::FileOps;

/// One bridged channel.
pub(in crate::server) struct Bridged {
    pub(in crate::server) to_target: ChannelWriteHalf<russh::client::Msg>,
    pub(in crate::server) replies: mpsc::UnboundedReceiver<bool>,
    pub(in crate::server) exec: Arc<Mutex<Option<String>>>,
    pub(in crate::server) bytes_up: u64,
    /// `pty-req` as asked: TERM, columns, rows.
    pub(in crate::server) pty: Option<(String, u32, u32)>,
    /// The session's recording, once this channel is recorded.
    pub(in crate::server) rec: Arc<Mutex<Option<Recorder>>>,
    /// The SFTP file-operation tracker, once the channel is an sftp subsystem.
    pub(in crate::server) sftp: Arc<Mutex<Option<FileOps>>>,
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
pub(in crate::server) struct Pump {
    from_target: ChannelReadHalf,
    to_user: ChannelWriteHalf<Msg>,
    replies: mpsc::UnboundedSender<bool>,
}

impl Pump {
    /// The user-side channel.
    pub(in crate::server) fn id(&self) -> ChannelId {
        self.to_user.id()
    }

    /// Copy until the target channel ends; see [`bridge::pump`].
    pub(in crate::server) async fn run(
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
pub(in crate::server) fn join(
    target: Channel<russh::client::Msg>,
    user: Channel<Msg>,
) -> (Bridged, Pump) {
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
pub(in crate::server) struct SlotTap {
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

impl Conn {
    /// A `session` channel: opened on the target too and bridged, or, with no
    /// target behind this connection, accepted only to explain the refusal.
    pub(in crate::server) async fn open_session_channel(
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
}
