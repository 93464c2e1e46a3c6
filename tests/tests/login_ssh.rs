//! The whole engineer flow against real OpenSSH: the admin enrols with init's
//! invite, creates alice, alice enrols and logs in with the `rampart` CLI, and a
//! real sshd trusting the Rampart user CA decides about her certificate.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use chrono::Utc;
use rampart_e2e::keys::{inspect_cert, krl_revokes};
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{
    bootstrap_admin, onboard, ssh_login, ssh_with_config, Ca, KeyPair, KeygenCa, Sshd, SshdOptions,
    TEST_ACCOUNT,
};

#[test]
fn alice_logs_in_and_sshd_enforces_her_certificate() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let user_ca = ca.user_ca_pub();
    assert_eq!(
        ca.api().user_ca().expect("GET user CA"),
        user_ca,
        "the API must serve the same user CA key init wrote"
    );

    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    let login = alice.login();
    let cert = alice.cli.cert();
    let key = alice.cli.identity();

    // What the certificate says, read by ssh-keygen, not by Rampart.
    let info = inspect_cert(&cert);
    assert!(info.cert_type.contains("user certificate"), "{}", info.text);
    assert!(info.serial > 0, "serial must be set\n{}", info.text);
    assert_eq!(
        info.key_id,
        format!("user=alice serial={} mfa=totp", info.serial),
        "key ID names user, serial and factor\n{}",
        info.text
    );
    assert_eq!(info.principals, ["alice"], "{}", info.text);
    let (after, before) = (info.valid_after.unwrap(), info.valid_before.unwrap());
    let now = Utc::now();
    assert!(
        after <= now && now < before,
        "certificate must be valid now\n{}",
        info.text
    );
    let ttl = (before - after).num_seconds();
    assert!(
        (3000..=3600 + 600).contains(&ttl),
        "default TTL is 1 h (plus back-dating for skew), got {ttl} s\n{}",
        info.text
    );
    assert!(info.has_extension("permit-pty"), "{}", info.text);
    assert!(
        !info.has_extension("permit-port-forwarding"),
        "policy grants only permit-pty\n{}",
        info.text
    );
    assert_eq!(
        info.extension_value("mfa-method@rampart").as_deref(),
        Some("totp"),
        "{}",
        info.text
    );
    for ext in ["mfa-time@rampart", "mfa-event@rampart"] {
        let v = info
            .extension_value(ext)
            .unwrap_or_else(|| panic!("missing {ext}\n{}", info.text));
        assert!(!v.is_empty(), "{ext} is empty");
    }
    assert!(
        info.signing_ca.contains(&rampart_e2e::keys::fingerprint(
            &ca.dir().join("keys/user_ca.pub")
        )),
        "signed by the Rampart user CA\n{}",
        info.text
    );
    let serial = info.serial;
    let _ = login;

    // Real sshd trusting the Rampart user CA; account rampart-e2e lists alice.
    let sshd = Sshd::start(&user_ca);
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &key, Some(&cert)).assert_success("alice's Rampart certificate");
    let log = sshd.log_since(mark);
    assert!(
        log.contains("Accepted publickey") && log.contains(&format!("serial {serial}")),
        "{log}"
    );

    // The account lists only bob: refused.
    sshd.set_principals(TEST_ACCOUNT, &["bob"]);
    ssh_login(&sshd, TEST_ACCOUNT, &key, Some(&cert)).assert_failure("principal not listed");
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);

    // A certificate for the same key and principal from a CA sshd does not trust.
    let other = KeygenCa::new(ca.root(), "other_ca");
    let subject = KeyPair {
        private: key.clone(),
        public: alice.cli.home().join("id_ed25519.pub"),
    };
    if !subject.public.is_file() {
        // The CLI need not keep the .pub; derive it with ssh-keygen -y.
        let out = std::process::Command::new(rampart_e2e::require_peer("ssh-keygen"))
            .arg("-y")
            .arg("-f")
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(&subject.public, out.stdout).unwrap();
    }
    let foreign = other.sign_user(&subject, "user=alice", &["alice"], "-5m:+1h", serial);
    ssh_login(&sshd, TEST_ACCOUNT, &key, Some(&foreign)).assert_failure("foreign CA");

    // Revocation: the admin revokes the serial; the KRL the CA publishes makes sshd
    // refuse it, and ssh-keygen agrees.
    let keep = ca.root().join("alice-first-cert.pub");
    std::fs::copy(&cert, &keep).unwrap();
    admin
        .cli
        .admin(&["revoke", "--serial", &serial.to_string()])
        .assert_success("rampart admin revoke --serial");
    let krl = ca.root().join("krl.bin");
    admin
        .cli
        .admin(&["krl", "-o", krl.to_str().unwrap()])
        .assert_success("rampart admin krl -o");
    let api_krl = ca
        .api()
        .get_bytes(rampart_api::paths::KRL)
        .expect("GET /v1/krl");
    assert_eq!(
        std::fs::read(&krl).unwrap(),
        api_krl,
        "CLI and API must hand out the same KRL"
    );
    assert!(
        krl_revokes(&krl, &keep),
        "ssh-keygen -Q must report the serial REVOKED"
    );
    sshd.set_krl_file(&krl);
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &key, Some(&keep)).assert_failure("revoked serial");
    assert!(
        sshd.log_since(mark)
            .to_ascii_lowercase()
            .contains("revoked"),
        "{}",
        sshd.log_since(mark)
    );

    // Expiry: a short-lived certificate stops working at valid_before. The CA may
    // clamp tiny TTLs upwards; take the first requested TTL the CLI accepts.
    let mut short = None;
    for ttl in ["10s", "30s", "1m"] {
        let out = alice.login_with(&["--ttl", ttl]);
        if out.success() {
            short = Some(ttl);
            break;
        }
        eprintln!("login --ttl {ttl} refused:\n{out}");
    }
    let ttl = short.expect("no short TTL accepted by login (tried 10s, 30s, 1m)");
    let info = inspect_cert(&cert);
    assert_ne!(info.serial, serial, "a new login gets a new serial");
    assert!(
        !krl_revokes(&krl, &cert),
        "the new serial is not in the old KRL"
    );
    ssh_login(&sshd, TEST_ACCOUNT, &key, Some(&cert)).assert_success("short cert while valid");
    let before = info.valid_before.unwrap();
    let wait = (before - Utc::now()).num_milliseconds() + 2000;
    assert!(
        wait <= 120_000,
        "--ttl {ttl} gave a certificate valid for {wait} ms more; too long to wait for\n{}",
        info.text
    );
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    ssh_login(&sshd, TEST_ACCOUNT, &key, Some(&cert)).assert_failure("expired certificate");
}

