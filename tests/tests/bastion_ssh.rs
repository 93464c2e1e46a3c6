//! `rampart-bastion` between stock OpenSSH on both sides (docs/architecture.md,
//! flow 4): a real `rampart-ca`, a user holding a certificate from `rampart
//! login`, a real `sshd` target that trusts only the user CA, and a bastion
//! joined with a token. The client has ONLY the `@cert-authority` line in
//! known_hosts and checks host keys strictly.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rampart_e2e::bastion::{
    host_ca_target, interactive_ssh_config, scratch, set_limit, ssh, ssh_spawn, Bastion, TargetSpec,
};
use rampart_e2e::eventually;
use rampart_e2e::{
    bootstrap_admin, onboard, AuditDb, Ca, Enrolled, KeyPair, KeygenCa, Sshd, TEST_ACCOUNT,
};
use serde_json::Value;

const BASTION: &str = "bastion-1";
const T: Duration = Duration::from_secs(60);

fn policy(admin: &str) -> String {
    format!(
        r#"version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
logins = ["{{user}}", "{TEST_ACCOUNT}"]
min_factor = "otp"
extensions = ["permit-pty"]
targets = {{ allow = ["db-*", "web-1"], deny = ["db-secret", "db-bulk"] }}

[roles.guarded]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
session_mfa = true
targets = {{ allow = ["db-mfa"] }}

[roles.agent]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
agent_forwarding = true
extensions = ["permit-pty", "permit-agent-forwarding"]
targets = {{ allow = ["db-agent"] }}

[roles.fwd]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
port_forwarding = true
extensions = ["permit-port-forwarding"]
targets = {{ allow = ["db-fwd"] }}

# Usable only from 127.0.0.2: the user certificate carries `source-address`.
[roles.fenced]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
source_address = ["127.0.0.2/32"]
targets = {{ allow = ["db-1"] }}

# Only through the bastion: its principal never goes into the user's own
# certificate.
[roles.dba]
principals = ["{TEST_ACCOUNT}"]
access = "bastion"
min_factor = "otp"
targets = {{ allow = ["db-1"] }}

# Bulk transfers: the first MiB of each direction of an exec or subsystem
# channel is stored, the rest counted and hashed.
[roles.bulk]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
record = "metered"
record_metered_mib = 1
targets = {{ allow = ["db-bulk"] }}

[groups]
engineers = ["dev", "guarded", "agent", "fwd", "bulk"]
fenced = ["fenced"]
dbas = ["dba"]

[users]
"{admin}" = ["dev"]

[bastions."{BASTION}"]
targets = ["db-*"]
"#
    )
}

/// Everything a bastion test needs.
struct World {
    ca: Ca,
    admin: Enrolled,
    alice: Enrolled,
    sshd: Sshd,
    bastion: Bastion,
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A target sshd whose host key is certified by Rampart's host CA for 127.0.0.1.
fn target_sshd(ca: &Ca, admin: &Enrolled) -> Sshd {
    host_ca_target(ca, admin, vec!["Subsystem sftp internal-sftp".into()])
}

fn world() -> World {
    let mut ca = Ca::init_with(None, "");
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();
    let sshd = target_sshd(&ca, &admin);
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        BASTION,
        &[
            TargetSpec::host_ca("db-1", sshd.port()),
            TargetSpec::host_ca("db-agent", sshd.port()),
            TargetSpec::host_ca("db-mfa", sshd.port()),
            TargetSpec::host_ca("db-secret", sshd.port()),
            TargetSpec::host_ca("db-fwd", sshd.port()),
            TargetSpec::host_ca("db-bulk", sshd.port()),
            // In the bastion's config and allowed by a role, but not
            // registered for the bastion in the CA's policy.
            TargetSpec::host_ca("web-1", sshd.port()),
        ],
    );
    bastion.check().assert_success("rampart-bastion check");
    bastion.start();
    let dir = scratch("bastion-ssh");
    let config = bastion.ssh_config(
        &alice,
        dir.path(),
        &[
            "db-1",
            "db-9",
            "db-secret",
            "db-mfa",
            "db-agent",
            "db-fwd",
            "db-bulk",
            "web-1",
        ],
    );
    World {
        ca,
        admin,
        alice,
        sshd,
        bastion,
        dir,
        config,
    }
}

fn bodies(ca: &Ca, kind: &str) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db()).bodies(kind)
}

fn jump(w: &World, cmd: &str) -> rampart_e2e::CmdOutput {
    ssh(&w.config, &[&format!("{TEST_ACCOUNT}@db-1"), cmd], None, T)
}

#[test]
fn proxyjump_and_direct_form_reach_the_target_with_a_per_session_certificate() {
    let w = world();
    let mark = w.sshd.log_len();
    let out = jump(&w, "true");
    out.assert_success(&format!("ssh -J … true\n{}", w.bastion.log()));
    let log = w.sshd.log_since(mark);
    assert!(
        log.contains("session=") && log.contains("user=alice"),
        "sshd logs the per-session key ID:\n{log}"
    );

    // Exit status propagates.
    let out = jump(&w, "exit 7");
    assert_eq!(out.status.code(), Some(7), "{out}");
    // stdout and stderr both come back, separately.
    let out = jump(&w, "echo out; echo err >&2");
    assert_eq!(out.stdout.trim(), "out", "{out}");
    assert!(out.stderr.contains("err"), "{out}");

    // The direct form: `ssh -p PORT login+target@bastion`.
    let out = ssh(
        &w.config,
        &[
            "-p",
            &w.bastion.port().to_string(),
            &format!("{TEST_ACCOUNT}+db-1@{}", BASTION),
            "echo direct",
        ],
        None,
        T,
    );
    out.assert_success("login+target form");
    assert_eq!(out.stdout.trim(), "direct");
}

