//! The production-host helpers against real peers: the CA's KRL signature checked
//! by stock `ssh-keygen -Y verify`; `rampart host krl-sync` against a real
//! `rampart-ca` (installs, idempotent, refuses a foreign signature and a rollback,
//! leaving the installed file untouched); a real sshd whose
//! `AuthorizedPrincipalsCommand` is `rampart host principals`; and
//! `rampart host install --write` twice, with `sshd -t` accepting the drop-in.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_api::paths;
use rampart_e2e::process::{run, run_timeout, CmdOutput, DEFAULT_TIMEOUT};
use rampart_e2e::{
    bin, bootstrap_admin, rampart_on_host, require_peer, ssh_login, tempdir, Ca, KeyPair, KeygenCa,
    Sshd, SshdOptions, TEST_ACCOUNT,
};

const NAMESPACE: &str = "rampart-krl@rampart";

fn rampart(args: &[&str]) -> CmdOutput {
    rampart_on_host(args)
}

fn krl_sync(ca: &Ca, ca_key: &Path, out: &Path) -> CmdOutput {
    rampart(&[
        "host",
        "krl-sync",
        "--ca",
        ca.url(),
        "--ca-fingerprint",
        ca.fingerprint(),
        "--ca-key",
        ca_key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn code(out: &CmdOutput) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// `ssh-keygen -Y verify` of `sig` over `data` by `signer_line`, the way an
/// operator would check a KRL by hand.
fn keygen_verify(
    dir: &Path,
    signer_line: &str,
    namespace: &str,
    data: &Path,
    sig: &Path,
) -> CmdOutput {
    let allowed = dir.join("allowed_signers");
    fs::write(
        &allowed,
        format!("rampart-ca namespaces=\"{NAMESPACE}\" {signer_line}\n"),
    )
    .unwrap();
    let mut c = Command::new(require_peer("ssh-keygen"));
    c.args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "rampart-ca", "-n", namespace, "-s"])
        .arg(sig);
    let input = fs::read(data).unwrap();
    run_timeout(c, Some(&input), DEFAULT_TIMEOUT)
}

/// `krl_version` from a KRL's header (PROTOCOL.krl: magic 8, format 4, version 8).
fn krl_version(bytes: &[u8]) -> u64 {
    assert_eq!(&bytes[..8], b"SSHKRL\n\0", "not a KRL");
    u64::from_be_bytes(bytes[12..20].try_into().unwrap())
}

/// Identity of a file on disk, to prove it was not replaced.
fn stamp(p: &Path) -> (u64, i64, i64, Vec<u8>) {
    let m = fs::metadata(p).unwrap();
    (m.ino(), m.mtime(), m.mtime_nsec(), fs::read(p).unwrap())
}

/// Revoke a fresh throwaway key, so the CA's KRL version goes up by one.
fn bump_krl(admin: &rampart_e2e::Enrolled, dir: &Path, name: &str) {
    let k = KeyPair::ed25519(dir, name);
    admin
        .cli
        .admin(&["revoke", "--key", &k.fingerprint(), "--reason", "e2e"])
        .assert_success("rampart admin revoke --key");
}

#[test]
fn krl_signature_is_sshsig_and_krl_sync_refuses_forgeries_and_rollbacks() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let dir = tempdir("host-krl");
    let d = dir.path();
    let user_ca = ca.user_ca_pub();
    let ca_key = d.join("rampart_user_ca.pub");
    fs::write(&ca_key, format!("{user_ca}\n")).unwrap();
    bump_krl(&admin, d, "revoked-1");

    // 1. The published pair verifies with stock ssh-keygen, and only as published.
    let api = ca.api();
    let krl = d.join("served.krl");
    let sig = d.join("served.krl.sig");
    fs::write(&krl, api.get_bytes(paths::KRL).unwrap()).unwrap();
    fs::write(&sig, api.get_bytes(paths::KRL_SIG).unwrap()).unwrap();
    let out = keygen_verify(d, &user_ca, NAMESPACE, &krl, &sig);
    out.assert_success("ssh-keygen -Y verify of the CA's KRL signature");
    assert!(
        out.combined()
            .contains("Good \"rampart-krl@rampart\" signature"),
        "{out}"
    );
    let mut tampered = fs::read(&krl).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let tampered_path = d.join("tampered.krl");
    fs::write(&tampered_path, &tampered).unwrap();
    keygen_verify(d, &user_ca, NAMESPACE, &tampered_path, &sig)
        .assert_failure("ssh-keygen must refuse a KRL altered by one bit");
    keygen_verify(d, &user_ca, "file", &krl, &sig)
        .assert_failure("ssh-keygen must refuse the signature in another namespace");
    let other = KeygenCa::new(d, "other_ca");
    keygen_verify(d, &other.public_line(), NAMESPACE, &krl, &sig)
        .assert_failure("ssh-keygen must refuse the signature for another key");

    // 2. krl-sync installs the KRL and its signature, 0644, verifiable by ssh-keygen.
    let out_path = d.join("etc-ssh/rampart.krl");
    fs::create_dir_all(out_path.parent().unwrap()).unwrap();
    let sig_path = d.join("etc-ssh/rampart.krl.sig");
    let out = krl_sync(&ca, &ca_key, &out_path);
    out.assert_success("first krl-sync");
    assert!(out.stdout.contains("installed KRL version"), "{out}");
    let installed = fs::read(&out_path).unwrap();
    let v1 = krl_version(&installed);
    assert!(v1 >= 1, "a revocation happened, version {v1}");
    assert_eq!(
        fs::metadata(&out_path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    keygen_verify(d, &user_ca, NAMESPACE, &out_path, &sig_path)
        .assert_success("the installed KRL and .sig verify with ssh-keygen");
    assert_eq!(
        fs::read_dir(out_path.parent().unwrap()).unwrap().count(),
        2,
        "only the KRL and its .sig, no temporary files"
    );

    // 3. Idempotent: same version, nothing rewritten.
    let before = stamp(&out_path);
    let sig_before = stamp(&sig_path);
    let out = krl_sync(&ca, &ca_key, &out_path);
    out.assert_success("second krl-sync");
    assert!(out.stdout.contains("nothing to do"), "{out}");
    assert_eq!(
        stamp(&out_path),
        before,
        "an unchanged KRL must not be rewritten"
    );
    assert_eq!(stamp(&sig_path), sig_before);

    // 4. A signature that is not by the trusted key: refused, exit 20, untouched.
    bump_krl(&admin, d, "revoked-2");
    let other_key = d.join("other_ca.pub");
    fs::write(&other_key, format!("{}\n", other.public_line())).unwrap();
    let out = krl_sync(&ca, &other_key, &out_path);
    assert_eq!(code(&out), 20, "foreign signature must exit 20\n{out}");
    assert!(out.stderr.contains("not a trusted CA key"), "{out}");
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one error line\n{out}"
    );
    assert_eq!(
        stamp(&out_path),
        before,
        "refused KRL must leave the file untouched"
    );
    assert_eq!(stamp(&sig_path), sig_before);

    // A CA key file that is not a key: exit 9, untouched.
    let junk = d.join("junk.pub");
    fs::write(&junk, "not a key\n").unwrap();
    let out = krl_sync(&ca, &junk, &out_path);
    assert_eq!(code(&out), 9, "{out}");
    assert_eq!(stamp(&out_path), before);

    // 5. Rollback: install the newer KRL, then make the CA serve the older one
    //    (a restored backup of its database) — correctly signed, but older.
    ca.stop();
    let backup = d.join("ca-db-backup");
    fs::create_dir_all(&backup).unwrap();
    let db_files = |dir: &Path| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("ca.db")
            })
            .collect()
    };
    for f in db_files(ca.dir()) {
        fs::copy(&f, backup.join(f.file_name().unwrap())).unwrap();
    }
    ca.start();
    bump_krl(&admin, d, "revoked-3");
    let out = krl_sync(&ca, &ca_key, &out_path);
    out.assert_success("krl-sync of the newer KRL");
    let newer = stamp(&out_path);
    let newer_sig = stamp(&sig_path);
    let v3 = krl_version(&newer.3);
    assert!(v3 > v1 + 1, "two more revocations: {v1} -> {v3}");

    ca.stop();
    for f in db_files(ca.dir()) {
        fs::remove_file(f).unwrap();
    }
    for f in db_files(&backup) {
        fs::copy(&f, ca.dir().join(f.file_name().unwrap())).unwrap();
    }
    ca.start();
    let served = ca.api().get_bytes(paths::KRL).unwrap();
    assert!(
        krl_version(&served) < v3,
        "the restored CA serves an older KRL"
    );
    let out = krl_sync(&ca, &ca_key, &out_path);
    assert_eq!(code(&out), 21, "an older KRL must exit 21\n{out}");
    assert!(
        out.stderr.contains(&format!("has version {v3}")),
        "the error names the installed version\n{out}"
    );
    assert_eq!(
        stamp(&out_path),
        newer,
        "rollback must leave the KRL untouched"
    );
    assert_eq!(stamp(&sig_path), newer_sig);
    ca.verify_audit()
        .assert_success("audit chain still verifies");
}

