//! `pam_rampart.so` under the real `pamtester`: a PAM service file in /etc/pam.d
//! that loads the built module by absolute path (removed on drop), a real
//! `ssh-agent` in its own socket directory (run as the test account, like a
//! user's forwarded agent, or as root), certificates with Rampart's MFA
//! extensions made by `ssh-keygen -s -O extension:…`, and a deliberately broken
//! agent (lists a certificate, refuses or ignores every request) for the
//! adversary cases.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::keys::{KeyPair, KeygenCa};
use crate::process::{kill9, run, run_timeout, CmdOutput, START_TIMEOUT};
use crate::{ensure_test_account, require_peer, target_dir, tempdir, TEST_ACCOUNT};

/// The built module, `target/debug/libpam_rampart.so`. Panics when missing.
pub fn module_path() -> PathBuf {
    let p = target_dir().join("debug").join("libpam_rampart.so");
    assert!(
        p.is_file(),
        "{} not found: run `cargo build -p rampart-pam` (or --workspace) first",
        p.display()
    );
    p
}

/// A PAM service file `/etc/pam.d/rampart-e2e-<random>`, removed on drop.
#[derive(Debug)]
pub struct PamService {
    name: String,
    path: PathBuf,
}

impl PamService {
    /// Write a service whose `auth` line loads the built module with `args`;
    /// `account` is `pam_permit.so` so that only the module decides.
    pub fn new(args: &str) -> PamService {
        let mut rnd = [0u8; 6];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut rnd))
            .expect("read /dev/urandom");
        let name = format!(
            "rampart-e2e-{}",
            rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let path = Path::new("/etc/pam.d").join(&name);
        let text = format!(
            "# written by the rampart e2e tests; removed when the test ends\n\
             auth required {} {args}\n\
             account required pam_permit.so\n",
            module_path().display()
        );
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("write {} (tests run as root): {e}", path.display()));
        PamService { name, path }
    }

    /// The service name to give pamtester.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `pamtester -v SERVICE USER authenticate`, with `SSH_AUTH_SOCK` set to
    /// `agent` or removed from the environment.
    pub fn authenticate(&self, user: &str, agent: Option<&Path>) -> CmdOutput {
        let mut c = Command::new(require_peer("pamtester"));
        c.args(["-v", &self.name, user, "authenticate"]);
        match agent {
            Some(sock) => c.env("SSH_AUTH_SOCK", sock),
            None => c.env_remove("SSH_AUTH_SOCK"),
        };
        run_timeout(c, None, Duration::from_secs(30))
    }

    /// Like [`PamService::authenticate`], but pamtester runs in a private mount
    /// namespace (`unshare -m`) whose /dev is `capture`'s directory: /dev/log
    /// there is the capture's datagram socket, so the module's syslog(3) lines
    /// land in the test and no system logger is touched. /dev/null, zero,
    /// random and urandom are bind-mounted in from the real /dev.
    pub fn authenticate_capturing_syslog(
        &self,
        user: &str,
        agent: Option<&Path>,
        capture: &SyslogCapture,
    ) -> CmdOutput {
        let dev = capture.dir.path();
        let mut script = String::from("set -e; mount --make-rprivate /; ");
        for n in ["null", "zero", "random", "urandom"] {
            script.push_str(&format!(
                ": > {d}/{n}; mount --bind /dev/{n} {d}/{n}; ",
                d = dev.display()
            ));
        }
        script.push_str(&format!(
            "mount --bind {} /dev; exec \"$0\" \"$@\"",
            dev.display()
        ));
        let mut c = Command::new(require_peer("unshare"));
        c.args(["-m", "sh", "-c", &script])
            .arg(require_peer("pamtester"))
            .args(["-v", &self.name, user, "authenticate"]);
        match agent {
            Some(sock) => c.env("SSH_AUTH_SOCK", sock),
            None => c.env_remove("SSH_AUTH_SOCK"),
        };
        run_timeout(c, None, Duration::from_secs(30))
    }
}

/// A datagram socket standing in for /dev/log (see
/// [`PamService::authenticate_capturing_syslog`]).
#[derive(Debug)]
pub struct SyslogCapture {
    dir: tempfile::TempDir,
    socket: std::os::unix::net::UnixDatagram,
}

impl SyslogCapture {
    /// Bind `<tempdir>/log`.
    pub fn new() -> SyslogCapture {
        let dir = tempdir("devlog");
        let socket = std::os::unix::net::UnixDatagram::bind(dir.path().join("log"))
            .expect("bind the /dev/log stand-in");
        socket.set_nonblocking(true).expect("nonblocking");
        SyslogCapture { dir, socket }
    }

    /// Every datagram received so far, e.g. `<85>Nov 28 01:03:00 pamtester: …`.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = self.socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }
}

impl Default for SyslogCapture {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A real `ssh-agent -D -a SOCKET`, killed on drop.
#[derive(Debug)]
pub struct SshAgent {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
}

impl SshAgent {
    /// Start an agent running as [`TEST_ACCOUNT`], the way a user's forwarded
    /// agent is served by their own sshd session process, on a socket in a fresh
    /// directory that account owns, and wait for it. (ssh-agent lets root's
    /// `ssh-add` and the module, which runs as root, in.)
    pub fn start() -> SshAgent {
        ensure_test_account();
        let (uid, gid) = account_ids(TEST_ACCOUNT);
        SshAgent::spawn(Some((uid, gid)))
    }