#[test]
fn unknown_target_and_bad_certificates_are_refused_with_a_reason() {
    let w = world();
    // Unknown target over ProxyJump: the channel open is refused with the reason.
    let out = ssh(
        &w.config,
        &[&format!("{TEST_ACCOUNT}@db-9"), "true"],
        None,
        T,
    );
    out.assert_failure("unknown target");
    assert!(
        out.stderr.contains("unknown target") && out.stderr.contains("db-9"),
        "the user sees why:\n{out}"
    );
    // Unknown target in the direct form: the reason on stderr.
    let out = ssh(
        &w.config,
        &[
            "-p",
            &w.bastion.port().to_string(),
            &format!("{TEST_ACCOUNT}+db-9@{}", BASTION),
            "true",
        ],
        None,
        T,
    );
    out.assert_failure("unknown target (direct)");
    assert!(out.stderr.contains("unknown target"), "{out}");

    // A target the bastion knows and a role allows, but the CA's policy does
    // not register for this bastion: no certificate for it, and the user and
    // the audit log say why.
    let out = ssh(
        &w.config,
        &[&format!("{TEST_ACCOUNT}@web-1"), "true"],
        None,
        T,
    );
    out.assert_failure("unregistered target");
    assert!(
        out.stderr.contains("not registered for the bastion"),
        "the user sees why:\n{out}"
    );
    assert!(
        bodies(&w.ca, "cert_denied")
            .iter()
            .chain(bodies(&w.ca, "access_denied").iter())
            .any(|b| b["target"] == "web-1" && b["details"]["code"] == "target_not_registered"),
        "the refusal is audited"
    );

    // A plain key (no certificate) and a certificate from a foreign CA.
    let d = w.dir.path();
    let plain = KeyPair::ed25519(d, "plain");
    let foreign_ca = KeygenCa::new(d, "foreign_ca");
    let foreign_key = KeyPair::ed25519(d, "foreign");
    let foreign_cert = foreign_ca.sign_user(
        &foreign_key,
        "user=alice serial=1",
        &[TEST_ACCOUNT],
        "-5m:+1h",
        1,
    );
    // With BatchMode (a script) the user reads "Permission denied"; at a
    // terminal, keyboard-interactive carries the bastion's reason.
    let interactive = interactive_ssh_config(&w.config, "explained");
    for (name, id, cert, reason) in [
        (
            "plain key",
            &plain.private,
            None,
            "Refused: no valid certificate was offered",
        ),
        (
            "foreign CA",
            &foreign_key.private,
            Some(foreign_cert.as_path()),
            "Your certificate was refused: certificate not issued by the Rampart user CA.",
        ),
    ] {
        let cfg = swap_identity(&w.config, d, name, id, cert);
        let out = ssh(&cfg, &[&format!("{TEST_ACCOUNT}@db-1"), "true"], None, T);
        out.assert_failure(name);
        assert!(out.stderr.contains("Permission denied"), "{name}: {out}");
        let cfg = swap_identity(&interactive, d, &format!("{name} explained"), id, cert);
        let out = ssh(&cfg, &[&format!("{TEST_ACCOUNT}@db-1"), "true"], None, T);
        out.assert_failure(name);
        assert!(
            out.stderr.contains(reason) && out.stderr.contains("Permission denied"),
            "{name}: the reason reaches the user once:\n{out}"
        );
        assert_eq!(out.stderr.matches(reason).count(), 1, "{name}: {out}");
    }
    eventually("connection_refused events", || {
        let refused = bodies(&w.ca, "bastion_connection_refused");
        let text = serde_json::to_string(&refused).unwrap();
        text.contains("db-9")
            && text.contains("plain public key")
            && text.contains("not issued by")
            && text.contains("no valid certificate was offered")
    });
}

/// How many `bastion_connection_refused` events say no valid certificate was offered.
fn refused_for_no_certificate(ca: &Ca) -> usize {
    bodies(ca, "bastion_connection_refused")
        .iter()
        .filter(|b| b.to_string().contains("no valid certificate was offered"))
        .count()
}