/// A root-owned directory outside /tmp for the principals command: sshd refuses
/// an AuthorizedPrincipalsCommand under a group- or world-writable directory.
struct RootOwnedDir(PathBuf);

impl RootOwnedDir {
    fn new() -> Self {
        let base = Path::new("/usr/local/lib");
        fs::create_dir_all(base).unwrap();
        let name = format!(
            "rampart-e2e-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let p = base.join(name);
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        RootOwnedDir(p)
    }
}

impl Drop for RootOwnedDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sshd_principals_command_follows_the_host_policy() {
    let dir = tempdir("host-principals");
    let d = dir.path();
    let ca = KeygenCa::new(d, "user_ca");
    let user = KeyPair::ed25519(d, "someone");

    let lib = RootOwnedDir::new();
    let exe = lib.0.join("rampart");
    fs::copy(bin("rampart"), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let policy = lib.0.join("host-policy.toml");
    let write_policy = |text: &str, mode: u32| {
        fs::write(&policy, text).unwrap();
        fs::set_permissions(&policy, fs::Permissions::from_mode(mode)).unwrap();
    };
    write_policy(
        &format!(
            "version = 1\n[accounts.{TEST_ACCOUNT}]\nprincipals = [\"alice\", \"sre-*\"]\n\
             [accounts.\"*\"]\nprincipals = [\"{{account}}\"]\n"
        ),
        0o644,
    );

    let sshd = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![ca.public_line()],
        extra_config: vec![
            format!(
                "AuthorizedPrincipalsCommand {} host principals --policy {} %u %t %k",
                exe.display(),
                policy.display()
            ),
            "AuthorizedPrincipalsCommandUser nobody".to_owned(),
        ],
        ..SshdOptions::default()
    });

