//! How the daemons say they cannot start: one line on stderr,
//! `PROGRAM: error: what: why`, each cause once, exit status 1, for
//! `rampart-ca` and `rampart-bastion` alike (journald shows that line as the
//! unit's failure).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use rampart_e2e::bastion::scratch;
use rampart_e2e::process::run_timeout;
use rampart_e2e::{bin, CmdOutput};

fn run(program: &str, args: &[&str]) -> CmdOutput {
    let mut c = Command::new(bin(program));
    c.args(args).env("RAMPART_LOG", "off");
    run_timeout(c, None, Duration::from_secs(30))
}

/// One `PROGRAM: error:` line naming `needle`, exit 1.
fn one_error_line(out: &CmdOutput, program: &str, needle: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{}: {}", out.cmd, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let [line] = lines[..] else {
        panic!("one line: {:?}", out.stderr)
    };
    assert!(
        line.starts_with(&format!("{program}: error: ")),
        "{program}'s prefix: {line}"
    );
    assert!(
        !line.contains("Error:"),
        "not Rust's default report: {line}"
    );
    assert!(line.contains(needle), "names {needle}: {line}");
    line.to_owned()
}

#[test]
fn a_missing_config_is_one_line_naming_the_file_for_both_daemons() {
    let dir = scratch("daemon-errors");
    let missing = dir.path().join("nowhere.toml");
    let missing = missing.to_str().unwrap();
    for program in ["rampart-ca", "rampart-bastion"] {
        let out = run(program, &["serve", "--config", missing]);
        let line = one_error_line(&out, program, missing);
        assert_eq!(
            line.matches("No such file").count(),
            1,
            "the cause once: {line}"
        );
    }
}

#[test]
fn a_bastion_config_that_does_not_parse_is_one_line() {
    let dir = scratch("daemon-errors");
    let bad = dir.path().join("bastion.toml");
    std::fs::write(&bad, "name = \"b\"\nlisten = [\n").unwrap();
    let bad = bad.to_str().unwrap();
    for sub in ["check", "serve"] {
        let out = run("rampart-bastion", &[sub, "--config", bad]);
        one_error_line(&out, "rampart-bastion", "config");
    }
}
