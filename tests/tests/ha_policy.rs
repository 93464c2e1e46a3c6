//! Two CAs on one PostgreSQL share one policy: an edit reloaded on CA 2
//! reaches CA 1 within a poll (its file shows it, its certificates follow
//! it, its audit chain records the adoption); a broken edit reaches nobody;
//! and CA 1, down while CA 2 changed the policy again, starts with the newer
//! shared policy instead of reverting it with its older file.
//! Real `rampart-ca` ×2, throwaway PostgreSQL, `rampart login`, `ssh-keygen -L`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use rampart_e2e::ha::postgres_ca;
use rampart_e2e::keys::inspect_cert;
use rampart_e2e::policy::ENGINEERS;
use rampart_e2e::{bootstrap_admin, onboard, Ca};
use rampart_test_postgres::TestPostgres;

/// Wait (≤ 10 s) until CA `ca`'s policy file contains `needle`; how long it took.
fn until_policy_file_has(ca: &Ca, needle: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(ca.policy_path()).unwrap_or_default();
        if text.contains(needle) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "CA's policy file still lacks {needle:?} after 10 s\n{}",
            ca.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The version of the policy the CAs share, from the database.
fn shared_version(pg: &TestPostgres) -> u64 {
    let json = pg.psql(
        "rampart",
        "SELECT convert_from(value, 'UTF8') FROM meta WHERE key = 'policy'",
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["version"].as_u64().unwrap()
}

#[test]
fn a_policy_edit_on_one_ca_reaches_the_other_and_a_stale_file_never_reverts_it() {
    let pg = TestPostgres::start();
    let mut ca1 = postgres_ca(&pg.create_database("rampart"));
    let mut ca2 = ca1.copy_as_another_ca();
    ca1.start();
    ca2.start();
    let admin = bootstrap_admin(&ca1);
    let mut alice = onboard(&ca1, &admin, "alice", &[ENGINEERS]);
    alice.login();
    assert_eq!(inspect_cert(&alice.cli.cert()).principals, ["alice"]);
    assert_eq!(shared_version(&pg), 1, "the first CA published its file");

    // An edit on CA 2, reloaded there, reaches CA 1.
    let original = std::fs::read_to_string(ca2.policy_path()).unwrap();
    let with_deploy = original.replace(
        "principals = [\"{user}\"]",
        "principals = [\"{user}\", \"deploy\"]",
    );
    assert_ne!(with_deploy, original);
    std::fs::write(ca2.policy_path(), &with_deploy).unwrap();
    ca2.reload();
    let took = until_policy_file_has(&ca1, "\"deploy\"");
    eprintln!("a policy reloaded on CA 2 was in force on CA 1 {took:?} later");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(shared_version(&pg), 2);
    alice.login();
    assert_eq!(
        inspect_cert(&alice.cli.cert()).principals,
        ["alice", "deploy"],
        "CA 1 issues by the policy set through CA 2"
    );
    let adoptions = pg.psql(
        "rampart",
        "SELECT count(*) FROM audit_events WHERE kind = 'policy_reloaded' \
         AND body LIKE '%\"source\":\"shared\"%' AND body LIKE '%\"version\":2%'",
    );
    assert_eq!(adoptions, "1", "CA 1 audited adopting version 2");

    // A broken edit is refused on CA 2 and reaches nobody.
    std::fs::write(ca2.policy_path(), "version = 1\n[roles.x\n").unwrap();
    ca2.reload();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(shared_version(&pg), 2);
    assert_eq!(
        std::fs::read_to_string(ca1.policy_path()).unwrap(),
        with_deploy
    );
    std::fs::write(ca2.policy_path(), &with_deploy).unwrap();

    // CA 1 is down while CA 2 changes the policy again; it starts with its
    // older file, and takes the newer shared policy rather than reverting it.
    ca1.stop();
    let with_ops = with_deploy.replace("\"deploy\"]", "\"deploy\", \"ops\"]");
    std::fs::write(ca2.policy_path(), &with_ops).unwrap();
    ca2.reload();
    eventually_version(&pg, 3);
    ca1.start();
    assert_eq!(
        std::fs::read_to_string(ca1.policy_path()).unwrap(),
        with_ops,
        "CA 1 adopted version 3 at start"
    );
    assert_eq!(shared_version(&pg), 3, "and did not publish its old file");
    alice.login();
    assert_eq!(
        inspect_cert(&alice.cli.cert()).principals,
        ["alice", "deploy", "ops"]
    );
    ca1.stop();
    ca2.stop();
}

fn eventually_version(pg: &TestPostgres, want: u64) {
    rampart_e2e::eventually("the shared policy reaches the version", || {
        shared_version(pg) == want
    });
}
