//! The Debian packages, end to end on this machine: cargo-deb builds `rampart-ca`,
//! `rampart` and `rampart-bastion` from the workspace's (debug) build, `dpkg-deb` shows the right
//! files, modes, conffiles and maintainer scripts, `dpkg -i` installs them (as root,
//! without a running systemd), the installed binaries run, their shell completions
//! are where bash, zsh and fish look (bash completes from them), `systemd-analyze verify`
//! accepts the installed units, a changed conffile survives a reinstall, the packaged
//! CA starts as the `rampart-ca` user and reports readiness over `$NOTIFY_SOCKET`,
//! and `dpkg -P` leaves the machine as the test found it — except the CA's state
//! directory, which purge must never destroy.
//!
//! This is the only test that installs packages. An abstract-socket lock serialises
//! it against a second copy of itself (parallel nextest runs), and a marker file lets
//! a later run clean up after a run that crashed mid-way. Packages it did not install
//! (an operator's real rampart) make it fail rather than touch them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_e2e::completions::{self, bash_complete, SHELLS};
use rampart_e2e::process::{run, run_timeout, terminate};
use rampart_e2e::terminal::answer_prompts;
use rampart_e2e::{bin, free_port, require_peer, tempdir, workspace_root, CmdOutput};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const CA_UNIT: &str = "/usr/lib/systemd/system/rampart-ca.service";
const KRL_SERVICE: &str = "/usr/lib/systemd/system/rampart-krl-sync.service";
const KRL_TIMER: &str = "/usr/lib/systemd/system/rampart-krl-sync.timer";
const PAM_MODULE: &str = "/usr/lib/x86_64-linux-gnu/security/pam_rampart.so";
const STATE_DIR: &str = "/var/lib/rampart-ca";
/// Written before the first `dpkg -i`, removed after the last clean-up: if it is
/// present at start, a previous run of this test crashed and its packages are ours.
const MARKER: &str = "/var/tmp/rampart-e2e-packages.installed";
/// The encrypted passphrase credential the packaged unit loads.
const CA_CREDENTIAL: &str = "/etc/rampart/ca-passphrase.cred";
/// systemd-creds' host key. It may belong to the machine; when this test creates
/// it, it says so in the marker and removes it again.
const CREDENTIAL_HOST_KEY: &str = "/var/lib/systemd/credential.secret";
const MARKER_HOST_KEY_LINE: &str = "created credential.secret";
/// The key passphrase the test types at `rampart-ca init`.
const PASSPHRASE: &str = "packaged-ca-passphrase-5150";
/// Paths this test may create; each must be as it was (absent) at the end.
const FOOTPRINT: &[&str] = &[
    "/usr/bin/rampart-ca",
    "/usr/bin/rampart",
    CA_UNIT,
    KRL_SERVICE,
    KRL_TIMER,
    PAM_MODULE,
    "/etc/default/rampart-ca",
    "/etc/rampart",
    STATE_DIR,
    "/usr/share/doc/rampart",
    "/usr/share/doc/rampart-ca",
    "/etc/systemd/system/multi-user.target.wants/rampart-ca.service",
    "/etc/systemd/system/timers.target.wants/rampart-krl-sync.timer",
    "/etc/systemd/system/rampart-ca.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/rampart-ca.service.dsh-also",
    "/var/lib/systemd/deb-systemd-helper-masked/rampart-ca.service",
    MARKER,
];

fn cmd(program: &str, args: &[&str]) -> CmdOutput {
    let mut c = Command::new(program);
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    run_timeout(c, None, Duration::from_secs(300))
}

/// Held for the whole test: an abstract socket name can be bound by one process at
/// a time and is released by the kernel when the process dies, so a crashed run
/// never leaves a stale lock.
fn machine_lock() -> UnixListener {
    let addr = UnixAddr::from_abstract_name(b"rampart-e2e-packages-lock").unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match UnixListener::bind_addr(&addr) {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot take the package-test lock: {e}"),
        }
    }
}

fn installed(pkg: &str) -> bool {
    let out = cmd("dpkg-query", &["-W", "-f=${Status}", pkg]);
    // Any state but "not-installed" (config-files, half-installed, …) is installed
    // enough to need a purge.
    out.success() && !out.stdout.trim().ends_with("not-installed")
}

fn user_exists(name: &str) -> bool {
    cmd("getent", &["passwd", name]).success()
}

fn group_exists(name: &str) -> bool {
    cmd("getent", &["group", name]).success()
}

