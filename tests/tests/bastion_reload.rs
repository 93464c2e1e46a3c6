//! `systemctl reload rampart-bastion` (SIGHUP) against the real thing: a real
//! `rampart-ca`, a real `sshd` target certified by the Rampart host CA, a
//! joined `rampart-bastion`, and stock `ssh -J` holding alice's certificate
//! from `rampart login`. A reload swaps in the targets and limits of
//! `bastion.toml` for new sessions without dropping live ones; a file that
//! does not validate, or that changes what only a restart can, is refused,
//! said in the log, counted, audited, and the running config stays.

// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use rampart_e2e::bastion::{host_ca_target, scratch, ssh, ssh_spawn, Bastion, TargetSpec};
use rampart_e2e::eventually;
use rampart_e2e::process::run_timeout;
use rampart_e2e::prometheus::scrape;
use rampart_e2e::{
    bootstrap_admin, free_port, onboard, AuditDb, Ca, CmdOutput, Sshd, TEST_ACCOUNT,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const BASTION: &str = "bastion-1";
const T: Duration = Duration::from_secs(60);

/// Role `dev` may reach every `db-*`, and the policy registers every `db-*`
/// for the bastion: whether a target is reachable is up to bastion.toml.
fn policy(admin: &str) -> String {
    format!(
        r#"version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
targets = {{ allow = ["db-*"] }}

[groups]
engineers = ["dev"]

[users]
"{admin}" = ["dev"]

[bastions."{BASTION}"]
targets = ["db-*"]
"#
    )
}

struct World {
    ca: Ca,
    bastion: Bastion,
    _sshd: Sshd,
    dir: tempfile::TempDir,
    /// alice's ssh config: db-1, db-2 and db-3 through the bastion.
    ssh_config: PathBuf,
    /// The bastion's `/metrics`.
    metrics: SocketAddr,
    /// bastion.toml as started (targets db-1 and db-2), without targets.
    base: String,
    /// The target sshd's port.
    port: u16,
}

impl World {
    /// Target `name`: the one sshd, under that name.
    fn target(&self, name: &str) -> TargetSpec {
        spec(name, self.port)
    }
}

fn spec(name: &str, port: u16) -> TargetSpec {
    TargetSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port,
        host_key: "host-ca".into(),
    }
}

fn world() -> World {
    let mut ca = Ca::init_with(None, "");
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();
    let sshd = host_ca_target(&ca, &admin, Vec::new());
    let port = sshd.port();
    let mut bastion = Bastion::join(&ca, &admin, BASTION, &[]);
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let joined = std::fs::read_to_string(bastion.config_path()).unwrap();
    assert!(joined.contains("# listen = \"127.0.0.1:9465\""), "{joined}");
    let base = joined.replace(
        "# listen = \"127.0.0.1:9465\"",
        &format!("listen = \"{metrics}\""),
    );
    write_config(&bastion, &base, &[spec("db-1", port), spec("db-2", port)]);
    bastion.check().assert_success("rampart-bastion check");
    bastion.start();
    let dir = scratch("bastion-reload");
    let ssh_config = bastion.ssh_config(&alice, dir.path(), &["db-1", "db-2", "db-3"]);
    World {
        ca,
        bastion,
        _sshd: sshd,
        dir,
        ssh_config,
        metrics,
        base,
        port,
    }
}

fn write_config(bastion: &Bastion, base: &str, targets: &[TargetSpec]) {
    let mut text = base.to_owned();
    for t in targets {
        text.push_str(&t.toml());
    }
    std::fs::write(bastion.config_path(), text).unwrap();
}

fn bodies(ca: &Ca, kind: &str) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db()).bodies(kind)
}

fn run(w: &World, target: &str, cmd: &str) -> CmdOutput {
    ssh(
        &w.ssh_config,
        &[&format!("{TEST_ACCOUNT}@{target}"), cmd],
        None,
        T,
    )
}