/// The files `rampart login` writes are enough for stock `ssh`: its ssh_config
/// names the key and certificate, and its known_hosts trusts host certificates
/// from the Rampart host CA (`@cert-authority`) — and only from it. With no
/// bastion joined and no `--ssh-host`, the config is for the CA's own host
/// (127.0.0.1 here, where this sshd listens too).
#[test]
fn cli_ssh_config_and_host_ca_work_with_stock_ssh() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    alice.login();
    let kh = std::fs::read_to_string(alice.cli.known_hosts()).unwrap();
    assert!(
        kh.contains("@cert-authority")
            && kh.contains(ca.host_ca_pub().split_whitespace().nth(1).unwrap()),
        "known_hosts must trust the Rampart host CA:\n{kh}"
    );

    // The admin certifies a host key with the Rampart host CA.
    let hostdir = ca.root().join("host");
    std::fs::create_dir_all(&hostdir).unwrap();
    let host_key = KeyPair::ed25519(&hostdir, "ssh_host_ed25519_key");
    let host_cert = hostdir.join("ssh_host_ed25519_key-cert.pub");
    admin
        .cli
        .admin(&[
            "host-cert",
            "--name",
            "127.0.0.1",
            "--pubkey",
            host_key.public.to_str().unwrap(),
            "-o",
            host_cert.to_str().unwrap(),
        ])
        .assert_success("rampart admin host-cert");
    let info = inspect_cert(&host_cert);
    assert!(info.cert_type.contains("host certificate"), "{}", info.text);
    assert!(
        info.principals.iter().any(|p| p == "127.0.0.1"),
        "{}",
        info.text
    );
    assert!(
        info.signing_ca.contains(&rampart_e2e::keys::fingerprint(
            &ca.dir().join("keys/host_ca.pub")
        )),
        "signed by the Rampart host CA\n{}",
        info.text
    );

    let sshd = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![ca.user_ca_pub()],
        host_key: Some(host_key),
        host_cert: Some(host_cert),
        host_ca_line: Some(ca.host_ca_pub()),
        ..SshdOptions::default()
    });
    sshd.set_principals(TEST_ACCOUNT, &["alice"]);
    let out = ssh_with_config(&sshd, &alice.cli.ssh_config(), TEST_ACCOUNT);
    out.assert_success("ssh -F <rampart ssh_config> with a Rampart host certificate");

    // The admin revokes the host's certificate (its key was stolen, say). The
    // next login writes the key as @revoked, and stock ssh refuses the host
    // even though its certificate is still valid and from the trusted CA.
    let serial = info.serial.to_string();
    admin
        .cli
        .admin(&["revoke", "--serial", &serial, "--reason", "host key stolen"])
        .assert_success("rampart admin revoke --serial <host cert>");
    alice.login();
    let kh = std::fs::read_to_string(alice.cli.known_hosts()).unwrap();
    let host_pub = std::fs::read_to_string(hostdir.join("ssh_host_ed25519_key.pub")).unwrap();
    let host_b64 = host_pub.split_whitespace().nth(1).unwrap();
    assert!(
        kh.lines()
            .any(|l| l.starts_with("@revoked * ") && l.contains(host_b64)),
        "known_hosts marks the host key revoked:\n{kh}"
    );
    let out = ssh_with_config(&sshd, &alice.cli.ssh_config(), TEST_ACCOUNT);
    out.assert_failure("a host whose certificate was revoked");
    assert!(
        out.stderr.to_lowercase().contains("revoked"),
        "ssh names the revocation\n{out}"
    );

    // A host whose certificate comes from another CA is not trusted by that
    // known_hosts: ssh refuses before authenticating.
    let rogue_ca = KeygenCa::new(ca.root(), "rogue_host_ca");
    let rogue = Sshd::start_with(SshdOptions {
        user_ca_keys: vec![ca.user_ca_pub()],
        host_ca: Some(rogue_ca.key.clone()),
        ..SshdOptions::default()
    });
    rogue.set_principals(TEST_ACCOUNT, &["alice"]);
    let out = ssh_with_config(&rogue, &alice.cli.ssh_config(), TEST_ACCOUNT);
    out.assert_failure("host certified by a CA the CLI's known_hosts does not trust");
    assert!(
        out.stderr.contains("Host key verification failed"),
        "ssh should refuse the host key\n{out}"
    );
}

