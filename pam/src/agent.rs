//! A minimal, blocking SSH agent client (draft-miller-ssh-agent): list identities
//! and ask for one signature, all under one deadline so that a hung or slow agent
//! cannot hang `sudo`.
//!
//! ```text
//! message:  uint32 length, byte type, contents
//! SSH_AGENTC_REQUEST_IDENTITIES (11) → SSH_AGENT_IDENTITIES_ANSWER (12):
//!     uint32 nkeys, then nkeys × (string key blob, string comment)
//! SSH_AGENTC_SIGN_REQUEST (13): string key blob, string data, uint32 flags
//!     → SSH_AGENT_SIGN_RESPONSE (14): string signature
//! SSH_AGENT_FAILURE (5)
//! ```

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::AgentError;

const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;

/// Sign-request flag asking for an `rsa-sha2-512` signature from an RSA key
/// (draft-miller-ssh-agent §4.5.1; the default would be SHA-1 `ssh-rsa`).
pub const SSH_AGENT_RSA_SHA2_512: u32 = 4;

/// Largest agent message accepted (OpenSSH's `AGENT_MAX_LEN`, 256 KiB).
pub const MAX_MESSAGE: u32 = 256 * 1024;
/// Most identities considered from one agent.
pub const MAX_IDENTITIES: u32 = 2048;

/// One identity the agent holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The public key or certificate blob (SSH wire encoding).
    pub blob: Vec<u8>,
    /// The agent's comment.
    pub comment: String,
}

/// A connection to an agent, with a deadline for the whole exchange.
#[derive(Debug)]
pub struct Agent {
    stream: UnixStream,
    deadline: Instant,
    timeout_ms: u64,
}

impl Agent {
    /// Connect to the agent socket at `path`; every later call must finish
    /// within `timeout_ms` of now.
    pub fn connect(path: &Path, timeout_ms: u64) -> Result<Agent, AgentError> {
        let stream = UnixStream::connect(path).map_err(|e| AgentError::Connect {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Agent::from_stream(stream, timeout_ms))
    }

    /// Wrap an already connected stream.
    pub fn from_stream(stream: UnixStream, timeout_ms: u64) -> Agent {
        Agent {
            stream,
            deadline: Instant::now() + Duration::from_millis(timeout_ms),
            timeout_ms,
        }
    }

    /// The underlying socket (for peer credential checks).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// SSH_AGENTC_REQUEST_IDENTITIES.
    pub fn identities(&mut self) -> Result<Vec<Identity>, AgentError> {
        let (kind, body) = self.request(SSH_AGENTC_REQUEST_IDENTITIES, &[])?;
        if kind == SSH_AGENT_FAILURE {
            return Err(AgentError::Failure);
        }
        if kind != SSH_AGENT_IDENTITIES_ANSWER {
            return Err(AgentError::Protocol("expected SSH_AGENT_IDENTITIES_ANSWER"));
        }
        parse_identities(&body)
    }

    /// SSH_AGENTC_SIGN_REQUEST: returns the signature blob
    /// (`string algorithm, string signature[, byte flags, uint32 counter]`).
    pub fn sign(
        &mut self,
        key_blob: &[u8],
        data: &[u8],
        flags: u32,
    ) -> Result<Vec<u8>, AgentError> {
        let mut body = Vec::with_capacity(key_blob.len() + data.len() + 12);
        put_string(&mut body, key_blob)?;
        put_string(&mut body, data)?;
        body.extend(flags.to_be_bytes());
        let (kind, resp) = self.request(SSH_AGENTC_SIGN_REQUEST, &body)?;
        if kind == SSH_AGENT_FAILURE {
            return Err(AgentError::Failure);
        }
        if kind != SSH_AGENT_SIGN_RESPONSE {
            return Err(AgentError::Protocol("expected SSH_AGENT_SIGN_RESPONSE"));
        }
        let mut r = resp.as_slice();
        let sig = get_string(&mut r)?;
        if !r.is_empty() {
            return Err(AgentError::Protocol("trailing bytes after the signature"));
        }
        Ok(sig.to_vec())
    }

    fn request(&mut self, kind: u8, body: &[u8]) -> Result<(u8, Vec<u8>), AgentError> {
        let len =
            u32::try_from(body.len() + 1).map_err(|_| AgentError::Protocol("request too large"))?;
        let mut msg = Vec::with_capacity(body.len() + 5);
        msg.extend(len.to_be_bytes());
        msg.push(kind);
        msg.extend_from_slice(body);
        self.write_all(&msg)?;
        let mut len_buf = [0u8; 4];
        self.read_exact(&mut len_buf)?;
        let len = u32::from_be_bytes(len_buf);
        if len == 0 {
            return Err(AgentError::Protocol("empty message"));
        }
        if len > MAX_MESSAGE {
            return Err(AgentError::TooLarge(len));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact(&mut buf)?;
        let (kind, rest) = buf
            .split_first()
            .ok_or(AgentError::Protocol("empty message"))?;
        Ok((*kind, rest.to_vec()))
    }

    fn remaining(&self) -> Result<Duration, AgentError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(AgentError::Timeout(self.timeout_ms))
        } else {
            Ok(left)
        }
    }

