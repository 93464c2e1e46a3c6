//! The CA side of the bastion, driven through the real API of a real `rampart-ca`
//! (docs/architecture.md, flow 4): `rampart admin bastion-token`, join (single use,
//! expiry, name binding), the bastion credential kept apart from user sessions,
//! host certificates for targets checked by `ssh-keygen -L`, and per-session
//! certificates — granted only for what policy allows, refused for foreign,
//! expired, revoked, malformed outer certificates and disabled users — that a real
//! OpenSSH `sshd` trusting only the user CA accepts. Every decision is checked in
//! the audit database with `sqlite3`.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
// The binaries under test read the real clock, so the test reads it too.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use rampart_api::user_proof::UserProof;
use rampart_api::{
    paths, BastionHostCertRequest, BastionJoinRequest, BastionJoinResponse, BastionRevocations,
    CertRequest, CertResponse, Client, SessionCertRequest, SessionCertResponse,
};
use rampart_e2e::eventually;
use rampart_e2e::keys::{inspect_cert, user_proof};
use rampart_e2e::{
    bootstrap_admin, onboard, ssh_login, tempdir, AuditDb, Ca, Enrolled, KeyPair, KeygenCa, Sshd,
    Totp, TEST_ACCOUNT,
};
use serde_json::Value;

const BASTION: &str = "bastion-1";

/// `dev` may reach `db-*` except `db-secret`, as `{user}` or the test account.
fn policy(admin: &str) -> String {
    format!(
        r#"version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
logins = ["{{user}}", "{TEST_ACCOUNT}"]
min_factor = "otp"
extensions = ["permit-pty"]
targets = {{ allow = ["db-*"], deny = ["db-secret"] }}

[groups]
engineers = ["dev"]

[users]
"{admin}" = ["dev"]

[bastions."{BASTION}"]
targets = ["db-*"]

# A second bastion, to replay the first one's proofs at.
[bastions."bastion-b"]
targets = ["db-*"]
"#
    )
}

fn start_ca() -> (Ca, Enrolled) {
    let mut ca = Ca::init_with(None, "");
    ca.write_policy(&policy(&ca.info().admin_user.clone()));
    ca.start();
    let admin = bootstrap_admin(&ca);
    (ca, admin)
}

/// `rampart admin bastion-token ARGS`; the token from its `join token:` line.
fn bastion_token(admin: &Enrolled, args: &[&str]) -> String {
    let mut a = vec!["bastion-token"];
    a.extend_from_slice(args);
    let out = admin.cli.admin(&a);
    out.assert_success("rampart admin bastion-token");
    assert!(
        out.stdout.contains("rampart-bastion join --dir"),
        "prints the join command:\n{out}"
    );
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("join token: "))
        .unwrap_or_else(|| panic!("no `join token:` line\n{out}"))
        .to_owned()
}

fn join(
    ca: &Ca,
    token: &str,
    name: &str,
    host_key: &KeyPair,
) -> Result<BastionJoinResponse, String> {
    ca.api()
        .post_json(
            paths::BASTION_JOIN,
            &BastionJoinRequest {
                token: token.to_owned().into(),
                name: name.to_owned(),
                host_public_key: host_key.public_line(),
            },
        )
        .map_err(|e| e.api_code().unwrap_or("not an API error").to_owned())
}

fn api_code<T: std::fmt::Debug>(r: Result<T, rampart_api::ClientError>) -> String {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e
            .api_code()
            .unwrap_or_else(|| panic!("not an API error: {e}"))
            .to_owned(),
    }
}

fn write_cert(dir: &Path, name: &str, line: &str) -> PathBuf {
    let p = dir.join(format!("{name}-cert.pub"));
    std::fs::write(&p, format!("{line}\n")).unwrap();
    p
}

