//! End-to-end harness: drives the real `rampart-ca` and `rampart` binaries against
//! real peers that nobody here wrote — OpenSSH `sshd`, `ssh`, `ssh-keygen` and the
//! `sqlite3` shell — each on 127.0.0.1, each in its own temporary directory, torn
//! down (child processes killed) on `Drop`.
//!
//! It owns process plumbing and parsing of the peers' output. It must never mock a
//! peer that can be run for real, and never let a test pass silently when a peer is
//! missing: [`require_peer`] panics, so the test fails.
//!
//! Every helper panics with a message naming what failed: this crate is only linked
//! by tests, where a panic is a failed test with a readable reason, not a crashed
//! daemon. That is why the workspace's panic-family lints are allowed here.
// A test drives real binaries, which read the real clock: so does the test.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod api_flow;
pub mod audit_db;
pub mod bastion;
pub mod ca;
pub mod chromium;
pub mod cli;
pub mod completions;
pub mod fido2;
pub mod gameday;
pub mod ha;
pub mod http;
pub mod keys;
pub mod oidc;
pub mod pam;
pub mod policy;
pub mod process;
pub mod prometheus;
pub mod rsyslog;
pub mod small_disk;
pub mod softhsm;
pub mod sshd;
pub mod terminal;
pub mod totp;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

pub use api_flow::{api_admin, api_onboard, ApiUser, Session};
pub use audit_db::{audit_verify, audit_verify_args, audit_verify_with, AuditDb};
pub use ca::{Ca, InitInfo};
pub use cli::{bootstrap_admin, onboard, rampart_on_host, Cli, Enrolled};
pub use keys::{KeyPair, KeygenCa};
pub use process::CmdOutput;
pub use sshd::{
    ensure_test_account, ssh_login, ssh_login_trusting, ssh_with_config, Sshd, SshdOptions,
    TEST_ACCOUNT,
};
pub use totp::Totp;

/// Root of the Cargo workspace (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Path of one of the workspace's binaries, `target/debug/<name>`; or
/// `$RAMPART_BIN_DIR/<name>` when that is set and holds it (benchmarks point it at
/// a release build, e.g. `target/bench/release` with only the CA and the bastion,
/// so the daemons are measured optimised while the CLI comes from the debug build).
///
/// Panics when it has not been built: the e2e tests need the real binaries, and
/// `cargo test -p rampart-e2e` alone does not build another package's binaries.
pub fn bin(name: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("RAMPART_BIN_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        let p = if d.is_absolute() {
            d
        } else {
            workspace_root().join(d)
        }
        .join(name);
        if p.is_file() {
            return p;
        }
    }
    let p = target_dir().join("debug").join(name);
    if !p.is_file() {
        panic!(
            "binary {name} not found at {}: run `cargo build --workspace` first",
            p.display()
        );
    }
    p
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// There is a small window in which another process can take it; every daemon
/// started with such a port fails loudly (not silently) if that happens.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Start `what` on a port from [`free_port`], and again on a fresh port (up to
/// five tries) when `start` reports, as `Err` with the daemon's log, that
/// another process bound the port first: a port is free when chosen, not
/// necessarily when the daemon binds it, with other tests starting daemons
/// beside this one.
pub fn on_a_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port();
        match start(port) {
            Ok(started) => return started,
            Err(log) if attempt < 5 => {
                eprintln!("{what} lost port {port} to another process, retrying:\n{log}")
            }
            Err(log) => panic!("{what} lost its port {attempt} times; the last:\n{log}"),
        }
    }
}

/// Locate a real peer program (`sshd`, `ssh`, `ssh-keygen`, `sqlite3`, …) on `PATH`
/// or in the sbin directories (`sshd` lives in /usr/sbin, often not on a user's
/// `PATH`).
///
/// Panics when it is missing: a test must never pass without its peer.
/// `scripts/test` installs the peers; under CI (`RAMPART_E2E_REQUIRE_PEERS=1`) it
/// refuses to run at all without them.
pub fn require_peer(name: &str) -> PathBuf {
    if let Some(p) = find_program(name) {
        return p;
    }
    let strict = std::env::var("RAMPART_E2E_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    panic!(
        "required peer `{name}` is not installed (searched PATH, /usr/sbin, /usr/bin, /sbin, \
         /bin){}; run scripts/test, which installs openssh-server, openssh-client and sqlite3",
        if strict {
            " and RAMPART_E2E_REQUIRE_PEERS=1"
        } else {
            ""
        }
    );
}

fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A fresh temporary directory for one test's files. Kept on disk (and its path
/// printed) when `RAMPART_E2E_KEEP=1`, for post-mortems.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    let mut d = tempfile::Builder::new()
        .prefix(&format!("rampart-e2e-{prefix}-"))
        .tempdir()
        .expect("create tempdir");
    if std::env::var("RAMPART_E2E_KEEP").is_ok_and(|v| v == "1") {
        eprintln!("keeping {}", d.path().display());
        d.disable_cleanup(true);
    }
    d
}

/// Poll `f` every 100 ms until it holds; panic naming `what` after
/// [`process::DEFAULT_TIMEOUT`] (as long as a loaded CI machine may need; a
/// passing wait ends at once). For what a daemon does on its own time (a
/// reload, a spool drained, an event written after the reply).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + process::DEFAULT_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}

/// Whether `haystack` mentions `n` as a whole number (not as part of a longer one).
pub fn mentions_number(haystack: &str, n: u64) -> bool {
    let want = n.to_string();
    haystack
        .split(|c: char| !c.is_ascii_digit())
        .any(|tok| tok == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_port_is_tried_again_on_another() {
        let mut tried = Vec::new();
        let got = on_a_free_port("test daemon", |port| {
            tried.push(port);
            if tried.len() < 3 {
                Err("Address already in use".to_owned())
            } else {
                Ok(port)
            }
        });
        assert_eq!(tried.len(), 3);
        assert_eq!(got, tried[2]);
    }

    #[test]
    #[should_panic(expected = "test daemon lost its port 5 times")]
    fn a_port_lost_five_times_fails_the_start() {
        on_a_free_port::<()>("test daemon", |_| Err("Address already in use".to_owned()));
    }

    #[test]
    fn mentions_number_matches_whole_numbers_only() {
        assert!(mentions_number("bad hash at seq 17: mismatch", 17));
        assert!(mentions_number("#17", 17));
        assert!(!mentions_number("seq 170", 17));
        assert!(!mentions_number("seq 117", 17));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("tests").is_dir());
    }
}
