//! `rampart host …` as sshd and systemd meet it, without a CA: the principals
//! command's output and exit codes, krl-sync's refusals before any network
//! traffic (and when the CA is unreachable), and install's print mode. The
//! end-to-end tests with a real CA and sshd are in `tests/tests/host_helpers.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use ssh_key::certificate::{Builder, CertType};
use ssh_key::private::Ed25519Keypair;
use ssh_key::PrivateKey;

/// Run `rampart` the way sshd runs the principals command: no HOME, no
/// RAMPART_HOME, no agent.
fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env_remove("HOME")
        .env_remove("RAMPART_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code and the one `rampart: error:` line.
fn fails(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}{}", stdout(o));
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert!(err.starts_with("rampart: error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
    err
}

/// A user certificate for `principals`, as sshd's `%t` and `%k` would give it.
fn cert(cert_type: CertType, principals: &[&str]) -> (String, String) {
    let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let subject = PrivateKey::from(Ed25519Keypair::from_seed(&[2; 32]));
    let mut b = Builder::new(
        [7u8; 16],
        subject.public_key().key_data().clone(),
        0,
        u64::MAX,
    )
    .unwrap();
    b.serial(42).unwrap();
    b.cert_type(cert_type).unwrap();
    b.key_id("test").unwrap();
    for p in principals {
        b.valid_principal(*p).unwrap();
    }
    let c = b.sign(&ca).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(c.to_bytes().unwrap());
    (c.algorithm().to_certificate_type(), b64)
}

fn policy(dir: &Path, text: &str) -> String {
    let p = dir.join("host-policy.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p.to_str().unwrap().to_owned()
}

const POLICY: &str = "version = 1\n[accounts.root]\nprincipals = [\"alice\", \"sre-*\"]\n\
                      [accounts.\"*\"]\nprincipals = [\"{account}\"]\n";

#[test]
fn principals_prints_one_matching_principal_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), POLICY);
    let (kind, b64) = cert(CertType::User, &["bob", "sre-db", "alice", "carol"]);
    let run =
        |account: &str| rampart(&["host", "principals", "--policy", &pol, account, &kind, &b64]);

    let o = run("root");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "sre-db\nalice\n");
    let o = run("carol");
    assert_eq!(stdout(&o), "carol\n");
    // None allowed: exit 0, no output (sshd then refuses the certificate).
    let o = run("dave");
    assert!(o.status.success());
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
}

#[test]
fn principals_fails_closed_with_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (kind, b64) = cert(CertType::User, &["alice"]);

    // Missing policy: 9.
    let missing = dir.path().join("nope.toml");
    let e = fails(
        &rampart(&[
            "host",
            "principals",
            "--policy",
            missing.to_str().unwrap(),
            "root",
            &kind,
            &b64,
        ]),
        9,
    );
    assert!(e.contains("No such file"), "{e}");

    // Unknown key, or writable by others: 8, nothing printed.
    let pol = policy(dir.path(), "version = 1\nallow_all = true\n");
    let o = rampart(&["host", "principals", "--policy", &pol, "root", &kind, &b64]);
    assert!(fails(&o, 8).contains("unknown field"));
    assert_eq!(stdout(&o), "");
    let pol = policy(dir.path(), POLICY);
    std::fs::set_permissions(&pol, std::fs::Permissions::from_mode(0o664)).unwrap();
    let o = rampart(&["host", "principals", "--policy", &pol, "root", &kind, &b64]);
    assert!(fails(&o, 8).contains("chmod go-w"));
    assert_eq!(stdout(&o), "");
    std::fs::set_permissions(&pol, std::fs::Permissions::from_mode(0o644)).unwrap();

    // Not a certificate, garbage, a type that is not the certificate's, a host cert: 2.
    fails(
        &rampart(&[
            "host",
            "principals",
            "--policy",
            &pol,
            "root",
            "ssh-ed25519",
            &b64,
        ]),
        2,
    );
    fails(
        &rampart(&["host", "principals", "--policy", &pol, "root", &kind, "%%%"]),
        2,
    );
    fails(
        &rampart(&[
            "host",
            "principals",
            "--policy",
            &pol,
            "root",
            "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            &b64,
        ]),
        2,
    );
    let (hkind, hb64) = cert(CertType::Host, &["alice"]);
    let e = fails(
        &rampart(&[
            "host",
            "principals",
            "--policy",
            &pol,
            "root",
            &hkind,
            &hb64,
        ]),
        2,
    );
    assert!(e.contains("host certificate"), "{e}");
}

#[test]
fn krl_sync_refuses_before_touching_the_installed_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rampart.krl");
    std::fs::write(&out, b"installed").unwrap();
    let ca_key = dir.path().join("ca.pub");
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    std::fs::write(&ca_key, key.public_key().to_openssh().unwrap()).unwrap();
    let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let sync = |url: &str, fp: &str, key: &Path| {
        rampart(&[
            "host",
            "krl-sync",
            "--ca",
            url,
            "--ca-fingerprint",
            fp,
            "--ca-key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // Bad pin or URL: usage (2).
    fails(&sync("https://127.0.0.1:1", "SHA256:nope", &ca_key), 2);
    fails(&sync("http://127.0.0.1:1", fp, &ca_key), 2);
    // Unreadable CA key: 9.
    fails(
        &sync("https://127.0.0.1:1", fp, &dir.path().join("missing.pub")),
        9,
    );
    // Nobody listening: 4.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fails(&sync(&format!("https://127.0.0.1:{port}"), fp, &ca_key), 4);
    assert_eq!(std::fs::read(&out).unwrap(), b"installed");
    assert!(!dir.path().join("rampart.krl.sig").exists());
    // A bad --max-age is a usage error.
    let o = rampart(&[
        "host",
        "krl-sync",
        "--ca",
        "https://x",
        "--ca-fingerprint",
        fp,
        "--max-age",
        "soon",
    ]);
    fails(&o, 2);
}

#[test]
fn install_prints_without_writing_and_write_needs_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let o = rampart(&["host", "install", "--root", root]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "==> /etc/ssh/sshd_config.d/rampart.conf",
        "TrustedUserCAKeys /etc/ssh/rampart_user_ca.pub",
        "RevokedKeys /etc/ssh/rampart.krl",
        "AuthorizedPrincipalsCommand /usr/bin/rampart host principals --policy /etc/rampart/host-policy.toml %u %t %k",
        "AuthorizedPrincipalsCommandUser nobody",
        "==> /etc/systemd/system/rampart-krl-sync.timer",
        "auth required pam_rampart.so ca_keys=/etc/ssh/rampart_user_ca.pub krl=/etc/ssh/rampart.krl krl_max_age=1d",
        "nothing written",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let e = fails(&rampart(&["host", "install", "--root", root, "--write"]), 2);
    assert!(e.contains("--ca"), "{e}");
    fails(&rampart(&["host", "install", "--ca", "https://x"]), 2);
    fails(
        &rampart(&["host", "install", "--rampart-bin", "rampart"]),
        2,
    );
}

#[test]
fn host_help_documents_the_exit_codes() {
    let o = rampart(&["host", "--help"]);
    assert!(o.status.success());
    let t = stdout(&o);
    assert!(t.contains("20") && t.contains("21"), "{t}");
    for sub in ["krl-sync", "principals", "install"] {
        assert!(t.contains(sub), "{t}");
    }
}
