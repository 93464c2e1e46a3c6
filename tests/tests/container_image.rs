//! The OCI image (`packaging/container/Containerfile`), built by
//! `scripts/container` with real podman and started by podman-compose from
//! `packaging/container/compose.yaml`: read-only root file system,
//! unprivileged user without capabilities, state in a volume, the CA and
//! bastion ports published on loopback. From outside the container, the
//! host's own `rampart` enrols the tour's user with the invite the container
//! printed and logs in, and an SSH client reaches the bastion. Inside, nothing
//! can write the image.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rampart_e2e::process::{run_timeout, DEFAULT_TIMEOUT};
use rampart_e2e::CmdOutput;
use rampart_e2e::{eventually, free_port, require_peer, tempdir, workspace_root, Cli};

const IMAGE: &str = "localhost/rampart:e2e";

/// `podman ARGS` with the settings `scripts/container` wrote.
fn podman(args: &[&str]) -> CmdOutput {
    let mut c = Command::new(require_peer("podman"));
    c.args(args).env(
        "CONTAINERS_CONF",
        workspace_root().join("target/container/containers.conf"),
    );
    run_timeout(c, None, Duration::from_secs(180))
}

/// `podman-compose -p PROJECT -f packaging/container/compose.yaml ARGS`, with
/// the image, the container's name and the ports set through the file's
/// variables.
fn compose(project: &Project, args: &[&str]) -> CmdOutput {
    let mut c = Command::new(&project.bin);
    c.arg("-p")
        .arg(&project.name)
        .arg("-f")
        .arg(workspace_root().join("packaging/container/compose.yaml"))
        .args(args)
        .env(
            "CONTAINERS_CONF",
            workspace_root().join("target/container/containers.conf"),
        )
        .env("RAMPART_IMAGE", IMAGE)
        .env("RAMPART_CONTAINER", &project.name)
        .env("RAMPART_API_PORT", project.api_port.to_string())
        .env("RAMPART_SSH_PORT", project.ssh_port.to_string());
    run_timeout(c, None, Duration::from_secs(180))
}

/// A compose project (its container and volume), taken down on drop.
struct Project {
    /// podman-compose.
    bin: PathBuf,
    name: String,
    api_port: u16,
    ssh_port: u16,
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = compose(self, &["down", "--volumes"]);
    }
}

#[test]
fn the_image_runs_the_tour_read_only_as_an_unprivileged_user() {
    for peer in ["podman", "runc", "debootstrap"] {
        require_peer(peer);
    }
    let bin = require_peer("podman-compose");
    let mut build = Command::new(workspace_root().join("scripts/container"));
    build
        .current_dir(workspace_root())
        .env("IMAGE", IMAGE)
        .env("BIN_DIR", "target/debug");
    run_timeout(build, None, Duration::from_secs(600)).assert_success("scripts/container");

    let project = Project {
        bin,
        name: format!("rampart-e2e-{}", std::process::id()),
        api_port: free_port(),
        ssh_port: free_port(),
    };
    compose(&project, &["up", "--detach", "--no-build"]).assert_success("podman-compose up");
    let (api_port, ssh_port) = (project.api_port, project.ssh_port);

    // The tour prints the invite for its demo user once both daemons run.
    let mut logs = String::new();
    eventually("the tour in the container is up", || {
        logs = podman(&["logs", &project.name]).stdout;
        logs.contains("Press Ctrl-C to stop.")
    });
    let enroll_line = logs
        .lines()
        .find(|l| l.trim_start().starts_with("rampart enroll "))
        .unwrap_or_else(|| panic!("no enroll line in:\n{logs}"));
    let word_after = |flag: &str| {
        let mut words = enroll_line.split_whitespace();
        words.find(|w| *w == flag);
        words
            .next()
            .unwrap_or_else(|| panic!("{flag} in {enroll_line}"))
            .to_owned()
    };
    // The tour listens on the wildcard address; it prints one to dial.
    assert_eq!(
        word_after("--ca"),
        "https://127.0.0.1:8443",
        "{enroll_line}"
    );
    let fingerprint = word_after("--ca-fingerprint");
    let invite = word_after("--invite");

    // From the host, through the published port.
    let home: PathBuf = tempdir("container-user").keep();
    let cli = Cli::for_ca(
        &format!("https://127.0.0.1:{api_port}"),
        &fingerprint,
        "demo",
        home,
    );
    let mut demo = cli.enroll(&invite);
    demo.login();
    let cert = std::fs::read_to_string(demo.cli.cert()).unwrap();
    assert!(
        cert.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{cert}"
    );

    let mut scan = Command::new(require_peer("ssh-keyscan"));
    scan.args(["-p", &ssh_port.to_string(), "127.0.0.1"]);
    let scanned = run_timeout(scan, None, DEFAULT_TIMEOUT);
    assert!(
        scanned.stdout.contains("ssh-ed25519 ") || scanned.stderr.contains("SSH-2.0-"),
        "the bastion answers on the published port: {scanned}"
    );

    // Inside: an unprivileged user.
    let who = podman(&["exec", &project.name, "id", "-u"]);
    who.assert_success("podman exec id");
    assert_eq!(who.stdout.trim(), "10001");
    // Its process holds no capability, not even in its bounding set, and
    // cannot gain one.
    let status = podman(&["exec", &project.name, "cat", "/proc/1/status"]);
    status.assert_success("podman exec cat /proc/1/status");
    for (field, want) in [
        ("CapEff", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("NoNewPrivs", "1"),
    ] {
        let got = status
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(str::trim);
        assert_eq!(got, Some(want), "{field} in /proc/1/status: {status}");
    }
    // Even root in the container cannot change the image.
    let write = podman(&[
        "exec",
        "--user",
        "root",
        &project.name,
        "touch",
        "/usr/local/bin/planted",
    ]);
    assert!(!write.status.success(), "{write}");
    assert!(write.stderr.contains("Read-only file system"), "{write}");
    let inspect = podman(&[
        "inspect",
        "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
        &project.name,
    ]);
    assert_eq!(inspect.stdout.trim(), "true 10001:10001", "{inspect}");
}
