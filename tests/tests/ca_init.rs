//! Where the real `rampart-ca init` gets the CA key passphrase, and where it
//! leaves it. A production CA never has its passphrase stored beside the keys it
//! encrypts: init asks on a terminal (a real pty, through util-linux `script`),
//! or takes the systemd credential `ca-passphrase` from `$CREDENTIALS_DIRECTORY`,
//! or a file or variable the operator names; without any of them it fails and
//! writes nothing. The daemon then starts from that credential, refuses a wrong
//! or missing one, and `check` warns about a passphrase file inside the CA
//! directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rampart_e2e::process::{run, terminate, CmdOutput};
use rampart_e2e::terminal::answer_prompts;
use rampart_e2e::{bin, free_port, tempdir};

/// What the tests type or store as the passphrase: long enough for init's
/// minimum, and distinctive, so that finding it in a file means it leaked.
const PASSPHRASE: &str = "ZebraQuartz-passphrase-7731";

/// `rampart-ca init --dir DIR --listen 127.0.0.1:PORT` plus `args`, with no
/// credentials directory inherited from whoever runs the tests.
fn init_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("rampart-ca"));
    c.args(["init", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("CREDENTIALS_DIRECTORY");
    c
}

/// A credentials directory as systemd makes one for a unit: the credential file
/// 0400, with no trailing newline. (systemd makes the directory 0500; 0700 here
/// lets the temporary directory be removed by a non-root test run.)
fn credentials_dir(parent: &Path, passphrase: &str) -> PathBuf {
    let dir = parent.join("credentials");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let file = dir.join("ca-passphrase");
    fs::write(&file, passphrase).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();
    dir
}

/// Every regular file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Fail if any file of the CA directory holds the passphrase in the clear.
fn assert_passphrase_not_in(ca: &Path) {
    assert!(!ca.join("secrets").exists(), "init wrote secrets/");
    let files = files_under(ca);
    assert!(
        files.len() > 5,
        "the CA directory is nearly empty: {files:?}"
    );
    for f in files {
        let bytes = fs::read(&f).unwrap();
        assert!(
            !bytes
                .windows(PASSPHRASE.len())
                .any(|w| w == PASSPHRASE.as_bytes()),
            "{} holds the key passphrase",
            f.display()
        );
    }
}

fn config_text(ca: &Path) -> String {
    fs::read_to_string(ca.join("config.toml")).unwrap()
}

/// `rampart-ca check --config CA/config.toml` with `CREDENTIALS_DIRECTORY` set
/// to `creds` (or unset).
fn check(ca: &Path, creds: Option<&Path>) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.args(["check", "--config"]).arg(ca.join("config.toml"));
    with_credentials(&mut c, creds);
    run(c)
}

fn with_credentials(c: &mut Command, creds: Option<&Path>) {
    match creds {
        Some(d) => c.env("CREDENTIALS_DIRECTORY", d),
        None => c.env_remove("CREDENTIALS_DIRECTORY"),
    };
}

