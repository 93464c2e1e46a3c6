//! The parsers that read outside input — the KRL reader, the certificate decoder
//! plus every check, the agent's identity list, the module arguments and
//! durations — never panic on random or mutated bytes. Deterministic (a fixed
//! xorshift seed), so a failure reproduces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use pam_rampart::agent::parse_identities;
use pam_rampart::args::{parse_duration, parse_duration_ms};
use pam_rampart::check::{check_certificate, Origin, Policy};
use pam_rampart::{Args, Krl};
use rampart_policy::FactorStrength;
use ssh_key::Certificate;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Flip, insert, delete, overwrite length fields with extremes, truncate.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 if v.len() >= 4 => {
                let i = rng.below(v.len() - 3);
                let val: u32 = [0, 1, 0x7fff_ffff, u32::MAX, 0x8000_0000][rng.below(5)];
                v[i..i + 4].copy_from_slice(&val.to_be_bytes());
            }
            4 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                v.insert(i, 0xff);
            }
        }
    }
    v
}

fn keygen_fixture() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = Command::new("ssh-keygen")
            .args(args)
            .current_dir(d)
            .output()
            .expect("ssh-keygen must be installed (scripts/test installs openssh-client)");
        assert!(out.status.success(), "ssh-keygen {args:?}: {out:?}");
    };
    run(&["-q", "-t", "ed25519", "-N", "", "-f", "ca"]);
    run(&["-q", "-t", "ed25519", "-N", "", "-f", "user"]);
    run(&[
        "-q",
        "-s",
        "ca",
        "-I",
        "id",
        "-n",
        "alice",
        "-z",
        "42",
        "-O",
        "extension:mfa-time@rampart=2026-01-01T00:00:00Z",
        "-O",
        "extension:mfa-method@rampart=totp",
        "-O",
        "source-address=10.0.0.0/8",
        "user.pub",
    ]);
    std::fs::write(
        d.join("spec"),
        "serial: 1\nserial: 5-9\nserial: 100\nserial: 102\nserial: 104\nid: x\n",
    )
    .unwrap();
    run(&["-q", "-k", "-f", "krl", "-s", "ca.pub", "spec"]);
    let krl = std::fs::read(d.join("krl")).unwrap();
    let cert = Certificate::read_file(&d.join("user-cert.pub"))
        .unwrap()
        .to_bytes()
        .unwrap();
    (dir, krl, cert)
}

#[test]
fn parsers_survive_random_and_mutated_input() {
    let (_dir, krl_seed, cert_seed) = keygen_fixture();
    let good_krl = Krl::parse(&krl_seed).unwrap();
    let krl_path = PathBuf::from("/etc/ssh/rampart.krl");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut certs_parsed = 0;
    for round in 0..20_000 {
        // KRLs: mutated real ones and pure noise.
        let input = if round % 4 == 0 {
            (0..rng.below(256)).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &krl_seed)
        };
        let parsed = Krl::parse(&input);
        // Certificates: decode, then run every check against both KRLs.
        let cert_bytes = mutate(&mut rng, &cert_seed);
        if let Ok(cert) = Certificate::from_bytes(&cert_bytes) {
            certs_parsed += 1;
            let krl = parsed.as_ref().unwrap_or(&good_krl);
            let _ = krl.revocation(&cert);
            for origin in [Origin::Local, Origin::from_rhost(Some("10.1.1.1"))] {
                let p = Policy {
                    user: "alice",
                    origin,
                    now: 1_767_225_700,
                    max_mfa_age: 900,
                    min_factor: FactorStrength::Otp,
                    krl: (krl, &krl_path),
                };
                let _ = check_certificate(&cert, &p);
            }
        }
        // Agent identity answers.
        let _ = parse_identities(&mutate(
            &mut rng,
            &[0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 0, 0, 0, 0],
        ));
    }
    assert!(
        certs_parsed > 100,
        "the mutations still exercise the checks ({certs_parsed})"
    );
}

#[test]
fn argument_parsing_survives_garbage() {
    let mut rng = Rng(42);
    let alphabet = b"=/ab_0123456789smhdwk-.:\xff";
    for _ in 0..20_000 {
        let s: Vec<u8> = (0..rng.below(24))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let s = String::from_utf8_lossy(&s);
        let _ = parse_duration(&s);
        let _ = parse_duration_ms(&s);
        let _ = Args::parse(["ca_keys=/c", "krl=/k", &s]);
        let _ = Args::parse([s.as_ref()]);
    }
}
