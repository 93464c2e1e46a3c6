//! The real `rampart` CLI, one home directory per person.
//!
//! Output contract assumed (kept loose on purpose, so wording can change):
//! - `rampart enroll … --code-stdin` prints the TOTP URI on a stdout line containing
//!   `otpauth://totp/`, then reads one code from stdin, then prints the recovery
//!   codes, one per line. A recovery code is taken to be the last
//!   whitespace-separated token of a line that looks like
//!   `[A-Za-z0-9]{4}(-[A-Za-z0-9]{4,})+` (so `  1) abcd-efgh-ijkl` works too).
//! - `rampart admin invite USER` prints a line `invite code: <CODE>`.
//! - `rampart login` writes `id_ed25519`, `id_ed25519-cert.pub`, `known_hosts` and
//!   `ssh_config` into `$RAMPART_HOME`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{describe, drain, run_timeout, wait_deadline, CmdOutput, DEFAULT_TIMEOUT};
use crate::totp::Totp;
use crate::{bin, Ca};

/// `rampart` for one person, with its own `RAMPART_HOME`.
#[derive(Debug, Clone)]
pub struct Cli {
    /// Rampart user name this home belongs to.
    pub user: String,
    home: PathBuf,
    ca_url: String,
    ca_fingerprint: String,
}

/// A user who went through `rampart enroll`.
#[derive(Debug)]
pub struct Enrolled {
    /// Their CLI.
    pub cli: Cli,
    /// Their authenticator.
    pub totp: Totp,
    /// The recovery codes printed at enrolment.
    pub recovery_codes: Vec<String>,
    /// What `rampart enroll` printed.
    pub output: CmdOutput,
}

impl Cli {
    /// A CLI for `user` with home `<ca root>/home-<user>`, talking to `ca`.
    pub fn new(ca: &Ca, user: &str) -> Cli {
        Self::with_home(ca, user, ca.root().join(format!("home-{user}")))
    }

    /// A CLI with an explicit home directory.
    pub fn with_home(ca: &Ca, user: &str, home: PathBuf) -> Cli {
        std::fs::create_dir_all(&home).expect("create RAMPART_HOME");
        Cli {
            user: user.to_owned(),
            home,
            ca_url: ca.url().to_owned(),
            ca_fingerprint: ca.fingerprint().to_owned(),
        }
    }

    /// A CLI for a CA the harness did not start (`rampart dev`'s, say).
    pub fn for_ca(ca_url: &str, ca_fingerprint: &str, user: &str, home: PathBuf) -> Cli {
        std::fs::create_dir_all(&home).expect("create RAMPART_HOME");
        Cli {
            user: user.to_owned(),
            home,
            ca_url: ca_url.to_owned(),
            ca_fingerprint: ca_fingerprint.to_owned(),
        }
    }

    /// `$RAMPART_HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The private key `rampart login` writes.
    pub fn identity(&self) -> PathBuf {
        self.home.join("id_ed25519")
    }

    /// The certificate `rampart login` writes.
    pub fn cert(&self) -> PathBuf {
        self.home.join("id_ed25519-cert.pub")
    }

    /// The known_hosts `rampart login` writes.
    pub fn known_hosts(&self) -> PathBuf {
        self.home.join("known_hosts")
    }

    /// The ssh config include `rampart login` writes.
    pub fn ssh_config(&self) -> PathBuf {
        self.home.join("ssh_config")
    }

    /// A `rampart` command with this home and no agent.
    pub fn command(&self) -> Command {
        let mut c = Command::new(bin("rampart"));
        c.env("RAMPART_HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn");
        c
    }

