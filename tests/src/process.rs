//! Running programs with a deadline and capturing what they said.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Default deadline for one command: generous, but a hung peer fails the test
/// instead of hanging the whole run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a peer (a daemon of ours, sshd, rsyslogd, the OIDC provider, an
/// agent) may take to start listening. Starting takes well under a second
/// here, but CI runs the suite on two shared cores beside other tests' peers,
/// where one start once stalled for over 30 s; the wait ends as soon as the
/// peer is ready, so a long deadline costs a passing run nothing.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A line on what a process that has not answered in time is doing (its
/// scheduler state, kernel wait channel and CPU time so far) and how loaded
/// the machine is, so that a timeout says whether the peer was hung, busy or
/// starved of CPU.
pub fn stall_report(pid: u32) -> String {
    let read = |what: &str| std::fs::read_to_string(format!("/proc/{pid}/{what}"));
    let Ok(stat) = read("stat") else {
        return format!("process {pid} is gone");
    };
    // Fields after the parenthesised command name: state is the first,
    // utime and stime (clock ticks, 100 per second here) the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let cpu = match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => format!("{:.2} s", (user + system) as f64 / 100.0),
        _ => "unknown".to_owned(),
    };
    format!(
        "process {pid}: state {}, waiting in {}, CPU time {cpu}; load average {}",
        fields.first().unwrap_or(&"?"),
        read("wchan").unwrap_or_default(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim_end()
    )
}

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub cmd: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl CmdOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Stdout and stderr together, for searching.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panic with everything the command printed unless it succeeded.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(self.success(), "{what}: expected success\n{self}");
        self
    }

    /// Panic unless the command failed (non-zero exit).
    pub fn assert_failure(&self, what: &str) -> &Self {
        assert!(!self.success(), "{what}: expected failure\n{self}");
        self
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }
}

/// A readable rendering of a command line.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to completion, feeding `stdin`, killing it after `timeout`.
pub fn run_timeout(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let desc = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn `{desc}`: {e}"));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // A writer thread: a child that exits without reading must not block us.
        thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let out_t = drain(child.stdout.take().expect("piped stdout"));
    let err_t = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_deadline(&mut child, timeout, &desc);
    CmdOutput {
        cmd: desc,
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Run `cmd` with [`DEFAULT_TIMEOUT`] and no input.
pub fn run(cmd: Command) -> CmdOutput {
    run_timeout(cmd, None, DEFAULT_TIMEOUT)
}

/// Read a pipe to its end on a thread.
pub fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait for `child`, killing it (and failing the test) if it outlives `timeout`.
pub fn wait_deadline(child: &mut Child, timeout: Duration, desc: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{desc}` did not finish within {timeout:?}; killed it");
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{desc}`: {e}"),
        }
    }
}

/// Send SIGTERM to `child` (through kill(1): this crate forbids `unsafe`) and wait up
/// to `grace` for it to exit; SIGKILL after that. Returns its exit status.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// SIGKILL `child` and reap it.
pub fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
