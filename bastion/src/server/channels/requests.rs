//! What the user sends on a bridged channel: data, extended data, EOF and
//! close, and the requests (`pty-req`, `env`, `shell`, `exec`, `subsystem`,
//! `window-change`, `signal`) passed on to the target, whose answer is
//! relayed back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use russh::server::Session;
use russh::ChannelId;

use crate::server::conn::Conn;
use crate::sftp::FileOps;

/// A channel request the user sent that the bastion passes on to the target.
pub(in crate::server) enum ChannelRequest<'a> {
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
    /// Data from the user: counted, recorded (input), fed to the SFTP
    /// tracker, passed on.
    pub(in crate::server) async fn user_data(&mut self, channel: ChannelId, data: &[u8]) {
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
    pub(in crate::server) async fn user_extended_data(
        &mut self,
        channel: ChannelId,
        code: u32,
        data: &[u8],
    ) {
        if let Some(b) = self.channels.get_mut(&channel) {
            let _ = b
                .to_target
                .extended_data_bytes(code, bytes::Bytes::copy_from_slice(data))
                .await;
        }
    }

    /// EOF from the user, passed on.
    pub(in crate::server) async fn user_eof(&mut self, channel: ChannelId) {
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.to_target.eof().await;
        }
    }

    /// The user closed a channel: close its target side.
    pub(in crate::server) async fn user_close(&mut self, channel: ChannelId) {
        if let Some(b) = self.channels.remove(&channel) {
            let _ = b.to_target.close().await;
        }
        self.refused_channels.remove(&channel);
    }

    /// `pty-req`: remembered for the recording, then passed on.
    pub(in crate::server) async fn pty_requested(
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
    pub(in crate::server) async fn shell_requested(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) {
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
    pub(in crate::server) async fn exec_requested(
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
    pub(in crate::server) async fn subsystem_requested(
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
    pub(in crate::server) async fn window_changed(
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
    pub(in crate::server) async fn user_signal(&mut self, channel: ChannelId, signal: russh::Sig) {
        if let Some(b) = self.channels.get(&channel) {
            let _ = b.to_target.signal(signal).await;
        }
    }

    /// Forward a channel request to the target and relay its answer
    /// (`channel_failure` when it cannot be sent or the target refuses it).
    pub(in crate::server) async fn forward_request(
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
