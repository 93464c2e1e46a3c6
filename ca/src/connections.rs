//! Who may hold a connection to the CA's API, and for how long.
//!
//! The CA is the service every engineer needs during an incident, so a client
//! that opens connections and never finishes a request must not be able to
//! use up its file descriptors or tasks. The defences, each with a config key
//! under `[http]`:
//!
//! - a cap on open connections overall and per source network (an IPv4
//!   address, an IPv6 /64), checked before the TLS handshake, so one network
//!   cannot take the whole budget ([`ConnectionGate`]);
//! - a TLS handshake deadline;
//! - a deadline for a request's head, which in HTTP/1.1 also bounds how long an
//!   idle keep-alive connection is kept (hyper starts the timer whenever it
//!   waits for the next request head);
//! - a deadline for a whole request, body and handler included (`408`), longer
//!   than the API's longest long-poll.
//!
//! The systemd unit raises `LimitNOFILE` well above `max_connections`, so the
//! caps, not the kernel, decide who is refused.

use std::collections::HashMap;
use std::future::Ready;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::authority::source_network;

/// `[http]` as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Most open API connections. Default 4096.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most open API connections from one source network. Default 256.
    #[serde(default = "default_max_per_network")]
    pub max_connections_per_network: usize,
    /// TLS handshake deadline. Default `10s`.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: String,
    /// Deadline for a request's head, and for an idle keep-alive connection.
    /// Default `10s`.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: String,
    /// Deadline for a whole request, body and answer included. Default `60s`;
    /// at least 30 s, above the API's longest long-poll.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            max_connections: default_max_connections(),
            max_connections_per_network: default_max_per_network(),
            handshake_timeout: default_handshake_timeout(),
            header_timeout: default_header_timeout(),
            request_timeout: default_request_timeout(),
        }
    }
}

fn default_max_connections() -> usize {
    4096
}
fn default_max_per_network() -> usize {
    256
}
fn default_handshake_timeout() -> String {
    "10s".into()
}
fn default_header_timeout() -> String {
    "10s".into()
}
fn default_request_timeout() -> String {
    "60s".into()
}

/// The shortest whole-request deadline: the longest long-poll
/// (`rampart_api::webauthn::WAIT_HOLD_SECS`) with room to answer.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `[http]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections per source network.
    pub max_connections_per_network: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Request-head (and keep-alive idle) deadline.
    pub header_timeout: Duration,
    /// Whole-request deadline.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: default_max_connections(),
            max_connections_per_network: default_max_per_network(),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl HttpLimits {
    /// Validate `[http]`; `parse` turns a duration string into a duration.
    pub fn from_raw(
        raw: &RawHttp,
        parse: impl Fn(&str, &str) -> Result<Duration, crate::CaError>,
    ) -> Result<HttpLimits, crate::CaError> {
        let limits = HttpLimits {
            max_connections: raw.max_connections,
            max_connections_per_network: raw.max_connections_per_network,
            handshake_timeout: parse("[http] handshake_timeout", &raw.handshake_timeout)?,
            header_timeout: parse("[http] header_timeout", &raw.header_timeout)?,
            request_timeout: parse("[http] request_timeout", &raw.request_timeout)?,
        };
        let problem = if limits.max_connections == 0 || limits.max_connections_per_network == 0 {
            Some("connection caps must be at least 1")
        } else if limits.max_connections_per_network > limits.max_connections {
            Some("max_connections_per_network is above max_connections")
        } else if limits.request_timeout < MIN_REQUEST_TIMEOUT {
            Some("request_timeout must be at least 30s (long-polls hold 20 s)")
        } else if limits.header_timeout.is_zero() || limits.handshake_timeout.is_zero() {
            Some("timeouts must be above zero")
        } else {
            None
        };
        match problem {
            Some(p) => Err(crate::CaError::Config(format!("[http]: {p}"))),
            None => Ok(limits),
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The CA holds `max_connections`.
    Full,
    /// The source network holds `max_connections_per_network`.
    NetworkFull,
}

impl Refused {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Full => "max_connections",
            Refused::NetworkFull => "max_connections_per_network",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_network: HashMap<String, usize>,
}

/// Counts open connections and refuses those over a cap. Cloned into the
/// accept path; a connection's [`Admitted`] gives its place back on drop.
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    max: usize,
    per_network: usize,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionGate {
    /// A gate with these caps.
    pub fn new(limits: &HttpLimits) -> Self {
        ConnectionGate {
            max: limits.max_connections,
            per_network: limits.max_connections_per_network,
            counts: Arc::default(),
        }
    }

    /// Take a place for a connection from `network`.
    pub fn admit(&self, network: String) -> Result<Admitted, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max {
            return Err(Refused::Full);
        }
        let held = counts.per_network.entry(network.clone()).or_default();
        if *held >= self.per_network {
            return Err(Refused::NetworkFull);
        }
        *held += 1;
        counts.total += 1;
        Ok(Admitted {
            counts: Arc::clone(&self.counts),
            network,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.total)
    }
}

/// A connection's place; given back when the connection is dropped.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<Mutex<Counts>>,
    network: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_network.get_mut(&self.network) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_network.remove(&self.network);
            }
        }
    }
}