/// A copy of `config` that uses another identity (and certificate, if any).
fn swap_identity(config: &Path, dir: &Path, tag: &str, id: &Path, cert: Option<&Path>) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let mut out = String::new();
    for l in text.lines() {
        let t = l.trim_start();
        if t.starts_with("IdentityFile ") {
            out.push_str(&format!("  IdentityFile {}\n", id.display()));
        } else if t.starts_with("CertificateFile ") {
            if let Some(c) = cert {
                out.push_str(&format!("  CertificateFile {}\n", c.display()));
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    let p = dir.join(format!("ssh_config-{}", tag.replace(' ', "_")));
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn revoking_the_user_ends_a_live_session_within_5_seconds() {
    let w = world();
    let (mut child, _out, err) = ssh_spawn(
        &w.config,
        &[&format!("{TEST_ACCOUNT}@db-1"), "sleep 120"],
        w.dir.path(),
        "live",
    );
    // Wait until the session is up on the target.
    eventually("the session reaches the target", || {
        w.sshd.log().contains("user=alice")
    });
    std::thread::sleep(Duration::from_millis(500));
    w.admin
        .cli
        .admin(&["revoke", "--user", "alice"])
        .assert_success("rampart admin revoke --user alice");
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the session still runs 15 s after the revocation"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t0.elapsed();
    assert!(!status.success());
    assert!(
        took < Duration::from_secs(5),
        "session ended after {took:?}"
    );
    let stderr = std::fs::read_to_string(err).unwrap();
    assert!(
        stderr.contains("revoked") || stderr.contains("disabled"),
        "{stderr}"
    );
    // New connections are refused.
    jump(&w, "true").assert_failure("after revocation");
    let _ = &w.alice;
}

/// The sealed recording of `session` as text (`zstd -dc` of the CA's copy).
fn sealed_recording(ca: &Ca, session: &str) -> String {
    let path = ca
        .audit_db()
        .parent()
        .unwrap()
        .join("recordings")
        .join(format!("{session}.cast.zst"));
    let out = std::process::Command::new(rampart_e2e::require_peer("zstd"))
        .arg("-dc")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zstd -dc {}: {:?}",
        path.display(),
        out
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Session IDs the bastion has live markers for.
fn live_sessions(b: &Bastion) -> Vec<String> {
    std::fs::read_dir(b.etc().join("recordings"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".live").map(str::to_owned)
        })
        .collect()
}

#[test]
fn a_pty_session_is_recorded_as_asciicast_and_sealed() {
    let w = world();
    let out = ssh(
        &w.config,
        &["-tt", &format!("{TEST_ACCOUNT}@db-1")],
        Some(b"echo recorded-$((6*7))\nexit 0\n"),
        T,
    );
    out.assert_success("ssh -tt shell");
    let started = bodies(&w.ca, "bastion_session_started");
    let session = started
        .last()
        .and_then(|b| {
            b["session"]
                .as_str()
                .or(b["details"]["session_id"].as_str())
        })
        .map(str::to_owned);
    eventually("recording_sealed", || {
        !bodies(&w.ca, "recording_sealed").is_empty()
    });
    let sealed = bodies(&w.ca, "recording_sealed");
    let text = serde_json::to_string(&sealed).unwrap();
    let session = session
        .or_else(|| {
            // Take the session ID from the sealed event, whatever field holds it.
            text.split('"')
                .find(|s| s.len() == 26 && s.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(str::to_owned)
        })
        .expect("a session ID");
    let cast = sealed_recording(&w.ca, &session);
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{cast}");
    assert_eq!(header["rampart"]["user"], "alice", "{cast}");
    assert_eq!(header["rampart"]["target"], "db-1", "{cast}");
    assert!(
        cast.contains("recorded-42"),
        "the output is in the recording:\n{cast}"
    );
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v.is_array(), "{l}");
    }
    // The session's end is audited, with byte counts.
    eventually("bastion_session_ended", || {
        bodies(&w.ca, "bastion_session_ended")
            .iter()
            .any(|b| serde_json::to_string(b).unwrap().contains("bytes_down"))
    });
}

#[test]
fn kill9_mid_session_then_restart_marks_the_session_ended_abnormally() {
    let mut w = world();
    let (mut child, _out, _err) = ssh_spawn(
        &w.config,
        &[
            "-tt",
            &format!("{TEST_ACCOUNT}@db-1"),
            "echo before-the-crash; sleep 120",
        ],
        w.dir.path(),
        "crash",
    );
    let mut session = String::new();
    eventually("the session is live and its output on disk", || {
        let live = live_sessions(&w.bastion);
        let Some(s) = live.first() else { return false };
        session = s.clone();
        let cast = w.bastion.etc().join("recordings").join(format!("{s}.cast"));
        std::fs::read_to_string(cast).is_ok_and(|t| t.contains("before-the-crash"))
    });
    w.bastion.kill9();
    let _ = child.wait();
    w.bastion.start();
    eventually("session_ended with bastion_restarted", || {
        bodies(&w.ca, "bastion_session_ended").iter().any(|b| {
            let t = serde_json::to_string(b).unwrap();
            t.contains(&session) && t.contains("bastion_restarted")
        })
    });
    eventually("the crashed session's recording is sealed", || {
        serde_json::to_string(&bodies(&w.ca, "recording_sealed"))
            .unwrap()
            .contains(&session)
    });
    let cast = sealed_recording(&w.ca, &session);
    assert!(cast.contains("before-the-crash"), "{cast}");
    assert!(live_sessions(&w.bastion).is_empty(), "markers are cleared");
}

fn sha256_of(p: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn scp_and_sftp_move_50_mb_both_ways_and_every_file_operation_is_audited() {
    let w = world();
    let d = w.dir.path();
    let local = d.join("payload.bin");
    let status = std::process::Command::new("head")
        .args(["-c", "52428800", "/dev/urandom"])
        .stdout(std::fs::File::create(&local).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let want = sha256_of(&local);
    // A remote directory only this test uses, owned by the target account.
    let tag = format!("rampart-bastion-{}", std::process::id());
    let remote_dir = format!("/tmp/{tag}");
    jump(&w, &format!("mkdir -p {remote_dir}")).assert_success("mkdir on the target");
    let remote = |name: &str| format!("{TEST_ACCOUNT}@db-1:{remote_dir}/{name}");

    let scp = |from: &str, to: &str| {
        let mut c = std::process::Command::new(rampart_e2e::require_peer("scp"));
        c.env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(&w.config)
            .args([from, to]);
        rampart_e2e::process::run_timeout(c, None, Duration::from_secs(300))
    };
    scp(local.to_str().unwrap(), &remote("up.bin")).assert_success("scp up");
    let back = d.join("back.bin");
    scp(&remote("up.bin"), back.to_str().unwrap()).assert_success("scp down");
    assert_eq!(sha256_of(&back), want, "scp round trip is byte-identical");

    // sftp: put, get, rename, rm.
    let got = d.join("sftp-got.bin");
    let batch = d.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {l} {r}/s.bin\nget {r}/s.bin {g}\nrename {r}/s.bin {r}/t.bin\nrm {r}/t.bin\nrm {r}/up.bin\nmkdir {r}/sub\nrmdir {r}/sub\n",
            l = local.display(),
            r = remote_dir,
            g = got.display()
        ),
    )
    .unwrap();
    let mut c = std::process::Command::new(rampart_e2e::require_peer("sftp"));
    c.env_remove("SSH_AUTH_SOCK")
        .arg("-F")
        .arg(&w.config)
        .arg("-b")
        .arg(&batch)
        .arg(format!("{TEST_ACCOUNT}@db-1"));
    rampart_e2e::process::run_timeout(c, None, Duration::from_secs(300))
        .assert_success("sftp batch");
    assert_eq!(sha256_of(&got), want, "sftp round trip is byte-identical");
    jump(&w, &format!("rmdir {remote_dir}")).assert_success("cleanup");

    let size = 52_428_800u64;
    eventually("file-operation events for every step", || {
        let ops = bodies(&w.ca, "bastion_file_op");
        let text = serde_json::to_string(&ops).unwrap();
        let has = |op: &str, path: &str| text.contains(&format!("\"{op}\"")) && text.contains(path);
        has("write", &format!("{remote_dir}/up.bin"))
            && has("read", &format!("{remote_dir}/up.bin"))
            && has("write", &format!("{remote_dir}/s.bin"))
            && has("rename", &format!("{remote_dir}/t.bin"))
            && has("remove", &format!("{remote_dir}/t.bin"))
            && has("mkdir", &format!("{remote_dir}/sub"))
            && has("rmdir", &format!("{remote_dir}/sub"))
            && text.matches(&size.to_string()).count() >= 4
    });
}

#[test]
fn policy_denials_and_expired_certificates_are_refused_with_the_reason() {
    let w = world();
    // A target that policy denies, and a login that policy does not grant: the
    // CA's reason reaches the user on stderr, and the CA audited the denial.
    let out = ssh(
        &w.config,
        &[&format!("{TEST_ACCOUNT}@db-secret"), "true"],
        None,
        T,
    );
    out.assert_failure("denied target");
    assert!(out.stderr.contains("access denied"), "{out}");
    let out = ssh(&w.config, &["root@db-1", "true"], None, T);
    out.assert_failure("login not granted");
    assert!(out.stderr.contains("access denied"), "{out}");
    eventually("access_denied events", || {
        bodies(&w.ca, "access_denied").len() >= 2
    });

    // An expired certificate: log in with the shortest TTL the CA accepts and
    // wait for it to run out.
    let mut bob = onboard(&w.ca, &w.admin, "bob", &["engineers"]);
    let mut ok = false;
    for ttl in ["10s", "30s", "1m"] {
        if bob.login_with(&["--ttl", ttl]).success() {
            ok = true;
            break;
        }
    }
    assert!(ok, "no short TTL accepted");
    let cfg = w.bastion.ssh_config(&bob, w.dir.path(), &["db-1"]);
    ssh(&cfg, &[&format!("{TEST_ACCOUNT}@db-1"), "true"], None, T)
        .assert_success("bob while valid");
    let info = rampart_e2e::keys::inspect_cert(&bob.cli.cert());
    let left = (info.valid_before.unwrap() - chrono::Utc::now()).num_milliseconds() + 1500;
    assert!(
        left < 90_000,
        "certificate lives too long to wait for: {left} ms"
    );
    if left > 0 {
        std::thread::sleep(Duration::from_millis(left as u64));
    }
    let out = ssh(&cfg, &[&format!("{TEST_ACCOUNT}@db-1"), "true"], None, T);
    out.assert_failure("expired certificate");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    // russh refuses an expired certificate before the bastion's handler sees
    // it; keyboard-interactive then tells the user why and audits the attempt.
    let before = refused_for_no_certificate(&w.ca);
    let out = ssh(
        &interactive_ssh_config(&cfg, "bob-expired"),
        &[&format!("{TEST_ACCOUNT}@db-1"), "true"],
        None,
        T,
    );
    out.assert_failure("expired certificate, interactive");
    assert!(
        out.stderr.contains("has expired") && out.stderr.contains("Run `rampart login`"),
        "the user reads why and what to do:\n{out}"
    );
    eventually("the refused connection is audited", || {
        refused_for_no_certificate(&w.ca) > before
    });
}

#[test]
fn a_port_forward_that_policy_forbids_is_refused_on_the_wire_and_audited() {
    let w = world();
    // `-W` opens a direct-tcpip channel inside the session to db-1.
    let out = ssh(
        &w.config,
        &["-W", "127.0.0.1:22", &format!("{TEST_ACCOUNT}@db-1")],
        Some(b""),
        T,
    );
    out.assert_failure("forward refused");
    assert!(
        out.stderr
            .contains("port forwarding is not allowed by policy"),
        "{out}"
    );
    eventually("request_refused event", || {
        serde_json::to_string(&bodies(&w.ca, "bastion_request_refused"))
            .unwrap()
            .contains("direct-tcpip to 127.0.0.1:22")
    });
}

/// A listener on the client's side of a remote forward: answers each
/// connection's first line `L` with `pong:L`.
fn pong_listener() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            if BufReader::new(&conn).read_line(&mut line).is_ok() {
                let _ = writeln!(conn, "pong:{}", line.trim());
            }
        }
    });
    port
}