/// Purge both packages and whatever the CA state left behind. Used before the test
/// (after a crashed run of it), between phases, and on drop (also on panic).
fn purge_everything() {
    // The credential is the operator's file, not the package's: purge leaves it,
    // and with it /etc/rampart. It is this test's, so it goes first.
    let _ = fs::remove_file(CA_CREDENTIAL);
    if fs::read_to_string(MARKER).is_ok_and(|m| m.contains(MARKER_HOST_KEY_LINE)) {
        let _ = fs::remove_file(CREDENTIAL_HOST_KEY);
    }
    for pkg in ["rampart", "rampart-ca"] {
        if installed(pkg) {
            cmd("dpkg", &["-P", pkg]).assert_success(&format!("dpkg -P {pkg}"));
        }
    }
    let _ = fs::remove_dir_all(STATE_DIR);
    // Purge kept /etc/rampart for the credential removed above; empty now, it goes
    // (remove_dir refuses a directory that still holds anything).
    let _ = fs::remove_dir("/etc/rampart");
    if user_exists("rampart-ca") {
        cmd("deluser", &["--system", "--quiet", "rampart-ca"]).assert_success("deluser");
    }
    if group_exists("rampart-ca") {
        cmd("delgroup", &["--system", "--quiet", "rampart-ca"]).assert_success("delgroup");
    }
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        purge_everything();
        let _ = fs::remove_file(MARKER);
    }
}

fn cargo_deb() -> PathBuf {
    if let Some(p) = std::env::var_os("RAMPART_CARGO_DEB") {
        return PathBuf::from(p);
    }
    let p = workspace_root().join("target/tools/bin/cargo-deb");
    assert!(
        p.is_file(),
        "cargo-deb not found at {}: scripts/test installs it there with \
         `cargo install cargo-deb --locked --root target/tools`",
        p.display()
    );
    p
}

/// `cargo deb -p CRATE --no-build --profile dev`: packages the binaries the
/// workspace build already made (target/debug), unstripped, fast compression.
fn build_deb(krate: &str, out: &Path) -> PathBuf {
    let mut c = Command::new(cargo_deb());
    c.current_dir(workspace_root()).args([
        "-q",
        "-p",
        krate,
        "--no-build",
        "--no-strip",
        "--profile",
        "dev",
        "--fast",
        "-o",
    ]);
    c.arg(out);
    let o = run_timeout(c, None, Duration::from_secs(600));
    o.assert_success(&format!("cargo deb -p {krate}"));
    let path = PathBuf::from(
        o.stdout
            .lines()
            .rev()
            .find(|l| l.trim_end().ends_with(".deb"))
            .unwrap_or_else(|| panic!("cargo deb printed no .deb path\n{o}"))
            .trim(),
    );
    assert!(path.is_file(), "{} missing", path.display());
    path
}

/// `dpkg-deb --contents` as path → (mode string, owner).
fn contents(deb: &Path) -> Vec<(String, String, String)> {
    let o = cmd("dpkg-deb", &["--contents", deb.to_str().unwrap()]);
    o.assert_success("dpkg-deb --contents");
    o.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f.last().unwrap().trim_start_matches('.').to_owned(),
                f[0].to_owned(),
                f[1].to_owned(),
            )
        })
        .collect()
}

fn assert_entry(list: &[(String, String, String)], path: &str, mode: &str) {
    let e = list
        .iter()
        .find(|(p, _, _)| p == path)
        .unwrap_or_else(|| panic!("{path} not in the package: {list:?}"));
    assert_eq!(e.1, mode, "mode of {path}");
    // cargo-deb writes numeric owners.
    assert!(
        e.2 == "0/0" || e.2 == "root/root",
        "owner of {path}: {}",
        e.2
    );
}

fn control_file(deb: &Path, name: &str) -> String {
    let o = cmd("dpkg-deb", &["--info", deb.to_str().unwrap(), name]);
    o.assert_success(&format!("dpkg-deb --info {name}"));
    o.stdout
}