    let mut serial = 500;
    let mut try_login = |principals: &[&str]| -> (bool, String) {
        serial += 1;
        let cert = ca.sign_user(
            &user,
            &format!("e2e-{serial}"),
            principals,
            "-5m:+1h",
            serial,
        );
        let mark = sshd.log_len();
        let out = ssh_login(&sshd, TEST_ACCOUNT, &user.private, Some(&cert));
        let log = sshd.log_since(mark);
        assert_eq!(
            out.success(),
            log.contains("Accepted publickey"),
            "ssh and sshd disagree\n{out}\n{log}"
        );
        (out.success(), log)
    };

    // The account's own entry: named principal and glob grant, others refused.
    let (ok, log) = try_login(&["alice"]);
    assert!(ok, "alice is listed for {TEST_ACCOUNT}\n{log}");
    let (ok, log) = try_login(&["bob", "sre-oncall"]);
    assert!(ok, "sre-* matches sre-oncall\n{log}");
    let (ok, log) = try_login(&["bob"]);
    assert!(!ok, "bob is not listed\n{log}");
    let (ok, log) = try_login(&[TEST_ACCOUNT]);
    assert!(
        !ok,
        "the account's own entry beats the \"*\" fallback\n{log}"
    );
    let (ok, log) = try_login(&["xsre-1", "alice2"]);
    assert!(!ok, "patterns match whole principals\n{log}");

    // The policy is read on every connection: only the fallback now.
    write_policy(
        "version = 1\n[accounts.\"*\"]\nprincipals = [\"{account}\"]\n",
        0o644,
    );
    let (ok, log) = try_login(&[TEST_ACCOUNT]);
    assert!(ok, "{{account}} fallback\n{log}");
    let (ok, log) = try_login(&["alice"]);
    assert!(!ok, "alice lost access with the policy change\n{log}");

    // A policy anyone could write is not trusted: every login refused.
    write_policy(
        "version = 1\n[accounts.\"*\"]\nprincipals = [\"*\"]\n",
        0o666,
    );
    let (ok, log) = try_login(&[TEST_ACCOUNT]);
    assert!(
        !ok,
        "a world-writable policy must not grant anything\n{log}"
    );

    // An invalid policy (unknown key) fails closed too.
    write_policy(
        "version = 1\n[accounts.\"*\"]\nprincipals = [\"*\"]\nallow_all = true\n",
        0o644,
    );
    let (ok, log) = try_login(&[TEST_ACCOUNT]);
    assert!(!ok, "an invalid policy must not grant anything\n{log}");

    // The command itself, as sshd calls it: one principal per line, nothing else.
    write_policy(
        &format!("version = 1\n[accounts.{TEST_ACCOUNT}]\nprincipals = [\"a*\"]\n"),
        0o644,
    );
    let cert = ca.sign_user(&user, "direct", &["alice", "bob", "anna"], "-5m:+1h", 900);
    let text = fs::read_to_string(&cert).unwrap();
    let mut fields = text.split_whitespace();
    let (kind, b64) = (fields.next().unwrap(), fields.next().unwrap());
    let policy_s = policy.to_str().unwrap();
    let out = rampart(&[
        "host",
        "principals",
        "--policy",
        policy_s,
        TEST_ACCOUNT,
        kind,
        b64,
    ]);
    out.assert_success("host principals");
    assert_eq!(out.stdout, "alice\nanna\n");
    let out = rampart(&[
        "host",
        "principals",
        "--policy",
        policy_s,
        "root",
        kind,
        b64,
    ]);
    out.assert_success("no entry: no principals, still exit 0");
    assert_eq!(out.stdout, "");
}

