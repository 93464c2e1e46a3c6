//! `pam_rampart.so` under the real `pamtester`, the way sudo would call it: a PAM
//! service in /etc/pam.d loading the built module, a real `ssh-agent` holding
//! certificates made by `ssh-keygen -s` with Rampart's MFA extensions, and a KRL
//! made by `ssh-keygen -k`. The agent runs as the test account, as a user's
//! forwarded agent runs as them; one case runs it as root, which is refused.
//!
//! Each refusal case asserts both that pamtester's authentication failed and that
//! the module wrote exactly one line naming the reason (through its `log_file=`
//! argument; the same line goes to syslog).
//!
//! The stale-KRL case ages a real `ssh-keygen -k` KRL by rewriting the
//! `generated_date` field of its header (PROTOCOL.krl: bytes 20..28, after the
//! magic, format version and krl_version) to two hours ago, with krl_max_age=1h:
//! the file is unsigned, so this is exactly what an old KRL looks like.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rampart_e2e::pam::{
    cert_blob, mfa_options, module_path, sign_with_options, FakeAgent, FakeAgentMode, PamService,
    SshAgent,
};
use rampart_e2e::{ensure_test_account, tempdir, CmdOutput, KeyPair, KeygenCa, TEST_ACCOUNT};

const FRESH: Duration = Duration::from_secs(60);

/// One test's CA, KRL, CA keys file and log file.
struct Fixture {
    dir: tempfile::TempDir,
    ca: KeygenCa,
    krl: PathBuf,
    ca_keys: PathBuf,
    log: PathBuf,
}

/// Module arguments that tests vary.
struct Opts {
    max_mfa_age: &'static str,
    min_factor: &'static str,
    krl_max_age: &'static str,
    extra: &'static str,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            max_mfa_age: "15m",
            min_factor: "otp",
            krl_max_age: "1h",
            extra: "",
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        ensure_test_account();
        module_path();
        let dir = tempdir("pam");
        let ca = KeygenCa::new(dir.path(), "user-ca");
        let ca_keys = dir.path().join("ca_keys");
        std::fs::write(
            &ca_keys,
            format!("# Rampart user CA\n{}\n", ca.public_line()),
        )
        .unwrap();
        let krl = dir.path().join("rampart.krl");
        ca.krl(&krl, &[]);
        let log = dir.path().join("pam.log");
        Fixture {
            dir,
            ca,
            krl,
            ca_keys,
            log,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn service(&self, o: &Opts) -> PamService {
        PamService::new(&format!(
            "ca_keys={} krl={} krl_max_age={} max_mfa_age={} min_factor={} log_file={} {}",
            self.ca_keys.display(),
            self.krl.display(),
            o.krl_max_age,
            o.max_mfa_age,
            o.min_factor,
            self.log.display(),
            o.extra
        ))
    }

    /// A fresh key with a certificate from `ca` for `principals`.
    fn cert(
        &self,
        ca: &KeygenCa,
        name: &str,
        principals: &[&str],
        validity: &str,
        serial: u64,
        opts: Vec<String>,
    ) -> (KeyPair, PathBuf) {
        let key = KeyPair::ed25519(self.path(), name);
        let cert = sign_with_options(ca, &key, name, principals, validity, serial, &opts);
        (key, cert)
    }

    /// The usual good certificate, loaded into a fresh agent.
    fn agent_with(
        &self,
        ca: &KeygenCa,
        principals: &[&str],
        validity: &str,
        serial: u64,
        opts: Vec<String>,
    ) -> SshAgent {
        let (key, _cert) = self.cert(
            ca,
            &format!("user{serial}"),
            principals,
            validity,
            serial,
            opts,
        );
        let agent = SshAgent::start();
        agent.add(&key);
        agent
    }

    /// Run pamtester for [`TEST_ACCOUNT`] and return (its output, the module's
    /// log lines).
    fn authenticate(&self, o: &Opts, agent: Option<&Path>) -> (CmdOutput, Vec<String>) {
        self.authenticate_as(TEST_ACCOUNT, o, agent)
    }

    /// Run pamtester for `user` and return (its output, the module's log lines).
    fn authenticate_as(
        &self,
        user: &str,
        o: &Opts,
        agent: Option<&Path>,
    ) -> (CmdOutput, Vec<String>) {
        let svc = self.service(o);
        let _ = std::fs::remove_file(&self.log);
        let out = svc.authenticate(user, agent);
        let lines = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        (out, lines)
    }

    /// Assert pamtester failed for [`TEST_ACCOUNT`] and the module logged exactly
    /// one refusal that contains `reason`.
    fn assert_refused(&self, o: &Opts, agent: Option<&Path>, reason: &str) -> String {
        self.assert_refused_as(TEST_ACCOUNT, o, agent, reason)
    }

    /// [`Fixture::assert_refused`] for the PAM user `user`.
    fn assert_refused_as(
        &self,
        user: &str,
        o: &Opts,
        agent: Option<&Path>,
        reason: &str,
    ) -> String {
        let (out, lines) = self.authenticate_as(user, o, agent);
        out.assert_failure("pamtester authenticate");
        assert!(
            out.combined().contains("Authentication failure"),
            "pamtester should report PAM_AUTH_ERR\n{out}"
        );
        assert_eq!(
            lines.len(),
            1,
            "exactly one log line, got {lines:#?}\n{out}"
        );
        let line = &lines[0];
        assert!(line.starts_with("pam_rampart(rampart-e2e-"), "{line}");
        assert!(line.contains(&format!("): refused {user}: ")), "{line}");
        assert!(line.contains(reason), "log line {line:?} lacks {reason:?}");
        line.clone()
    }
}

fn user() -> [&'static str; 1] {
    [TEST_ACCOUNT]
}

#[test]
fn accepts_a_valid_certificate_with_fresh_mfa() {
    let f = Fixture::new();
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 100, mfa_options("totp", FRESH));
    let (out, lines) = f.authenticate(&Opts::default(), Some(agent.socket()));
    out.assert_success("pamtester authenticate");
    assert!(
        out.combined().contains("successfully authenticated"),
        "{out}"
    );
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&format!("accepted {TEST_ACCOUNT}: certificate serial 100")),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("MFA totp"), "{}", lines[0]);
    assert!(lines[0].contains("agent proved possession"), "{}", lines[0]);
}