    fn write_all(&mut self, mut buf: &[u8]) -> Result<(), AgentError> {
        while !buf.is_empty() {
            let left = self.remaining()?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(|e| AgentError::Io(e.to_string()))?;
            match self.stream.write(buf) {
                Ok(0) => return Err(AgentError::Io("agent closed the connection".into())),
                Ok(n) => buf = buf.get(n..).unwrap_or_default(),
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(())
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), AgentError> {
        while !buf.is_empty() {
            let left = self.remaining()?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| AgentError::Io(e.to_string()))?;
            match self.stream.read(buf) {
                Ok(0) => return Err(AgentError::Io("agent closed the connection".into())),
                Ok(n) => buf = std::mem::take(&mut buf).get_mut(n..).unwrap_or_default(),
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> AgentError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                AgentError::Timeout(self.timeout_ms)
            }
            std::io::ErrorKind::Interrupted => AgentError::Io("interrupted".into()),
            _ => AgentError::Io(e.to_string()),
        }
    }
}

/// Parse the body of SSH_AGENT_IDENTITIES_ANSWER.
pub fn parse_identities(body: &[u8]) -> Result<Vec<Identity>, AgentError> {
    let mut r = body;
    let n = get_u32(&mut r)?;
    if n > MAX_IDENTITIES {
        return Err(AgentError::Protocol("too many identities"));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let blob = get_string(&mut r)?.to_vec();
        let comment = String::from_utf8_lossy(get_string(&mut r)?).into_owned();
        out.push(Identity { blob, comment });
    }
    if !r.is_empty() {
        return Err(AgentError::Protocol("trailing bytes after the identities"));
    }
    Ok(out)
}

fn get_u32(r: &mut &[u8]) -> Result<u32, AgentError> {
    let (head, tail) = r
        .split_first_chunk::<4>()
        .ok_or(AgentError::Protocol("truncated"))?;
    *r = tail;
    Ok(u32::from_be_bytes(*head))
}

fn get_string<'a>(r: &mut &'a [u8]) -> Result<&'a [u8], AgentError> {
    let len = get_u32(r)? as usize;
    if len > r.len() {
        return Err(AgentError::Protocol("truncated string"));
    }
    let (head, tail) = r.split_at(len);
    *r = tail;
    Ok(head)
}

/// Append an SSH `string` (uint32 length + bytes).
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) -> Result<(), AgentError> {
    let len = u32::try_from(s.len()).map_err(|_| AgentError::Protocol("string too long"))?;
    out.extend(len.to_be_bytes());
    out.extend_from_slice(s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn identities_parse_and_refuse_garbage() {
        let mut body = Vec::new();
        body.extend(2u32.to_be_bytes());
        for (b, c) in [(&b"blob1"[..], "one"), (b"b2", "two")] {
            put_string(&mut body, b).unwrap();
            put_string(&mut body, c.as_bytes()).unwrap();
        }
        let ids = parse_identities(&body).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1].comment, "two");
        assert!(parse_identities(&body[..body.len() - 1]).is_err());
        let mut extra = body.clone();
        extra.push(0);
        assert!(parse_identities(&extra).is_err());
        assert!(parse_identities(&u32::MAX.to_be_bytes()).is_err());
        assert!(parse_identities(&[]).is_err());
    }

    #[test]
    fn a_silent_agent_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        // Accept and then say nothing.
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(2));
            drop(s);
        });
        let started = Instant::now();
        let mut a = Agent::connect(&path, 300).unwrap();
        assert_eq!(a.identities(), Err(AgentError::Timeout(300)));
        assert!(started.elapsed() < Duration::from_millis(1500));
        t.join().unwrap();
    }

    #[test]
    fn an_oversized_answer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 5];
            s.read_exact(&mut req).unwrap();
            s.write_all(&(MAX_MESSAGE + 1).to_be_bytes()).unwrap();
        });
        let mut a = Agent::connect(&path, 2000).unwrap();
        assert_eq!(a.identities(), Err(AgentError::TooLarge(MAX_MESSAGE + 1)));
        t.join().unwrap();
    }
}