    /// Run `rampart ARGS`, feeding `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> CmdOutput {
        let mut c = self.command();
        c.args(args);
        run_timeout(c, stdin.map(str::as_bytes), DEFAULT_TIMEOUT)
    }

    /// `rampart enroll --ca URL --ca-fingerprint FP --invite CODE --code-stdin`,
    /// answering the TOTP prompt with a code computed from the printed URI.
    /// `Err` carries the output when enrolment failed (a refused invite, say).
    pub fn try_enroll(&self, invite: &str) -> Result<Enrolled, CmdOutput> {
        let mut c = self.command();
        c.args([
            "enroll",
            "--ca",
            &self.ca_url,
            "--ca-fingerprint",
            &self.ca_fingerprint,
            "--invite",
            invite,
            "--code-stdin",
        ]);
        let desc = describe(&c);
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let err_t = drain(child.stderr.take().expect("piped stderr"));
        let (tx, rx) = mpsc::channel::<String>();
        let out_t = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });

        // Wait for the URI, then type the code like a person would.
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        let mut totp = None;
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(uri) = extract_otpauth(&line) {
                        let mut t = Totp::from_uri(&uri);
                        let code = t.fresh_code();
                        if let Some(mut w) = stdin.take() {
                            let _ = writeln!(w, "{code}");
                        }
                        totp = Some(t);
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        drop(stdin);
        let status = wait_deadline(&mut child, DEFAULT_TIMEOUT, &desc);
        let output = CmdOutput {
            cmd: desc,
            status,
            stdout: out_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
        };
        match totp {
            Some(totp) if output.success() => {
                let recovery_codes = parse_recovery_codes(&output.stdout);
                assert!(
                    !recovery_codes.is_empty(),
                    "enrolment succeeded but printed no recovery codes\n{output}"
                );
                Ok(Enrolled {
                    cli: self.clone(),
                    totp,
                    recovery_codes,
                    output,
                })
            }
            Some(_) => Err(output),
            None if output.success() => {
                panic!("enrolment succeeded without printing an otpauth://totp/ URI\n{output}")
            }
            None => Err(output),
        }
    }

    /// [`Cli::try_enroll`], panicking on failure.
    pub fn enroll(&self, invite: &str) -> Enrolled {
        self.try_enroll(invite)
            .unwrap_or_else(|out| panic!("rampart enroll failed\n{out}"))
    }

    /// `rampart login --ca URL --ca-fingerprint FP --user NAME --code-stdin [extra]`
    /// with `code` on stdin.
    pub fn login_with(&self, code: &str, extra: &[&str]) -> CmdOutput {
        let mut args = vec![
            "login",
            "--ca",
            &self.ca_url,
            "--ca-fingerprint",
            &self.ca_fingerprint,
            "--user",
            &self.user,
            "--code-stdin",
        ];
        args.extend_from_slice(extra);
        self.run(&args, Some(&format!("{code}\n")))
    }

    /// `rampart admin ARGS`.
    pub fn admin(&self, args: &[&str]) -> CmdOutput {
        let mut a = vec!["admin"];
        a.extend_from_slice(args);
        self.run(&a, None)
    }

    /// `rampart admin user add NAME --group G…`, asserting success.
    pub fn add_user(&self, name: &str, groups: &[&str]) {
        let mut a = vec!["user", "add", name];
        for g in groups {
            a.push("--group");
            a.push(g);
        }
        self.admin(&a).assert_success("rampart admin user add");
    }

    /// `rampart admin invite USER [--ttl TTL]`; returns the code from the
    /// `invite code: <CODE>` line.
    pub fn invite(&self, user: &str, ttl: Option<&str>) -> String {
        let mut a = vec!["invite", user];
        if let Some(t) = ttl {
            a.push("--ttl");
            a.push(t);
        }
        let out = self.admin(&a);
        out.assert_success("rampart admin invite");
        parse_invite_code(&out.stdout)
            .unwrap_or_else(|| panic!("no `invite code: <CODE>` line\n{out}"))
    }
}

impl Enrolled {
    /// Log in with a fresh TOTP code and `extra` arguments; returns the output
    /// without judging it.
    pub fn login_with(&mut self, extra: &[&str]) -> CmdOutput {
        let code = self.totp.fresh_code();
        self.cli.login_with(&code, extra)
    }

    /// Log in with a fresh TOTP code, asserting success and that the key,
    /// certificate, known_hosts and ssh_config were written.
    pub fn login(&mut self) -> CmdOutput {
        let out = self.login_with(&[]);
        out.assert_success("rampart login");
        for f in [
            self.cli.identity(),
            self.cli.cert(),
            self.cli.known_hosts(),
            self.cli.ssh_config(),
        ] {
            assert!(
                f.is_file(),
                "rampart login did not write {}\n{out}",
                f.display()
            );
        }
        out
    }
}