/// The effective `certificatefile` and `identityfile` lines stock `ssh -G`
/// (which reads the config and connects nowhere) computes for `host` under
/// the CLI's ssh_config.
fn offered_files(config: &std::path::Path, host: &str) -> Vec<String> {
    let mut c = std::process::Command::new(rampart_e2e::require_peer("ssh"));
    c.arg("-G").arg("-F").arg(config).arg(host);
    let out = rampart_e2e::process::run(c);
    out.assert_success("ssh -G");
    out.stdout
        .lines()
        .filter(|l| l.starts_with("certificatefile ") || l.starts_with("identityfile "))
        .map(str::to_owned)
        .collect()
}

/// `rampart login` offers the certificate to the hosts Rampart knows — the CA's
/// joined bastions and the user's own `--ssh-host` patterns (remembered) — and
/// to no other: `ssh git@github.com` must not be handed the certificate (it
/// names the user, their principals and their MFA).
#[test]
fn the_cli_offers_the_certificate_only_to_the_hosts_rampart_knows() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);

    // A bastion joins under its host name.
    let bastion = "bastion.rampart.test";
    let out = admin.cli.admin(&["bastion-token", "--name", bastion]);
    out.assert_success("rampart admin bastion-token");
    let token = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("join token: "))
        .unwrap_or_else(|| panic!("no `join token:` line\n{out}"))
        .to_owned();
    let host_key = KeyPair::ed25519(ca.root(), "bastion_host_key");
    let _: rampart_api::BastionJoinResponse = ca
        .api()
        .post_json(
            rampart_api::paths::BASTION_JOIN,
            &rampart_api::BastionJoinRequest {
                token: token.into(),
                name: bastion.to_owned(),
                host_public_key: host_key.public_line(),
            },
        )
        .expect("bastion join");

    let login = alice.login_with(&["--ssh-host", "db-*"]);
    login.assert_success("rampart login --ssh-host");
    assert!(
        login
            .stdout
            .contains(&format!("ssh offers it to: {bastion} db-*")),
        "{login}"
    );
    let config = alice.cli.ssh_config();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("Host *"), "{text}");
    let cert = alice.cli.cert().display().to_string();
    let key = alice.cli.identity().display().to_string();
    for host in [bastion, "db-7"] {
        let files = offered_files(&config, host);
        assert!(
            files.contains(&format!("certificatefile {cert}"))
                && files.contains(&format!("identityfile {key}")),
            "{host} gets the Rampart key and certificate: {files:?}\n{text}"
        );
    }
    let home = alice.cli.home().display().to_string();
    for host in ["github.com", "gitlab.example.org", "127.0.0.1"] {
        let files = offered_files(&config, host);
        assert!(
            files.iter().all(|f| !f.contains(&home)),
            "{host} must not be offered anything of Rampart's: {files:?}\n{text}"
        );
    }

    // The patterns are remembered: a later login without --ssh-host keeps them.
    alice.login();
    assert!(
        offered_files(&config, "db-7").contains(&format!("certificatefile {cert}")),
        "{}",
        std::fs::read_to_string(&config).unwrap()
    );

    // Nothing that could match every host is taken, before a factor is spent.
    let out = alice.login_with(&["--ssh-host", "*"]);
    out.assert_failure("rampart login --ssh-host '*'");
    assert!(out.stderr.contains("--ssh-host \"*\""), "{out}");
}

