//! SIEM forwarders configured in `[[audit.forwarders]]`: their file-facing shape,
//! validation, and starting / stopping them beside the server.
//!
//! The forwarding engine itself (durable cursor, batching, backoff, transports)
//! lives in `rampart_audit::forward`; this module only turns config into running
//! forwarders. Each runs on its own thread with its own read connection to the
//! audit database, so a slow or absent SIEM never blocks issuance.
//!
//! ```toml
//! [[audit.forwarders]]
//! name = "siem"                 # the cursor's key: renaming starts from the beginning
//! kind = "syslog-tls"           # or "syslog-tcp"
//! address = "siem.example.com:6514"
//! ca_file = "siem-ca.pem"       # TLS: the receiver's CA, the only one trusted
//! server_name = "siem.example.com"  # TLS: default the host part of `address`
//! batch_size = 500
//! retry_max = "30s"
//!
//! [[audit.forwarders]]
//! name = "hook"
//! kind = "webhook"              # POST a JSON array of events (JSON Lines schema)
//! url = "https://siem.example.com/ingest"
//! ca_file = "siem-ca.pem"       # optional: pin the receiver's CA (default: system roots)
//! headers = { "X-Api-Key" = "…" }   # optional extra headers
//!
//! [[audit.forwarders]]
//! name = "splunk"
//! kind = "splunk-hec"           # POST <url>/services/collector/event
//! url = "https://splunk.example.com:8088"
//! token_file = "hec.token"      # mode 0600; the token is never written in this file
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use rampart_audit::forward::{
    Forwarder, ForwarderSettings, ForwarderStatus, HecToken, HttpOptions, HttpTrust, Sink,
    SplunkHec, StatusHandle, SyslogOptions, SyslogTcp, SyslogTls, Webhook,
};
use serde::Deserialize;

use crate::config::parse_duration;
use crate::error::CaError;

/// Transport of a forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwarderKind {
    /// RFC 5424 over TCP, octet-counted frames (RFC 6587).
    SyslogTcp,
    /// RFC 5424 over TLS (RFC 5425), the receiver's CA pinned.
    SyslogTls,
    /// HTTPS POST of a JSON array of events per batch.
    Webhook,
    /// Splunk HTTP Event Collector (HTTPS, `Authorization: Splunk <token>`).
    SplunkHec,
}

impl ForwarderKind {
    fn is_http(self) -> bool {
        matches!(self, ForwarderKind::Webhook | ForwarderKind::SplunkHec)
    }
}

/// One `[[audit.forwarders]]` table as written on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwarder {
    /// Unique name; the key of the forwarder's cursor in the audit database.
    pub name: String,
    /// `syslog-tcp`, `syslog-tls`, `webhook` or `splunk-hec`.
    pub kind: ForwarderKind,
    /// Syslog kinds: the receiver, `host:port`.
    #[serde(default)]
    pub address: Option<String>,
    /// HTTP kinds: the receiver's `https://` URL (for `splunk-hec`, the HEC base
    /// URL; `/services/collector/event` is appended).
    #[serde(default)]
    pub url: Option<String>,
    /// PEM file with the receiver's CA certificate: required for `syslog-tls`;
    /// optional for the HTTP kinds (default: the system's CA bundle).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// HTTP kinds: extra request headers. Default none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `splunk-hec` only (required): file holding the HEC token, mode 0600.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// TLS only: the name the receiver's certificate must carry. Default: the host
    /// part of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Events per batch. Default 500.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Longest wait between reconnection attempts (the wait doubles from 250 ms).
    /// Default `30s`.
    #[serde(default = "default_retry_max")]
    pub retry_max: String,
    /// Syslog `HOSTNAME` field / HEC `host`. Default: this machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
}

fn default_batch_size() -> u32 {
    500
}
fn default_retry_max() -> String {
    "30s".into()
}

/// A validated forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// Name (cursor key).
    pub name: String,
    /// Transport.
    pub kind: ForwarderKind,
    /// Syslog: `host:port`; HTTP: the URL.
    pub address: String,
    /// TLS: pinned CA file (absolute).
    pub ca_file: Option<PathBuf>,
    /// HTTP: extra headers.
    pub headers: Vec<(String, String)>,
    /// HEC: token file (absolute).
    pub token_file: Option<PathBuf>,
    /// TLS: expected certificate name.
    pub server_name: Option<String>,
    /// Events per batch.
    pub batch_size: u32,
    /// Longest retry wait.
    pub retry_max: Duration,
    /// Syslog HOSTNAME, if set.
    pub hostname: Option<String>,
}

