//! The target → user direction of one bridged channel: data, extended data,
//! EOF, exit status and signal passed on, the output tapped for the recording,
//! and the session's traffic counted ([`Traffic`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use crate::clock::monotonic_ms;

/// Counters of one session, shared by its channels.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes user → target.
    pub up: AtomicU64,
    /// Bytes target → user.
    pub down: AtomicU64,
    /// When the last data went either way, in [`monotonic_ms`] (idle timeout).
    pub last_activity_ms: AtomicU64,
}

impl Traffic {
    /// Note activity now.
    pub fn touch(&self) {
        self.last_activity_ms
            .store(monotonic_ms(), Ordering::Relaxed);
    }
}

/// How long the pump holds a target's EOF waiting for its exit status.
const EOF_HOLD: Duration = Duration::from_millis(200);

/// What the pump reports when the target channel ends.
#[derive(Debug, Default, Clone)]
pub struct ChannelEnd {
    /// Exit status, if the target sent one.
    pub exit_status: Option<u32>,
    /// Exit signal name, if the target sent one.
    pub exit_signal: Option<String>,
    /// Bytes target → user on this channel.
    pub bytes_down: u64,
}

/// Hooks the pump calls for target output (recording).
pub trait OutputTap: Send {
    /// Output bytes (`ext` = 1 for stderr).
    fn output(&mut self, data: &[u8], ext: Option<u32>);
}

/// Copy the target channel's messages to the user's channel until it closes.
/// Replies to channel requests go to `replies` in order.
pub async fn pump(
    mut from: ChannelReadHalf,
    to: ChannelWriteHalf<russh::server::Msg>,
    server: russh::server::Handle,
    replies: mpsc::UnboundedSender<bool>,
    traffic: Arc<Traffic>,
    mut tap: Option<Box<dyn OutputTap>>,
) -> ChannelEnd {
    let mut end = ChannelEnd::default();
    let id = to.id();
    // The target's EOF is held until its exit status (or close) follows, at
    // most EOF_HOLD: sshd sends EOF, exit-status and close back to back, and
    // an OpenSSH client that sees EOF alone with its own input already closed
    // (a multiplexed session) sends close at once — the exit status that
    // follows is then dropped and the client reports 255.
    let mut eof_pending = false;
    loop {
        let msg = if eof_pending {
            match tokio::time::timeout(EOF_HOLD, from.wait()).await {
                Ok(m) => m,
                Err(_) => {
                    eof_pending = false;
                    let _ = to.eof().await;
                    continue;
                }
            }
        } else {
            from.wait().await
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => {
                let n = data.len() as u64;
                end.bytes_down += n;
                traffic.down.fetch_add(n, Ordering::Relaxed);
                traffic.touch();
                if let Some(t) = tap.as_mut() {
                    t.output(&data, None);
                }
                if to.data_bytes(data).await.is_err() {
                    break;
                }
            }
            ChannelMsg::ExtendedData { data, ext } => {
                let n = data.len() as u64;
                end.bytes_down += n;
                traffic.down.fetch_add(n, Ordering::Relaxed);
                traffic.touch();
                if let Some(t) = tap.as_mut() {
                    t.output(&data, Some(ext));
                }
                if to.extended_data_bytes(ext, data).await.is_err() {
                    break;
                }
            }
            ChannelMsg::Eof => {
                eof_pending = true;
            }
            ChannelMsg::ExitStatus { exit_status } => {
                end.exit_status = Some(exit_status);
                let _ = to.exit_status(exit_status).await;
                if std::mem::take(&mut eof_pending) {
                    let _ = to.eof().await;
                }
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => {
                end.exit_signal = Some(format!("{signal_name:?}"));
                let _ = server
                    .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                    .await;
                if std::mem::take(&mut eof_pending) {
                    let _ = to.eof().await;
                }
            }
            ChannelMsg::Success => {
                let _ = replies.send(true);
            }
            ChannelMsg::Failure => {
                let _ = replies.send(false);
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    if eof_pending {
        let _ = to.eof().await;
    }
    // Exit status (if any) went out above; close after it, as RFC 4254 §6.10 orders.
    let _ = to.close().await;
    end
}
