//! The sample policy shipped to new installs must parse, lint clean of errors, and
//! mean what its comments say. Also: `Policy::from_toml` must never panic, whatever
//! it is fed.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use rampart_policy::{
    evaluate, evaluate_session_with_key, CertRequest, Decision, DenyCode, Factor, KeyAssurance,
    LintSeverity, Policy,
};

const FIXTURE: &str = include_str!("fixtures/policy.toml");

#[test]
fn sample_policy_parses_with_no_lint_errors() {
    let policy = Policy::from_toml(FIXTURE).unwrap();
    let lints = policy.lint();
    let errors: Vec<_> = lints
        .iter()
        .filter(|l| l.severity == LintSeverity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // Not even a warning: the sample is what admins copy.
    assert!(lints.is_empty(), "{lints:?}");
    assert_eq!(policy.default_ttl(), Duration::from_secs(3600));
    assert_eq!(policy.host_max_ttl(), Duration::from_secs(30 * 86_400));
}

#[test]
fn sample_policy_means_what_it_says() {
    let policy = Policy::from_toml(FIXTURE).unwrap();
    let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    let sre = vec!["sre".to_owned()];
    let contractor = vec!["contractors".to_owned()];

    // bastion-1 stands in for db-* and web-* only; no other bastion for anything.
    assert!(rampart_policy::bastion_may_serve(&policy, "bastion-1", "db-7").is_ok());
    assert!(rampart_policy::bastion_may_serve(&policy, "bastion-1", "mail-1").is_err());
    assert!(rampart_policy::bastion_may_serve(&policy, "bastion-2", "db-7").is_err());

    // An SRE with a user-verified security key, fresh: root is granted, from
    // the VPN only — but only into a bastion's per-session certificate
    // (`access = "bastion"`), never into the SRE's own.
    let req = CertRequest {
        user: "alice",
        groups: &sre,
        factor: Factor::Webauthn {
            user_verified: true,
            attested: true,
            via_link: false,
        },
        mfa_time: now,
        requested_ttl: None,
        login: None,
    };
    let Decision::Allow(g) = evaluate(&req, &policy, now) else {
        panic!("expected allow")
    };
    assert_eq!(g.principals(), ["alice", "dev"]);
    assert_eq!(g.ttl(), Duration::from_secs(3600));
    assert_eq!(g.source_address().len(), 2);
    let Decision::Allow(g) =
        evaluate_session_with_key(&req, KeyAssurance::Unattested, &policy, now)
    else {
        panic!("expected allow")
    };
    assert_eq!(g.principals(), ["alice", "dev", "root"]);
    match evaluate(
        &CertRequest {
            login: Some("root"),
            ..req.clone()
        },
        &policy,
        now,
    ) {
        Decision::Deny(d) => assert_eq!(d.code, DenyCode::LoginNotGranted),
        other => panic!("root is not in the SRE's own certificate: {other:?}"),
    }

    // The same SRE with TOTP gets no root, not even through the bastion.
    let req = CertRequest {
        factor: Factor::Totp,
        ..req
    };
    let Decision::Allow(g) =
        evaluate_session_with_key(&req, KeyAssurance::Unattested, &policy, now)
    else {
        panic!("expected allow")
    };
    assert!(!g.principals().iter().any(|p| p == "root"));

    // A contractor asking for root: the deny rule removes it.
    let req = CertRequest {
        user: "carol",
        groups: &contractor,
        factor: Factor::Webauthn {
            user_verified: true,
            attested: true,
            via_link: false,
        },
        mfa_time: now,
        requested_ttl: Some(Duration::from_secs(24 * 3600)),
        login: None,
    };
    let Decision::Allow(g) = evaluate(&req, &policy, now) else {
        panic!("expected allow")
    };
    assert_eq!(g.principals(), ["carol", "dev"]);
    assert_eq!(g.ttl(), Duration::from_secs(8 * 3600));
}

/// A tiny deterministic PRNG (xorshift64*), so the test needs no extra crate and
/// every failure is reproducible from its iteration number.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn from_toml_never_panics_on_mutated_input() {
    // Bytes that matter to TOML or to our own parsers.
    const INTERESTING: &[u8] = b"=[]{}\"'#,.\n*?0123456789hmsd-/:{}user\\\x00\xff";
    let base = FIXTURE.as_bytes();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut parsed_ok = 0;
    for i in 0..600 {
        let mut bytes = base.to_vec();
        let edits = 1 + rng.below(4);
        for _ in 0..edits {
            let pos = rng.below(bytes.len());
            match rng.below(5) {
                0 => bytes[pos] = INTERESTING[rng.below(INTERESTING.len())],
                1 => {
                    bytes.remove(pos);
                }
                2 => bytes.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
                3 => {
                    // Duplicate a slice (repeated tables/keys).
                    let end = (pos + rng.below(80)).min(bytes.len());
                    let chunk = bytes[pos..end].to_vec();
                    let at = rng.below(bytes.len());
                    bytes.splice(at..at, chunk);
                }
                _ => bytes.truncate(pos),
            }
        }
        let src = String::from_utf8_lossy(&bytes);
        let result = std::panic::catch_unwind(|| {
            Policy::from_toml(&src).map(|p| {
                // A policy that parses must also lint and evaluate without panicking.
                let _ = p.lint();
                let groups = vec!["sre".to_owned(), "contractors".to_owned()];
                let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
                let req = CertRequest {
                    user: "alice",
                    groups: &groups,
                    factor: Factor::Totp,
                    mfa_time: now,
                    requested_ttl: None,
                    login: None,
                };
                let _ = evaluate(&req, &p, now);
            })
        });
        match result {
            Ok(Ok(())) => parsed_ok += 1,
            Ok(Err(e)) => assert!(!e.to_string().is_empty(), "iteration {i}: empty error"),
            Err(_) => panic!("iteration {i}: from_toml panicked on:\n{src}"),
        }
    }
    // Sanity: the mutations are not all fatal, so the post-parse paths ran too.
    assert!(parsed_ok > 10, "only {parsed_ok} mutants parsed");
}