/// Check every `[[audit.forwarders]]` entry; relative `ca_file`s are resolved
/// against `base` (the config file's directory).
pub fn validate(raw: &[RawForwarder], base: &Path) -> Result<Vec<ForwarderConfig>, CaError> {
    let mut out: Vec<ForwarderConfig> = Vec::with_capacity(raw.len());
    for r in raw {
        let bad = |m: String| CaError::Config(format!("[[audit.forwarders]] {:?}: {m}", r.name));
        let name_ok = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(bad("name must be 1-64 of A-Z a-z 0-9 - _ .".into()));
        }
        if out.iter().any(|f| f.name == r.name) {
            return Err(bad("two forwarders have this name".into()));
        }
        if r.batch_size == 0 {
            return Err(bad("batch_size must be at least 1".into()));
        }
        let retry_max = parse_duration(&r.retry_max)
            .map_err(|e| bad(format!("retry_max = {:?}: {e}", r.retry_max)))?;
        if r.kind.is_http() {
            if r.address.is_some() || r.server_name.is_some() {
                return Err(bad(
                    "address and server_name are for the syslog kinds; use url".into(),
                ));
            }
            let Some(url) = &r.url else {
                return Err(bad("needs url = \"https://…\"".into()));
            };
            if !url.starts_with("https://") {
                return Err(bad(format!("url {url:?} must be https://")));
            }
            let token_file = match (r.kind, &r.token_file) {
                (ForwarderKind::SplunkHec, Some(t)) => Some(base.join(t)),
                (ForwarderKind::SplunkHec, None) => {
                    return Err(bad(
                        "kind = \"splunk-hec\" needs token_file (a 0600 file with the token)"
                            .into(),
                    ))
                }
                (_, Some(_)) => return Err(bad("token_file is for kind = \"splunk-hec\"".into())),
                (_, None) => None,
            };
            out.push(ForwarderConfig {
                name: r.name.clone(),
                kind: r.kind,
                address: url.clone(),
                ca_file: r.ca_file.as_ref().map(|c| base.join(c)),
                headers: r.headers.clone().into_iter().collect(),
                token_file,
                server_name: None,
                batch_size: r.batch_size,
                retry_max,
                hostname: r.hostname.clone(),
            });
            continue;
        }
        if r.url.is_some() || r.token_file.is_some() || !r.headers.is_empty() {
            return Err(bad(
                "url, headers and token_file are for kind = \"webhook\" / \"splunk-hec\"".into(),
            ));
        }
        let Some(address) = &r.address else {
            return Err(bad("needs address = \"host:port\"".into()));
        };
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(bad(format!("address {address:?} is not host:port")));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad(format!("address {address:?} is not host:port")));
        }
        let (ca_file, server_name) = match r.kind {
            ForwarderKind::Webhook | ForwarderKind::SplunkHec => (None, None),
            ForwarderKind::SyslogTcp => {
                if r.ca_file.is_some() || r.server_name.is_some() {
                    return Err(bad(
                        "ca_file and server_name are for kind = \"syslog-tls\"".into()
                    ));
                }
                (None, None)
            }
            ForwarderKind::SyslogTls => {
                let Some(ca) = &r.ca_file else {
                    return Err(bad(
                        "kind = \"syslog-tls\" needs ca_file (the receiver's CA certificate)"
                            .into(),
                    ));
                };
                let sn = r.server_name.clone().unwrap_or_else(|| {
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned()
                });
                (Some(base.join(ca)), Some(sn))
            }
        };
        out.push(ForwarderConfig {
            name: r.name.clone(),
            kind: r.kind,
            address: address.clone(),
            ca_file,
            headers: Vec::new(),
            token_file: None,
            server_name,
            batch_size: r.batch_size,
            retry_max,
            hostname: r.hostname.clone(),
        });
    }
    Ok(out)
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// Build the sink a forwarder config describes (reads the TLS CA file).
pub fn sink_for(f: &ForwarderConfig) -> Result<Box<dyn Sink>, CaError> {
    let opts = SyslogOptions {
        hostname: f.hostname.clone().unwrap_or_else(local_hostname),
        app_name: "rampart-ca".into(),
        ..SyslogOptions::default()
    };
    let err = |e: rampart_audit::forward::ForwardError| {
        CaError::Config(format!(
            "[[audit.forwarders]] {:?}: {}",
            f.name,
            rampart_api::report::one_line(&e)
        ))
    };
    Ok(match f.kind {
        ForwarderKind::SyslogTcp => Box::new(SyslogTcp::new(&f.address, opts)),
        ForwarderKind::SyslogTls => {
            let (Some(ca), Some(sn)) = (&f.ca_file, &f.server_name) else {
                return Err(CaError::Config(format!(
                    "[[audit.forwarders]] {:?}: TLS without ca_file",
                    f.name
                )));
            };
            Box::new(SyslogTls::new(&f.address, sn, ca, opts).map_err(err)?)
        }
        ForwarderKind::Webhook | ForwarderKind::SplunkHec => {
            let http = HttpOptions {
                trust: match &f.ca_file {
                    Some(ca) => HttpTrust::Pinned(ca.clone()),
                    None => {
                        HttpTrust::System(rampart_audit::forward::http::SYSTEM_CA_BUNDLE.into())
                    }
                },
                headers: f.headers.clone(),
                ..HttpOptions::default()
            };
            if f.kind == ForwarderKind::Webhook {
                Box::new(Webhook::new(&f.address, http).map_err(err)?)
            } else {
                let Some(tf) = &f.token_file else {
                    return Err(CaError::Config(format!(
                        "[[audit.forwarders]] {:?}: splunk-hec without token_file",
                        f.name
                    )));
                };
                let token = HecToken::from_file(tf).map_err(err)?;
                Box::new(SplunkHec::new(&f.address, token, &opts.hostname, http).map_err(err)?)
            }
        }
    })
}