/// A command for the target: connect to 127.0.0.1:`port` there, send `ping`,
/// print the answer (bash's /dev/tcp), or `connect-failed`.
fn ping_on_target(port: u16) -> String {
    format!(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} || {{ echo connect-failed; exit 0; }}; echo ping >&3; head -n1 <&3'"
    )
}

#[test]
fn remote_forwarding_is_bridged_where_policy_allows_it_and_cancelled_on_request() {
    let w = world();
    let local = pong_listener();
    let remote = rampart_e2e::free_port();
    let spec = format!("127.0.0.1:{remote}:127.0.0.1:{local}");
    // db-fwd allows port forwarding: the target listens on `remote`, and a
    // connection made there reaches the listener beside the client.
    let out = ssh(
        &w.config,
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &spec,
            &format!("{TEST_ACCOUNT}@db-fwd"),
            &ping_on_target(remote),
        ],
        None,
        T,
    );
    out.assert_success(&format!("ssh -R through the bastion\n{}", w.bastion.log()));
    assert_eq!(out.stdout.trim(), "pong:ping", "{out}");
    eventually("the listen and the connection are audited", || {
        let fwd = serde_json::to_string(&bodies(&w.ca, "bastion_forward")).unwrap();
        fwd.contains("\"remote_listen\"")
            && fwd.contains(&format!("127.0.0.1:{remote}"))
            && fwd.contains("\"originator\"")
    });

    // Cancel through a multiplexing master: after `-O cancel` the target no
    // longer listens. Another port: the first session's sshd may still be
    // closing its listener.
    let remote = rampart_e2e::free_port();
    let spec = format!("127.0.0.1:{remote}:127.0.0.1:{local}");
    let d = w.dir.path();
    let sock = d.join("mux");
    let sock_s = sock.display().to_string();
    let (mut master, _o, e) = ssh_spawn(
        &w.config,
        &["-M", "-S", &sock_s, "-N", &format!("{TEST_ACCOUNT}@db-fwd")],
        d,
        "mux-master",
    );
    struct Reap<'a>(&'a mut std::process::Child);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let master = Reap(&mut master);
    eventually("the multiplexing master is up", || {
        ssh(&w.config, &["-S", &sock_s, "-O", "check", "x"], None, T)
            .status
            .success()
    });
    let mux = |args: &[&str]| {
        let mut a = vec!["-S", sock_s.as_str()];
        a.extend_from_slice(args);
        ssh(&w.config, &a, None, T)
    };
    mux(&["-O", "forward", "-R", &spec, "x"]).assert_success("-O forward -R");
    // A multiplexed session's exit status too: its client closes the channel
    // as soon as it sees EOF, so the bastion must send the exit status with it.
    let out = mux(&["x", &ping_on_target(remote)]);
    out.assert_success("ping through the added forward");
    assert_eq!(
        out.stdout.trim(),
        "pong:ping",
        "ping through the added forward\n{out}\nmaster:\n{}\nbastion:\n{}",
        std::fs::read_to_string(&e).unwrap_or_default(),
        w.bastion.log()
    );
    mux(&["-O", "cancel", "-R", &spec, "x"]).assert_success("-O cancel -R");
    let out = mux(&["x", &ping_on_target(remote)]);
    out.assert_success("ping after the cancel");
    assert_eq!(
        out.stdout.trim(),
        "connect-failed",
        "the target must stop listening once the forward is cancelled\n{out}\n{}",
        std::fs::read_to_string(&e).unwrap_or_default()
    );
    drop(master);
    eventually("the cancel is audited", || {
        serde_json::to_string(&bodies(&w.ca, "bastion_forward"))
            .unwrap()
            .contains("\"remote_cancel\"")
    });

    // db-1's role does not allow forwarding: refused on the wire and audited.
    let out = ssh(
        &w.config,
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &spec,
            &format!("{TEST_ACCOUNT}@db-1"),
            "echo should-not-run",
        ],
        None,
        T,
    );
    out.assert_failure("a remote forward policy forbids");
    assert!(
        out.stderr.contains("remote port forwarding failed"),
        "{out}"
    );
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    eventually("the refusal is audited", || {
        serde_json::to_string(&bodies(&w.ca, "bastion_request_refused"))
            .unwrap()
            .contains(&format!("remote port forwarding 127.0.0.1:{remote}"))
    });
}