fn check_rampart_ca_deb(deb: &Path) {
    let info = cmd("dpkg-deb", &["--info", deb.to_str().unwrap()]);
    info.assert_success("dpkg-deb --info");
    for want in [
        "Package: rampart-ca",
        &format!("Version: {VERSION}-1"),
        "Architecture: amd64",
        "adduser",
    ] {
        assert!(info.stdout.contains(want), "control lacks {want:?}\n{info}");
    }
    // Maintainer scripts present and executable (`*` in the listing).
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info.stdout
                .lines()
                .any(|l| l.contains(&format!("*  {script}"))),
            "{script} missing or not executable\n{info}"
        );
    }
    let list = contents(deb);
    assert_entry(&list, "/usr/bin/rampart-ca", "-rwxr-xr-x");
    assert_entry(&list, CA_UNIT, "-rw-r--r--");
    assert_entry(&list, "/etc/default/rampart-ca", "-rw-r--r--");
    assert_entry(&list, "/usr/share/doc/rampart-ca/copyright", "-rw-r--r--");
    assert_completions_packaged(&list, &["rampart-ca"]);
    assert_eq!(
        control_file(deb, "conffiles").trim(),
        "/etc/default/rampart-ca"
    );
    let postinst = control_file(deb, "postinst");
    for want in [
        "adduser --system",
        "install -d -o rampart-ca -g rampart-ca -m 0700 /var/lib/rampart-ca",
        "deb-systemd-helper enable rampart-ca.service",
        "if [ -d /run/systemd/system ]; then",
        "deb-systemd-invoke $_dh_action rampart-ca.service >/dev/null || true",
    ] {
        assert!(
            postinst.contains(want),
            "postinst lacks {want:?}\n{postinst}"
        );
    }
    assert!(
        !postinst.contains("#DEBHELPER#"),
        "cargo-deb left the token"
    );
    let postrm = control_file(deb, "postrm");
    assert!(postrm.contains("deb-systemd-helper purge rampart-ca.service"));
    assert!(postrm.contains("rmdir /var/lib/rampart-ca"));
    assert!(
        !postrm.contains("rm -rf"),
        "purge must never delete the CA state\n{postrm}"
    );
}

fn check_rampart_deb(deb: &Path) {
    let info = cmd("dpkg-deb", &["--info", deb.to_str().unwrap()]);
    info.assert_success("dpkg-deb --info");
    for want in ["Package: rampart\n", "libpam0g"] {
        assert!(info.stdout.contains(want), "control lacks {want:?}\n{info}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info.stdout
                .lines()
                .any(|l| l.contains(&format!("*  {script}"))),
            "{script} missing or not executable\n{info}"
        );
    }
    let list = contents(deb);
    assert_entry(&list, "/usr/bin/rampart", "-rwxr-xr-x");
    assert_entry(&list, PAM_MODULE, "-rw-r--r--");
    assert_entry(&list, KRL_SERVICE, "-rw-r--r--");
    assert_entry(&list, KRL_TIMER, "-rw-r--r--");
    assert_entry(&list, "/etc/rampart/host-policy.toml", "-rw-r--r--");
    assert_completions_packaged(&list, &["rampart"]);
    for ex in ["host-policy.toml", "sshd_config.rampart", "pam.d-sudo"] {
        assert_entry(
            &list,
            &format!("/usr/share/doc/rampart/examples/{ex}"),
            "-rw-r--r--",
        );
    }
    assert!(
        !list.iter().any(|(p, _, _)| p.contains("/etc/pam.d")
            || p.contains("/etc/ssh")
            || p.ends_with("rampart-ca")),
        "the rampart package must not configure PAM/sshd or carry the CA: {list:?}"
    );
    assert_eq!(
        control_file(deb, "conffiles").trim(),
        "/etc/rampart/host-policy.toml"
    );
    let postinst = control_file(deb, "postinst");
    assert!(postinst.contains("deb-systemd-helper update-state rampart-krl-sync.timer"));
    assert!(
        !postinst.contains("_dh_action=start") && !postinst.contains("deb-systemd-invoke start"),
        "the krl-sync units are not started on install (only try-restart on upgrade)\n{postinst}"
    );
}

/// Fail if any file under `dir` holds [`PASSPHRASE`] in the clear.
fn assert_passphrase_not_under(dir: &Path) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_passphrase_not_under(&p);
        } else {
            assert!(
                !fs::read(&p)
                    .unwrap()
                    .windows(PASSPHRASE.len())
                    .any(|w| w == PASSPHRASE.as_bytes()),
                "{} holds the key passphrase",
                p.display()
            );
        }
    }
}

fn mode_owner(path: &str) -> (u32, u32, u32) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

fn passwd_entry(name: &str) -> Vec<String> {
    let o = cmd("getent", &["passwd", name]);
    o.assert_success("getent passwd");
    o.stdout.trim().split(':').map(str::to_owned).collect()
}

/// The completion files a package installs for `bins` (see `rampart_e2e::completions`).
fn completion_files(bins: &[&str]) -> Vec<(String, String)> {
    bins.iter()
        .flat_map(|b| SHELLS.iter().map(move |s| (b.to_string(), s.to_string())))
        .collect()
}