/// The running forwarders, and the configuration they run with.
#[derive(Debug)]
pub struct Forwarders {
    configs: Vec<ForwarderConfig>,
    running: Vec<Forwarder>,
}

impl Forwarders {
    /// Start every configured forwarder on `audit_db`. A bad CA file or database
    /// fails start-up; an unreachable receiver does not (it is retried).
    pub fn start(
        configs: &[ForwarderConfig],
        audit_db: &rampart_audit::AuditStore,
    ) -> Result<Forwarders, CaError> {
        let mut running = Vec::with_capacity(configs.len());
        for f in configs {
            let sink = sink_for(f)?;
            let mut settings = ForwarderSettings::new(&f.name);
            settings.batch_size = f.batch_size;
            settings.retry_max = f.retry_max.max(settings.retry_initial);
            let fwd = audit_db.spawn_forwarder(settings, sink).map_err(|e| {
                CaError::Config(format!(
                    "[[audit.forwarders]] {:?}: {}",
                    f.name,
                    rampart_api::report::one_line(&e)
                ))
            })?;
            running.push(fwd);
        }
        Ok(Forwarders {
            configs: configs.to_vec(),
            running,
        })
    }

    /// The configuration they run with.
    pub fn configs(&self) -> &[ForwarderConfig] {
        &self.configs
    }

    /// Status readers, for health and metrics.
    pub fn status_handles(&self) -> Vec<StatusHandle> {
        self.running.iter().map(Forwarder::status_handle).collect()
    }

    /// Whether every forwarder in `configs` could start: its CA file, token
    /// file and address load. Nothing is started.
    pub fn check(configs: &[ForwarderConfig]) -> Result<(), CaError> {
        configs.iter().try_for_each(|f| sink_for(f).map(drop))
    }

    /// Run `configs` instead (SIGHUP): the running ones stop (draining), then
    /// the new ones start and go on from their durable cursors, so nothing is
    /// skipped and nothing sent twice by two forwarders of one name. Call
    /// [`Forwarders::check`] first; should a new one still fail to start, the
    /// previous set is started again and the error returned.
    pub fn replace(
        &mut self,
        configs: &[ForwarderConfig],
        audit_db: &rampart_audit::AuditStore,
    ) -> Result<(), CaError> {
        self.stop();
        match Forwarders::start(configs, audit_db) {
            Ok(new) => {
                *self = new;
                Ok(())
            }
            Err(e) => {
                let previous = std::mem::take(&mut self.configs);
                match Forwarders::start(&previous, audit_db) {
                    Ok(old) => *self = old,
                    Err(e) => tracing::error!(error = %rampart_api::report::one_line(&e),
                        "the previous SIEM forwarders could not be started again; none run until the next reload"),
                }
                Err(e)
            }
        }
    }