#[test]
fn per_session_mfa_asks_for_a_code_with_keyboard_interactive() {
    let mut w = world();
    let d = w.dir.path().to_path_buf();
    // A config that allows keyboard-interactive; ssh's prompts go to an askpass
    // helper that answers with the code in a file.
    let cfg = interactive_ssh_config(&w.config, "mfa");
    let code_file = d.join("code");
    let askpass = d.join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncat {}\n", code_file.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&askpass)
        .status()
        .unwrap();
    let run = |code: &str| {
        std::fs::write(&code_file, format!("{code}\n")).unwrap();
        let mut c = std::process::Command::new(rampart_e2e::require_peer("ssh"));
        c.env_remove("SSH_AUTH_SOCK")
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .arg("-F")
            .arg(&cfg)
            .args([&format!("{TEST_ACCOUNT}@db-mfa"), "echo mfa-ok"]);
        rampart_e2e::process::run_timeout(c, None, T)
    };
    let out = run("000000");
    out.assert_failure("a wrong per-session code");
    let out = run(&w.alice.totp.fresh_code());
    out.assert_success("the right per-session code");
    assert_eq!(out.stdout.trim(), "mfa-ok");
    eventually("the session started with session MFA", || {
        bodies(&w.ca, "bastion_session_started")
            .iter()
            .any(|b| serde_json::to_string(b).unwrap().contains("db-mfa"))
    });
    assert!(
        !bodies(&w.ca, "mfa_failed").is_empty(),
        "the wrong code is audited"
    );
}

#[test]
fn agent_forwarding_is_bridged_only_where_policy_allows_it() {
    let w = world();
    let d = w.dir.path();
    // A real ssh-agent holding alice's key.
    let sock = d.join("agent.sock");
    let out = std::process::Command::new(rampart_e2e::require_peer("ssh-agent"))
        .arg("-a")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid = String::from_utf8_lossy(&out.stdout)
        .split(';')
        .find_map(|p| p.trim().strip_prefix("SSH_AGENT_PID=").map(str::to_owned))
        .unwrap();
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").arg(&self.0).status();
        }
    }
    let _agent = Kill(pid);
    let add = std::process::Command::new(rampart_e2e::require_peer("ssh-add"))
        .env("SSH_AUTH_SOCK", &sock)
        .arg(w.alice.cli.identity())
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");
    let fp = rampart_e2e::keys::fingerprint(&w.alice.cli.cert());
    let run = |host: &str| {
        let mut c = std::process::Command::new(rampart_e2e::require_peer("ssh"));
        c.env("SSH_AUTH_SOCK", &sock)
            .arg("-A")
            .arg("-F")
            .arg(&w.config)
            .args([&format!("{TEST_ACCOUNT}@{host}"), "ssh-add -l; echo rc=$?"]);
        rampart_e2e::process::run_timeout(c, None, T)
    };
    // Allowed by policy for db-agent: the target sees alice's key through the
    // bastion, and the forward is audited.
    let out = run("db-agent");
    out.assert_success("ssh -A to db-agent");
    assert!(
        out.stdout.contains(&fp),
        "the forwarded agent lists the key:\n{out}"
    );
    // Not allowed for db-1: refused on the wire (no agent on the target) and audited.
    let out = run("db-1");
    assert!(
        !out.stdout.contains(&fp) && out.stdout.contains("rc=2"),
        "{out}"
    );
    eventually("the agent forward and the refusal are audited", || {
        let fwd = serde_json::to_string(&bodies(&w.ca, "bastion_forward")).unwrap();
        let refused = serde_json::to_string(&bodies(&w.ca, "bastion_request_refused")).unwrap();
        fwd.contains("\"agent\"") && refused.contains("agent forwarding")
    });
}