#[test]
fn refuses_without_an_agent() {
    let f = Fixture::new();
    f.assert_refused(
        &Opts::default(),
        None,
        "no SSH agent: SSH_AUTH_SOCK is not set",
    );
}

#[test]
fn refuses_an_agent_without_certificates() {
    let f = Fixture::new();
    let key = KeyPair::ed25519(f.path(), "plain");
    let agent = SshAgent::start();
    agent.add(&key);
    f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        "no certificate from the Rampart user CA in the agent (1 identities, 0 certificates from other CAs)",
    );
}

#[test]
fn refuses_a_certificate_from_another_ca() {
    let f = Fixture::new();
    let other = KeygenCa::new(f.path(), "other-ca");
    let agent = f.agent_with(&other, &user(), "-5m:+1h", 7, mfa_options("totp", FRESH));
    f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        "no certificate from the Rampart user CA in the agent (2 identities, 1 certificates from other CAs)",
    );
}

#[test]
fn refuses_an_expired_certificate() {
    let f = Fixture::new();
    let agent = f.agent_with(&f.ca, &user(), "-2h:-1h", 8, mfa_options("totp", FRESH));
    f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        "certificate serial 8 (key ID \"user8\"): expired at",
    );
}

#[test]
fn refuses_a_revoked_certificate() {
    let f = Fixture::new();
    f.ca.krl(&f.krl, &[42]);
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 42, mfa_options("totp", FRESH));
    let line = f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        "certificate serial 42",
    );
    assert!(line.contains("is revoked: serial 42 is in"), "{line}");
    assert!(
        line.contains(&format!("(KRL {})", f.krl.display())),
        "{line}"
    );
}

