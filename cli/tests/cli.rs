//! The `rampart` binary as a user meets it, without a CA: help, completions, policy
//! and audit commands, and the exact one-line errors (and exit codes) for mistakes.
//! End-to-end tests against a running CA live in the workspace's `tests/` crate.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test helper is a failed test, not a crashed program.
// A test drives real binaries, which read the real clock: so does the test.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::Utc;
use rampart_audit::{AuditConfig, AuditLog, EventKind, NewEvent, Outcome};
use ssh_key::{getrandom::SysRng, rand_core::UnwrapErr, Algorithm, PrivateKey};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Run `rampart` with a private home, no agent, backtraces requested (to prove none
/// is ever printed), and `stdin` as standard input.
fn rampart_in(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env("RAMPART_HOME", home)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn rampart(args: &[&str]) -> (Output, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let out = rampart_in(home.path(), args, "");
    (out, home)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error contract: exactly one line `rampart: error: …` on stderr, nothing
/// Debug-formatted, no backtrace, and the documented exit code.
fn assert_error(o: &Output, code: i32, line: &str) {
    let err = stderr(o);
    assert_eq!(
        err,
        format!("rampart: error: {line}\n"),
        "stdout: {}",
        stdout(o)
    );
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("Error:") && !err.contains("backtrace") && !err.contains("{ "));
}

#[test]
fn help_works_for_every_command_group() {
    for args in [
        vec!["--help"],
        vec!["enroll", "--help"],
        vec!["login", "--help"],
        vec!["status", "--help"],
        vec!["logout", "--help"],
        vec!["admin", "--help"],
        vec!["admin", "user", "--help"],
        vec!["admin", "user", "add", "--help"],
        vec!["admin", "invite", "--help"],
        vec!["admin", "revoke", "--help"],
        vec!["admin", "krl", "--help"],
        vec!["admin", "host-cert", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["policy", "--help"],
        vec!["policy", "check", "--help"],
        vec!["policy", "test", "--help"],
        vec!["completions", "--help"],
        vec!["dev", "--help"],
        vec!["help", "admin"],
    ] {
        let (o, _h) = rampart(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("Usage: rampart"), "{args:?}: {out}");
        assert!(stderr(&o).is_empty(), "{args:?}");
    }
    let (o, _h) = rampart(&["--help"]);
    assert!(stdout(&o).contains("Exit codes: 0 ok"));
    let (o, _h) = rampart(&["--version"]);
    assert_eq!(
        stdout(&o),
        format!("rampart {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    let (o, _h) = rampart(&["--bogus"]);
    assert_error(
        &o,
        2,
        "unexpected argument '--bogus' found (see `rampart --help`)",
    );
    let (o, _h) = rampart(&["enroll", "--ca", "https://ca:8443"]);
    assert_error(
        &o,
        2,
        "the following required arguments were not provided: --invite <CODE> (see `rampart --help`)",
    );
    let (o, _h) = rampart(&["login", "--ttl", "forever"]);
    assert_error(
        &o,
        2,
        "invalid value 'forever' for '--ttl <DURATION>': invalid duration \"forever\": expected e.g. 90s, 10m, 1h, 1h30m, 30d (see `rampart --help`)",
    );
    let (o, _h) = rampart(&["admin", "revoke", "--serial", "1", "--user", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    // A bare group is a missing subcommand (with RAMPART_HOME set, as here; clap
    // shows the group's help instead when no argument or env var is present).
    let (o, _h) = rampart(&["admin"]);
    assert_error(
        &o,
        2,
        "'rampart admin' requires a subcommand but one was not provided [subcommands: user, \
         invite, revoke, krl, host-cert, host-token, host-tokens, bastion-token, help] (see `rampart --help`)",
    );
}

#[test]
fn completions_generate_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef rampart"),
        ("fish", "complete -c rampart"),
    ] {
        let (o, _h) = rampart(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let out = stdout(&o);
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
        assert!(
            out.contains("enroll") && out.contains("host-cert"),
            "{shell}"
        );
    }
    let (o, _h) = rampart(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Packaging and shell setup run `completions` where there may be no HOME (a
/// build chroot, a provisioning script): it needs no Rampart home.
#[test]
fn completions_need_no_home() {
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["completions", "bash"])
        .env_remove("HOME")
        .env_remove("RAMPART_HOME")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("complete -F _rampart"));
    // Other commands still want one: the early return is for completions only.
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["status"])
        .env_remove("HOME")
        .env_remove("RAMPART_HOME")
        .output()
        .unwrap();
    assert_error(
        &o,
        2,
        "cannot find your home directory: set HOME, RAMPART_HOME or pass --home",
    );
}

/// `rampart completions bash | head`: the reader goes away mid-script. The bash
/// script (≈ 90 KiB) is larger than a pipe's 64 KiB buffer, so the write fails
/// with EPIPE whatever the timing; that is one error line and exit 1, not a panic.
#[test]
fn completions_into_a_closed_pipe_is_one_error_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["completions", "bash"])
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_error(
        &o,
        1,
        "cannot write the completion script: Broken pipe (os error 32)",
    );
}

#[test]
fn policy_check_good_file() {
    let good = fixture("good.toml");
    let (o, _h) = rampart(&["policy", "check", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: OK (0 warning(s))\n", good.display())
    );
    assert!(stderr(&o).is_empty());
}

/// With the CA's config, `policy check` also says when a role needs
/// phishing-resistant keys that `[webauthn]` cannot vouch for; a config that
/// allow-lists a model or sets attestation roots silences it.
#[test]
fn policy_check_with_the_ca_config_warns_about_unattested_keys() {
    let good = fixture("good.toml");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart-ca.toml");
    let run = |config_text: &str| {
        std::fs::write(&config, config_text).unwrap();
        rampart(&[
            "policy",
            "check",
            good.to_str().unwrap(),
            "--ca-config",
            config.to_str().unwrap(),
        ])
        .0
    };
    let o = run("listen = \"127.0.0.1:8443\"\n[webauthn]\nrp_id = \"localhost\"\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "{}: warning: roles.dba needs a phishing-resistant factor",
            good.display()
        )) && out.contains("unattested-key")
            && out.ends_with("OK (1 warning(s))\n"),
        "{out}"
    );
    // No [webauthn] table at all: the defaults trust no model either.
    let o = run("listen = \"127.0.0.1:8443\"\n");
    assert!(stdout(&o).contains("roles.dba needs"), "{}", stdout(&o));
    for trusting in [
        "[webauthn]\nallowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]\n",
        "[webauthn]\nattestation_roots = [\"yubico.pem\"]\n",
    ] {
        let o = run(trusting);
        assert_eq!(
            stdout(&o),
            format!("{}: OK (0 warning(s))\n", good.display()),
            "{trusting}"
        );
    }
    // An unreadable config is a usage problem, not a silent pass.
    let o = run("[webauthn\n");
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn policy_check_syntax_error_is_one_line_exit_8() {
    let bad = fixture("syntax_error.toml");
    let (o, _h) = rampart(&["policy", "check", bad.to_str().unwrap()]);
    assert_error(
        &o,
        8,
        &format!(
            "{}: line 5: unknown field `max_tll`, expected one of `principals`, `max_ttl`, \
             `min_factor`, `allow_recovery`, `mfa_max_age`, `source_address`, `extensions`, \
             `targets`, `logins`, `access`, `webauthn_link`, `session_mfa`, `record_input`, `record`, `record_metered_mib`, `port_forwarding`, \
             `agent_forwarding`, `target_labels`, `oidc_acr`, `oidc_amr`, `fallback_factor`",
            bad.display()
        ),
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn policy_check_error_lint_fails_exit_8() {
    let f = fixture("lint_error.toml");
    let (o, _h) = rampart(&["policy", "check", f.to_str().unwrap()]);
    assert_error(&o, 8, &format!("{}: 1 error(s), 1 warning(s)", f.display()));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with(&format!("{}: error: deny[1]", f.display())));
    assert!(lines[1].starts_with(&format!(
        "{}: warning: roles.orphan is unreachable",
        f.display()
    )));
}

#[test]
fn policy_check_missing_file_exit_9() {
    let (o, h) = rampart(&["policy", "check", "/nonexistent/policy.toml"]);
    assert_error(
        &o,
        9,
        "cannot read /nonexistent/policy.toml: No such file or directory",
    );
    drop(h);
}

#[test]
fn policy_test_allow_exit_0() {
    let good = fixture("good.toml");
    let (o, _h) = rampart(&[
        "policy",
        "test",
        good.to_str().unwrap(),
        "--user",
        "alice",
        "--groups",
        "engineers",
        "--login",
        "deploy",
        "--ttl",
        "6h",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("ALLOW alice\n"), "{out}");
    assert!(out.contains("  principals:     alice, deploy\n"), "{out}");
    assert!(out.contains("  ttl:            4h (14400s)\n"), "{out}");
    assert!(out.contains("  extensions:     permit-pty\n"), "{out}");
    assert!(out.contains("  source-address: any\n"), "{out}");
    assert!(out.contains("clamped to 4h"), "{out}");
}

#[test]
fn policy_test_deny_exit_7_text_and_json() {
    let good = fixture("good.toml");
    let path = good.to_str().unwrap();
    let (o, _h) = rampart(&["policy", "test", path, "--user", "bob", "--groups", "dbas"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "DENY (factor_too_weak): role dba needs a phishing-resistant factor; you used totp (otp)\n"
    );
    assert!(stderr(&o).is_empty());

    // The same request with a strong enough factor is allowed.
    let (o, _h) = rampart(&[
        "policy",
        "test",
        path,
        "--user",
        "bob",
        "--groups",
        "dbas",
        "--factor",
        "webauthn-uv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // A role that takes keys only from the user's own machine: the same key
    // approved through the CA's page is refused, with its own code.
    let dir = tempfile::tempdir().unwrap();
    let desk = dir.path().join("desk.toml");
    std::fs::write(
        &desk,
        "version = 1\n[roles.desk]\nprincipals = [\"root\"]\nmin_factor = \"unattested-key\"\n\
         webauthn_link = false\n[groups]\ndesk = [\"desk\"]\n",
    )
    .unwrap();
    let desk = desk.to_str().unwrap();
    let ask = |factor: &str| {
        rampart(&[
            "policy", "test", desk, "--user", "bob", "--groups", "desk", "--factor", factor,
        ])
    };
    let (o, _h) = ask("webauthn-uv-link");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("DENY (webauthn_link_refused): role desk accepts a security key"),
        "{}",
        stdout(&o)
    );
    let (o, _h) = ask("webauthn-uv");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // No role at all, as JSON.
    let (o, _h) = rampart(&["policy", "test", path, "--user", "eve", "--json"]);
    assert_eq!(o.status.code(), Some(7));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["code"], "no_role");

    // Allowed, as JSON.
    let (o, _h) = rampart(&[
        "policy",
        "test",
        path,
        "--user",
        "alice",
        "--groups",
        "engineers",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["principals"], serde_json::json!(["alice", "deploy"]));
    assert_eq!(v["ttl_seconds"], 3600);

    // A login the roles do not grant is denied.
    let (o, _h) = rampart(&[
        "policy",
        "test",
        path,
        "--user",
        "alice",
        "--groups",
        "engineers",
        "--login",
        "root",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("DENY ("), "{}", stdout(&o));
}

#[test]
fn audit_verify_missing_file_exit_9() {
    let (o, _h) = rampart(&["audit", "verify", "--db", "/nonexistent/audit.db"]);
    assert_error(
        &o,
        9,
        "cannot read /nonexistent/audit.db: No such file or directory",
    );
    // And it did not create the file.
    assert!(!Path::new("/nonexistent/audit.db").exists());
}

#[test]
fn audit_verify_non_database_exit_6() {
    let (o, _h) = rampart(&[
        "audit",
        "verify",
        "--db",
        fixture("good.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(6));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("rampart: error: cannot verify "), "{err}");
}

/// Write a real signed audit log with `rampart-audit`, verify it, then edit one byte
/// of an event in the file (as an attacker with disk access would) and verify again.
#[test]
fn audit_verify_real_log_then_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = PrivateKey::random(&mut UnwrapErr(SysRng), Algorithm::Ed25519).unwrap();
    let pubkey = dir.path().join("audit.pub");
    std::fs::write(&pubkey, key.public_key().to_openssh().unwrap()).unwrap();
    let log = AuditLog::open(&db, Some(key), AuditConfig::default()).unwrap();
    let now = Utc::now();
    for user in ["alice", "bobby", "carol"] {
        log.append(NewEvent::new(EventKind::CertIssued, Outcome::Success, now).user(user))
            .unwrap();
    }
    log.close().unwrap();
    drop(log);

    let (db_s, pk_s) = (db.to_str().unwrap(), pubkey.to_str().unwrap());
    let (o, _h) = rampart(&["audit", "verify", "--db", db_s, "--audit-pubkey", pk_s]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).lines().next(),
        Some("OK: 3 events, 1 checkpoints verified")
    );

    // Without the key the chain still verifies, with a note.
    let (o, _h) = rampart(&["audit", "verify", "--db", db_s]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("signatures were not checked"));

    // A wrong key: checkpoint signature fails.
    let other = PrivateKey::random(&mut UnwrapErr(SysRng), Algorithm::Ed25519).unwrap();
    let other_pub = dir.path().join("other.pub");
    std::fs::write(&other_pub, other.public_key().to_openssh().unwrap()).unwrap();
    let (o, _h) = rampart(&[
        "audit",
        "verify",
        "--db",
        db_s,
        "--audit-pubkey",
        other_pub.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("FAILED at sequence "),
        "{}",
        stdout(&o)
    );

    // Edit "bobby" → "mallo" inside the second event's stored body.
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = br#""user":"bobby""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("event body in the database file");
    bytes[at + 8..at + 13].copy_from_slice(b"mallo");
    std::fs::write(&db, &bytes).unwrap();

    let (o, _h) = rampart(&["audit", "verify", "--db", db_s, "--audit-pubkey", pk_s]);
    assert_eq!(o.status.code(), Some(6), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("FAILED at sequence 2: "), "{out}");
    assert!(stderr(&o).is_empty());
}

#[test]
fn login_without_config_gives_the_enroll_hint() {
    let (o, _h) = rampart(&["login"]);
    assert_error(
        &o,
        3,
        "no CA configured: run `rampart enroll --ca URL --ca-fingerprint SHA256:… --invite CODE` first, or pass --ca",
    );
}

#[test]
fn enroll_without_fingerprint_says_where_to_find_it() {
    let (o, _h) = rampart(&["enroll", "--ca", "https://127.0.0.1:1", "--invite", "x"]);
    assert_error(
        &o,
        2,
        "pass --ca-fingerprint (printed by `rampart-ca init`)",
    );
}

#[test]
fn bad_fingerprint_and_url_are_usage_errors() {
    let (o, _h) = rampart(&[
        "login",
        "--ca",
        "https://127.0.0.1:1",
        "--ca-fingerprint",
        "SHA256:short",
        "--user",
        "a",
    ]);
    assert_error(
        &o,
        2,
        "invalid CA fingerprint \"SHA256:short\": expected SHA256:<base64> as printed by `rampart-ca init`",
    );
    let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let (o, _h) = rampart(&[
        "login",
        "--ca",
        "http://127.0.0.1:1",
        "--ca-fingerprint",
        fp,
        "--user",
        "a",
    ]);
    assert_error(
        &o,
        2,
        "invalid CA URL \"http://127.0.0.1:1\": expected https://host:port",
    );
}

#[test]
fn login_to_unreachable_ca_exit_4_and_nothing_saved() {
    let home = tempfile::tempdir().unwrap();
    let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let o = rampart_in(
        home.path(),
        &[
            "login",
            "--ca",
            "https://127.0.0.1:1",
            "--ca-fingerprint",
            fp,
            "--user",
            "alice",
            "--code-stdin",
        ],
        "123456\n",
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rampart: error: cannot reach the CA at https://127.0.0.1:1: "),
        "{err}"
    );
    assert!(!home.path().join("session.json").exists());
    assert!(!home.path().join("config.toml").exists());
}

#[test]
fn login_with_empty_code_is_refused_locally() {
    let home = tempfile::tempdir().unwrap();
    let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let o = rampart_in(
        home.path(),
        &[
            "login",
            "--ca",
            "https://127.0.0.1:1",
            "--ca-fingerprint",
            fp,
            "--user",
            "alice",
        ],
        "\n",
    );
    // The prompt goes to stderr, then the one error line.
    let err = stderr(&o);
    assert!(
        err.starts_with("TOTP code for alice at https://127.0.0.1:1: "),
        "{err}"
    );
    assert!(err.ends_with("rampart: error: no code given\n"), "{err}");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn admin_without_session_says_log_in_first() {
    for args in [
        vec!["admin", "user", "list"],
        vec!["admin", "user", "add", "bob", "--group", "eng"],
        vec!["admin", "invite", "bob"],
        vec!["admin", "revoke", "--serial", "3"],
        vec!["admin", "krl", "-o", "krl.bin"],
    ] {
        let (o, _h) = rampart(&args);
        assert_error(&o, 3, "log in first (`rampart login`)");
    }
}

#[test]
fn admin_with_expired_session_says_log_in_first() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "ca_url = \"https://127.0.0.1:1\"\nca_fingerprint = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\nuser = \"admin\"\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join("session.json"),
        r#"{"token":"t","user":"admin","admin":true,"mfa_method":"totp","mfa_time":"2020-01-01T00:00:00Z","expires_at":"2020-01-01T01:00:00Z"}"#,
    )
    .unwrap();
    let o = rampart_in(home.path(), &["admin", "user", "list"], "");
    assert_error(&o, 3, "log in first (`rampart login`)");
    // A live session goes to the network: unreachable CA, exit 4.
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    std::fs::write(
        home.path().join("session.json"),
        format!(r#"{{"token":"t","user":"admin","admin":true,"mfa_method":"totp","mfa_time":"2020-01-01T00:00:00Z","expires_at":"{later}"}}"#),
    )
    .unwrap();
    let o = rampart_in(home.path(), &["admin", "user", "list"], "");
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1);
}

#[test]
fn host_cert_with_missing_key_file_exit_9() {
    let (o, _h) = rampart(&[
        "admin",
        "host-cert",
        "--name",
        "db-1",
        "--pubkey",
        "/nonexistent/key.pub",
    ]);
    assert_error(
        &o,
        9,
        "cannot read /nonexistent/key.pub: No such file or directory",
    );
}

#[test]
fn status_and_logout_when_logged_out() {
    let (o, h) = rampart(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "not logged in\n");
    assert!(stderr(&o).is_empty());
    let o = rampart_in(h.path(), &["logout"], "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "Not logged in.\n");
}

#[test]
fn status_with_expired_certificate_exit_1() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "ca_url = \"https://ca.example:8443\"\nca_fingerprint = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\nuser = \"alice\"\n",
    )
    .unwrap();
    // A real certificate made by ssh-keygen, valid in 2020 only.
    let key = home.path().join("id_ed25519");
    let ca = home.path().join("ca");
    for k in [&key, &ca] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(k)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let st = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args([
            "-I",
            "alice",
            "-n",
            "alice,root",
            "-z",
            "77",
            "-V",
            "20200101:20200102",
        ])
        .arg(key.with_extension("pub"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = rampart_in(home.path(), &["status"], "");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("user:        alice\n"), "{out}");
    assert!(
        out.contains("CA:          https://ca.example:8443 (SHA256:"),
        "{out}"
    );
    assert!(
        out.contains("certificate: serial 77, principals alice, root, expired at 2020-01-02"),
        "{out}"
    );
    assert!(out.ends_with("not logged in\n"), "{out}");

    // Re-sign valid for the next hour: status exits 0.
    let st = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", "alice", "-n", "alice", "-z", "78", "-V", "-1m:+1h"])
        .arg(key.with_extension("pub"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = rampart_in(home.path(), &["status"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("serial 78, principals alice, valid for "),
        "{}",
        stdout(&o)
    );
}

/// A stand-in `rampart-ca`: `init` prints the JSON `rampart dev` expects; `serve`
/// behaves as `serve_body` says. Only `dev`'s process handling is under test here;
/// the real CA is driven by the workspace's end-to-end tests.
fn fake_ca(dir: &Path, serve_body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("fake-rampart-ca");
    let script = format!(
        "#!/bin/sh\n\
         case \"$1\" in\n\
         init) echo 'version = 1' > \"$3/policy.toml\"; echo '{{\"config\":\"'\"$3\"'/config.toml\",\"url\":\"https://127.0.0.1:1\",\
         \"tls_fingerprint\":\"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\",\
         \"admin_user\":\"admin\",\"admin_invite\":\"INV\",\"invite_expires_at\":\"2030-01-01T00:00:00Z\"}}' ;;\n\
         serve) {serve_body} ;;\n\
         *) exit 64 ;;\n\
         esac\n"
    );
    std::fs::write(&bin, script).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn dev_reports_a_ca_that_dies_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let bin = fake_ca(tmp.path(), "echo 'boom: cannot bind' >&2; exit 3");
    let dir = tmp.path().join("dev");
    let o = rampart_in(
        tmp.path(),
        &[
            "dev",
            "--dir",
            dir.to_str().unwrap(),
            "--ca-bin",
            bin.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "boom: cannot bind\nrampart: error: rampart-ca exited before it was ready \
         (exit status: 3); see its message above\n"
    );
    // The init output was kept (privately: it holds the admin invite).
    let state = dir.join("dev.json");
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(v["setup_complete"], false);
    assert_eq!(v["admin_invite"], "INV");
    // The new CA's policy got the dev bastion role for the demo user.
    let policy = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    assert!(policy.contains("[roles.dev-bastion]"), "{policy}");
    assert!(policy.contains("demo = [\"dev-bastion\"]"), "{policy}");
}

#[test]
fn dev_refuses_garbage_from_init() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("fake-rampart-ca");
    std::fs::write(&bin, "#!/bin/sh\necho 'not json'\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("dev");
    let o = rampart_in(
        tmp.path(),
        &[
            "dev",
            "--dir",
            dir.to_str().unwrap(),
            "--ca-bin",
            bin.to_str().unwrap(),
        ],
        "",
    );
    assert_error(
        &o,
        10,
        "`rampart-ca init --json` printed something unexpected: expected ident at line 1 column 2",
    );
    assert!(!dir.join("dev.json").exists());
}

/// SIGTERM to `rampart dev` reaches the CA child (which records it), and nothing is
/// left running afterwards.
#[test]
fn dev_forwards_sigterm_to_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("got-term");
    let pidfile = tmp.path().join("ca.pid");
    let body = format!(
        "echo $$ > {pid}; trap 'echo term > {marker}; exit 0' TERM; \
         while :; do sleep 0.1; done",
        pid = pidfile.display(),
        marker = marker.display()
    );
    let bin = fake_ca(tmp.path(), &body);
    let dir = tmp.path().join("dev");
    let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "dev",
            "--dir",
            dir.to_str().unwrap(),
            "--ca-bin",
            bin.to_str().unwrap(),
        ])
        .env("RAMPART_HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the fake CA runs (it never becomes healthy: nothing listens).
    let start = std::time::Instant::now();
    while !pidfile.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "CA never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert!(
        marker.exists(),
        "the CA did not receive SIGTERM; stderr: {}",
        stderr(&o)
    );
    let ca_pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", ca_pid.trim())).exists(),
        "CA still running"
    );
    // A requested stop is a clean exit, even before the CA was ready.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "rampart: stopping rampart-ca (signal again to kill it)\n"
    );
}