#[test]
fn with_the_ca_down_no_session_starts() {
    let mut w = world();
    jump(&w, "true").assert_success("while the CA is up");
    w.ca.stop();
    // No per-session certificate and no audit: the session is refused, and
    // the user is told why.
    let out = jump(&w, "echo should-not-run");
    out.assert_failure("CA down");
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    assert!(out.stderr.contains("CA cannot be reached"), "{out}");
    assert!(w.bastion.is_running(), "the bastion itself keeps running");
}

/// The newest session the CA saw start.
fn newest_session(ca: &Ca) -> String {
    bodies(ca, "bastion_session_started")
        .last()
        .and_then(|b| b["session"].as_str())
        .expect("a bastion_session_started event")
        .to_owned()
}

/// The sealed recording of `session`, parsed (waits for the seal).
fn recording_of(ca: &Ca, session: &str) -> rampart_audit::recording::Recording {
    eventually("the session's recording is sealed", || {
        serde_json::to_string(&bodies(ca, "recording_sealed"))
            .unwrap()
            .contains(session)
    });
    let cast = sealed_recording(ca, session);
    rampart_audit::recording::parse_cast(
        cast.as_bytes(),
        &rampart_audit::recording::ReadLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}:\n{cast}"))
}

/// Markers of a recording (channel opens, switches, closes).
fn markers(rec: &rampart_audit::recording::Recording) -> Vec<String> {
    rec.events
        .iter()
        .filter(|e| e.kind == rampart_audit::recording::CastEventKind::Marker)
        .map(|e| e.data.clone())
        .collect()
}

/// The channel numbers a recording opened.
fn opened_channels(rec: &rampart_audit::recording::Recording) -> Vec<u32> {
    markers(rec)
        .iter()
        .filter(|m| m.contains(" open: "))
        .filter_map(|m| m.split(' ').nth(1)?.parse().ok())
        .collect()
}

#[test]
fn channels_without_a_pty_are_recorded_input_and_output() {
    let w = world();
    // `ssh -T`: a shell with no pty. Every keystroke and every byte of output
    // went unrecorded before.
    let out = ssh(
        &w.config,
        &["-T", &format!("{TEST_ACCOUNT}@db-1")],
        Some(b"echo no-pty-$((6*7))\nexit 0\n"),
        T,
    );
    out.assert_success("ssh -T shell");
    assert!(out.stdout.contains("no-pty-42"), "{out}");
    let rec = recording_of(&w.ca, &newest_session(&w.ca));
    let ch = opened_channels(&rec);
    assert_eq!(ch.len(), 1, "{:?}", markers(&rec));
    assert!(
        markers(&rec)[0].contains("open: shell"),
        "{:?}",
        markers(&rec)
    );
    assert!(
        rec.channel_input(ch[0]).contains("echo no-pty-$((6*7))"),
        "typed input of a no-pty shell is kept: {:?}",
        rec.channel_input(ch[0])
    );
    assert!(rec.channel_output(ch[0]).contains("no-pty-42"));
    let close = markers(&rec)
        .into_iter()
        .find(|m| m.contains("closed:"))
        .unwrap();
    assert!(
        close.contains("exit 0") && close.contains("sha256"),
        "{close}"
    );

    // exec with binary input and output: what was sent and printed is there,
    // and the close marker carries byte counts and digests of the whole stream.
    let payload: Vec<u8> = (0u8..=255).chain(b"tail-marker".iter().copied()).collect();
    let out = ssh(
        &w.config,
        &[
            &format!("{TEST_ACCOUNT}@db-1"),
            "cat; printf 'exec-out\\001\\377\\n'",
        ],
        Some(&payload),
        T,
    );
    out.assert_success("exec with a binary payload");
    let rec = recording_of(&w.ca, &newest_session(&w.ca));
    let ch = opened_channels(&rec);
    assert_eq!(ch.len(), 1);
    let m = markers(&rec);
    assert!(
        m[0].contains("open: exec") && m[0].contains("cat;"),
        "{m:?}"
    );
    // Exactly what was sent and printed, binary bytes included.
    assert_eq!(rec.channel_input_bytes(ch[0]), payload);
    let mut printed = payload.clone();
    printed.extend_from_slice(b"exec-out\x01\xff\n");
    assert_eq!(rec.channel_output_bytes(ch[0]), printed);
    let close = m.iter().find(|m| m.contains("closed:")).unwrap();
    let want_in = format!("in {} bytes", payload.len());
    assert!(close.contains(&want_in), "{close}");

    // A subsystem (sftp): the channel is recorded and marked as such.
    let batch = w.dir.path().join("sftp-ls");
    std::fs::write(&batch, "ls /\n").unwrap();
    let mut c = std::process::Command::new(rampart_e2e::require_peer("sftp"));
    c.env_remove("SSH_AUTH_SOCK")
        .arg("-F")
        .arg(&w.config)
        .arg("-b")
        .arg(&batch)
        .arg(format!("{TEST_ACCOUNT}@db-1"));
    rampart_e2e::process::run_timeout(c, None, T).assert_success("sftp ls");
    let rec = recording_of(&w.ca, &newest_session(&w.ca));
    assert!(
        markers(&rec)
            .iter()
            .any(|m| m.contains("open: subsystem sftp")),
        "{:?}",
        markers(&rec)
    );
}

#[test]
fn two_shells_over_one_controlmaster_connection_are_both_recorded() {
    let w = world();
    let sock = w.dir.path().join("mux.sock");
    let mux = format!("ControlPath={}", sock.display());
    let host = format!("{TEST_ACCOUNT}@db-1");
    // The master holds the one connection (and its inner session) open.
    let (mut master, _out, err) = ssh_spawn(
        &w.config,
        &["-o", "ControlMaster=yes", "-o", &mux, "-N", &host],
        w.dir.path(),
        "mux-master",
    );
    eventually("the master connection is up", || {
        sock.exists() && !bodies(&w.ca, "bastion_session_started").is_empty()
    });
    for word in ["mux-one", "mux-two"] {
        let out = ssh(
            &w.config,
            &["-o", "ControlMaster=no", "-o", &mux, "-T", &host],
            Some(format!("echo {word}\nexit\n").as_bytes()),
            T,
        );
        out.assert_success(word);
        assert!(out.stdout.contains(word), "{out}");
    }
    let _ = ssh(&w.config, &["-o", &mux, "-O", "exit", &host], None, T);
    let _ = master.wait();
    let _ = std::fs::read_to_string(err);
    let rec = recording_of(&w.ca, &newest_session(&w.ca));
    let ch = opened_channels(&rec);
    assert_eq!(
        ch.len(),
        2,
        "two channels in one session: {:?}",
        markers(&rec)
    );
    assert!(rec.channel_output(ch[0]).contains("mux-one"));
    assert!(rec.channel_output(ch[1]).contains("mux-two"));
    assert!(rec.channel_input(ch[1]).contains("echo mux-two"));
}