#[test]
fn refuses_when_the_krl_is_stale() {
    let f = Fixture::new();
    // Age the real KRL: generated_date (PROTOCOL.krl header bytes 20..28) = 2 h ago.
    let mut bytes = std::fs::read(&f.krl).unwrap();
    assert_eq!(&bytes[..8], b"SSHKRL\n\0");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    bytes[20..28].copy_from_slice(&(now - 7200).to_be_bytes());
    std::fs::write(&f.krl, &bytes).unwrap();
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 9, mfa_options("totp", FRESH));
    let line = f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        // The age is measured when pamtester runs, a second or so after the
        // header was written, so it may read "2h" or "2h1s".
        &format!("KRL {} is stale: generated 2h", f.krl.display()),
    );
    assert!(line.contains("ago, krl_max_age is 1h"), "{line}");
    // The same KRL with a larger allowance is accepted: the age was the only problem.
    let o = Opts {
        krl_max_age: "3h",
        ..Opts::default()
    };
    let (out, _) = f.authenticate(&o, Some(agent.socket()));
    out.assert_success("pamtester with krl_max_age=3h");
}

#[test]
fn refuses_stale_mfa() {
    let f = Fixture::new();
    let agent = f.agent_with(
        &f.ca,
        &user(),
        "-5m:+1h",
        10,
        mfa_options("totp", Duration::from_secs(3600)),
    );
    f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        "MFA is stale: totp at",
    );
}

#[test]
fn refuses_too_weak_a_factor() {
    let f = Fixture::new();
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 11, mfa_options("totp", FRESH));
    let o = Opts {
        min_factor: "phishing-resistant",
        ..Opts::default()
    };
    f.assert_refused(
        &o,
        Some(agent.socket()),
        "MFA factor totp is otp, weaker than min_factor phishing-resistant",
    );
}

/// `min_factor=hardware-bound` accepts a certificate the CA marked
/// `mfa-key@rampart=piv-attested` (what it writes after verifying a YubiKey PIV
/// attestation) and refuses the same login with an unmarked key.
#[test]
fn hardware_bound_accepts_a_piv_attested_certificate() {
    let f = Fixture::new();
    let o = Opts {
        min_factor: "hardware-bound",
        ..Opts::default()
    };
    let mut attested = mfa_options("totp", FRESH);
    attested.push("extension:mfa-key@rampart=piv-attested".to_owned());
    attested.push("extension:mfa-piv-serial@rampart=12345678".to_owned());
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 12, attested);
    let (out, lines) = f.authenticate(&o, Some(agent.socket()));
    out.assert_success("pamtester authenticate with an attested key");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(&format!("accepted {TEST_ACCOUNT}: certificate serial 12")),
        "{}",
        lines[0]
    );

    let plain = f.agent_with(&f.ca, &user(), "-5m:+1h", 13, mfa_options("totp", FRESH));
    f.assert_refused(
        &o,
        Some(plain.socket()),
        "MFA factor totp is otp, weaker than min_factor hardware-bound",
    );
}

#[test]
fn refuses_a_principal_that_is_not_the_pam_user() {
    let f = Fixture::new();
    let agent = f.agent_with(
        &f.ca,
        &["root", "someone-else"],
        "-5m:+1h",
        12,
        mfa_options("totp", FRESH),
    );
    f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        &format!("principals [\"root\", \"someone-else\"] do not include \"{TEST_ACCOUNT}\""),
    );
}

// The fake agents are served by the test process, which runs as root, so these
// cases authenticate root: the one PAM user whose agent a root agent may be.

