//! Signing hot path in isolation, for profiling:
//! `cargo run --release -p rampart-signer --example sign_profile -- 20000`
//! then `perf record -g` the same binary to see where a certificate's time goes.

// A profiling harness, not a daemon: a panic here is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("count"))
        .unwrap_or(20_000);
    let policy = rampart_policy::Policy::from_toml(
        "version = 1\n[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n",
    )
    .unwrap();
    let ca = rampart_signer::FileCaKey::generate("ca").unwrap();
    let subject = rampart_signer::FileCaKey::generate("subject")
        .unwrap()
        .private_key()
        .public_key()
        .clone();
    let groups = vec!["eng".to_string()];
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut t_policy = 0.0;
    let mut t_spec = 0.0;
    let mut t_sign = 0.0;
    for serial in 1..=n {
        let t0 = Instant::now();
        let req = rampart_policy::CertRequest {
            user: "alice",
            groups: &groups,
            factor: rampart_policy::Factor::Totp,
            mfa_time: now,
            requested_ttl: None,
            login: None,
        };
        let rampart_policy::Decision::Allow(grant) = rampart_policy::evaluate(&req, &policy, now)
        else {
            panic!("denied")
        };
        let t1 = Instant::now();
        let spec = rampart_signer::UserCertSpec::from_grant(
            &grant,
            subject.clone(),
            serial,
            rampart_signer::MfaEvidence {
                method: "totp".into(),
                time: now,
                event_id: "01JAAAAAAAAAAAAAAAAAAAAAAA".into(),
            },
            now,
        )
        .unwrap();
        let t2 = Instant::now();
        let cert = rampart_signer::sign_user_cert(&ca, &spec).unwrap();
        let _line = cert.to_openssh().unwrap();
        let t3 = Instant::now();
        t_policy += (t1 - t0).as_secs_f64();
        t_spec += (t2 - t1).as_secs_f64();
        t_sign += (t3 - t2).as_secs_f64();
    }
    let us = |t: f64| t / n as f64 * 1e6;
    println!(
        "per certificate: policy {:.1} µs, spec {:.1} µs, sign+encode {:.1} µs",
        us(t_policy),
        us(t_spec),
        us(t_sign)
    );
}
