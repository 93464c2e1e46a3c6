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
//!
//! # Files
//!
//! - `mod.rs`: [`TargetSession`], the established session to a target that
//!   every channel of a connection is bridged into.
//! - `bridged.rs`: one bridged channel ([`Bridged`], the user → target half,
//!   and [`bridged::Pump`], the target → user half), its output tap, and
//!   opening a `session` channel on the target.
//! - `requests.rs`: what the user sends on a channel (data, EOF, close, and
//!   requests such as `pty-req`, `shell`, `exec`, `subsystem`), passed on and
//!   their answers relayed.
//! - `record.rs`: recording a channel in the session's one recording, starting
//!   that recording, and refusing a channel that cannot be recorded.

mod bridged;
mod record;
mod requests;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rampart_api::SessionCertResponse;
use russh::ChannelId;

use super::establish::SessionPlan;
use crate::bridge::{self, Traffic};
use crate::config::Config;
use crate::recording::Recorder;

pub(super) use bridged::{join, Bridged};
pub(super) use requests::ChannelRequest;

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