    /// Start an agent running as root (the test process's user): an agent that
    /// is not the PAM user's.
    pub fn start_as_root() -> SshAgent {
        SshAgent::spawn(None)
    }

    fn spawn(owner: Option<(u32, u32)>) -> SshAgent {
        let dir = tempdir("agent");
        let socket = dir.path().join("agent.sock");
        let mut c = Command::new(require_peer("ssh-agent"));
        c.arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the agent directory to the test account");
            c.uid(uid).gid(gid);
        }
        let child = c.spawn().expect("spawn ssh-agent");
        let deadline = Instant::now() + START_TIMEOUT;
        while UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create its socket"
            );
            thread::sleep(Duration::from_millis(20));
        }
        SshAgent {
            _dir: dir,
            socket,
            child,
        }
    }

    /// The socket path (`SSH_AUTH_SOCK`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `ssh-add KEY`: adds the key, and its certificate when `KEY-cert.pub` exists.
    pub fn add(&self, key: &KeyPair) {
        let mut c = Command::new(require_peer("ssh-add"));
        c.env("SSH_AUTH_SOCK", &self.socket).arg(&key.private);
        run(c).assert_success("ssh-add");
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        kill9(&mut self.child);
    }
}

/// The uid and gid of a local account, from /etc/passwd. Panics when missing.
pub fn account_ids(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .unwrap_or_else(|| panic!("no account {name:?} in /etc/passwd"))
}

/// Sign `key`'s public key as a user certificate with extra `-O` options
/// (`extension:mfa-time@rampart=…`, `source-address=…`), writing it to
/// `<key>-cert.pub` where `ssh-add` looks for it.
pub fn sign_with_options(
    ca: &KeygenCa,
    key: &KeyPair,
    key_id: &str,
    principals: &[&str],
    validity: &str,
    serial: u64,
    options: &[String],
) -> PathBuf {
    let mut c = Command::new(require_peer("ssh-keygen"));
    c.arg("-q")
        .arg("-s")
        .arg(&ca.key.private)
        .args(["-I", key_id, "-n", &principals.join(",")])
        .args(["-V", validity, "-z", &serial.to_string()]);
    for o in options {
        c.args(["-O", o]);
    }
    c.arg(&key.public);
    run(c).assert_success("ssh-keygen -s -O");
    let cert = PathBuf::from(format!("{}-cert.pub", key.private.display()));
    assert!(cert.is_file(), "ssh-keygen -s wrote no {}", cert.display());
    cert
}

/// `-O` options carrying Rampart's MFA extensions, MFA `age` ago.
pub fn mfa_options(method: &str, age: Duration) -> Vec<String> {
    let at =
        chrono::Utc::now() - chrono::Duration::from_std(age).expect("a representable duration");
    vec![
        format!(
            "extension:mfa-time@rampart={}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        format!("extension:mfa-method@rampart={method}"),
    ]
}

/// How the [`FakeAgent`] answers sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeAgentMode {
    /// List the certificate; answer SSH_AGENT_FAILURE (5) to every sign request:
    /// an agent that holds a stolen certificate but not its key.
    CannotSign,
    /// Accept connections and never answer: a hung agent.
    Silent,
}

/// A tiny agent served from a thread of the test process (draft-miller-ssh-agent).
/// The test process runs as root, so the module accepts this agent only for the
/// PAM user root.
#[derive(Debug)]
pub struct FakeAgent {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeAgent {
    /// Serve `cert_blob` (the certificate's wire encoding) in `mode`.
    pub fn start(cert_blob: Vec<u8>, mode: FakeAgentMode) -> FakeAgent {
        let dir = tempdir("fake-agent");
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).expect("bind fake agent");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        if mode == FakeAgentMode::Silent {
                            held.push(s); // keep it open, say nothing
                            continue;
                        }
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        serve(s, &cert_blob);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeAgent {
            _dir: dir,
            socket,
            stop,
            thread: Some(thread),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut s: UnixStream, cert_blob: &[u8]) {
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
        if msg.is_empty() || s.read_exact(&mut msg).is_err() {
            return;
        }
        let reply: Vec<u8> = match msg[0] {
            // SSH_AGENTC_REQUEST_IDENTITIES → SSH_AGENT_IDENTITIES_ANSWER
            11 => {
                let mut r = vec![12];
                r.extend(1u32.to_be_bytes());
                r.extend((cert_blob.len() as u32).to_be_bytes());
                r.extend(cert_blob);
                r.extend(4u32.to_be_bytes());
                r.extend(b"fake");
                r
            }
            // Everything else, sign requests included: SSH_AGENT_FAILURE.
            _ => vec![5],
        };
        let mut out = (reply.len() as u32).to_be_bytes().to_vec();
        out.extend(reply);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// The wire blob of an OpenSSH certificate file (`type base64 comment`).
pub fn cert_blob(cert: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(cert).expect("read certificate");
    let b64 = text.split_whitespace().nth(1).expect("base64 field");
    base64_decode(b64)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("bad base64 character {c}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