/// Each of `bins`' completion scripts is in the package listing, mode 0644.
fn assert_completions_packaged(list: &[(String, String, String)], bins: &[&str]) {
    for (bin, shell) in completion_files(bins) {
        assert_entry(list, &completions::installed(&bin, &shell), "-rw-r--r--");
    }
}

/// After `dpkg -i`: each of `bins`' completion scripts is where its shell looks,
/// root's and 0644, byte for byte the committed one; and bash, loading the
/// installed bash script as bash-completion would, completes the binary's
/// command lines in `typed` (the last word a prefix) to `want`.
fn assert_completions_installed(bins: &[&str], typed: &[(&[&str], &str)]) {
    for (bin, shell) in completion_files(bins) {
        let path = completions::installed(&bin, &shell);
        assert_eq!(mode_owner(&path), (0o644, 0, 0), "{path}");
        assert_eq!(
            fs::read(&path).unwrap(),
            fs::read(completions::committed(&bin, &shell)).unwrap(),
            "{path} is not packaging/completions/{bin}.{shell}"
        );
    }
    for (words, want) in typed {
        let path = completions::installed(words[0], "bash");
        assert_eq!(
            bash_complete(Path::new(&path), words),
            [*want],
            "{words:?}<TAB> with {path}"
        );
    }
}

/// None of `bins`' completion scripts is on the machine (before install, after purge).
fn assert_completions_absent(bins: &[&str]) {
    for (bin, shell) in completion_files(bins) {
        let path = completions::installed(&bin, &shell);
        assert!(fs::symlink_metadata(&path).is_err(), "{path} exists");
    }
}

fn dpkg_install(debs: &[&Path]) {
    let mut args = vec!["-i"];
    args.extend(debs.iter().map(|d| d.to_str().unwrap()));
    cmd("dpkg", &args).assert_success("dpkg -i");
}