    /// Stop them all (each drains towards the head for a few seconds and closes
    /// gracefully), in parallel. Returns their final status.
    pub fn stop(&mut self) -> Vec<ForwarderStatus> {
        let handles: Vec<_> = std::mem::take(&mut self.running)
            .into_iter()
            .map(|f| std::thread::spawn(move || f.stop()))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<ForwarderConfig>, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct W {
            forwarders: Vec<RawForwarder>,
        }
        let w: W = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        validate(&w.forwarders, Path::new("/etc/rampart")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_tls_resolution() {
        let v = parse(
            "[[forwarders]]\nname = \"a\"\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:514\"\n\
             [[forwarders]]\nname = \"b\"\nkind = \"syslog-tls\"\naddress = \"siem.example:6514\"\n\
             ca_file = \"ca.pem\"\nretry_max = \"5s\"\n",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].batch_size, 500);
        assert_eq!(v[0].retry_max, Duration::from_secs(30));
        assert_eq!(
            v[1].ca_file.as_deref(),
            Some(Path::new("/etc/rampart/ca.pem"))
        );
        assert_eq!(v[1].server_name.as_deref(), Some("siem.example"));
        assert_eq!(v[1].retry_max, Duration::from_secs(5));
    }

    #[test]
    fn http_kinds_parse() {
        let v = parse(
            "[[forwarders]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://siem/in\"\n\
             headers = { \"X-Api-Key\" = \"k\" }\n\
             [[forwarders]]\nname = \"splunk\"\nkind = \"splunk-hec\"\nurl = \"https://s:8088\"\n\
             token_file = \"hec.token\"\nca_file = \"s.pem\"\n",
        )
        .unwrap();
        assert_eq!(v[0].kind, ForwarderKind::Webhook);
        assert_eq!(v[0].address, "https://siem/in");
        assert_eq!(v[0].headers, vec![("X-Api-Key".to_owned(), "k".to_owned())]);
        assert_eq!(v[0].ca_file, None);
        assert_eq!(v[1].kind, ForwarderKind::SplunkHec);
        assert_eq!(
            v[1].token_file.as_deref(),
            Some(Path::new("/etc/rampart/hec.token"))
        );
        assert_eq!(
            v[1].ca_file.as_deref(),
            Some(Path::new("/etc/rampart/s.pem"))
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        let cases = [
            (
                "name = \"a\"\nkind = \"syslog-udp\"\naddress = \"h:1\"",
                "unknown variant",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h\"",
                "host:port",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:0\"",
                "host:port",
            ),
            (
                "name = \"a b\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"",
                "name must",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tls\"\naddress = \"h:1\"",
                "needs ca_file",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"\nca_file = \"x\"",
                "ca_file",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"\nbatch_size = 0",
                "batch_size",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"\nretry_max = \"0s\"",
                "retry_max",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"\nbogus = 1",
                "unknown field",
            ),
        ];
        for (body, want) in cases {
            let err = parse(&format!("[[forwarders]]\n{body}\n")).unwrap_err();
            assert!(err.contains(want), "{body:?}: {err}");
        }
        let http_cases = [
            (
                "name = \"a\"\nkind = \"webhook\"\naddress = \"h:1\"",
                "use url",
            ),
            ("name = \"a\"\nkind = \"webhook\"", "needs url"),
            (
                "name = \"a\"\nkind = \"webhook\"\nurl = \"http://h/\"",
                "https",
            ),
            (
                "name = \"a\"\nkind = \"splunk-hec\"\nurl = \"https://h:8088\"",
                "needs token_file",
            ),
            (
                "name = \"a\"\nkind = \"webhook\"\nurl = \"https://h/\"\ntoken_file = \"t\"",
                "token_file is for",
            ),
            (
                "name = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"\nurl = \"https://h/\"",
                "url, headers",
            ),
            ("name = \"a\"\nkind = \"syslog-tcp\"", "needs address"),
        ];
        for (body, want) in http_cases {
            let err = parse(&format!("[[forwarders]]\n{body}\n")).unwrap_err();
            assert!(err.contains(want), "{body:?}: {err}");
        }
        let dup = "[[forwarders]]\nname = \"a\"\nkind = \"syslog-tcp\"\naddress = \"h:1\"\n";
        let err = parse(&format!("{dup}{dup}")).unwrap_err();
        assert!(err.contains("two forwarders"), "{err}");
    }
}