#[test]
fn status_and_user_list_speak_json_and_the_ca_can_come_from_the_environment() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let admin = bootstrap_admin(&ca);
    let mut alice = onboard(&ca, &admin, "alice", &[ENGINEERS]);
    let status = |alice: &rampart_e2e::Enrolled| {
        let out = alice.cli.run(&["status", "--json"], None);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is JSON: {e}\n{out}"));
        (out, v)
    };

    // Enrolled, not logged in: exit 1, and the JSON says why.
    let (out, v) = status(&alice);
    out.assert_failure("status before login");
    assert_eq!(v["logged_in"], false, "{v}");
    assert_eq!(v["ca"], ca.url(), "{v}");
    assert!(v["certificate"].is_null(), "{v}");

    alice.login();
    let (out, v) = status(&alice);
    out.assert_success("status after login");
    assert_eq!(v["logged_in"], true, "{v}");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["session"]["mfa_method"], "totp");
    assert_eq!(v["certificate"]["principals"], serde_json::json!(["alice"]));
    assert!(v["certificate"]["key_id"]
        .as_str()
        .unwrap()
        .starts_with("user=alice "));
    let before: chrono::DateTime<Utc> =
        serde_json::from_value(v["certificate"]["valid_before"].clone()).unwrap();
    assert!(before > Utc::now(), "{v}");

    // The admin's user list, as the API's objects.
    let out = admin.cli.admin(&["user", "list", "--json"]);
    out.assert_success("admin user list --json");
    let users: Vec<rampart_api::User> = serde_json::from_str(&out.stdout).unwrap();
    let alice_row = users.iter().find(|u| u.name == "alice").expect("alice");
    assert_eq!(alice_row.groups, [ENGINEERS]);
    assert!(alice_row.totp_enrolled && !alice_row.admin && !alice_row.disabled);

    // RAMPART_CA / RAMPART_CA_FINGERPRINT stand in for --ca / --ca-fingerprint.
    let root = ca.root().join("host-root");
    let mut c = alice.cli.command();
    c.args(["host", "install", "--root"])
        .arg(&root)
        .env("RAMPART_CA", ca.url())
        .env("RAMPART_CA_FINGERPRINT", ca.fingerprint());
    let out = rampart_e2e::process::run(c);
    out.assert_success("host install with the CA from the environment");
    assert!(
        out.stdout.contains(&format!("RAMPART_CA_URL={}", ca.url())),
        "{out}"
    );
    // A bad fingerprint from the environment is refused like a bad flag.
    let mut c = alice.cli.command();
    c.args(["host", "install", "--root"])
        .arg(&root)
        .env("RAMPART_CA", ca.url())
        .env("RAMPART_CA_FINGERPRINT", "SHA256:AAAA");
    rampart_e2e::process::run(c).assert_failure("a malformed RAMPART_CA_FINGERPRINT");
}
