//! Replays the committed fuzz inputs on the stable toolchain: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through its
//! target's body, which must not panic. A crash the fuzzer once found is a file
//! under `regressions/`, so it stays fixed even where cargo-fuzz cannot run.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rampart_fuzz_harness::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    out.sort();
    out
}

#[test]
fn every_committed_input_replays_without_a_panic() {
    let mut failed = Vec::new();
    let mut replayed = 0;
    for (name, body) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for path in files(&fuzz_dir().join(kind).join(name)) {
                let data = fs::read(&path).unwrap();
                replayed += 1;
                if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                    failed.push(path.display().to_string());
                }
            }
        }
    }
    assert!(failed.is_empty(), "fuzz inputs that panic: {failed:#?}");
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
}

#[test]
fn every_target_has_a_binary_and_a_seed_corpus_and_nothing_is_stray() {
    let names: BTreeSet<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), TARGETS.len(), "a target is listed twice");
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &names {
        let src = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(
            src.contains(&format!("rampart_fuzz_harness::{name}(data)")),
            "fuzz_targets/{name}.rs does not call its body"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
        let size: u64 = seeds.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
        assert!(size <= 64 * 1024, "fuzz/corpus/{name} is {size} bytes");
    }
    // A binary, corpus or regression directory without a target would never run.
    for (dir, strip) in [("fuzz_targets", ".rs"), ("corpus", ""), ("regressions", "")] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(dir)) else {
            continue;
        };
        for e in entries {
            let file = e.unwrap().file_name().to_string_lossy().into_owned();
            let name = file.strip_suffix(strip).unwrap_or(&file);
            assert!(
                names.contains(name),
                "fuzz/{dir}/{file} belongs to no target"
            );
        }
    }
}

/// The `valid-*` seeds are accepted all the way, so the fuzzer starts from
/// inputs that pass every check and mutates from there (a seed refused early
/// would leave the checks behind it unexplored).
#[test]
fn the_valid_seeds_pass_every_check() {
    let seeds = |name: &str| -> Vec<Vec<u8>> {
        let v: Vec<Vec<u8>> = files(&fuzz_dir().join("corpus").join(name))
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("valid-")
            })
            .map(|p| fs::read(p).unwrap())
            .collect();
        assert!(!v.is_empty(), "fuzz/corpus/{name} has no valid-* seed");
        v
    };
    for s in seeds("krl_header") {
        rampart_signer::read_krl_header(&s).unwrap();
    }
    for s in seeds("pam_krl") {
        pam_rampart::Krl::parse(&s).unwrap();
    }
    for s in seeds("policy_toml") {
        rampart_policy::Policy::from_toml(std::str::from_utf8(&s).unwrap()).unwrap();
    }
    for s in seeds("host_policy") {
        rampart_policy::host::HostPolicy::parse(std::str::from_utf8(&s).unwrap()).unwrap();
    }
    for s in seeds("oidc_id_token") {
        let claims = rampart_fuzz_harness::oidc_id_token_verdict(&s)
            .unwrap()
            .unwrap();
        assert_eq!(claims.username, "alice");
    }
    for s in seeds("piv_attestation") {
        rampart_fuzz_harness::piv_attestation_verdict(&s)
            .unwrap()
            .unwrap();
    }
    for s in seeds("webauthn_register") {
        assert!(rampart_ca::fuzzing::webauthn_register(&s).is_some());
    }
    let cred = serde_json::from_str(include_str!("../data/webauthn_credential.json")).unwrap();
    let (_, state) = rampart_ca::fuzzing::webauthn_login_state(&cred).unwrap();
    for s in seeds("webauthn_login") {
        assert!(rampart_ca::fuzzing::webauthn_login(&s, &cred, &state));
    }
}
