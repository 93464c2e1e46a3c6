//! `rampart ls`, `rampart ssh` and the per-target Host blocks `rampart login`
//! writes, against a real `rampart-ca`, a joined `rampart-bastion` and a real
//! `sshd` target: the list comes from the CA's policy for the session's own
//! user, `rampart ssh` runs stock ssh through the bastion that serves the
//! target (and never runs it for a target the list does not hold), and plain
//! `ssh -F <Rampart's config> TARGET` works from the written blocks alone.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rampart_api::{paths, ClientError, Targets};
use rampart_e2e::bastion::{host_ca_target, Bastion, TargetSpec};
use rampart_e2e::process::{run_timeout, CmdOutput};
use rampart_e2e::{bootstrap_admin, eventually, onboard, require_peer, Ca, Enrolled, TEST_ACCOUNT};
use serde_json::Value;

const BASTION: &str = "bastion-1";
const T: Duration = Duration::from_secs(60);

/// `address` is where users dial the bastion: unknown until it has joined
/// (the harness picks its port then), so the first policy has none.
fn policy(admin: &str, address: Option<String>) -> String {
    let address = address.map_or(String::new(), |a| format!("address = \"{a}\"\n"));
    format!(
        r#"version = 1
[defaults]
min_factor = "otp"

[roles.dev]
principals = ["{{user}}"]
logins = ["{{user}}", "{TEST_ACCOUNT}"]
min_factor = "otp"
targets = {{ allow = ["db-*"], deny = ["db-secret"] }}

[roles.guarded]
principals = ["{{user}}"]
logins = ["{TEST_ACCOUNT}"]
min_factor = "otp"
session_mfa = true
targets = {{ allow = ["db-mfa"] }}

[roles.web]
principals = ["{{user}}"]
logins = ["{{user}}"]
min_factor = "otp"
targets = {{ allow = ["web-*"] }}

[groups]
engineers = ["dev", "guarded"]
webdevs = ["web"]

[users]
"{admin}" = ["dev"]

[bastions."{BASTION}"]
targets = ["db-1", "db-secret", "db-mfa", "web-1"]
{address}"#
    )
}

struct World {
    ca: Ca,
    alice: Enrolled,
    bob: Enrolled,
    _sshd: rampart_e2e::Sshd,
    bastion: Bastion,
}

fn world() -> World {
    let mut ca = Ca::init_with(None, "");
    let admin_name = ca.info().admin_user.clone();
    ca.write_policy(&policy(&admin_name, None));
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    let mut bob = onboard(&ca, &admin, "bob", &["webdevs"]);
    let sshd = host_ca_target(&ca, &admin, vec![]);
    let spec = |name: &str| TargetSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: sshd.port(),
        host_key: "host-ca".into(),
    };
    let mut bastion = Bastion::join(
        &ca,
        &admin,
        BASTION,
        &[
            spec("db-1"),
            spec("db-secret"),
            spec("db-mfa"),
            spec("web-1"),
        ],
    );
    bastion.start();
    let address = format!("127.0.0.1:{}", bastion.port());
    ca.write_policy(&policy(&admin_name, Some(address)));
    ca.reload();
    // The reload is asynchronous: wait for the address to be served.
    let probe = ca.api().with_token(admin_token(&admin));
    eventually("the CA serves the reloaded policy", || {
        probe
            .get_json::<Targets>(paths::TARGETS)
            .is_ok_and(|t| t.bastions.iter().any(|b| b.port == bastion.port()))
    });
    alice.login();
    bob.login();
    World {
        ca,
        alice,
        bob,
        _sshd: sshd,
        bastion,
    }
}

