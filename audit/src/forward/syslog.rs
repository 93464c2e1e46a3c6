//! Syslog sinks: RFC 5424 messages, framed by octet counting (RFC 6587 §3.4.1),
//! over plain TCP ([`SyslogTcp`]) or TLS ([`SyslogTls`], RFC 5425, the receiver's
//! CA pinned: no system roots).
//!
//! # The message
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [rampart@32473 id="ULID" seq="N" …] BOM{canonical body}
//! ```
//!
//! - `PRI` = facility × 8 + severity (RFC 5424 §6.2.1). Facility defaults to 10
//!   (`authpriv`, "security/authorization messages"); event severities map
//!   info → 6, notice → 5, warning → 4, high → 2 (critical).
//! - `TIMESTAMP`: the event's time in UTC with microseconds (§6.2.3 allows at
//!   most six fractional digits; the canonical body keeps the nanoseconds).
//! - `MSGID`: the event's stable code (`RA-CERT-001`).
//! - Structured data `rampart@32473` (32473 is the enterprise number RFC 5612
//!   reserves for documentation; Rampart has no number of its own): `id` (the ULID,
//!   for de-duplication), `seq`, `kind`, `severity`, `outcome`, and when present
//!   `user`, `actor`, `source`, `target`, `serial`, `mfa_method`, then `hash`
//!   (the chain hash, hex). Values escape `"`, `\` and `]` with a backslash (§6.3.3).
//! - `MSG`: a UTF-8 byte order mark (§6.4: "MUST start with the Unicode byte order
//!   mask") followed by the exact canonical body the hash chain covers, so a SIEM
//!   copy can be re-hashed.
//!
//! A signed checkpoint follows the event it signs as a message of its own, MSGID
//! `RA-AUDIT-CHECKPOINT`, severity informational, structured data `seq`,
//! `kind="checkpoint"` and `hash`, and as `MSG` (after the BOM) the JSON Lines
//! checkpoint line (`{"type":"checkpoint","seq":…,"hash":…,"time":…,"signature":…}`),
//! which can be copied into a witness file as it is.
//!
//! This is the forwarders' own minimal encoder; the export encoders (`rampart audit
//! export --format syslog`) may share it later.
//!
//! # Framing
//!
//! RFC 6587 §3.4.1: `SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG`, `MSG-LEN` the decimal
//! octet count of `SYSLOG-MSG`. RFC 5425 §4.3 uses the same frame inside TLS.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{Delivery, ForwardError, Record, Sink};
use crate::checkpoint::Checkpoint;
use crate::event::Severity;
use crate::export::jsonl_checkpoint;

/// The structured-data ID of Rampart's parameters.
pub const SD_ID: &str = "rampart@32473";

/// Header fields that do not come from the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogOptions {
    /// `HOSTNAME` (§6.2.4); `-` (nil) by default. Trimmed to 255 printable ASCII.
    pub hostname: String,
    /// `APP-NAME` (§6.2.5); `rampart` by default. Trimmed to 48 printable ASCII.
    pub app_name: String,
    /// Facility 0–23 (default 10, authpriv).
    pub facility: u8,
    /// How long a connection attempt may take (default 5 s).
    pub connect_timeout: Duration,
    /// How long one write may block before the connection counts as dead
    /// (default 10 s).
    pub write_timeout: Duration,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            hostname: "-".into(),
            app_name: "rampart".into(),
            facility: 10,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// RFC 5424 numeric severity of an event severity.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 6,
        Severity::Notice => 5,
        Severity::Warning => 4,
        Severity::High => 2,
    }
}

/// Printable US-ASCII only (§6: `PRINTUSASCII = %d33-126`), at most `max`
/// characters; `-` when nothing is left.
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c))
        .take(max)
        .collect();
    if out.is_empty() {
        "-".into()
    } else {
        out
    }
}

fn sd_param(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    // §6.3.3: '"', '\' and ']' MUST be escaped inside PARAM-VALUE.
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push(b'\\');
        }
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out.push(b'"');
}

/// One RFC 5424 message (without framing) for `record`.
pub fn format_rfc5424(opts: &SyslogOptions, record: &Record) -> Vec<u8> {
    let ev = &record.event;
    let pri = u16::from(opts.facility.min(23)) * 8 + u16::from(syslog_severity(ev.severity));
    let mut out = Vec::with_capacity(record.body.len() + 256);
    let header = format!(
        "<{pri}>1 {} {} {} - {} [{SD_ID}",
        ev.time.to_rfc3339_opts(SecondsFormat::Micros, true),
        header_field(&opts.hostname, 255),
        header_field(&opts.app_name, 48),
        header_field(&ev.code, 32),
    );
    out.extend_from_slice(header.as_bytes());
    sd_param(&mut out, "id", &ev.id.to_string());
    sd_param(&mut out, "seq", &ev.seq.to_string());
    sd_param(&mut out, "kind", ev.kind.as_str());
    sd_param(&mut out, "severity", ev.severity.as_str());
    sd_param(&mut out, "outcome", ev.outcome.as_str());
    let optional = [
        ("user", ev.user.as_deref()),
        ("actor", ev.actor.as_deref()),
        ("source", ev.source.as_deref()),
        ("target", ev.target.as_deref()),
        ("mfa_method", ev.mfa_method.as_deref()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            sd_param(&mut out, k, v);
        }
    }
    if let Some(serial) = ev.serial {
        sd_param(&mut out, "serial", &serial.to_string());
    }
    sd_param(&mut out, "hash", &hex::encode(ev.hash));
    out.extend_from_slice(b"] \xEF\xBB\xBF");
    out.extend_from_slice(record.body.as_bytes());
    out
}