#[test]
fn refuses_an_agent_served_by_root_for_another_user() {
    // A good certificate for the user, but in an agent that root runs (root's
    // own, or another admin's forwarded agent in a root shell): the module,
    // running as root, could connect to it, but it is not the user's agent.
    let f = Fixture::new();
    let (key, _cert) = f.cert(
        &f.ca,
        "in-roots-agent",
        &user(),
        "-5m:+1h",
        17,
        mfa_options("totp", FRESH),
    );
    let agent = SshAgent::start_as_root();
    agent.add(&key);
    let line = f.assert_refused(
        &Opts::default(),
        Some(agent.socket()),
        "is served by root (uid 0), not by the user",
    );
    assert!(
        line.contains(&agent.socket().display().to_string()),
        "the refusal names the socket: {line}"
    );
}

#[test]
fn refuses_an_agent_that_holds_the_certificate_but_cannot_sign() {
    let f = Fixture::new();
    let (_key, cert) = f.cert(
        &f.ca,
        "stolen",
        &["root"],
        "-5m:+1h",
        13,
        mfa_options("totp", FRESH),
    );
    let agent = FakeAgent::start(cert_blob(&cert), FakeAgentMode::CannotSign);
    f.assert_refused_as(
        "root",
        &Opts::default(),
        Some(agent.socket()),
        "certificate serial 13 (key ID \"stolen\"): the agent could not prove possession of the key: the agent refused",
    );
}

#[test]
fn a_hung_agent_does_not_hang_authentication() {
    let f = Fixture::new();
    let (_key, cert) = f.cert(
        &f.ca,
        "hung",
        &["root"],
        "-5m:+1h",
        14,
        mfa_options("totp", FRESH),
    );
    let agent = FakeAgent::start(cert_blob(&cert), FakeAgentMode::Silent);
    let o = Opts {
        extra: "agent_timeout=500ms",
        ..Opts::default()
    };
    let started = Instant::now();
    f.assert_refused_as(
        "root",
        &o,
        Some(agent.socket()),
        "the agent did not answer within 500 ms",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn refuses_on_a_configuration_error() {
    let f = Fixture::new();
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 15, mfa_options("totp", FRESH));
    let o = Opts {
        extra: "no_such_option=1",
        ..Opts::default()
    };
    f.assert_refused(
        &o,
        Some(agent.socket()),
        "configuration error: unknown argument \"no_such_option\"",
    );
}

#[test]
fn writes_one_authpriv_syslog_line_per_decision() {
    use rampart_e2e::pam::SyslogCapture;
    let f = Fixture::new();
    let svc = f.service(&Opts::default());
    // LOG_AUTHPRIV (10 << 3) | LOG_NOTICE (5) = 85 for a refusal.
    let capture = SyslogCapture::new();
    let out = svc.authenticate_capturing_syslog(TEST_ACCOUNT, None, &capture);
    out.assert_failure("pamtester without an agent");
    let msgs = capture.messages();
    let ours: Vec<&String> = msgs.iter().filter(|m| m.contains("pam_rampart")).collect();
    assert_eq!(
        ours.len(),
        1,
        "one syslog line per decision: {msgs:#?}\n{out}"
    );
    assert!(ours[0].starts_with("<85>"), "authpriv.notice: {}", ours[0]);
    assert!(
        ours[0].contains(&format!("refused {TEST_ACCOUNT}: no SSH agent")),
        "{}",
        ours[0]
    );

    // LOG_AUTHPRIV | LOG_INFO (6) = 86 for a grant.
    let agent = f.agent_with(&f.ca, &user(), "-5m:+1h", 16, mfa_options("totp", FRESH));
    let capture = SyslogCapture::new();
    let out = svc.authenticate_capturing_syslog(TEST_ACCOUNT, Some(agent.socket()), &capture);
    out.assert_success("pamtester with a good certificate");
    let msgs = capture.messages();
    let ours: Vec<&String> = msgs.iter().filter(|m| m.contains("pam_rampart")).collect();
    assert_eq!(ours.len(), 1, "{msgs:#?}");
    assert!(ours[0].starts_with("<86>"), "authpriv.info: {}", ours[0]);
    assert!(
        ours[0].contains(&format!("accepted {TEST_ACCOUNT}: certificate serial 16")),
        "{}",
        ours[0]
    );
}
