//! `rampart dev` — the README's first command — brings up the CA *and* the
//! bastion, and the tour it prints works with stock OpenSSH: the demo user
//! enrols with the printed invite, logs in, and `ssh -J rampart@localhost:PORT
//! LOGIN@TARGET` reaches a real sshd through the bastion with nothing in
//! known_hosts but the `@cert-authority` line `rampart login` wrote.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rampart_e2e::cli::parse_invite_code;
use rampart_e2e::process::terminate;
use rampart_e2e::{
    bin, ensure_test_account, free_port, require_peer, tempdir, Cli, KeyPair, Sshd, SshdOptions,
    TEST_ACCOUNT,
};

/// Kills `rampart dev` (and so its children) if the test fails half-way.
struct Dev(Option<Child>);

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = terminate(&mut c, Duration::from_secs(20));
        }
    }
}

fn wait_for(rx: &mpsc::Receiver<String>, seen: &mut String, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "`rampart dev` never printed {want:?}:\n{seen}"
        );
        match rx.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("`rampart dev` exited before printing {want:?}:\n{seen}")
            }
        }
    }
}

fn value_after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.split_once(label).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

#[test]
fn dev_runs_ca_and_bastion_and_the_printed_ssh_j_line_works() {
    let ssh = require_peer("ssh");
    require_peer("sshd");
    ensure_test_account();
    let work = tempdir("dev-tour");

    // The target: a real sshd whose host key `rampart dev` pins. It will trust
    // the dev CA's user CA once that exists (sshd reads the file per login).
    let host_key = KeyPair::ed25519(work.path(), "target_host_key");
    let placeholder = KeyPair::ed25519(work.path(), "placeholder_ca");
    let sshd = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![std::fs::read_to_string(&placeholder.public)
            .unwrap()
            .trim()
            .to_owned()],
        host_key: Some(host_key.clone()),
        ..SshdOptions::default()
    });
    sshd.set_principals(TEST_ACCOUNT, &[TEST_ACCOUNT]);

    let dir = work.path().join("dev");
    let ca_listen = format!("127.0.0.1:{}", free_port());
    let bastion_port = free_port();
    let mut child = Command::new(bin("rampart"))
        .args(["dev", "--dir"])
        .arg(&dir)
        .args(["--listen", &ca_listen])
        .args(["--bastion-listen", &format!("127.0.0.1:{bastion_port}")])
        .args(["--target", &format!("box=127.0.0.1:{}", sshd.port())])
        .arg("--target-host-key")
        .arg(&host_key.public)
        // The dev policy lets the demo user log in as the account running dev.
        .env("USER", TEST_ACCOUNT)
        .env("RAMPART_HOME", work.path().join("unused-home"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut dev = Dev(Some(child));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    wait_for(&rx, &mut out, "Press Ctrl-C to stop.");

    // What the tour prints.
    let jump = format!("ssh -J rampart@localhost:{bastion_port} {TEST_ACCOUNT}@box");
    assert!(out.contains(&jump), "no {jump:?} line in:\n{out}");
    assert!(
        out.contains(&format!(
            "ssh -p {bastion_port} {TEST_ACCOUNT}+box@localhost"
        )),
        "{out}"
    );
    let url = value_after(&out, "Rampart dev CA is running at").to_owned();
    let fingerprint = value_after(&out, "TLS fingerprint:").to_owned();
    let invite = parse_invite_code(&out).unwrap_or_else(|| panic!("no invite in:\n{out}"));
    sshd.set_user_ca_keys(&[std::fs::read_to_string(dir.join("user_ca.pub"))
        .unwrap()
        .trim()]);

    // The demo user follows the tour.
    let cli = Cli::for_ca(&url, &fingerprint, "demo", work.path().join("home-demo"));
    let mut demo = cli.enroll(&invite);
    assert!(
        out.contains("after `rampart login --ssh-host box` as demo"),
        "{out}"
    );
    demo.login_with(&["--ssh-host", "box"])
        .assert_success("rampart login --ssh-host box");
    // The tour's `Include` of the CLI's own ssh_config, which offers the
    // certificate only to the dev bastion (`localhost`, as the CA names it) and
    // `box`; then what a test needs for every host: no prompts, no files but
    // the ones `rampart login` wrote.
    let config = work.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Include {inc}\nHost *\n  IdentitiesOnly yes\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 15\n",
            inc = demo.cli.ssh_config().display(),
        ),
    )
    .unwrap();
    let run_ssh = |args: &[&str]| {
        let mut c = Command::new(&ssh);
        c.env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(&config)
            .args(args);
        rampart_e2e::process::run_timeout(c, None, Duration::from_secs(60))
    };
    let o = run_ssh(&[
        "-J",
        &format!("rampart@localhost:{bastion_port}"),
        &format!("{TEST_ACCOUNT}@box"),
        "echo through-the-bastion",
    ]);
    o.assert_success("ssh -J through the dev bastion");
    assert_eq!(o.stdout.trim(), "through-the-bastion");
    let log = sshd.log();
    assert!(
        log.contains("session=") && log.contains("user=demo"),
        "the target did not see a per-session certificate:\n{log}"
    );
    // The no-config form.
    let o = run_ssh(&[
        "-p",
        &bastion_port.to_string(),
        &format!("{TEST_ACCOUNT}+box@localhost"),
        "echo direct-form",
    ]);
    o.assert_success("ssh LOGIN+TARGET@bastion");
    assert_eq!(o.stdout.trim(), "direct-form");
    // The tour's `rampart ls` and `rampart ssh`: the dev policy tells the CLI
    // where the dev bastion listens.
    let ls = demo.cli.run(&["ls"], None);
    ls.assert_success("rampart ls");
    assert!(
        ls.stdout
            .lines()
            .any(|l| l.starts_with("box ") && l.contains(TEST_ACCOUNT) && l.ends_with("localhost")),
        "{ls}"
    );
    let mut c = demo.cli.command();
    c.args(["ssh", "-o", "BatchMode=yes"])
        .arg(format!("{TEST_ACCOUNT}@box"))
        .arg("echo via-rampart-ssh");
    let o = rampart_e2e::process::run_timeout(c, None, Duration::from_secs(60));
    o.assert_success("rampart ssh through the dev bastion");
    assert_eq!(o.stdout.trim(), "via-rampart-ssh");

    // Stopping dev stops both daemons.
    let status = terminate(dev.0.as_mut().unwrap(), Duration::from_secs(30));
    dev.0 = None;
    assert!(
        status.is_some_and(|s| s.success()),
        "rampart dev: {status:?}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", bastion_port)).is_err(),
        "the bastion outlived `rampart dev`"
    );
}