/// A TCP stream that holds its [`Admitted`] place for as long as it lives.
#[derive(Debug)]
pub struct GatedStream {
    stream: TcpStream,
    _place: Admitted,
}

impl AsyncRead for GatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for ConnectionGate {
    type Stream = GatedStream;
    type Service = S;
    type Future = Ready<io::Result<(GatedStream, S)>>;

    /// Runs before the TLS handshake: a refused connection is closed at once.
    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream
            .peer_addr()
            .map_err(|e| e.to_string())
            .and_then(|peer| {
                self.admit(source_network(peer.ip())).map_err(|why| {
                    crate::metrics::connection_refused(why);
                    tracing::debug!(peer = %peer, reason = why.as_str(), "connection refused");
                    why.as_str().to_owned()
                })
            });
        std::future::ready(match admitted {
            Ok(place) => Ok((
                GatedStream {
                    stream,
                    _place: place,
                },
                service,
            )),
            Err(why) => Err(io::Error::new(io::ErrorKind::ConnectionRefused, why)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max: usize, per_network: usize) -> ConnectionGate {
        ConnectionGate::new(&HttpLimits {
            max_connections: max,
            max_connections_per_network: per_network,
            ..HttpLimits::default()
        })
    }

    #[test]
    fn one_network_cannot_take_every_place() {
        let g = gate(4, 2);
        let a1 = g.admit("192.0.2.1".into()).unwrap();
        let _a2 = g.admit("192.0.2.1".into()).unwrap();
        assert_eq!(
            g.admit("192.0.2.1".into()).unwrap_err(),
            Refused::NetworkFull
        );
        let _b1 = g.admit("192.0.2.2".into()).unwrap();
        let _b2 = g.admit("192.0.2.2".into()).unwrap();
        assert_eq!(g.admit("192.0.2.3".into()).unwrap_err(), Refused::Full);
        // A closed connection gives its place back.
        drop(a1);
        assert_eq!(g.open(), 3);
        assert!(g.admit("192.0.2.3".into()).is_ok());
    }

    #[test]
    fn limits_are_validated() {
        let parse = |_: &str, v: &str| {
            crate::config::parse_duration(v).map_err(|e| crate::CaError::Config(e.to_string()))
        };
        assert!(HttpLimits::from_raw(&RawHttp::default(), parse).is_ok());
        for bad in [
            RawHttp {
                request_timeout: "10s".into(),
                ..RawHttp::default()
            },
            RawHttp {
                max_connections: 10,
                max_connections_per_network: 11,
                ..RawHttp::default()
            },
            RawHttp {
                max_connections: 0,
                ..RawHttp::default()
            },
        ] {
            assert!(HttpLimits::from_raw(&bad, parse).is_err(), "{bad:?}");
        }
    }
}