/// `rampart ARGS` with no home and no agent, as systemd or sshd run the host
/// helpers (`rampart host …`) on a production host.
pub fn rampart_on_host<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> CmdOutput {
    let mut c = Command::new(crate::bin("rampart"));
    c.env_remove("RAMPART_HOME")
        .env_remove("HOME")
        .env_remove("SSH_AUTH_SOCK")
        .args(args);
    run_timeout(c, None, DEFAULT_TIMEOUT)
}

/// Enrol the bootstrap admin with init's invite and log them in.
pub fn bootstrap_admin(ca: &Ca) -> Enrolled {
    let cli = Cli::new(ca, &ca.info().admin_user);
    let mut admin = cli.enroll(&ca.info().admin_invite);
    admin.login();
    admin
}

/// As `admin`: create `name` in `groups`, invite them, and enrol them with their own
/// CLI (not logged in yet).
pub fn onboard(ca: &Ca, admin: &Enrolled, name: &str, groups: &[&str]) -> Enrolled {
    admin.cli.add_user(name, groups);
    let code = admin.cli.invite(name, None);
    Cli::new(ca, name).enroll(&code)
}

/// The `otpauth://…` token in a line, if any.
pub fn extract_otpauth(line: &str) -> Option<String> {
    let start = line.find("otpauth://totp/")?;
    let rest = line.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>')
        .unwrap_or(rest.len());
    Some(rest.get(..end)?.to_owned())
}

/// Recovery codes in the enrol output (see the module docs for the assumed shape).
pub fn parse_recovery_codes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.contains("otpauth://"))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|tok| looks_like_recovery_code(tok))
        .map(str::to_owned)
        .collect()
}

fn looks_like_recovery_code(tok: &str) -> bool {
    let parts: Vec<&str> = tok.split('-').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| p.len() >= 4 && p.chars().all(|c| c.is_ascii_alphanumeric()))
        && parts.first().is_some_and(|p| p.len() == 4)
}

/// The code from an `invite code: <CODE>` line (case-insensitive label), else from
/// the `--invite <CODE>` of a suggested `rampart enroll` command line.
pub fn parse_invite_code(stdout: &str) -> Option<String> {
    let labelled = stdout.lines().find_map(|l| {
        let lower = l.to_ascii_lowercase();
        let at = lower.find("invite code:")?;
        l.get(at + "invite code:".len()..)?
            .split_whitespace()
            .next()
            .map(str::to_owned)
    });
    labelled.or_else(|| {
        stdout.lines().find_map(|l| {
            let mut toks = l.split_whitespace();
            toks.by_ref().find(|t| *t == "--invite")?;
            toks.next().map(str::to_owned)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enrol_output_loosely() {
        let out = "Scan this: otpauth://totp/rampart:alice?secret=ABC&issuer=rampart\n\
                   Recovery codes (shown once):\n  abcd-efgh-ijkl\n  2) WXYZ-1234\n\
                   expires 2026-11-28\nnot-acode\n";
        assert_eq!(
            extract_otpauth(out.lines().next().unwrap()).as_deref(),
            Some("otpauth://totp/rampart:alice?secret=ABC&issuer=rampart")
        );
        assert_eq!(parse_recovery_codes(out), ["abcd-efgh-ijkl", "WXYZ-1234"]);
    }

    #[test]
    fn parses_invite_line() {
        assert_eq!(
            parse_invite_code("user: bob\nInvite code: K7Q2-XXXX-YYYY\nexpires …").as_deref(),
            Some("K7Q2-XXXX-YYYY")
        );
        assert_eq!(parse_invite_code("nothing here"), None);
        assert_eq!(
            parse_invite_code("Invite for bob:\n  x\n  rampart enroll --ca U --invite ab12-cd34\n")
                .as_deref(),
            Some("ab12-cd34")
        );
    }
}