/// Append `msg` to `out` as one octet-counted frame (`MSG-LEN SP SYSLOG-MSG`).
pub fn frame_octet_counted(msg: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// The MSGID of a checkpoint message. Not an event code: a checkpoint is not an
/// event of the chain, it signs one.
pub const CHECKPOINT_MSGID: &str = "RA-AUDIT-CHECKPOINT";

/// One RFC 5424 message (without framing) for a signed checkpoint: informational,
/// timestamped with its event's time, `seq`, `kind="checkpoint"` and `hash` in the
/// structured data (so a SIEM finds the newest signed head with the same query as
/// the newest event), and as `MSG` the JSON Lines checkpoint line — the line a
/// witness file holds, which `rampart audit verify --witness` checks.
pub fn format_checkpoint_rfc5424(
    opts: &SyslogOptions,
    cp: &Checkpoint,
) -> Result<Vec<u8>, ForwardError> {
    let pri = u16::from(opts.facility.min(23)) * 8 + u16::from(syslog_severity(Severity::Info));
    let line = jsonl_checkpoint(cp)?;
    let mut out = Vec::with_capacity(line.len() + 192);
    let header = format!(
        "<{pri}>1 {} {} {} - {CHECKPOINT_MSGID} [{SD_ID}",
        cp.time.to_rfc3339_opts(SecondsFormat::Micros, true),
        header_field(&opts.hostname, 255),
        header_field(&opts.app_name, 48),
    );
    out.extend_from_slice(header.as_bytes());
    sd_param(&mut out, "seq", &cp.seq.to_string());
    sd_param(&mut out, "kind", "checkpoint");
    sd_param(&mut out, "hash", &hex::encode(cp.hash));
    out.extend_from_slice(b"] \xEF\xBB\xBF");
    out.extend_from_slice(line.as_bytes());
    Ok(out)
}

fn encode_batch(opts: &SyslogOptions, batch: &[Record]) -> Result<Vec<u8>, ForwardError> {
    let mut out = Vec::with_capacity(batch.len() * 768);
    for r in batch {
        if !r.checkpoint_only {
            frame_octet_counted(&format_rfc5424(opts, r), &mut out);
        }
        if let Some(cp) = &r.checkpoint {
            frame_octet_counted(&format_checkpoint_rfc5424(opts, cp)?, &mut out);
        }
    }
    Ok(out)
}

fn connect_tcp(address: &str, opts: &SyslogOptions) -> Result<TcpStream, ForwardError> {
    let addrs: Vec<_> = address.to_socket_addrs()?.collect();
    let mut last = io::Error::new(
        ErrorKind::NotFound,
        format!("{address} resolves to nothing"),
    );
    for a in addrs {
        match TcpStream::connect_timeout(&a, opts.connect_timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(opts.write_timeout))?;
                s.set_read_timeout(Some(opts.write_timeout))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(ForwardError::Io(last))
}

/// Peek at a stream the receiver never writes to: EOF or an error means it closed
/// or reset the connection. Returns the number of bytes waiting otherwise.
fn peek_alive(s: &TcpStream) -> Result<usize, ForwardError> {
    s.set_nonblocking(true)?;
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false)?;
    match r {
        Ok(0) => Err(ForwardError::Closed),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(ForwardError::Io(e)),
    }
}

/// Syslog over plain TCP with octet-counting framing.
#[derive(Debug)]
pub struct SyslogTcp {
    address: String,
    opts: SyslogOptions,
    stream: Option<TcpStream>,
}

impl SyslogTcp {
    /// A sink for `address` (`host:port`, resolved at each connection).
    pub fn new(address: &str, opts: SyslogOptions) -> SyslogTcp {
        SyslogTcp {
            address: address.to_owned(),
            opts,
            stream: None,
        }
    }
}

impl Sink for SyslogTcp {
    fn destination(&self) -> String {
        format!("syslog-tcp {}", self.address)
    }

    fn connect(&mut self) -> Result<(), ForwardError> {
        self.stream = None;
        self.stream = Some(connect_tcp(&self.address, &self.opts)?);
        Ok(())
    }

    fn send(&mut self, batch: &[Record]) -> Result<Delivery, ForwardError> {
        let s = self.stream.as_mut().ok_or(ForwardError::Closed)?;
        let bytes = encode_batch(&self.opts, batch)?;
        s.write_all(&bytes)?;
        s.flush()?;
        Ok(Delivery::Written)
    }

    fn check(&mut self) -> Result<(), ForwardError> {
        let s = self.stream.as_mut().ok_or(ForwardError::Closed)?;
        if peek_alive(s)? > 0 {
            // Syslog receivers do not talk; discard whatever this was.
            let mut sink = [0u8; 512];
            s.set_nonblocking(true)?;
            let _ = s.read(&mut sink);
            s.set_nonblocking(false)?;
        }
        Ok(())
    }

    fn close(&mut self, timeout: Duration) -> Result<bool, ForwardError> {
        let Some(mut s) = self.stream.take() else {
            return Ok(false);
        };
        s.flush()?;
        s.shutdown(Shutdown::Write)?;
        Ok(wait_eof(&mut s, timeout))
    }

    fn disconnect(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// After our FIN, read until the receiver closes its side (true) or `timeout`
/// passes or the connection resets (false).
fn wait_eof(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Syslog over TLS (RFC 5425) with the receiver's CA pinned.
pub struct SyslogTls {
    address: String,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    opts: SyslogOptions,
    conn: Option<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl std::fmt::Debug for SyslogTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogTls")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

fn tls_err(e: impl std::fmt::Display) -> ForwardError {
    ForwardError::Tls(e.to_string())
}

/// An I/O error that carries a rustls error (a refused certificate…) becomes
/// [`ForwardError::Tls`], so that the reason is visible as such.
fn tls_io(e: io::Error) -> ForwardError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(t) => ForwardError::Tls(t.to_string()),
        None => ForwardError::Io(e),
    }
}

impl SyslogTls {
    /// A sink for `address`, trusting only the CA certificate(s) in the PEM file
    /// `ca_file`, expecting the receiver's certificate to name `server_name`.
    pub fn new(
        address: &str,
        server_name: &str,
        ca_file: &Path,
        opts: SyslogOptions,
    ) -> Result<SyslogTls, ForwardError> {
        let pem = std::fs::read(ca_file)
            .map_err(|e| ForwardError::Config(format!("CA file {}: {e}", ca_file.display())))?;
        Self::with_ca_pem(address, server_name, &pem, opts)
    }

    /// As [`SyslogTls::new`], with the CA certificate(s) given as PEM text.
    pub fn with_ca_pem(
        address: &str,
        server_name: &str,
        ca_pem: &[u8],
        opts: SyslogOptions,
    ) -> Result<SyslogTls, ForwardError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| ForwardError::Config(format!("CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ForwardError::Config(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ForwardError::Config(
                "the CA file holds no PEM certificate".into(),
            ));
        }
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| ForwardError::Config(format!("server_name {server_name:?}: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(SyslogTls {
            address: address.to_owned(),
            server_name,
            config: Arc::new(config),
            opts,
            conn: None,
        })
    }
}

impl Sink for SyslogTls {
    fn destination(&self) -> String {
        format!("syslog-tls {}", self.address)
    }

    fn connect(&mut self) -> Result<(), ForwardError> {
        self.conn = None;
        let sock = connect_tcp(&self.address, &self.opts)?;
        let conn =
            rustls::ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
                .map_err(tls_err)?;
        let mut stream = rustls::StreamOwned::new(conn, sock);
        // Finish the handshake now, so a refused certificate shows at connect.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(tls_io)?;
        }
        self.conn = Some(stream);
        Ok(())
    }

    fn send(&mut self, batch: &[Record]) -> Result<Delivery, ForwardError> {
        let s = self.conn.as_mut().ok_or(ForwardError::Closed)?;
        let bytes = encode_batch(&self.opts, batch)?;
        s.write_all(&bytes).map_err(tls_io)?;
        s.flush().map_err(tls_io)?;
        Ok(Delivery::Written)
    }

    fn check(&mut self) -> Result<(), ForwardError> {
        let s = self.conn.as_mut().ok_or(ForwardError::Closed)?;
        // Take in whatever the receiver sent (session tickets, alerts, EOF)
        // without blocking: a close_notify, an alert or EOF means it is gone.
        loop {
            if peek_alive(&s.sock)? == 0 {
                return Ok(());
            }
            s.sock.set_nonblocking(true)?;
            let r = s.conn.read_tls(&mut s.sock);
            s.sock.set_nonblocking(false)?;
            match r {
                Ok(0) => return Err(ForwardError::Closed),
                Ok(_) => {
                    let state = s.conn.process_new_packets().map_err(tls_err)?;
                    if state.peer_has_closed() {
                        return Err(ForwardError::Closed);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(ForwardError::Io(e)),
            }
        }
    }

    fn close(&mut self, timeout: Duration) -> Result<bool, ForwardError> {
        let Some(mut s) = self.conn.take() else {
            return Ok(false);
        };
        s.flush().map_err(tls_io)?;
        s.conn.send_close_notify();
        while s.conn.wants_write() {
            s.conn.write_tls(&mut s.sock).map_err(tls_io)?;
        }
        s.sock.shutdown(Shutdown::Write)?;
        Ok(wait_eof(&mut s.sock, timeout))
    }

    fn disconnect(&mut self) {
        if let Some(s) = self.conn.take() {
            let _ = s.sock.shutdown(Shutdown::Both);
        }
    }
}