fn token(user: &Enrolled) -> String {
    let text = std::fs::read_to_string(user.cli.home().join("session.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn admin_token(admin: &Enrolled) -> String {
    token(admin)
}

fn api_code(r: Result<Targets, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API refusal, got {other:?}"),
    }
}

/// `rampart ssh ARGS` with `RAMPART_SSH` pointing at `ssh`.
fn rampart_ssh(user: &Enrolled, ssh: &Path, args: &[&str]) -> CmdOutput {
    let mut c = user.cli.command();
    c.env("RAMPART_SSH", ssh).arg("ssh").args(args);
    run_timeout(c, None, T)
}

#[test]
fn ls_lists_granted_targets_and_the_ca_answers_only_for_the_sessions_own_user() {
    let w = world();
    let out = w.alice.cli.run(&["ls"], None);
    out.assert_success("rampart ls");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("TARGET") && lines[0].contains("LOGINS"),
        "{out}"
    );
    let row = |t: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(t))
            .copied()
    };
    let db1 = row("db-1").unwrap_or_else(|| panic!("db-1 listed\n{out}"));
    assert!(
        db1.contains(&format!("alice,{TEST_ACCOUNT}")) && db1.contains(BASTION),
        "{db1}"
    );
    assert!(row("db-mfa").is_some_and(|l| l.contains("code")), "{out}");
    // Denied by a role's deny glob, and granted to nobody alice is.
    assert!(row("db-secret").is_none(), "{out}");
    assert!(row("web-1").is_none(), "{out}");

    let out = w.alice.cli.run(&["ls", "--json"], None);
    out.assert_success("rampart ls --json");
    let v: Value = serde_json::from_str(&out.stdout).expect("ls --json parses");
    assert_eq!(v["user"], "alice");
    let targets = v["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-1", "db-mfa"], "{v}");
    assert_eq!(
        targets[0]["logins"],
        serde_json::json!(["alice", TEST_ACCOUNT])
    );
    assert_eq!(targets[0]["bastion"], BASTION);
    assert_eq!(targets[0]["session_check"], "none");
    assert_eq!(targets[0]["pattern"], false);
    assert_eq!(targets[1]["session_check"], "code");
    assert_eq!(v["bastions"][0]["name"], BASTION);
    assert_eq!(v["bastions"][0]["host"], "127.0.0.1");
    assert_eq!(v["bastions"][0]["port"], w.bastion.port());

    // bob's session sees bob's roles: web-1, never alice's db targets.
    let bob: Value = serde_json::from_str(&w.bob.cli.run(&["ls", "--json"], None).stdout).unwrap();
    assert_eq!(bob["user"], "bob");
    let names: Vec<&str> = bob["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1"], "{bob}");

    // The API: no token, a forged one, and asking for another user are refused.
    let api = w.ca.api();
    assert_eq!(api_code(api.get_json(paths::TARGETS)).0, 401);
    let forged = api
        .clone()
        .with_token("rps_forged-token-that-was-never-issued");
    assert_eq!(api_code(forged.get_json(paths::TARGETS)).0, 401);
    let as_bob = api.clone().with_token(token(&w.bob));
    let (status, code) = api_code(as_bob.get_json(&format!("{}?user=alice", paths::TARGETS)));
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let mine: Targets = as_bob.get_json(paths::TARGETS).unwrap();
    assert_eq!(mine.user, "bob");

    // A malformed CA fingerprint in the environment is named as such, not
    // taken for a missing login.
    let mut c = w.bob.cli.command();
    c.env("RAMPART_CA_FINGERPRINT", "SHA256:not-a-fingerprint")
        .env("RAMPART_CA", w.ca.url())
        .arg("ls");
    let out = rampart_e2e::process::run(c);
    out.assert_failure("ls with a malformed RAMPART_CA_FINGERPRINT");
    assert!(out.stderr.contains("fingerprint"), "{out}");
    assert!(!out.stderr.contains("log in first"), "{out}");

    // After logout the session's token lists nothing.
    let alice_token = token(&w.alice);
    w.alice.cli.run(&["logout"], None).assert_success("logout");
    let gone = api.with_token(alice_token);
    assert_eq!(api_code(gone.get_json(paths::TARGETS)).0, 401);
    let out = w.alice.cli.run(&["ls"], None);
    assert_eq!(out.status.code(), Some(3), "not logged in\n{out}");
}

#[test]
fn rampart_ssh_and_plain_ssh_reach_the_target_through_the_bastion() {
    let w = world();
    let ssh = require_peer("ssh");
    let out = rampart_ssh(
        &w.alice,
        &ssh,
        &[
            "-o",
            "BatchMode=yes",
            &format!("{TEST_ACCOUNT}@db-1"),
            "echo",
            "through",
        ],
    );
    out.assert_success(&format!("rampart ssh …@db-1\n{}", w.bastion.log()));
    assert_eq!(out.stdout.trim(), "through", "{out}");
    // The remote command's exit status comes back.
    let out = rampart_ssh(
        &w.alice,
        &ssh,
        &["-oBatchMode=yes", &format!("{TEST_ACCOUNT}@db-1"), "exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{out}");

    // A target not in the list, and a login not granted there: refused before
    // ssh runs (the stand-in ssh would leave a mark).
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("ssh-ran");
    let fake = dir.path().join("fake-ssh");
    std::fs::write(&fake, format!("#!/bin/sh\ntouch {}\n", mark.display())).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (args, says) in [
        (
            vec![format!("{TEST_ACCOUNT}@db-secret"), "true".to_owned()],
            "db-secret is not a target you may reach",
        ),
        (
            vec![format!("{TEST_ACCOUNT}@web-1"), "true".to_owned()],
            "web-1 is not a target you may reach",
        ),
        (
            vec!["root@db-1".to_owned(), "true".to_owned()],
            "login root is not granted on db-1",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = rampart_ssh(&w.alice, &fake, &args);
        assert_eq!(out.status.code(), Some(5), "{out}");
        assert!(out.stderr.contains(says), "{out}");
        assert!(!mark.exists(), "ssh ran for {args:?}");
    }
    // The stand-in does run for a granted one (so the check above means something).
    rampart_ssh(&w.alice, &fake, &[&format!("{TEST_ACCOUNT}@db-1"), "true"])
        .assert_success("rampart ssh with the stand-in");
    assert!(mark.exists());

    // Plain ssh with the config login wrote: the Host blocks jump through the
    // bastion by themselves, and name nothing for every host.
    let config = w.alice.cli.ssh_config();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("ProxyJump bastion-1"), "{text}");
    assert!(!text.contains("Host *\n"), "{text}");
    let mut c = Command::new(&ssh);
    c.env_remove("SSH_AUTH_SOCK").arg("-F").arg(&config).args([
        "-o",
        "BatchMode=yes",
        "-l",
        TEST_ACCOUNT,
        "db-1",
        "echo",
        "plain",
    ]);
    let out = run_timeout(c, None, T);
    out.assert_success(&format!("ssh -F {} db-1\n{text}", config.display()));
    assert_eq!(out.stdout.trim(), "plain");

    // A config from before the bastion served alice (no block for it): told
    // to log in again, and ssh does not run.
    std::fs::remove_file(&mark).unwrap();
    let stale: String = text.split("# Targets you reach").next().unwrap().to_owned();
    std::fs::write(&config, stale).unwrap();
    let out = rampart_ssh(&w.alice, &fake, &[&format!("{TEST_ACCOUNT}@db-1"), "true"]);
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert!(out.stderr.contains("run `rampart login` again"), "{out}");
    assert!(!mark.exists(), "ssh ran with a stale config");
}