#[test]
fn host_install_is_idempotent_and_sshd_accepts_the_drop_in() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let dir = tempdir("host-install");
    let root = dir.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let root_s = root.to_str().unwrap();
    let install = |extra: &[&str]| {
        let mut args = vec!["host", "install", "--root", root_s];
        args.extend_from_slice(extra);
        rampart(&args)
    };
    let with_ca = ["--ca", ca.url(), "--ca-fingerprint", ca.fingerprint()];

    // Print mode writes nothing; --write without the CA is a usage error.
    let out = install(&with_ca);
    out.assert_success("host install (print)");
    assert!(
        out.stdout
            .contains("AuthorizedPrincipalsCommand /usr/bin/rampart host principals"),
        "{out}"
    );
    assert!(out.stdout.contains(&ca.user_ca_pub()), "{out}");
    assert!(out.stdout.contains("pam_rampart.so"), "{out}");
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        0,
        "print mode wrote files"
    );
    let out = install(&["--write"]);
    assert_eq!(code(&out), 2, "{out}");

    let mut args = with_ca.to_vec();
    args.push("--write");
    let out = install(&args);
    out.assert_success("host install --write");
    let files = [
        "etc/ssh/sshd_config.d/rampart.conf",
        "etc/ssh/rampart_user_ca.pub",
        "etc/ssh/rampart.krl",
        "etc/ssh/rampart.krl.sig",
        "etc/rampart/host-policy.toml",
        "etc/default/rampart-krl-sync",
        "etc/systemd/system/rampart-krl-sync.service",
        "etc/systemd/system/rampart-krl-sync.timer",
    ];
    for f in files {
        let p = root.join(f);
        assert!(p.is_file(), "{f} not written\n{out}");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644,
            "{f}"
        );
    }
    assert_eq!(
        fs::read_to_string(root.join("etc/ssh/rampart_user_ca.pub"))
            .unwrap()
            .trim(),
        ca.user_ca_pub()
    );
    assert!(
        fs::read_to_string(root.join("etc/default/rampart-krl-sync"))
            .unwrap()
            .contains(&format!("RAMPART_CA_URL={}", ca.url()))
    );
    assert!(!out.stdout.contains("nothing changed"), "{out}");

    // Second run: every file already right, nothing rewritten, and it says so.
    let stamps: Vec<_> = files.iter().map(|f| stamp(&root.join(f))).collect();
    let out = install(&args);
    out.assert_success("second host install --write");
    assert!(out.stdout.contains("nothing changed"), "{out}");
    assert!(!out.stdout.contains("wrote "), "{out}");
    let after: Vec<_> = files.iter().map(|f| stamp(&root.join(f))).collect();
    assert_eq!(stamps, after, "the second run must not touch any file");

    // An edited host policy is the admin's: kept, never overwritten.
    let policy = root.join("etc/rampart/host-policy.toml");
    fs::write(&policy, "version = 1\n").unwrap();
    let out = install(&args);
    out.assert_success("third host install --write");
    assert!(out.stdout.contains("kept"), "{out}");
    assert_eq!(fs::read_to_string(&policy).unwrap(), "version = 1\n");

    // sshd accepts a config that includes the drop-in, and takes its settings.
    let host_key = KeyPair::ed25519(dir.path(), "ssh_host_ed25519_key");
    let conf = dir.path().join("sshd_config");
    fs::write(
        &conf,
        format!(
            "Include {}/etc/ssh/sshd_config.d/*.conf\nHostKey {}\nListenAddress 127.0.0.1\n\
             UsePAM no\nPasswordAuthentication no\n",
            root.display(),
            host_key.private.display()
        ),
    )
    .unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    let mut c = Command::new(require_peer("sshd"));
    c.arg("-t").arg("-f").arg(&conf);
    run(c).assert_success("sshd -t with the drop-in");
    let mut c = Command::new(require_peer("sshd"));
    c.arg("-T").arg("-f").arg(&conf);
    let out = run(c);
    out.assert_success("sshd -T");
    for want in [
        "trustedusercakeys /etc/ssh/rampart_user_ca.pub",
        "revokedkeys /etc/ssh/rampart.krl",
        "authorizedprincipalscommand /usr/bin/rampart host principals --policy /etc/rampart/host-policy.toml %u %t %k",
        "authorizedprincipalscommanduser nobody",
    ] {
        assert!(out.stdout.contains(want), "sshd -T lacks {want:?}\n{out}");
    }
}