/// `rampart-ca serve` until it prints its readiness line (≤ 60 s); its stderr
/// goes to `log`.
fn serve(ca: &Path, creds: Option<&Path>, log: &Path) -> (Child, String) {
    let mut c = Command::new(bin("rampart-ca"));
    c.args(["serve", "--config"])
        .arg(ca.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(log).unwrap());
    with_credentials(&mut c, creds);
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("rampart-ca listening on ") {
                    return (child, url.trim().to_owned());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rampart-ca serve never became ready ({e:?})\n{}",
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
}

/// `rampart-ca serve` that must fail to start; returns what it said.
fn serve_fails(ca: &Path, creds: Option<&Path>) -> CmdOutput {
    let mut c = Command::new(bin("rampart-ca"));
    c.args(["serve", "--config"]).arg(ca.join("config.toml"));
    with_credentials(&mut c, creds);
    let out = run(c);
    out.assert_failure("rampart-ca serve");
    assert!(
        !out.stdout.contains("listening on"),
        "serve became ready\n{out}"
    );
    out
}

#[test]
fn init_without_a_passphrase_source_or_a_terminal_fails_clearly() {
    let dir = tempdir("ca-init");
    let ca = dir.path().join("ca");
    // `run` gives the child no stdin (not a terminal); a credentials directory
    // without the credential is no source either.
    let empty_creds = dir.path().join("empty-credentials");
    fs::create_dir(&empty_creds).unwrap();
    for creds in [None, Some(empty_creds.as_path())] {
        let mut c = init_cmd(&ca, &[]);
        with_credentials(&mut c, creds);
        let out = run(c);
        out.assert_failure("init without a passphrase source");
        for want in [
            "no terminal",
            "CREDENTIALS_DIRECTORY/ca-passphrase",
            "--passphrase-file",
            "--passphrase-env",
            "--insecure-passphrase-beside-keys",
        ] {
            assert!(out.stderr.contains(want), "stderr lacks {want:?}\n{out}");
        }
        assert!(!ca.exists(), "init created {} before failing", ca.display());
    }
}

#[test]
fn init_with_a_passphrase_file_keeps_it_out_of_the_ca_directory() {
    let dir = tempdir("ca-init");
    let ca = dir.path().join("ca");
    let pass = dir.path().join("operator/pass");
    fs::create_dir(dir.path().join("operator")).unwrap();
    fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();

    // Readable by others: refused, and no key is written under that passphrase.
    fs::set_permissions(&pass, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(init_cmd(
        &ca,
        &["--passphrase-file", pass.to_str().unwrap()],
    ));
    out.assert_failure("init with a world-readable passphrase file");
    assert!(out.stderr.contains("chmod 600"), "{out}");
    assert!(!ca.join("config.toml").exists());
    assert!(!ca.join("keys/user_ca").exists());

    fs::set_permissions(&pass, fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(init_cmd(
        &ca,
        &["--passphrase-file", pass.to_str().unwrap()],
    ));
    out.assert_success("init --passphrase-file");
    assert!(!out.stderr.contains("warning"), "{out}");
    assert_passphrase_not_in(&ca);
    let config = config_text(&ca);
    let canonical = fs::canonicalize(&pass).unwrap();
    assert!(
        config.contains(&format!(
            "passphrase_file = {:?}",
            canonical.to_str().unwrap()
        )),
        "{config}"
    );
    let out = check(&ca, None);
    out.assert_success("check");
    assert!(!out.stdout.contains("warning"), "{out}");

    // A passphrase file inside the CA directory is warned about by init itself.
    let inside = dir.path().join("ca-inside");
    fs::create_dir(&inside).unwrap();
    let inside_pass = inside.join("pass");
    fs::copy(&pass, &inside_pass).unwrap();
    let out = run(init_cmd(
        &inside,
        &["--passphrase-file", inside_pass.to_str().unwrap()],
    ));
    out.assert_success("init --passphrase-file inside the CA directory");
    assert!(
        out.stderr.contains("warning: the key passphrase file")
            && out.stderr.contains("beside the encrypted keys"),
        "{out}"
    );

    // The daemon reads the same file and starts.
    let log = dir.path().join("serve.log");
    let (mut child, url) = serve(&ca, None, &log);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    terminate(&mut child, Duration::from_secs(20));

    // A wrong passphrase in that file: the keys do not decrypt, nothing starts.
    fs::write(&pass, "not-the-passphrase-at-all\n").unwrap();
    check(&ca, None).assert_failure("check with a wrong passphrase");
    serve_fails(&ca, None);
}

#[test]
fn init_beside_keys_is_explicit_and_check_warns_about_it() {
    let dir = tempdir("ca-init");
    let ca = dir.path().join("ca");
    let out = run(init_cmd(&ca, &["--insecure-passphrase-beside-keys"]));
    out.assert_success("rampart-ca init --insecure-passphrase-beside-keys");
    // The flag says what it does; init does not nag about it (check does).
    assert!(!out.stderr.contains("warning"), "{out}");
    let secret = ca.join("secrets/passphrase");
    assert_eq!(
        fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = check(&ca, None);
    out.assert_success("rampart-ca check");
    for want in [
        "warning: the key passphrase file",
        "secrets/passphrase",
        "beside the encrypted keys",
        "systemd-creds encrypt --name=ca-passphrase",
        "passphrase_credential = \"ca-passphrase\"",
    ] {
        assert!(out.stdout.contains(want), "check lacks {want:?}\n{out}");
    }
    // Loosened: no longer a warning but a refusal.
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
    let out = check(&ca, None);
    out.assert_failure("check with a group-readable passphrase file");
    assert!(out.stderr.contains("chmod 600"), "{out}");
}

#[test]
fn the_server_starts_with_the_passphrase_from_credentials_directory() {
    let dir = tempdir("ca-init");
    let ca = dir.path().join("ca");
    let creds = credentials_dir(dir.path(), PASSPHRASE);
    // Init takes the credential (no terminal, no option) and names it in the config.
    let mut c = init_cmd(&ca, &[]);
    with_credentials(&mut c, Some(&creds));
    let out = run(c);
    out.assert_success("init with $CREDENTIALS_DIRECTORY/ca-passphrase");
    assert!(out.stdout.contains("systemctl start rampart-ca"), "{out}");
    let config = config_text(&ca);
    assert!(
        config.contains("\npassphrase_credential = \"ca-passphrase\"\n"),
        "{config}"
    );
    assert_passphrase_not_in(&ca);

    let out = check(&ca, Some(&creds));
    out.assert_success("check with the credential");
    assert!(!out.stdout.contains("warning"), "{out}");
    let log = dir.path().join("serve.log");
    let (mut child, url) = serve(&ca, Some(&creds), &log);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let status = terminate(&mut child, Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    // Started without its credentials: refused, and told where the passphrase is.
    let out = serve_fails(&ca, None);
    assert!(
        out.stderr.contains("CREDENTIALS_DIRECTORY") && out.stderr.contains("ca-passphrase"),
        "{out}"
    );
    // A credential that is not the passphrase: the keys do not decrypt.
    let wrong = dir.path().join("wrong");
    fs::create_dir(&wrong).unwrap();
    let wrong = credentials_dir(&wrong, "a different passphrase entirely");
    serve_fails(&ca, Some(&wrong));
    check(&ca, Some(&wrong)).assert_failure("check with a wrong credential");
    // A credential readable by others is refused like any passphrase file.
    let loose = dir.path().join("loose");
    fs::create_dir(&loose).unwrap();
    let loose = credentials_dir(&loose, PASSPHRASE);
    fs::set_permissions(
        loose.join("ca-passphrase"),
        fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let out = serve_fails(&ca, Some(&loose));
    assert!(out.stderr.contains("chmod 600"), "{out}");
    // A credentials directory inside the CA directory defeats the point: warned.
    let inside = credentials_dir(&ca, PASSPHRASE);
    let out = check(&ca, Some(&inside));
    out.assert_success("check with the credential inside the CA directory");
    assert!(
        out.stdout.contains("warning: the key passphrase file"),
        "{out}"
    );
}

const NEW_PROMPT: &str = "New passphrase for the CA keys: ";
const AGAIN_PROMPT: &str = "The same passphrase again: ";

/// `rampart-ca init` on a real terminal, typing `answers` at its prompts.
fn init_on_a_terminal(ca: &Path, answers: &[&str]) -> (ExitStatus, String) {
    let init = format!(
        "{} init --listen 127.0.0.1:{} --dir {}",
        bin("rampart-ca").display(),
        free_port(),
        ca.display()
    );
    let exchange: Vec<(&str, &str)> = [NEW_PROMPT, AGAIN_PROMPT]
        .into_iter()
        .zip(answers.iter().copied())
        .collect();
    answer_prompts(&init, &exchange)
}

#[test]
fn init_on_a_terminal_asks_twice_and_the_daemon_reads_the_credential() {
    let dir = tempdir("ca-init");

    // Two different answers: nothing is created.
    let ca = dir.path().join("differ");
    let (status, transcript) =
        init_on_a_terminal(&ca, &[PASSPHRASE, "ZebraQuartz-passphrase-7732"]);
    assert!(!status.success(), "{transcript}");
    assert!(transcript.contains("differ"), "{transcript}");
    assert!(!ca.join("config.toml").exists() && !ca.join("keys/user_ca").exists());

    // Too short: refused before the second prompt.
    let ca = dir.path().join("short");
    let (status, transcript) = init_on_a_terminal(&ca, &["short"]);
    assert!(!status.success(), "{transcript}");
    assert!(
        transcript.contains("at least 12 characters"),
        "{transcript}"
    );
    assert!(!transcript.contains("again"), "{transcript}");
    assert!(!ca.join("config.toml").exists());

    // The same passphrase twice: a CA whose daemon reads the credential.
    let ca = dir.path().join("ca");
    let (status, transcript) = init_on_a_terminal(&ca, &[PASSPHRASE, PASSPHRASE]);
    assert!(status.success(), "{transcript}");
    // Typing is not echoed, and the next steps say how to make the credential.
    assert!(!transcript.contains(PASSPHRASE), "echoed:\n{transcript}");
    for want in [
        "systemd-creds encrypt --name=ca-passphrase - /etc/rampart/ca-passphrase.cred",
        "systemctl start rampart-ca",
    ] {
        assert!(transcript.contains(want), "lacks {want:?}:\n{transcript}");
    }
    assert!(config_text(&ca).contains("\npassphrase_credential = \"ca-passphrase\"\n"));
    assert_passphrase_not_in(&ca);
    let creds = credentials_dir(dir.path(), PASSPHRASE);
    check(&ca, Some(&creds)).assert_success("check with the typed passphrase as credential");
    let log = dir.path().join("serve.log");
    let (mut child, _url) = serve(&ca, Some(&creds), &log);
    terminate(&mut child, Duration::from_secs(20));
}
