//! A program on a real pseudo-terminal: util-linux `script` allocates the pty
//! and makes it the child's controlling terminal, so a program that reads a
//! password from `/dev/tty` with echo off (`rampart-ca init`) sees what a person
//! at a terminal would, and the test types each answer when its prompt appears.

use std::io::{Read as _, Write as _};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process::wait_deadline;
use crate::require_peer;

/// Run the shell command line `command` on a fresh terminal (working directory
/// `/`), answering each `(prompt, answer)` in order: wait for the prompt, then
/// type the answer and Enter. Returns the exit status and everything the
/// terminal showed (stdout and stderr of the command, CR LF line ends).
///
/// Panics when a prompt does not appear within 60 s.
pub fn answer_prompts(command: &str, exchange: &[(&str, &str)]) -> (ExitStatus, String) {
    let script = require_peer("script");
    let mut c = Command::new(script);
    c.args(["--quiet", "--return", "--command", command, "/dev/null"])
        .current_dir("/")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("spawn script for `{command}`: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Where the previous prompt was seen: the same prompt text asked twice must
    // be waited for twice.
    let mut seen = 0;
    for (prompt, answer) in exchange {
        let at = loop {
            if let Some(i) = shown.get(seen..).and_then(|rest| rest.find(prompt)) {
                break seen + i + prompt.len();
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(chunk) => shown.push_str(&String::from_utf8_lossy(&chunk)),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`{command}`: no prompt {prompt:?} ({e:?}); the terminal showed:\n{shown}"
                    );
                }
            }
        };
        seen = at;
        // A prompt is written just before the program turns echo off: give it a
        // moment, as a person would, so that what is echoed is the program's doing.
        std::thread::sleep(Duration::from_millis(500));
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("`{command}`: typing an answer: {e}\n{shown}"));
    }
    let status = wait_deadline(&mut child, Duration::from_secs(120), command);
    drop(stdin);
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
        shown.push_str(&String::from_utf8_lossy(&chunk));
    }
    (status, shown)
}