#[test]
fn debs_build_install_verify_keep_changed_config_and_purge_cleanly() {
    if euid_is_not_root() {
        panic!("the package test installs packages: it must run as root (it does in CI)");
    }
    for p in [
        "dpkg",
        "dpkg-deb",
        "systemd-analyze",
        "adduser",
        "runuser",
        "systemd-creds",
    ] {
        require_peer(p);
    }
    let rampart_ca_bin = bin("rampart-ca");
    let _ = (bin("rampart"), bin("libpam_rampart.so"));
    let _lock = machine_lock();

    // A previous run that crashed left its marker: its packages are ours to purge.
    if Path::new(MARKER).exists() {
        purge_everything();
        let _ = fs::remove_file(MARKER);
    }
    for pkg in ["rampart", "rampart-ca"] {
        assert!(
            !installed(pkg),
            "{pkg} is installed on this machine and not by this test; refusing to touch it"
        );
    }
    assert!(
        !user_exists("rampart-ca"),
        "a rampart-ca user already exists"
    );
    let before: Vec<bool> = FOOTPRINT.iter().map(|p| Path::new(p).exists()).collect();
    assert!(
        before.iter().all(|e| !e),
        "leftovers of an earlier install: {:?}",
        FOOTPRINT
            .iter()
            .zip(&before)
            .filter(|(_, e)| **e)
            .collect::<Vec<_>>()
    );
    assert_completions_absent(&["rampart", "rampart-ca"]);

    // Build and inspect.
    let out = tempdir("debs");
    let t = Instant::now();
    let ca_deb = build_deb("rampart-ca", out.path());
    let cli_deb = build_deb("rampart-cli", out.path());
    eprintln!("cargo deb (both packages): {:?}", t.elapsed());
    check_rampart_ca_deb(&ca_deb);
    check_rampart_deb(&cli_deb);

    // Install (no systemd running here: the guarded snippets must not fail).
    fs::write(MARKER, b"rampart e2e package test\n").unwrap();
    let _cleanup = Cleanup;
    dpkg_install(&[&ca_deb, &cli_deb]);

    let pw = passwd_entry("rampart-ca");
    let uid: u32 = pw[2].parse().unwrap();
    let gid: u32 = pw[3].parse().unwrap();
    assert!(uid < 1000, "rampart-ca must be a system user: {pw:?}");
    assert_eq!(pw[5], STATE_DIR, "home");
    assert_eq!(pw[6], "/usr/sbin/nologin", "shell");
    assert!(group_exists("rampart-ca"));
    assert_eq!(mode_owner(STATE_DIR), (0o700, uid, gid));
    assert_eq!(mode_owner("/etc/rampart"), (0o755, 0, 0));
    assert_eq!(mode_owner(PAM_MODULE), (0o644, 0, 0));
    assert_eq!(mode_owner("/usr/bin/rampart-ca"), (0o755, 0, 0));
    // Installed files are the workspace's build, byte for byte.
    assert_eq!(
        fs::read("/usr/bin/rampart-ca").unwrap(),
        fs::read(&rampart_ca_bin).unwrap()
    );
    let v = cmd("/usr/bin/rampart-ca", &["--version"]);
    v.assert_success("rampart-ca --version");
    assert_eq!(v.stdout.trim(), format!("rampart-ca {VERSION}"));
    let v = cmd("/usr/bin/rampart", &["--version"]);
    v.assert_success("rampart --version");
    assert_eq!(v.stdout.trim(), format!("rampart {VERSION}"));
    assert_completions_installed(
        &["rampart-ca", "rampart"],
        &[
            (&["rampart-ca", "rec"], "recover-admin"),
            // A subcommand's flag: the hyphenated name's bash fix is in the package.
            (&["rampart-ca", "init", "--tls"], "--tls-name"),
            (&["rampart", "adm"], "admin"),
            (&["rampart", "admin", "bastion-token", "--n"], "--name"),
        ],
    );
    // deb-systemd-helper enabled the CA unit (symlink) without a running systemd,
    // and left the krl-sync timer disabled.
    let wants = "/etc/systemd/system/multi-user.target.wants/rampart-ca.service";
    assert!(
        fs::symlink_metadata(wants).is_ok_and(|m| m.file_type().is_symlink()),
        "rampart-ca.service not enabled"
    );
    assert!(!Path::new("/etc/systemd/system/timers.target.wants/rampart-krl-sync.timer").exists());

    // systemd-analyze verify accepts the installed units …
    let ver = cmd(
        "systemd-analyze",
        &["verify", CA_UNIT, KRL_SERVICE, KRL_TIMER],
    );
    ver.assert_success("systemd-analyze verify");
    assert!(
        !ver.combined().contains("rampart"),
        "systemd-analyze verify complained about a rampart unit\n{ver}"
    );
    // … and is not a rubber stamp: the same unit with an unknown directive and a
    // missing binary is refused.
    let bad_dir = tempdir("bad-unit");
    let bad = bad_dir.path().join("rampart-ca.service");
    fs::write(
        &bad,
        fs::read_to_string(CA_UNIT).unwrap().replace(
            "ExecStart=/usr/bin/rampart-ca serve",
            "ExecStart=/usr/bin/rampart-ca-missing serve",
        ),
    )
    .unwrap();
    cmd("systemd-analyze", &["verify", bad.to_str().unwrap()])
        .assert_failure("systemd-analyze verify of a unit whose binary is missing");

    // Conffiles: the admin's changes survive a reinstall; a changed non-conffile
    // (the unit) is put back.
    let changed_default = "RAMPART_LOG=debug # changed by the admin\n";
    fs::write("/etc/default/rampart-ca", changed_default).unwrap();
    let policy = "/etc/rampart/host-policy.toml";
    let changed_policy = format!(
        "{}\n# admin: keep me\n",
        fs::read_to_string(policy).unwrap()
    );
    fs::write(policy, &changed_policy).unwrap();
    let unit_text = fs::read_to_string(CA_UNIT).unwrap();
    fs::write(CA_UNIT, format!("{unit_text}\n# scribbled\n")).unwrap();
    dpkg_install(&[&ca_deb, &cli_deb]);
    assert_eq!(
        fs::read_to_string("/etc/default/rampart-ca").unwrap(),
        changed_default
    );
    assert_eq!(fs::read_to_string(policy).unwrap(), changed_policy);
    assert_eq!(fs::read_to_string(CA_UNIT).unwrap(), unit_text);
    assert_eq!(passwd_entry("rampart-ca"), pw, "reinstall changed the user");

    // Purge with an empty state directory removes everything, the user included.
    cmd("dpkg", &["-P", "rampart", "rampart-ca"]).assert_success("dpkg -P");
    assert!(!installed("rampart") && !installed("rampart-ca"));
    assert!(!user_exists("rampart-ca"), "purge left the rampart-ca user");
    assert!(
        !group_exists("rampart-ca"),
        "purge left the rampart-ca group"
    );
    for p in FOOTPRINT {
        if *p != MARKER {
            assert!(
                fs::symlink_metadata(p).is_err(),
                "{p} still exists after purge"
            );
        }
    }
    assert_completions_absent(&["rampart", "rampart-ca"]);

    // Second round, the operator's path of packaging/README.md: init as the
    // rampart-ca user on a terminal, typing a new passphrase twice; encrypt that
    // passphrase into the credential the unit loads; start the CA from the
    // credential as systemd would, telling systemd (here: the test, as
    // $NOTIFY_SOCKET) when it is ready and stopping.
    dpkg_install(&[&ca_deb]);
    let pw = passwd_entry("rampart-ca");
    let (uid, gid): (u32, u32) = (pw[2].parse().unwrap(), pw[3].parse().unwrap());
    let port = free_port();
    let (status, terminal) = answer_prompts(
        &format!(
            "runuser -u rampart-ca -- rampart-ca init --dir {STATE_DIR} --listen 127.0.0.1:{port}"
        ),
        &[
            ("New passphrase for the CA keys: ", PASSPHRASE),
            ("The same passphrase again: ", PASSPHRASE),
        ],
    );
    assert!(status.success(), "init on a terminal failed:\n{terminal}");
    assert!(
        !terminal.contains(PASSPHRASE),
        "passphrase echoed:\n{terminal}"
    );
    assert!(
        terminal.contains(&format!("--name=ca-passphrase - {CA_CREDENTIAL}")),
        "init does not say how to make the credential:\n{terminal}"
    );
    let config = format!("{STATE_DIR}/config.toml");
    assert_eq!(mode_owner(&config), (0o600, uid, gid));
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("\npassphrase_credential = \"ca-passphrase\"\n"),
        "config.toml does not name the credential"
    );
    // No file the CA user owns holds the passphrase: a copy of the state directory
    // is not a copy of the keys.
    assert_passphrase_not_under(Path::new(STATE_DIR));

    // `systemd-ask-password -n … | systemd-creds encrypt --name=ca-passphrase -
    // /etc/rampart/ca-passphrase.cred`, with the typed line on stdin (no newline,
    // as `-n` writes it). The host key only, so the test needs no TPM.
    if !Path::new(CREDENTIAL_HOST_KEY).exists() {
        let mut m = fs::read_to_string(MARKER).unwrap();
        m.push_str(MARKER_HOST_KEY_LINE);
        m.push('\n');
        fs::write(MARKER, m).unwrap();
    }
    let mut encrypt = Command::new("systemd-creds");
    encrypt.args([
        "encrypt",
        "--with-key=host",
        "--name=ca-passphrase",
        "-",
        CA_CREDENTIAL,
    ]);
    run_timeout(
        encrypt,
        Some(PASSPHRASE.as_bytes()),
        Duration::from_secs(60),
    )
    .assert_success("systemd-creds encrypt");
    assert!(
        !fs::read(CA_CREDENTIAL)
            .unwrap()
            .windows(PASSPHRASE.len())
            .any(|w| w == PASSPHRASE.as_bytes()),
        "the credential holds the passphrase in the clear"
    );
    // What systemd does for LoadCredentialEncrypted=ca-passphrase:…: decrypt into a
    // directory only the service user can read and point $CREDENTIALS_DIRECTORY at it.
    let creds_parent = tempdir("pkg-credentials");
    fs::set_permissions(creds_parent.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let creds = creds_parent.path().join("rampart-ca.service");
    fs::create_dir(&creds).unwrap();
    let cred_file = creds.join("ca-passphrase");
    cmd(
        "systemd-creds",
        &[
            "decrypt",
            "--name=ca-passphrase",
            CA_CREDENTIAL,
            cred_file.to_str().unwrap(),
        ],
    )
    .assert_success("systemd-creds decrypt");
    fs::set_permissions(&cred_file, fs::Permissions::from_mode(0o400)).unwrap();
    std::os::unix::fs::chown(&cred_file, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o500)).unwrap();
    std::os::unix::fs::chown(&creds, Some(uid), Some(gid)).unwrap();

    // The unit's ExecStartPre: check, as the CA user, with the credential …
    let mut check = Command::new("/usr/bin/rampart-ca");
    check
        .args(["check", "--config", &config])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .current_dir("/")
        .uid(uid)
        .gid(gid);
    let checked = run(check);
    checked.assert_success("rampart-ca check as the rampart-ca user");
    assert!(!checked.stdout.contains("warning"), "{checked}");
    // … and without it (a unit whose credential was never created) it refuses.
    let mut check = Command::new("/usr/bin/rampart-ca");
    check
        .args(["check", "--config", &config])
        .env_remove("CREDENTIALS_DIRECTORY")
        .current_dir("/")
        .uid(uid)
        .gid(gid);
    let checked = run(check);
    checked.assert_failure("rampart-ca check without its credential");
    assert!(
        checked.stderr.contains("CREDENTIALS_DIRECTORY"),
        "{checked}"
    );

    let notify_name = format!("rampart-e2e-notify-{}", std::process::id());
    let notify =
        UnixDatagram::bind_addr(&UnixAddr::from_abstract_name(notify_name.as_bytes()).unwrap())
            .unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let log = out.path().join("serve.log");
    let mut serve = Command::new("/usr/bin/rampart-ca");
    serve
        .args(["serve", "--config", &config])
        .env("NOTIFY_SOCKET", format!("@{notify_name}"))
        .env("CREDENTIALS_DIRECTORY", &creds)
        .current_dir("/")
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap());
    let mut child = serve.spawn().unwrap();
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).unwrap_or_else(|e| {
        let _ = child.kill();
        panic!(
            "no READY=1 within 60 s: {e}\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(
        ready,
        format!("READY=1\nSTATUS=listening on https://127.0.0.1:{port}")
    );
    // Ready means ready: the TLS port accepts connections now.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let status = terminate(&mut child, Duration::from_secs(20));
    let n = notify.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(
        status.is_some_and(|s| s.success()),
        "rampart-ca serve did not stop cleanly: {status:?}\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );

    // Purge with a CA in the state directory keeps the keys, the audit log and the
    // user that owns them.
    cmd("dpkg", &["-P", "rampart-ca"]).assert_success("dpkg -P rampart-ca");
    assert!(!installed("rampart-ca"));
    assert!(Path::new(&config).is_file(), "purge destroyed the CA state");
    assert!(Path::new(&format!("{STATE_DIR}/keys/user_ca")).is_file());
    assert!(
        user_exists("rampart-ca"),
        "purge removed the owner of the CA state"
    );
    assert!(
        Path::new(CA_CREDENTIAL).is_file(),
        "purge removed the passphrase credential of the kept CA"
    );

    // Leave the machine as we found it (the Cleanup guard also does this on panic).
    purge_everything();
    fs::remove_file(MARKER).unwrap();
    assert!(!Path::new(CA_CREDENTIAL).exists());
    for p in FOOTPRINT {
        assert!(
            fs::symlink_metadata(p).is_err(),
            "{p} left behind by the package test"
        );
    }
    assert_completions_absent(&["rampart", "rampart-ca"]);
    assert!(!user_exists("rampart-ca") && !group_exists("rampart-ca"));
}

const BASTION_UNIT: &str = "/usr/lib/systemd/system/rampart-bastion.service";
const BASTION_STATE: &str = "/var/lib/rampart-bastion";
/// Paths the bastion package may create; each absent before and after.
const BASTION_FOOTPRINT: &[&str] = &[
    "/usr/bin/rampart-bastion",
    BASTION_UNIT,
    "/etc/default/rampart-bastion",
    BASTION_STATE,
    "/usr/share/doc/rampart-bastion",
    "/etc/systemd/system/multi-user.target.wants/rampart-bastion.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/rampart-bastion.service.dsh-also",
];

fn purge_bastion() {
    if installed("rampart-bastion") {
        cmd("dpkg", &["-P", "rampart-bastion"]).assert_success("dpkg -P rampart-bastion");
    }
    let _ = fs::remove_dir_all(BASTION_STATE);
    if user_exists("rampart-bastion") {
        cmd("deluser", &["--system", "--quiet", "rampart-bastion"]).assert_success("deluser");
    }
    if group_exists("rampart-bastion") {
        cmd("delgroup", &["--system", "--quiet", "rampart-bastion"]).assert_success("delgroup");
    }
}

struct BastionCleanup;

impl Drop for BastionCleanup {
    fn drop(&mut self) {
        purge_bastion();
    }
}

#[test]
fn bastion_deb_installs_verifies_and_purge_keeps_its_state() {
    if euid_is_not_root() {
        panic!("the package test installs packages: it must run as root (it does in CI)");
    }
    for p in ["dpkg", "dpkg-deb", "systemd-analyze", "adduser"] {
        require_peer(p);
    }
    let bastion_bin = bin("rampart-bastion");
    let _lock = machine_lock();
    assert!(
        !installed("rampart-bastion") && !user_exists("rampart-bastion"),
        "rampart-bastion is installed on this machine and not by this test; refusing to touch it"
    );
    for p in BASTION_FOOTPRINT {
        assert!(fs::symlink_metadata(p).is_err(), "leftover {p}");
    }
    assert_completions_absent(&["rampart-bastion"]);

    let out = tempdir("bastion-deb");
    let deb = build_deb("rampart-bastion", out.path());
    let info = cmd("dpkg-deb", &["--info", deb.to_str().unwrap()]);
    info.assert_success("dpkg-deb --info");
    for want in [
        "Package: rampart-bastion",
        &format!("Version: {VERSION}-1"),
        "adduser",
    ] {
        assert!(info.stdout.contains(want), "control lacks {want:?}\n{info}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info.stdout
                .lines()
                .any(|l| l.contains(&format!("*  {script}"))),
            "{script} missing or not executable\n{info}"
        );
    }
    let list = contents(&deb);
    assert_entry(&list, "/usr/bin/rampart-bastion", "-rwxr-xr-x");
    assert_entry(&list, BASTION_UNIT, "-rw-r--r--");
    assert_entry(&list, "/etc/default/rampart-bastion", "-rw-r--r--");
    assert_completions_packaged(&list, &["rampart-bastion"]);
    assert_eq!(
        control_file(&deb, "conffiles").trim(),
        "/etc/default/rampart-bastion"
    );
    let postrm = control_file(&deb, "postrm");
    assert!(
        !postrm.contains("rm -rf"),
        "purge must never delete the bastion state\n{postrm}"
    );

    let _cleanup = BastionCleanup;
    dpkg_install(&[&deb]);
    let pw = passwd_entry("rampart-bastion");
    let (uid, gid): (u32, u32) = (pw[2].parse().unwrap(), pw[3].parse().unwrap());
    assert!(uid < 1000, "rampart-bastion must be a system user: {pw:?}");
    assert_eq!(pw[5], BASTION_STATE, "home");
    assert_eq!(pw[6], "/usr/sbin/nologin", "shell");
    assert_eq!(mode_owner(BASTION_STATE), (0o700, uid, gid));
    assert_eq!(
        fs::read("/usr/bin/rampart-bastion").unwrap(),
        fs::read(&bastion_bin).unwrap()
    );
    let v = cmd("/usr/bin/rampart-bastion", &["--version"]);
    v.assert_success("rampart-bastion --version");
    assert_eq!(v.stdout.trim(), format!("rampart-bastion {VERSION}"));
    assert_completions_installed(
        &["rampart-bastion"],
        &[
            (&["rampart-bastion", "jo"], "join"),
            (&["rampart-bastion", "join", "--tok"], "--token"),
        ],
    );
    let wants = "/etc/systemd/system/multi-user.target.wants/rampart-bastion.service";
    assert!(
        fs::symlink_metadata(wants).is_ok_and(|m| m.file_type().is_symlink()),
        "rampart-bastion.service not enabled"
    );
    // `systemctl reload rampart-bastion` re-reads bastion.toml (SIGHUP).
    let unit = fs::read_to_string(BASTION_UNIT).unwrap();
    assert!(
        unit.lines()
            .any(|l| l == "ExecReload=/bin/kill -HUP $MAINPID"),
        "the bastion unit has no ExecReload\n{unit}"
    );
    let ver = cmd("systemd-analyze", &["verify", BASTION_UNIT]);
    ver.assert_success("systemd-analyze verify rampart-bastion.service");
    assert!(
        !ver.combined().contains("rampart"),
        "systemd-analyze verify complained about the bastion unit\n{ver}"
    );

    // Purge with state (a joined bastion's host key, say) keeps it and its owner.
    let key = format!("{BASTION_STATE}/host_key");
    fs::write(&key, b"not really a key\n").unwrap();
    cmd("dpkg", &["-P", "rampart-bastion"]).assert_success("dpkg -P rampart-bastion");
    assert!(!installed("rampart-bastion"));
    assert!(
        Path::new(&key).is_file(),
        "purge destroyed the bastion state"
    );
    assert!(user_exists("rampart-bastion"));

    // With an empty state directory, purge takes the directory and the user too.
    fs::remove_file(&key).unwrap();
    dpkg_install(&[&deb]);
    cmd("dpkg", &["-P", "rampart-bastion"]).assert_success("dpkg -P rampart-bastion");
    assert!(!user_exists("rampart-bastion") && !group_exists("rampart-bastion"));
    for p in BASTION_FOOTPRINT {
        assert!(
            fs::symlink_metadata(p).is_err(),
            "{p} still exists after purge"
        );
    }
    assert_completions_absent(&["rampart-bastion"]);
}

/// Whether the effective user is not root, read from /proc (no unsafe geteuid).
fn euid_is_not_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    euid != "0"
}
