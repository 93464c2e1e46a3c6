//! `rampart-bastion` limits against stock `ssh`: sessions per user, idle
//! timeout and per-source connection rate — each refusal clear to the user and
//! audited. (World set-up as in bastion_ssh.rs, with tighter limits.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use rampart_e2e::bastion::{
    host_ca_target, scratch, set_limit, ssh, ssh_spawn, Bastion, TargetSpec,
};
use rampart_e2e::eventually;
use rampart_e2e::{bootstrap_admin, onboard, AuditDb, Ca, TEST_ACCOUNT};

const T: Duration = Duration::from_secs(60);

fn policy(admin: &str) -> String {
    rampart_e2e::policy::bastion_policy(admin, "bastion-1")
}

fn bodies(ca: &Ca, kind: &str) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db()).bodies(kind)
}

/// A CA, a target, and a bastion with the given `[limits]`, with alice's ssh
/// config for it.
struct World {
    ca: Ca,
    bastion: Bastion,
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    _sshd: rampart_e2e::Sshd,
}

fn world(limits: &[(&str, u64)]) -> World {
    let mut ca = Ca::init_with(None, "");
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();
    let sshd = host_ca_target(&ca, &admin, Vec::new());
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        "bastion-1",
        &[TargetSpec::host_ca("db-1", sshd.port())],
    );
    for (key, value) in limits {
        set_limit(&bastion.config_path(), key, *value);
    }
    bastion.check().assert_success("check");
    bastion.start();
    let dir = scratch("bastion-limits");
    let cfg = bastion.ssh_config(&alice, dir.path(), &["db-1"]);
    World {
        ca,
        bastion,
        dir,
        cfg,
        _sshd: sshd,
    }
}

#[test]
fn session_limit_idle_timeout_and_connection_rate() {
    let World {
        ca,
        mut bastion,
        dir,
        cfg,
        _sshd,
    } = world(&[("max_sessions_per_user", 1), ("idle_timeout_secs", 3)]);
    let target = format!("{TEST_ACCOUNT}@db-1");

    // One session per user: a second one is refused with the reason while the
    // first is live. The first produces output (not idle) until it is done.
    let (mut first, first_out, _e) = ssh_spawn(
        &cfg,
        &[
            &target,
            "for i in 1 2 3 4 5 6 7 8; do echo tick; sleep 1; done",
        ],
        dir.path(),
        "first",
    );
    eventually("the first session is up", || {
        std::fs::read_to_string(&first_out).is_ok_and(|t| t.contains("tick"))
    });
    let out = ssh(&cfg, &[&target, "true"], None, T);
    out.assert_failure("second session over the per-user limit");
    assert!(out.stderr.contains("too many sessions"), "{out}");
    assert!(
        first.wait().unwrap().success(),
        "the first session is not disturbed"
    );

    // Idle timeout: a session with no data either way is closed and audited.
    let t0 = Instant::now();
    let out = ssh(&cfg, &[&target, "sleep 60"], None, T);
    out.assert_failure("idle session");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "closed by the idle timeout"
    );
    eventually("session_ended idle_timeout", || {
        serde_json::to_string(&bodies(&ca, "bastion_session_ended"))
            .unwrap()
            .contains("idle_timeout")
    });
    eventually("the refusal of the second session is audited", || {
        serde_json::to_string(&bodies(&ca, "bastion_connection_refused"))
            .unwrap()
            .contains("too many sessions")
    });

    // Connection rate per source: 1/s with a burst of 2.
    bastion.stop();
    set_limit(&bastion.config_path(), "connections_per_second", 1);
    set_limit(&bastion.config_path(), "connection_burst", 2);
    bastion.start();
    // Six at once, so that a slow machine cannot spread them over several seconds.
    let outs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| ssh(&cfg, &[&target, "true"], None, T)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = outs.iter().filter(|o| !o.success()).count();
    assert!(
        refused >= 1,
        "some of 6 simultaneous connections are refused at 1/s burst 2"
    );
    assert!(refused < 6, "the burst is let through");
    eventually("rate-limit refusal audited", || {
        serde_json::to_string(&bodies(&ca, "bastion_connection_refused"))
            .unwrap()
            .contains("rate limit")
    });
}

#[test]
fn inner_sessions_have_a_login_timeout_and_count_against_the_session_limit() {
    use std::process::{Command, Stdio};
    let w = world(&[("auth_timeout_secs", 4), ("max_sessions_per_user", 2)]);
    // One connection to the bastion, multiplexed: each `ssh -W` over it opens
    // a direct-tcpip channel, on which the bastion starts an inner session.
    let sock = w.dir.path().join("jump.sock");
    let mux = format!("ControlPath={}", sock.display());
    let (mut master, _o, master_err) = ssh_spawn(
        &w.cfg,
        &["-o", "ControlMaster=yes", "-o", &mux, "-N", "bastion-1"],
        w.dir.path(),
        "jump-master",
    );
    eventually("the jump connection is up", || sock.exists());
    // Clients that open a channel and never speak SSH on it: their stdin is
    // held open and silent. `mux` sends them over the jump connection above.
    let silent = |tag: &str, mux: Option<&str>| {
        let mut c = Command::new(rampart_e2e::require_peer("ssh"));
        c.env_remove("SSH_AUTH_SOCK").arg("-F").arg(&w.cfg);
        if let Some(path) = mux {
            c.args(["-o", "ControlMaster=no", "-o", path]);
        }
        c.args(["-W", "db-1:22", "bastion-1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(w.dir.path().join(format!("{tag}.err"))).unwrap())
            .spawn()
            .unwrap()
    };
    // Two inner sessions on the jump connection, a third refused at once.
    let mut first = silent("w1", Some(&mux));
    let mut second = silent("w2", Some(&mux));
    std::thread::sleep(Duration::from_millis(500));
    let mut third = silent("w3", Some(&mux));
    assert!(!third.wait().unwrap().success());
    // ssh prints the refusal where the connection is: the master here.
    let text = std::fs::read_to_string(&master_err).unwrap();
    assert!(
        text.contains("open failed: administratively prohibited: rampart: too many sessions on one connection (limit 2)"),
        "the user reads why: {text}"
    );
    eventually("the refusal is audited", || {
        serde_json::to_string(&bodies(&w.ca, "bastion_connection_refused"))
            .unwrap()
            .contains("too many sessions on one connection")
    });

    // A client of its own that opens the channel and then says nothing: cut
    // at the login timeout (4 s here), not left holding an inner session.
    let t0 = Instant::now();
    let mut mute = silent("mute", None);
    mute.wait().unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "cut by the 4 s timeout: {took:?}"
    );
    eventually("the timeout is audited as the inner session's", || {
        bodies(&w.ca, "bastion_connection_refused").iter().any(|b| {
            b["reason"].as_str() == Some("no SSH identification within the login timeout")
                && b["details"]["connection"].as_str() == Some("inner")
        })
    });
    for c in [&mut first, &mut second, &mut master] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
