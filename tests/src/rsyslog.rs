//! A real rsyslog (Debian's `rsyslogd`) receiving on 127.0.0.1 over TCP or TLS
//! (`imtcp`, gtls driver from `rsyslog-gnutls`) and writing every message to a
//! file, one line per message: `MSGID STRUCTURED-DATA`. Started in the foreground
//! with a private config (`rsyslogd -n -f CONF -i PIDFILE`), no local-socket
//! inputs; stopped with SIGTERM; killed on drop.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{kill9, terminate, START_TIMEOUT};
use crate::{free_port, require_peer};

/// TLS material written for rsyslog's gtls driver.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The test CA certificate (what the forwarder pins).
    pub ca: PathBuf,
    /// rsyslog's certificate, for `server_name`.
    pub cert: PathBuf,
    /// rsyslog's key.
    pub key: PathBuf,
    /// The name in the certificate.
    pub server_name: String,
}

impl TlsFiles {
    /// A fresh CA and a server certificate for `server_name`, written into `dir`.
    pub fn generate(dir: &Path, server_name: &str) -> TlsFiles {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rampart e2e syslog CA");
        let ca = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec![server_name.to_owned()])
            .expect("server params")
            .signed_by(&key, &ca, &ca_key)
            .expect("sign server cert");
        let files = TlsFiles {
            ca: dir.join("syslog-ca.pem"),
            cert: dir.join("syslog-cert.pem"),
            key: dir.join("syslog-key.pem"),
            server_name: server_name.to_owned(),
        };
        fs::write(&files.ca, ca.pem()).expect("write CA");
        fs::write(&files.cert, cert.pem()).expect("write cert");
        fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }
}

/// The MSGID of a forwarded checkpoint.
const CHECKPOINT_MSGID: &str = "RA-AUDIT-CHECKPOINT";

/// One message as rsyslog wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The MSGID (the event code).
    pub code: String,
    /// `seq` from the structured data.
    pub seq: u64,
    /// `id` (the ULID) from the structured data.
    pub id: String,
}

/// A running (or stopped) rsyslogd.
#[derive(Debug)]
pub struct Rsyslog {
    dir: PathBuf,
    conf: PathBuf,
    out: PathBuf,
    port: u16,
    child: Option<Child>,
    tls: Option<TlsFiles>,
}

impl Rsyslog {
    /// Write a config into `dir` (which must exist) and start rsyslogd on a free
    /// loopback port; with `tls`, the port speaks RFC 5425 (gtls, anonymous
    /// clients).
    pub fn start(dir: &Path, tls: Option<TlsFiles>) -> Rsyslog {
        let port = free_port();
        let work = dir.join("rsyslog-work");
        fs::create_dir_all(&work).expect("rsyslog work dir");
        let out = dir.join("rsyslog-out.log");
        let module = match &tls {
            None => "module(load=\"imtcp\")".to_owned(),
            Some(t) => format!(
                "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" \
                 DefaultNetstreamDriverKeyFile=\"{}\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
                 StreamDriver.AuthMode=\"anon\")",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ),
        };
        let conf = dir.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\" maxMessageSize=\"64k\")\n\
                 {module}\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"rampart\" type=\"string\" string=\"%msgid% %structured-data%\\n\")\n\
                 action(type=\"omfile\" file=\"{out}\" template=\"rampart\")\n",
                work = work.display(),
                out = out.display(),
            ),
        )
        .expect("write rsyslog.conf");
        let mut me = Rsyslog {
            dir: dir.to_owned(),
            conf,
            out,
            port,
            child: None,
            tls,
        };
        me.restart();
        me
    }

    /// Start rsyslogd again (same config, port and output file) after [`Rsyslog::stop`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "rsyslogd already running");
        let bin = require_peer("rsyslogd");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.stderr"))
            .expect("rsyslog stderr file");
        let pid = self.dir.join("rsyslogd.pid");
        let _ = fs::remove_file(&pid);
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn rsyslogd");
        self.child = Some(child);
        // Ready when the port accepts connections (a probe connection is harmless).
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("rsyslogd exited at start ({st})\n{}", self.stderr());
                }
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd not listening on {} within {} s\n{}",
                self.port,
                START_TIMEOUT.as_secs(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait (rsyslogd writes out what it has queued).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(15));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TLS files, if this receiver speaks TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The `[[audit.forwarders]]` table pointing a CA at this receiver.
    pub fn forwarder_toml(&self, name: &str, retry_max: &str) -> String {
        let mut s = format!(
            "[[audit.forwarders]]\nname = \"{name}\"\naddress = \"{}\"\nretry_max = \"{retry_max}\"\n",
            self.address()
        );
        match &self.tls {
            None => s.push_str("kind = \"syslog-tcp\"\n"),
            Some(t) => s.push_str(&format!(
                "kind = \"syslog-tls\"\nca_file = \"{}\"\nserver_name = \"{}\"\n",
                t.ca.display(),
                t.server_name
            )),
        }
        s
    }

    /// Every Rampart event message in the output file, in file order (checkpoint
    /// messages left out: see [`Rsyslog::checkpoints`]).
    pub fn received(&self) -> Vec<Received> {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("[rampart@") && !l.starts_with(CHECKPOINT_MSGID))
            .map(|l| Received {
                code: l.split(' ').next().unwrap_or_default().to_owned(),
                seq: sd_value(l, "seq")
                    .parse()
                    .unwrap_or_else(|_| panic!("no seq in {l}")),
                id: sd_value(l, "id"),
            })
            .collect()
    }

    /// `(seq, hash)` of every signed checkpoint message, in file order.
    pub fn checkpoints(&self) -> Vec<(u64, String)> {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(CHECKPOINT_MSGID))
            .map(|l| {
                (
                    sd_value(l, "seq")
                        .parse()
                        .unwrap_or_else(|_| panic!("no seq in {l}")),
                    sd_value(l, "hash"),
                )
            })
            .collect()
    }

    /// What rsyslogd printed on stderr.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslogd.stderr")).unwrap_or_default()
    }
}

fn sd_value(line: &str, key: &str) -> String {
    let pat = format!(" {key}=\"");
    line.find(&pat)
        .and_then(|i| {
            let rest = &line[i + pat.len()..];
            rest.find('"').map(|j| rest[..j].to_owned())
        })
        .unwrap_or_default()
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }
}
