//! The committed OpenAPI document (`docs/openapi.json`) against a real
//! `rampart-ca`, by schemathesis: every operation is called with requests made
//! from the document's schemas, valid and deliberately invalid ones, first with
//! no credential, then with an admin's session, then with a bastion's
//! credential. The run fails when the CA answers 5xx, answers in a shape or with
//! a status or content type the document does not give, accepts data the schema
//! forbids, or serves an operation that needs a credential to a caller without
//! one. The audit chain must still verify afterwards.

// Helpers outside #[test] functions are test code too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rampart_api::{paths, BastionJoinRequest, BastionJoinResponse, BastionTokenRequest};
use rampart_e2e::{api_admin, require_peer, target_dir, tempdir, workspace_root, Ca, KeyPair};

/// Examples per operation and run: enough to reach each schema's edges (the
/// coverage phase adds its own boundary cases), small enough for CI.
const EXAMPLES: &str = "25";

/// Checks that a CA must pass. `positive_data_acceptance` is left out: a request
/// that fits the schema may still be refused (an unknown user, a bad code),
/// which is the point of an authenticating API.
const EXCLUDED_CHECKS: &str = "positive_data_acceptance";

fn schemathesis(ca: &Ca, label: &str, extra: &[&str]) {
    // scripts/test installs it in a virtualenv under target/tools.
    let venv = target_dir().join("tools/schemathesis/bin/st");
    let st = if venv.is_file() {
        venv
    } else {
        require_peer("st")
    };
    let reports = tempdir(&format!("schemathesis-{label}"));
    let spec = workspace_root().join("docs/openapi.json");
    let mut cmd = Command::new(st);
    cmd.arg("run")
        .arg(&spec)
        .args(["--url", ca.url()])
        .args(["--tls-verify", "false"])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", EXAMPLES])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--seed", "20261205"])
        // One worker: with two, Hypothesis parses lambda sources in both threads,
        // and CPython 3.11's `ast` module is not thread-safe (gh-106905: "AST
        // constructor recursion depth mismatch"), which failed a CI run with a
        // schemathesis runtime error that said nothing about the CA.
        .args(["--workers", "1"])
        // Hypothesis's health checks judge how fast data is generated, which a
        // loaded CI machine slows; they say nothing about the CA.
        .args(["--suppress-health-check", "all"])
        .arg("--no-color")
        .args(["--report", "junit,ndjson,har"])
        .arg("--report-dir")
        .arg(reports.path())
        .args(extra)
        // schemathesis keeps state in `.schemathesis/` of its working directory.
        .current_dir(reports.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1");
    let out = cmd.output().expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- schemathesis ({label}) ---\n{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "schemathesis ({label}) found the CA and docs/openapi.json disagreeing (see above)"
    );
}

#[test]
fn the_ca_answers_as_its_openapi_document_says() {
    let mut ca = Ca::init_e2e("");
    ca.start();
    let (_admin, session) = api_admin(&ca);

    // A joined bastion, for the operations only a bastion may call.
    let token: rampart_api::BastionTokenResponse = session
        .client
        .post_json(
            paths::ADMIN_BASTION_TOKENS,
            &BastionTokenRequest {
                name: Some("bastion-1".into()),
                ttl_seconds: None,
            },
        )
        .expect("bastion token");
    let dir = tempdir("api-conformance");
    let host_key = KeyPair::ed25519(dir.path(), "bastion_host");
    let joined: BastionJoinResponse = ca
        .api()
        .post_json(
            paths::BASTION_JOIN,
            &BastionJoinRequest {
                token: token.token,
                name: "bastion-1".into(),
                host_public_key: host_key.public_line(),
            },
        )
        .expect("join");

    // The CA serves the document its version was built with: the committed one.
    let served: serde_json::Value = ca.api().get_json(paths::OPENAPI).expect("openapi.json");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "GET /v1/openapi.json differs from docs/openapi.json"
    );

    schemathesis(&ca, "anonymous", &[]);
    // Not `POST /v1/logout`: it would end the session the run goes on with.
    let admin = format!("Authorization: Bearer {}", session.token());
    schemathesis(
        &ca,
        "admin",
        &[
            "-H",
            &admin,
            "--exclude-path-regex",
            "^/v1/(bastion/|logout$)",
        ],
    );
    let bastion = format!("Authorization: Bearer {}", joined.credential.expose());
    schemathesis(
        &ca,
        "bastion",
        &["-H", &bastion, "--include-path-regex", "^/v1/bastion/"],
    );

    // The CA is still whole: it serves, and its audit chain verifies.
    let health: rampart_api::Health = ca.api().get_json(paths::HEALTH).expect("health");
    assert_eq!(health.status, "ok");
    ca.stop();
    ca.verify_audit()
        .assert_success("audit verify after the API fuzzing");
}