#[test]
fn recording_fails_closed_when_it_cannot_start_or_write() {
    let w = world();
    let recordings = w.bastion.etc().join("recordings");
    // Cannot start: the recordings directory is gone (a file stands in its way).
    let aside = w.bastion.etc().join("recordings.aside");
    std::fs::rename(&recordings, &aside).unwrap();
    std::fs::write(&recordings, b"not a directory").unwrap();
    let out = jump(&w, "echo should-not-run");
    assert!(
        out.stderr
            .contains("session recording unavailable; refusing"),
        "the user is told why: {out}"
    );
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    assert!(!out.status.success(), "{out}");
    eventually("the refusal is audited", || {
        serde_json::to_string(&bodies(&w.ca, "bastion_request_refused"))
            .unwrap()
            .contains("recording")
    });
    std::fs::remove_file(&recordings).unwrap();
    std::fs::rename(&aside, &recordings).unwrap();

    // Cannot write: the disk fills mid-session. The session ends, with why.
    let _full = rampart_e2e::small_disk::SmallDisk::mount(&recordings, "512k");
    let out = jump(&w, "for i in $(seq 1 60); do head -c 100000 /dev/zero | tr '\\0' a; sleep 0.05; done; echo finished");
    assert!(!out.status.success(), "the session was ended: {out}");
    assert!(!out.stdout.contains("finished"), "{}", out.stderr);
    eventually("session_ended says the recording failed", || {
        bodies(&w.ca, "bastion_session_ended").iter().any(|b| {
            b["reason"].as_str() == Some("recording_failed")
                && b["outcome"].as_str() == Some("failure")
        })
    });
}