/// `ssh-keygen -l -f` of a public key line.
fn fingerprint_of_line(dir: &Path, name: &str, line: &str) -> String {
    let p = dir.join(format!("{name}.pub"));
    std::fs::write(&p, format!("{}\n", line.trim())).unwrap();
    rampart_e2e::keys::fingerprint(&p)
}

/// The admin CLI's bearer token (from its `session.json`), for API calls as admin.
fn admin_token(admin: &Enrolled) -> String {
    let text = std::fs::read_to_string(admin.cli.home().join("session.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn bodies(ca: &Ca, kind: &str) -> Vec<serde_json::Value> {
    AuditDb::new(ca.audit_db()).bodies(kind)
}

#[test]
fn join_is_single_use_and_the_credential_is_its_own_kind_of_secret() {
    let (ca, admin) = start_ca();
    let dir = tempdir("bastion-join");
    let d = dir.path();
    let host_key = KeyPair::ed25519(d, "bastion_host");

    // Unknown token.
    assert_eq!(
        join(&ca, "not-a-token", BASTION, &host_key).unwrap_err(),
        "token_unknown"
    );
    // Bound to another name: refused, and the token stays usable.
    let bound = bastion_token(&admin, &["--name", BASTION, "--ttl", "10m"]);
    assert_eq!(
        join(&ca, &bound, "bastion-2", &host_key).unwrap_err(),
        "name_mismatch"
    );
    let joined = join(&ca, &bound, BASTION, &host_key).expect("join");
    // Single use.
    assert_eq!(
        join(&ca, &bound, BASTION, &host_key).unwrap_err(),
        "token_used"
    );
    // Expired.
    let short = bastion_token(&admin, &["--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        join(&ca, &short, "bastion-3", &host_key).unwrap_err(),
        "token_expired"
    );
    // An unbound token cannot take over a joined name.
    let unbound = bastion_token(&admin, &[]);
    assert_eq!(
        join(&ca, &unbound, BASTION, &host_key).unwrap_err(),
        "name_taken"
    );
    // Over the maximum lifetime: refused by the CA.
    admin
        .cli
        .admin(&["bastion-token", "--ttl", "25h"])
        .assert_failure("a 25 h join token");

    // What join hands out.
    assert!(
        joined.credential.expose().starts_with("rpb_"),
        "credential prefix"
    );
    let key_part = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(key_part(&joined.user_ca), key_part(&ca.user_ca_pub()));
    assert_eq!(key_part(&joined.host_ca), key_part(&ca.host_ca_pub()));
    let host_cert = write_cert(d, "bastion_host", &joined.host_certificate.certificate);
    let info = inspect_cert(&host_cert);
    assert!(info.cert_type.contains("host certificate"), "{}", info.text);
    assert_eq!(info.principals, [BASTION]);
    let host_ca_fp = fingerprint_of_line(d, "host_ca", &ca.host_ca_pub());
    assert!(
        info.signing_ca.contains(&host_ca_fp),
        "signed by the host CA {host_ca_fp}:\n{}",
        info.text
    );

    // The credential works only on bastion endpoints…
    let bastion = ca.api().with_token(joined.credential.clone());
    // A target host certificate is for the key the bastion joined with (it
    // terminates inner sessions under it), never for another.
    let other_key = KeyPair::ed25519(d, "db1_host");
    assert_eq!(
        api_code(bastion.post_json::<_, CertResponse>(
            paths::BASTION_HOST_CERT,
            &BastionHostCertRequest {
                target: "db-1".into(),
                host_public_key: other_key.public_line(),
            },
        )),
        "host_key_not_registered"
    );
    let target_key = &host_key;
    let resp: CertResponse = bastion
        .post_json(
            paths::BASTION_HOST_CERT,
            &BastionHostCertRequest {
                target: "db-1".into(),
                host_public_key: target_key.public_line(),
            },
        )
        .expect("host cert for db-1");
    let cert = write_cert(d, "db1_host", &resp.certificate);
    let info = inspect_cert(&cert);
    assert!(info.cert_type.contains("host certificate"), "{}", info.text);
    assert_eq!(info.principals, ["db-1"]);
    assert!(info.signing_ca.contains(&host_ca_fp), "{}", info.text);
    let left = info.valid_before.unwrap() - Utc::now();
    assert!(
        left <= chrono::Duration::hours(1) && left > chrono::Duration::minutes(55),
        "a target host certificate lives an hour (the bastion renews it): {left}"
    );
    assert_eq!(
        api_code(bastion.post_json::<_, CertResponse>(
            paths::BASTION_HOST_CERT,
            &BastionHostCertRequest {
                target: "db-1;rm".into(),
                host_public_key: target_key.public_line(),
            },
        )),
        "invalid_target"
    );
    // Only for the names the policy registers for this bastion (`db-*`): a
    // stolen credential cannot make the bastion's key pass for another host.
    for other in ["web-1", "bastion-2", "127.0.0.1", "xdb-1"] {
        assert_eq!(
            api_code(bastion.post_json::<_, CertResponse>(
                paths::BASTION_HOST_CERT,
                &BastionHostCertRequest {
                    target: other.into(),
                    host_public_key: target_key.public_line(),
                },
            )),
            "target_not_registered",
            "{other}"
        );
    }
    // …not on user or admin endpoints.
    assert_eq!(
        api_code(bastion.get_json::<Value>(paths::WHOAMI)),
        "session_invalid"
    );
    assert_eq!(
        api_code(bastion.post_json::<_, CertResponse>(
            paths::CERTS,
            &CertRequest {
                public_key: target_key.public_line(),
                ttl_seconds: None
            }
        )),
        "session_invalid"
    );
    assert_eq!(
        api_code(bastion.get_json::<Value>(paths::ADMIN_USERS)),
        "session_invalid"
    );
    // A user (even admin) session token is refused on bastion endpoints, and so is none.
    let as_admin = ca.api().with_token(admin_token(&admin));
    as_admin
        .get_json::<Value>(paths::WHOAMI)
        .expect("the admin token itself works");
    assert_eq!(
        api_code(as_admin.get_json::<BastionRevocations>(paths::BASTION_REVOCATIONS)),
        "bastion_credential_invalid"
    );
    assert_eq!(
        api_code(
            ca.api()
                .get_json::<BastionRevocations>(paths::BASTION_REVOCATIONS)
        ),
        "bastion_credential_missing"
    );
    // A made-up credential with the right prefix.
    assert_eq!(
        api_code(
            ca.api()
                .with_token("rpb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .get_json::<BastionRevocations>(paths::BASTION_REVOCATIONS)
        ),
        "bastion_credential_invalid"
    );

    // The revocations feed: unchanged since the current version.
    let rev: BastionRevocations = bastion.get_json(paths::BASTION_REVOCATIONS).unwrap();
    assert!(rev.changed);
    let same: BastionRevocations = bastion
        .get_json(&format!(
            "{}?since_version={}",
            paths::BASTION_REVOCATIONS,
            rev.version
        ))
        .unwrap();
    assert!(!same.changed && same.serials.is_empty());

    // A token bound to the name re-joins it (rotation): the old credential dies.
    let rotate = bastion_token(&admin, &["--name", BASTION]);
    let new_key = KeyPair::ed25519(d, "bastion_host2");
    let rejoined = join(&ca, &rotate, BASTION, &new_key).expect("re-join");
    assert_eq!(
        api_code(bastion.get_json::<BastionRevocations>(paths::BASTION_REVOCATIONS)),
        "bastion_credential_invalid"
    );
    let current = ca.api().with_token(rejoined.credential);
    current
        .get_json::<BastionRevocations>(paths::BASTION_REVOCATIONS)
        .expect("new credential");

    // `rampart admin revoke --bastion`: the credential stops working at once.
    admin
        .cli
        .admin(&["revoke", "--bastion", "no-such-bastion"])
        .assert_failure("revoke an unknown bastion");
    let out = admin
        .cli
        .admin(&["revoke", "--bastion", BASTION, "--reason", "decommissioned"]);
    out.assert_success("rampart admin revoke --bastion");
    assert!(out.stdout.contains("Revoked bastion bastion-1"), "{out}");
    assert_eq!(
        api_code(current.get_json::<BastionRevocations>(paths::BASTION_REVOCATIONS)),
        "bastion_credential_invalid"
    );
    let revoked = bodies(&ca, "revoked");
    assert!(
        revoked
            .iter()
            .any(|b| b["target"] == "bastion:bastion-1" && b["reason"] == "decommissioned"),
        "{revoked:?}"
    );
    // Its host key is revoked with it: published for clients' `@revoked`
    // lines (every certificate it holds, its own and the targets', is for
    // that key), and it cannot join again.
    let hosts: rampart_api::SshHosts = ca
        .api()
        .with_token(admin_token(&admin))
        .get_json(paths::SSH_HOSTS)
        .expect("ssh-hosts");
    assert!(
        hosts
            .revoked_host_keys
            .iter()
            .any(|k| key_part(k) == key_part(&new_key.public_line())),
        "{hosts:?}"
    );
    assert!(
        hosts.hosts.iter().any(|h| h == "db-*"),
        "registered target patterns are named for the CLI's ssh_config: {hosts:?}"
    );
    let again = bastion_token(&admin, &["--name", BASTION]);
    assert_eq!(
        join(&ca, &again, BASTION, &new_key).unwrap_err(),
        "host_key_revoked"
    );

    // Audited.
    assert_eq!(bodies(&ca, "bastion_token_created").len(), 5);
    let joins = bodies(&ca, "bastion_joined");
    assert_eq!(joins.len(), 2);
    assert_eq!(joins[0]["target"], BASTION);
    assert_eq!(joins[1]["details"]["rejoin"], true);
    let refused: Vec<String> = bodies(&ca, "bastion_join_refused")
        .iter()
        .map(|b| b["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        refused,
        [
            "token_unknown",
            "name_mismatch",
            "token_used",
            "token_expired",
            "name_taken",
            "host_key_revoked"
        ]
    );
    let host_certs = bodies(&ca, "host_cert_issued");
    assert!(host_certs
        .iter()
        .any(|b| b["actor"] == "bastion:bastion-1" && b["target"] == "db-1"));
    ca.verify_audit().assert_success("audit verify");
}

struct Session<'a> {
    bastion: &'a Client,
    key: &'a KeyPair,
    /// Private keys of the users (and any other key a test signs with): the
    /// request for a certificate of one of them carries that user's proof.
    users: RefCell<Vec<PathBuf>>,
}

impl Session<'_> {
    /// The user's proof for `outer`, signed by whichever of `users` holds its
    /// key (none for a line that is not a certificate or has no known key).
    fn proof(&self, outer: &str) -> Option<UserProof> {
        let cert = ssh_key::Certificate::from_openssh(outer.trim()).ok()?;
        let users = self.users.borrow();
        let key = users.iter().find(|p| {
            ssh_key::PrivateKey::read_openssh_file(p)
                .is_ok_and(|k| k.public_key().key_data() == cert.public_key())
        })?;
        Some(user_proof(key, outer))
    }

    fn request(&self, outer: &str, login: &str, target: &str, id: &str) -> SessionCertRequest {
        SessionCertRequest {
            user_proof: self.proof(outer),
            user_certificate: outer.to_owned(),
            login: login.to_owned(),
            target: target.to_owned(),
            target_labels: [("env".to_owned(), "prod".to_owned())].into(),
            session_id: id.to_owned(),
            public_key: self.key.public_line(),
            source: Some("192.0.2.7".into()),
            totp_code: None,
            webauthn_approval: None,
        }
    }

    fn ask(
        &self,
        req: &SessionCertRequest,
    ) -> Result<SessionCertResponse, rampart_api::ClientError> {
        self.bastion.post_json(paths::BASTION_SESSION_CERT, req)
    }
}

fn read_line(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_owned()
}

#[test]
fn a_bastion_is_registered_by_a_policy_reload_and_a_bad_policy_is_refused() {
    let (mut ca, admin) = start_ca();
    let d = ca.root().to_path_buf();
    // Joined, but the policy registers no target for it.
    let host_key = KeyPair::ed25519(&d, "bastion_r_host");
    let token = bastion_token(&admin, &["--name", "bastion-r"]);
    let joined = join(&ca, &token, "bastion-r", &host_key).expect("join");
    let bastion = ca.api().with_token(joined.credential);
    let ask = || {
        bastion.post_json::<_, CertResponse>(
            paths::BASTION_HOST_CERT,
            &BastionHostCertRequest {
                target: "db-1".into(),
                host_public_key: host_key.public_line(),
            },
        )
    };
    assert_eq!(api_code(ask()), "target_not_registered");

    // `systemctl reload`: the new table takes effect without a restart.
    let policy = std::fs::read_to_string(ca.policy_path()).unwrap();
    ca.write_policy(&format!(
        "{policy}\n[bastions.bastion-r]\ntargets = [\"db-1\"]\n"
    ));
    ca.reload();
    eventually("the reloaded policy to register db-1", || ask().is_ok());

    // A policy that does not validate is refused; the previous one stays.
    ca.write_policy(
        "version = 1\n[roles.broken]\nprincipals = [\"{user}\"]\nmin_factr = \"otp\"\n",
    );
    ca.reload();
    eventually("the refused reload in the audit log", || {
        bodies(&ca, "policy_reloaded")
            .iter()
            .any(|b| b["outcome"] == "failure")
    });
    ask().expect("the previous policy is still in force");
    assert!(ca.is_running(), "a bad policy never stops the CA");

    let reloads = bodies(&ca, "policy_reloaded");
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    assert_eq!(reloads[0]["outcome"], "success");
    assert_eq!(reloads[0]["details"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(reloads[1]["outcome"], "failure");
    assert!(
        reloads[1]["reason"].as_str().unwrap().contains("min_factr"),
        "the refusal names the problem: {reloads:?}"
    );
    ca.verify_audit().assert_success("audit verify");
}

#[test]
fn session_certs_follow_policy_and_the_users_own_certificate() {
    let (ca, admin) = start_ca();
    let dir = tempdir("bastion-session");
    let d = dir.path();
    let token = bastion_token(&admin, &["--name", BASTION]);
    let joined = join(&ca, &token, BASTION, &KeyPair::ed25519(d, "bastion_host")).unwrap();
    let bastion = ca.api().with_token(joined.credential.clone());
    let eph = KeyPair::ed25519(d, "session_key");
    let s = Session {
        bastion: &bastion,
        key: &eph,
        users: RefCell::new(vec![d.join("bastion_host")]),
    };

    let mut alice = onboard(&ca, &admin, "alice", &["engineers"]);
    alice.login();
    s.users.borrow_mut().push(alice.cli.identity());
    let outer = read_line(&alice.cli.cert());
    let outer_serial = inspect_cert(&alice.cli.cert()).serial;

    // A real sshd trusting only the user CA, letting principal rampart-e2e in.
    let sshd = Sshd::start(&ca.user_ca_pub());
    sshd.set_principals(TEST_ACCOUNT, &[TEST_ACCOUNT]);

    // Granted: login rampart-e2e on db-1.
    let first = s.request(&outer, TEST_ACCOUNT, "db-1", "sess-1");
    let granted = s
        .ask(&first)
        .expect("session cert for a granted login and target");
    assert_eq!(granted.user, "alice");
    assert_eq!(granted.roles, ["dev"]);
    assert!(!granted.session_mfa);
    let cert = write_cert(d, "session_key", &granted.certificate.certificate);
    let info = inspect_cert(&cert);
    assert!(info.cert_type.contains("user certificate"), "{}", info.text);
    assert_eq!(info.principals, [TEST_ACCOUNT]);
    assert_eq!(
        info.key_id,
        format!(
            "user=alice session=sess-1 serial={} via={BASTION}",
            info.serial
        )
    );
    let left = info.valid_before.unwrap() - Utc::now();
    assert!(
        left <= chrono::Duration::seconds(60) && left > chrono::Duration::seconds(30),
        "about a minute: {left}"
    );
    assert_eq!(
        info.valid_before.unwrap() - info.valid_after.unwrap(),
        chrono::Duration::seconds(360),
        "60 s plus the 5-minute backdate"
    );
    assert_eq!(
        info.extension_value("mfa-method@rampart").as_deref(),
        Some("totp")
    );
    assert!(info.has_extension("permit-pty"), "{}", info.text);
    assert!(
        info.critical_options
            .iter()
            .any(|o| o.contains("source-address") && o.contains("127.0.0.1/32")),
        "source-address = the bastion:\n{}",
        info.text
    );
    assert_eq!(
        info.extension_value("user-address@rampart").as_deref(),
        Some("192.0.2.7"),
        "the user's address as the bastion reported it, beside the bastion's own"
    );
    assert_eq!(
        info.extension_value("user-source-address@rampart"),
        None,
        "the role sets no address rules"
    );
    let outer_info = inspect_cert(&alice.cli.cert());
    assert_eq!(
        info.extension_value("mfa-time@rampart"),
        outer_info.extension_value("mfa-time@rampart"),
        "the user's MFA evidence is carried over"
    );

    // The real sshd accepts it for the granted login.
    let mark = sshd.log_len();
    ssh_login(&sshd, TEST_ACCOUNT, &eph.private, Some(&cert))
        .assert_success("sshd accepts the per-session certificate");
    let log = sshd.log_since(mark);
    assert!(
        log.contains("Accepted publickey") && log.contains("ID user=alice session=sess-1"),
        "sshd logs the session's key ID:\n{log}"
    );

    // The user's proof of the bastion login: what the user's SSH client
    // signed for the session it opened with the bastion. The certificate alone
    // is public, so without a proof by its key nothing is issued.
    let mut req = s.request(&outer, TEST_ACCOUNT, "db-1", "proof-1");
    req.user_proof = None;
    assert_eq!(api_code(s.ask(&req)), "user_proof_required");
    // Signed by another key (the bastion's own session key).
    req.user_proof = Some(user_proof(&eph.private, &outer));
    assert_eq!(api_code(s.ask(&req)), "user_proof_invalid");
    // Alice's real signature, over data changed afterwards (another session).
    let good = s.proof(&outer).unwrap();
    let (mut data, _) = good.decode().unwrap();
    data[4] ^= 1;
    req.user_proof = Some(UserProof {
        signed_data: UserProof::from_raw(&data, b"").signed_data,
        signature: good.signature.clone(),
    });
    assert_eq!(api_code(s.ask(&req)), "user_proof_invalid");
    // Alice's key, but a login with another certificate of that key.
    let alice_key = KeyPair {
        private: alice.cli.identity(),
        public: PathBuf::from(format!("{}.pub", alice.cli.identity().display())),
    };
    let other_cert =
        KeygenCa::new(d, "proof_ca").sign_user(&alice_key, "user=alice", &["alice"], "-5m:+1h", 1);
    req.user_proof = Some(user_proof(&alice_key.private, &read_line(&other_cert)));
    assert_eq!(api_code(s.ask(&req)), "user_proof_invalid");
    // The proof bastion-1 used for sess-1, replayed by another joined bastion.
    let token_b = bastion_token(&admin, &["--name", "bastion-b"]);
    let joined_b = join(&ca, &token_b, "bastion-b", &KeyPair::ed25519(d, "host_b")).unwrap();
    let bastion_b = ca.api().with_token(joined_b.credential.clone());
    let mut replay = first.clone();
    replay.session_id = "replay-1".into();
    assert_eq!(
        api_code(
            bastion_b.post_json::<_, SessionCertResponse>(paths::BASTION_SESSION_CERT, &replay)
        ),
        "user_proof_foreign"
    );

    // Refusals by policy, each with the policy's reason.
    let e = s
        .ask(&s.request(&outer, "root", "db-1", "sess-2"))
        .unwrap_err();
    assert_eq!(e.api_code(), Some("access_denied"));
    assert!(e.to_string().contains("login root"), "{e}");
    for (target, code) in [
        ("db-secret", "access_denied"),
        // Not registered for this bastion, whatever the roles say.
        ("web-1", "target_not_registered"),
    ] {
        let e = s
            .ask(&s.request(&outer, TEST_ACCOUNT, target, "sess-3"))
            .unwrap_err();
        assert_eq!(e.api_code(), Some(code), "{target}");
        assert!(e.to_string().contains(target), "{e}");
    }

    // A malformed certificate, and a plain key.
    assert_eq!(
        api_code(s.ask(&s.request(
            "ssh-ed25519-cert-v01@openssh.com AAAAnotbase64",
            TEST_ACCOUNT,
            "db-1",
            "sess-4"
        ))),
        "certificate_malformed"
    );
    assert_eq!(
        api_code(s.ask(&s.request(&eph.public_line(), TEST_ACCOUNT, "db-1", "sess-4"))),
        "certificate_malformed"
    );
    // From another CA, with a key ID and serial copied from alice's.
    let other = KeygenCa::new(d, "other_ca");
    let forged = other.sign_user(
        &alice_key,
        &outer_info.key_id,
        &["alice"],
        "-5m:+1h",
        outer_serial,
    );
    assert_eq!(
        api_code(s.ask(&s.request(&read_line(&forged), TEST_ACCOUNT, "db-1", "sess-5"))),
        "certificate_foreign"
    );
    // A host certificate from this CA is not a user certificate.
    assert_eq!(
        api_code(s.ask(&s.request(
            &joined.host_certificate.certificate,
            TEST_ACCOUNT,
            "db-1",
            "sess-5"
        ))),
        "certificate_not_user"
    );
    // A session ID that would corrupt the key ID.
    assert_eq!(
        api_code(s.ask(&s.request(&outer, TEST_ACCOUNT, "db-1", "a b"))),
        "invalid_session_id"
    );

    // Expired: a 1-second certificate from the CA, presented after it ended.
    let uri = alice.totp.uri().to_owned();
    let mut alice_api = rampart_e2e::ApiUser {
        name: "alice".into(),
        totp: std::mem::replace(&mut alice.totp, Totp::from_uri(&uri)),
        recovery_codes: Vec::new(),
    };
    let sess = alice_api.login(&ca);
    // Hand the authenticator back, with its record of used steps.
    alice.totp = alice_api.totp;
    let short: CertResponse = sess
        .client
        .post_json(
            paths::CERTS,
            &CertRequest {
                public_key: std::fs::read_to_string(&alice_key.public).unwrap(),
                ttl_seconds: Some(1),
            },
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        api_code(s.ask(&s.request(&short.certificate, TEST_ACCOUNT, "db-1", "sess-6"))),
        "certificate_expired"
    );

    // Per-session TOTP: a wrong code is refused; a right one is accepted once.
    let mut req = s.request(&outer, TEST_ACCOUNT, "db-1", "sess-7");
    req.totp_code = Some(alice.totp.wrong_code().into());
    assert_eq!(api_code(s.ask(&req)), "factor_invalid");
    let code = alice.totp.fresh_code();
    req.totp_code = Some(code.clone().into());
    let fresh = s.ask(&req).expect("per-session code accepted");
    assert!(fresh.session_mfa);
    req.session_id = "sess-8".into();
    assert_eq!(api_code(s.ask(&req)), "factor_replayed");

    // Revoked: `rampart admin revoke --serial` of alice's outer certificate.
    admin
        .cli
        .admin(&["revoke", "--serial", &outer_serial.to_string()])
        .assert_success("rampart admin revoke --serial");
    assert_eq!(
        api_code(s.ask(&s.request(&outer, TEST_ACCOUNT, "db-1", "sess-9"))),
        "certificate_revoked"
    );
    let rev: BastionRevocations = bastion.get_json(paths::BASTION_REVOCATIONS).unwrap();
    assert!(rev.serials.contains(&outer_serial), "{rev:?}");

    // Disabled user: bob's valid certificate stops working when bob is disabled.
    let mut bob = onboard(&ca, &admin, "bob", &["engineers"]);
    bob.login();
    s.users.borrow_mut().push(bob.cli.identity());
    let bob_outer = read_line(&bob.cli.cert());
    s.ask(&s.request(&bob_outer, TEST_ACCOUNT, "db-2", "sess-10"))
        .expect("bob, before being disabled");
    admin
        .cli
        .admin(&["user", "disable", "bob"])
        .assert_success("disable bob");
    assert_eq!(
        api_code(s.ask(&s.request(&bob_outer, TEST_ACCOUNT, "db-2", "sess-11"))),
        "user_disabled"
    );
    let rev: BastionRevocations = bastion.get_json(paths::BASTION_REVOCATIONS).unwrap();
    assert_eq!(rev.disabled_users, ["bob"]);

    // Every decision audited with session, target and login.
    let granted_ev = bodies(&ca, "access_granted");
    assert_eq!(granted_ev.len(), 3, "{granted_ev:?}");
    let g = &granted_ev[0];
    assert_eq!(g["actor"], "bastion:bastion-1");
    assert_eq!(g["user"], "alice");
    assert_eq!(g["session"], "sess-1");
    assert_eq!(g["target"], "db-1");
    assert_eq!(g["details"]["login"], TEST_ACCOUNT);
    assert_eq!(g["details"]["outer_serial"], outer_serial);
    assert_eq!(g["details"]["user_source"], "192.0.2.7");
    assert_eq!(g["details"]["target_labels"]["env"], "prod");
    assert_eq!(g["details"]["session_mfa"], false);
    assert_eq!(g["serial"], granted.certificate.serial);
    assert_eq!(granted_ev[1]["details"]["session_mfa"], true);
    let denied: Vec<(String, String)> = bodies(&ca, "access_denied")
        .iter()
        .map(|b| {
            (
                b["details"]["code"].as_str().unwrap().to_owned(),
                b["session"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let codes: Vec<&str> = denied.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "user_proof_required",
            "user_proof_invalid",
            "user_proof_invalid",
            "user_proof_invalid",
            "user_proof_foreign",
            "access_denied",
            "access_denied",
            "target_not_registered",
            "certificate_malformed",
            "certificate_malformed",
            "certificate_foreign",
            "certificate_not_user",
            "invalid_session_id",
            "certificate_expired",
            "factor_invalid",
            "factor_replayed",
            "certificate_revoked",
            "user_disabled",
        ]
    );
    assert_eq!(denied[0].1, "proof-1");
    assert_eq!(denied[4].1, "replay-1");
    assert_eq!(denied[5].1, "sess-2");
    let mfa_failed = bodies(&ca, "mfa_failed");
    assert!(
        mfa_failed
            .iter()
            .any(|b| b["actor"] == "bastion:bastion-1" && b["reason"] == "factor_replayed"),
        "{mfa_failed:?}"
    );
    ca.verify_audit().assert_success("audit verify");
}