/// `ssh target echo via-TARGET` must work.
fn reaches(w: &World, target: &str) {
    let out = run(w, target, &format!("echo via-{target}"));
    out.assert_success(&format!("ssh -J … {target}\n{}", w.bastion.log()));
    assert_eq!(out.stdout.trim(), format!("via-{target}"), "{out}");
}

/// `ssh target true` must be refused because the bastion does not list it.
fn unknown(w: &World, target: &str) {
    let out = run(w, target, "true");
    out.assert_failure(&format!("ssh -J … {target}, not in bastion.toml"));
    assert!(
        out.stderr.contains(&format!("unknown target \"{target}\"")),
        "{out}"
    );
}

/// One value of the bastion's exposition.
fn metric(w: &World, series: &str) -> f64 {
    let text = scrape(w.metrics);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn sha256_of(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// A session on `target` that prints `tick N` every second until the file
/// `stop` exists (at most two minutes), then `done`.
fn live_session(w: &World, target: &str, stop: &Path, tag: &str) -> (Child, PathBuf) {
    let cmd = format!(
        "echo start; for i in $(seq 1 120); do [ -e {stop} ] && break; echo tick $i; sleep 1; done; echo done",
        stop = stop.display()
    );
    let (child, out, _err) = ssh_spawn(
        &w.ssh_config,
        &[&format!("{TEST_ACCOUNT}@{target}"), &cmd],
        w.dir.path(),
        tag,
    );
    (child, out)
}

fn ticks(out: &Path) -> usize {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("tick "))
        .count()
}

/// The file the target's shell waits for; the target is the same machine.
fn stop_file(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let p = std::env::temp_dir().join(format!(
        "rampart-reload-{tag}-{}-{nanos}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn finish(mut child: Child, out: &Path, stop: &Path) -> String {
    std::fs::write(stop, b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the live session did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = std::fs::remove_file(stop);
    let text = std::fs::read_to_string(out).unwrap();
    assert!(
        status.success(),
        "the live session failed ({status}):\n{text}"
    );
    assert!(text.trim_end().ends_with("done"), "{text}");
    text
}

#[test]
fn a_reload_changes_targets_and_limits_for_new_sessions_and_live_ones_go_on() {
    let w = world();
    let target = |name: &str| w.target(name);
    reaches(&w, "db-1");
    unknown(&w, "db-3");

    // A live session through db-1, printing every second.
    let stop = stop_file("live");
    let (child, out) = live_session(&w, "db-1", &stop, "live");
    eventually("the live session runs", || ticks(&out) >= 1);

    // db-1 leaves bastion.toml, db-3 joins it.
    write_config(&w.bastion, &w.base, &[target("db-2"), target("db-3")]);
    let said = w.bastion.reload();
    assert!(said.contains("config reloaded"), "{said}");
    assert!(
        said.contains("added [\"db-3\"]") && said.contains("removed [\"db-1\"]"),
        "the log says what changed: {said}"
    );
    let digest = sha256_of(&w.bastion.config_path());
    assert!(
        said.contains(&digest),
        "the log names the file's digest: {said}"
    );

    // The live session to the removed target keeps going, data still flowing.
    let at_reload = ticks(&out);
    eventually("ticks after the reload", || ticks(&out) >= at_reload + 2);
    // New sessions see the new list: db-3 (a host certificate the bastion
    // asks the CA for now), not db-1.
    reaches(&w, "db-3");
    unknown(&w, "db-1");
    reaches(&w, "db-2");

    // Limits too: one session per user from now on. The live one is alice's,
    // so her next is refused, and the live one is not touched.
    let limited = w
        .base
        .replace("max_sessions_per_user = 10", "max_sessions_per_user = 1");
    assert_ne!(limited, w.base);
    write_config(&w.bastion, &limited, &[target("db-2"), target("db-3")]);
    let said = w.bastion.reload();
    assert!(
        said.contains("config reloaded") && said.contains("limits.max_sessions_per_user"),
        "{said}"
    );
    let out2 = run(&w, "db-2", "true");
    out2.assert_failure("a second session over the reloaded per-user limit");
    assert!(out2.stderr.contains("too many sessions"), "{out2}");
    let before = ticks(&out);
    eventually("ticks after the second reload", || {
        ticks(&out) >= before + 2
    });

    let text = finish(child, &out, &stop);
    assert!(text.starts_with("start\n"), "{text}");
    assert!(w.bastion.log().contains("config reloaded"));
    // With the live session gone, one session is allowed again.
    reaches(&w, "db-3");

    // The chain: the live session ended normally; each reload is there with
    // the file's digest and what changed.
    eventually("the live session's end in the audit log", || {
        bodies(&w.ca, "bastion_session_ended")
            .iter()
            .any(|b| b["target"] == "db-1")
    });
    let ended: Vec<Value> = bodies(&w.ca, "bastion_session_ended")
        .into_iter()
        .filter(|b| b["target"] == "db-1")
        .collect();
    assert!(
        ended
            .iter()
            .any(|b| b["outcome"] == "success" && b["reason"] == "closed"),
        "the db-1 session ended normally: {ended:?}"
    );
    eventually("two reloads in the audit log", || {
        bodies(&w.ca, "bastion_config_reloaded").len() == 2
    });
    let reloads = bodies(&w.ca, "bastion_config_reloaded");
    let first = &reloads[0];
    assert_eq!(first["outcome"], "success", "{first}");
    assert_eq!(first["code"], "RA-BAS-016");
    assert_eq!(first["actor"], format!("bastion:{BASTION}"));
    assert_eq!(first["details"]["added"], serde_json::json!(["db-3"]));
    assert_eq!(first["details"]["removed"], serde_json::json!(["db-1"]));
    assert_eq!(first["details"]["targets"], 2);
    assert_eq!(
        first["details"]["path"],
        w.bastion.config_path().display().to_string()
    );
    assert_eq!(first["details"]["sha256"], digest.as_str(), "{reloads:?}");
    assert_eq!(
        reloads[1]["details"]["removed"],
        serde_json::json!([]),
        "{reloads:?}"
    );
    assert_eq!(
        metric(
            &w,
            "rampart_bastion_config_reloads_total{outcome=\"applied\"}"
        ),
        2.0
    );
    w.ca.verify_audit().assert_success("audit verify");
}

#[test]
fn a_bad_or_restart_needing_bastion_toml_is_refused_and_the_running_config_stays() {
    let mut w = world();
    let port = w.port;
    let target = move |name: &str| spec(name, port);
    let path = w.bastion.config_path().display().to_string();
    let good = std::fs::read_to_string(w.bastion.config_path()).unwrap();

    // A live session across all the refused reloads.
    let stop = stop_file("refused");
    let (child, out) = live_session(&w, "db-1", &stop, "refused");
    eventually("the live session runs", || ticks(&out) >= 1);

    // Each file below would also add db-3; none may take effect.
    let with_db3 = |text: &str| format!("{text}{}", target("db-3").toml());
    let cases = [
        (
            "a TOML syntax error",
            with_db3(&format!("{good}\n[[targets]\nname = \"db-4\"\n")),
            // The line of the broken header: after the file and one blank line.
            format!("config: line {}:", good.lines().count() + 2),
        ),
        (
            "an unknown key",
            with_db3(&format!(
                "{good}\n[[targets]]\nname = \"db-4\"\naddress = \"127.0.0.1\"\ncolour = \"blue\"\n"
            )),
            "unknown field `colour`".to_owned(),
        ),
        (
            "a new listen address",
            with_db3(&good.replace(
                &format!("listen = \"127.0.0.1:{}\"", w.bastion.port()),
                &format!("listen = \"127.0.0.1:{}\"", free_port()),
            )),
            "needs a restart: listen".to_owned(),
        ),
    ];
    for (what, text, why) in &cases {
        assert_ne!(text, &good, "{what}");
        std::fs::write(w.bastion.config_path(), text).unwrap();
        let said = w.bastion.reload();
        let line = said
            .lines()
            .find(|l| l.contains("config reload refused"))
            .unwrap_or_else(|| panic!("{what}: no refusal in the log:\n{said}"));
        assert!(line.contains("ERROR"), "{what}: at error level: {line}");
        assert!(
            line.contains(&path),
            "{what}: the log names the file: {line}"
        );
        assert!(
            said.contains(why.as_str()),
            "{what}: the log says {why:?}:\n{said}"
        );
        assert!(
            w.bastion.is_running(),
            "{what}: a bad file never stops the bastion"
        );
        // The running config stays: the old targets, on the old port.
        reaches(&w, "db-2");
        unknown(&w, "db-3");
    }
    let at_end = ticks(&out);
    eventually("the live session still ticks", || ticks(&out) > at_end);
    assert_eq!(
        metric(
            &w,
            "rampart_bastion_config_reloads_total{outcome=\"refused\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &w,
            "rampart_bastion_config_reloads_total{outcome=\"applied\"}"
        ),
        0.0
    );

    // Each refusal is in the chain, saying why.
    eventually("three refused reloads in the audit log", || {
        bodies(&w.ca, "bastion_config_reloaded").len() == 3
    });
    let reloads = bodies(&w.ca, "bastion_config_reloaded");
    for (ev, (what, text, why)) in reloads.iter().zip(&cases) {
        assert_eq!(ev["outcome"], "failure", "{what}: {ev}");
        let reason = ev["reason"].as_str().unwrap();
        assert!(
            reason.contains(&path) && reason.contains(why),
            "{what}: {reason}"
        );
        assert_eq!(
            ev["details"]["sha256"],
            format!("{:x}", Sha256::digest(text.as_bytes())),
            "{what}: the digest of the refused file"
        );
    }

    // Fixed, the same file (with db-3) is taken.
    std::fs::write(w.bastion.config_path(), with_db3(&good)).unwrap();
    let said = w.bastion.reload();
    assert!(said.contains("config reloaded"), "{said}");
    reaches(&w, "db-3");
    let text = finish(child, &out, &stop);
    assert!(ticks_in(&text) > at_end, "{text}");
    w.bastion.stop();
    w.ca.verify_audit().assert_success("audit verify");
}

fn ticks_in(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("tick ")).count()
}

/// `systemctl reload` while the bastion is still starting (here: waiting for
/// the CA's revocation list, the longest step) must not kill it, which is
/// SIGHUP's default action, and the reload is carried out once it runs.
#[test]
fn a_reload_sent_while_the_bastion_starts_neither_kills_it_nor_is_lost() {
    let mut w = world();
    w.bastion.stop();
    w.ca.stop();
    let log = w.bastion.log_path();
    let mark = w.bastion.log().len();
    let waiting = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .get(mark..)
            .is_some_and(|s| s.contains("revocation list not loaded yet"))
    };
    let mut sent = false;
    let ca = &mut w.ca;
    w.bastion.start_while(|pid| {
        if !sent && waiting(&log) {
            let mut kill = std::process::Command::new("kill");
            kill.args(["-HUP", &pid.to_string()]);
            run_timeout(kill, None, Duration::from_secs(10)).assert_success("kill -HUP");
            sent = true;
            ca.start();
        }
    });
    assert!(
        sent,
        "the bastion never waited for the CA:\n{}",
        w.bastion.log()
    );
    assert!(w.bastion.is_running(), "{}", w.bastion.log());
    eventually("the early SIGHUP is handled once the bastion runs", || {
        w.bastion
            .log()
            .get(mark..)
            .is_some_and(|s| s.contains("SIGHUP: config reloaded"))
    });
    reaches(&w, "db-1");
}