#[test]
fn the_user_certificates_source_address_is_enforced_by_the_bastion() {
    let w = world();
    let mut carol = onboard(&w.ca, &w.admin, "carol", &["fenced"]);
    carol.login();
    let config = w.bastion.ssh_config(&carol, w.dir.path(), &["db-1"]);
    // From 127.0.0.1, outside the certificate's 127.0.0.2/32: refused, though
    // the same certificate went through the bastion before.
    let out = ssh(
        &config,
        &[&format!("{TEST_ACCOUNT}@db-1"), "echo outside"],
        None,
        T,
    );
    assert!(!out.stdout.contains("outside"), "{out}");
    out.assert_failure("a client outside source-address");
    eventually("the refusal is audited with the reason", || {
        bodies(&w.ca, "bastion_connection_refused").iter().any(|b| {
            b["user"].as_str() == Some("carol")
                && b["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("not valid from 127.0.0.1"))
        })
    });
    // From inside it (the direct form lets ssh bind the source address).
    let out = ssh(
        &config,
        &[
            "-o",
            "BindAddress=127.0.0.2",
            "-p",
            &w.bastion.port().to_string(),
            &format!("{TEST_ACCOUNT}+db-1@{BASTION}"),
            "echo inside",
        ],
        None,
        T,
    );
    out.assert_success("a client inside source-address");
    assert_eq!(out.stdout.trim(), "inside");
}

/// Events waiting in the bastion's spool (lines of its segment files).
fn spooled_events(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".events.jsonl"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|t| t.lines().count())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn ten_thousand_events_survive_a_ca_outage_and_a_kill9_in_order_and_once() {
    use std::io::Write as _;
    let mut w = world();
    // A small spool, so that it is past its size during the test.
    w.bastion.stop();
    set_limit(&w.bastion.config_path(), "spool_max_mib", 1);
    w.bastion.start();
    // An sftp session, up while the CA is.
    let log = w.dir.path().join("sftp-spool.err");
    let mut c = std::process::Command::new(rampart_e2e::require_peer("sftp"));
    c.env_remove("SSH_AUTH_SOCK")
        .arg("-F")
        .arg(&w.config)
        .args(["-b", "-"])
        .arg(format!("{TEST_ACCOUNT}@db-1"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut sftp = c.spawn().unwrap();
    eventually("the sftp session started", || {
        !bodies(&w.ca, "bastion_session_started").is_empty()
    });
    let session = newest_session(&w.ca);
    w.ca.stop();
    // 5,000 directories made and removed: 10,000 file-operation events, all
    // while the CA is down.
    let tag = format!("rampart-spool-{}", std::process::id());
    let mut script = String::new();
    for i in 0..5000 {
        script.push_str(&format!("mkdir /tmp/{tag}-{i}\nrmdir /tmp/{tag}-{i}\n"));
    }
    script.push_str("bye\n");
    let mut stdin = sftp.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    let status = sftp.wait().unwrap();
    assert!(
        status.success(),
        "sftp: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // They are on the bastion's disk, not in its memory: kill it.
    let spool = w.bastion.etc().join("spool/events");
    eventually("the 10,000 events are in the spool", || {
        spooled_events(&spool) >= 10_000
    });
    // The spool is past its size: a new session is refused before the bastion
    // asks the CA for anything, and the user is told why (fail closed: a session
    // whose events could not be kept does not start).
    let out = jump(&w, "echo should-not-run");
    assert!(!out.status.success(), "{out}");
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    assert!(
        out.stderr.contains("event spool is full"),
        "the user is told why: {out}"
    );
    w.bastion.kill9();
    w.ca.start();
    w.bastion.start();
    let of_session = || -> Vec<Value> {
        bodies(&w.ca, "bastion_file_op")
            .into_iter()
            .filter(|b| b["session"].as_str() == Some(session.as_str()))
            .collect()
    };
    eventually("every event reached the chain", || {
        of_session().len() >= 10_000
    });
    let ops = of_session();
    assert_eq!(ops.len(), 10_000, "none twice");
    let got: Vec<(String, String)> = ops
        .iter()
        .map(|b| {
            (
                b["details"]["op"].as_str().unwrap().to_owned(),
                b["details"]["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = (0..5000)
        .flat_map(|i| {
            let path = format!("/tmp/{tag}-{i}");
            [
                ("mkdir".to_owned(), path.clone()),
                ("rmdir".to_owned(), path),
            ]
        })
        .collect();
    assert!(got == want, "in the order they happened");
    let ids: std::collections::HashSet<&str> =
        ops.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10_000);
    eventually("the spool is empty again", || spooled_events(&spool) == 0);
    // The session the kill cut off is reported, and the chain holds together.
    eventually("the cut-off session is reported", || {
        bodies(&w.ca, "bastion_session_ended")
            .iter()
            .any(|b| b["session"].as_str() == Some(session.as_str()))
    });
}

#[test]
fn a_bastion_only_role_reaches_the_host_through_the_bastion_and_never_directly() {
    let w = world();
    let mut dora = onboard(&w.ca, &w.admin, "dora", &["dbas"]);
    dora.login();
    // Her own certificate does not carry the account's principal.
    let out = std::process::Command::new(rampart_e2e::require_peer("ssh-keygen"))
        .arg("-L")
        .arg("-f")
        .arg(dora.cli.cert())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let principals: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Principals:"))
        .skip(1)
        .take_while(|l| l.starts_with("                "))
        .map(str::trim)
        .collect();
    assert_eq!(principals, ["rampart:bastion-only"], "{listing}");
    let config = w.bastion.ssh_config(&dora, w.dir.path(), &["db-1"]);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "Host direct\n  HostName 127.0.0.1\n  Port {}\n",
        w.sshd.port()
    ));
    std::fs::write(&config, text).unwrap();
    // Straight to the host: refused by sshd, though the role names the account.
    let out = ssh(
        &config,
        &[&format!("{TEST_ACCOUNT}@direct"), "echo direct"],
        None,
        T,
    );
    out.assert_failure("a direct login with a bastion-only role");
    assert!(!out.stdout.contains("direct"), "{out}");
    // Through the bastion: the per-session certificate carries it.
    let out = ssh(
        &config,
        &[&format!("{TEST_ACCOUNT}@db-1"), "echo via-bastion"],
        None,
        T,
    );
    out.assert_success("through the bastion");
    assert_eq!(out.stdout.trim(), "via-bastion");
}

/// `record = "metered"` (1 MiB): an exec channel pushing 3 MiB each way
/// through stock ssh stores the first MiB of each direction, and its close
/// marker carries the whole stream's byte counts and SHA-256, which match what
/// was sent. Typed input of a no-pty shell on the same role is kept in full.
#[test]
fn a_metered_role_stores_the_first_mib_of_bulk_data_and_the_whole_streams_digest() {
    use sha2::{Digest, Sha256};
    const MIB: usize = 1024 * 1024;
    let w = world();
    // Not compressible and not periodic, so a wrong slice cannot match.
    let mut payload = Vec::with_capacity(3 * MIB);
    let mut block = Sha256::digest(b"rampart metered").to_vec();
    while payload.len() < 3 * MIB {
        block = Sha256::digest(&block).to_vec();
        payload.extend_from_slice(&block);
    }
    payload.truncate(3 * MIB);
    let out = ssh(
        &w.config,
        &[&format!("{TEST_ACCOUNT}@db-bulk"), "cat"],
        Some(&payload),
        T,
    );
    out.assert_success("exec cat through a metered role");
    let granted = bodies(&w.ca, "access_granted");
    assert_eq!(
        granted.last().unwrap()["details"]["record_metered_mib"],
        1,
        "{:?}",
        granted.last()
    );

    let rec = recording_of(&w.ca, &newest_session(&w.ca));
    let ch = opened_channels(&rec);
    assert_eq!(ch.len(), 1, "{:?}", markers(&rec));
    let stored_in = rec.channel_input_bytes(ch[0]);
    let stored_out = rec.channel_output_bytes(ch[0]);
    assert_eq!(stored_in.len(), MIB);
    assert_eq!(stored_out.len(), MIB);
    assert_eq!(stored_in, payload[..MIB]);
    assert_eq!(stored_out, payload[..MIB]);
    let digest: String = Sha256::digest(&payload)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let close = markers(&rec)
        .into_iter()
        .find(|m| m.contains("closed:"))
        .unwrap();
    assert!(
        close.contains(&format!("in {} bytes sha256 {digest}", payload.len()))
            && close.contains(&format!("out {} bytes sha256 {digest}", payload.len())),
        "{close}"
    );
    assert!(
        close.contains(&format!(
            "{} bytes not stored (metered: 1 MiB of each direction kept)",
            2 * (payload.len() - MIB)
        )),
        "{close}"
    );

    // A shell without a pty on the same role: what is typed is kept in full,
    // however much it is.
    let line = format!("{}\n", "x".repeat(1023));
    // A here-document: the shell itself reads every line (it reads ahead, so
    // a bare `cat` would leave some lines to be run as commands).
    let mut typed = b"cat >/dev/null <<'END'\n".to_vec();
    while typed.len() < MIB + MIB / 2 {
        typed.extend_from_slice(line.as_bytes());
    }
    typed.extend_from_slice(b"END\nexit 0\n");
    let out = ssh(
        &w.config,
        &["-T", &format!("{TEST_ACCOUNT}@db-bulk")],
        Some(&typed),
        T,
    );
    out.assert_success("ssh -T shell on a metered role");
    let rec = recording_of(&w.ca, &newest_session(&w.ca));
    let ch = opened_channels(&rec);
    assert!(
        markers(&rec)[0].contains("open: shell"),
        "{:?}",
        markers(&rec)
    );
    assert_eq!(rec.channel_input_bytes(ch[0]), typed);
}
