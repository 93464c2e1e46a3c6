//! The PKCS#11 backend against a real token: SoftHSM2 (Debian's `softhsm2`),
//! a fresh token per test in a temporary directory. Keys are generated inside
//! the token, found again by label, sign what verifies under their public key,
//! and cannot be read out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_signer::{CaSigner, Pkcs11Token, SignerError};
use secrecy::SecretString;

const MODULES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];
const PIN: &str = "1234-user-pin";
const LABEL: &str = "rampart-test";

/// A fresh SoftHSM2 token labelled [`LABEL`]; the directory holds its config
/// and objects. Fails (never skips) when SoftHSM2 is not installed.
fn softhsm() -> (tempfile::TempDir, PathBuf) {
    let module = MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("SoftHSM2 is not installed (apt-get install softhsm2; scripts/test does it)")
        });
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    // SoftHSM reads its config path from the environment at C_Initialize;
    // each test runs in its own process under nextest.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", LABEL])
        .args(["--pin", PIN, "--so-pin", "5678-so-pin"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("run softhsm2-util");
    assert!(
        out.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, module)
}

fn pin(p: &str) -> SecretString {
    SecretString::from(p.to_owned())
}

fn open(module: &Path) -> Pkcs11Token {
    Pkcs11Token::open(module, LABEL, &pin(PIN)).unwrap()
}

#[test]
fn a_key_generated_in_the_token_signs_and_is_found_again_by_label() {
    let (_dir, module) = softhsm();
    let token = open(&module);
    let made = token.generate("user-ca").unwrap();
    assert_eq!(made.public_key().algorithm(), ssh_key::Algorithm::Ed25519);
    let data = b"certificate to-be-signed bytes";
    let sig = made.sign_raw(data).unwrap();
    signature::Verifier::verify(made.public_key().key_data(), data, &sig).unwrap();
    assert!(
        signature::Verifier::verify(made.public_key().key_data(), b"other bytes", &sig).is_err(),
        "the signature is over exactly the data"
    );

    // Found again by label: the same key.
    let again = token.key("user-ca").unwrap();
    assert_eq!(again.public_key().key_data(), made.public_key().key_data());
    // A second key beside it is a different key.
    let host = token.generate("host-ca").unwrap();
    assert_ne!(host.public_key().key_data(), made.public_key().key_data());

    // Many threads sign at once through the session pool.
    std::thread::scope(|s| {
        for i in 0..8u8 {
            let key = &again;
            s.spawn(move || {
                for j in 0..20u8 {
                    let msg = [i, j];
                    let sig = key.sign_raw(&msg).unwrap();
                    signature::Verifier::verify(key.public_key().key_data(), &msg, &sig).unwrap();
                }
            });
        }
    });
}

#[test]
fn a_taken_label_a_missing_key_a_wrong_pin_and_an_unknown_token_are_refused() {
    let (_dir, module) = softhsm();
    let wrong = Pkcs11Token::open(&module, LABEL, &pin("not-the-pin")).unwrap_err();
    assert!(
        matches!(&wrong, SignerError::Backend(m) if m.contains("log in")),
        "{wrong}"
    );
    let token = open(&module);
    token.generate("user-ca").unwrap();
    let taken = token.generate("user-ca").unwrap_err();
    assert!(taken.to_string().contains("never replaced"), "{taken}");
    let missing = token.key("host-ca").unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no private key labelled \"host-ca\""),
        "{missing}"
    );
    // The PIN never shows in an error or in Debug.
    assert!(!format!("{wrong} {taken} {missing} {token:?}").contains(PIN));
}

#[test]
fn a_token_label_that_is_not_there_lists_the_ones_that_are() {
    let (_dir, module) = softhsm();
    let err = Pkcs11Token::open(&module, "no-such-token", &pin(PIN)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no initialised token labelled \"no-such-token\"") && text.contains(LABEL),
        "{text}"
    );
}

#[test]
fn the_private_key_cannot_be_read_out_of_the_token() {
    let (dir, module) = softhsm();
    open(&module).generate("audit").unwrap();
    // OpenSC's pkcs11-tool, an independent PKCS#11 client, lists the object
    // and reports it sensitive and never extractable.
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .args(["--token-label", LABEL, "--login", "--pin", PIN])
        .args(["--list-objects", "--type", "privkey"])
        .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
        .output()
        .expect("run pkcs11-tool (apt-get install opensc)");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listing.contains("label:      audit"), "{listing}");
    let access = listing
        .lines()
        .find(|l| l.trim_start().starts_with("Access:"))
        .unwrap_or_else(|| panic!("no Access line:\n{listing}"));
    assert!(
        access.contains("sensitive") && access.contains("never extractable"),
        "{access}"
    );
}

/// The moves of a CA key rotation inside a token: the next key takes the
/// signing label, the replaced one keeps its key under `.previous` with the
/// day it was replaced, and a retired key is gone from the token.
#[test]
fn keys_move_between_rotation_labels_keep_their_end_date_and_can_be_destroyed() {
    let (dir, module) = softhsm();
    let token = open(&module);
    let old = token.generate("user-ca").unwrap();
    let new = token.generate("user-ca.next").unwrap();
    // Another handle to the token in this process (the CA's keys are open
    // while a rotation runs) logs in without complaint.
    let second = open(&module);
    assert!(second.holds_any("user-ca.next").unwrap());
    assert_eq!(token.public_key("user-ca.previous").unwrap(), None);
    assert_eq!(
        token.public_key("user-ca").unwrap().unwrap().end_date,
        None,
        "a fresh key has no end date"
    );

    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    token
        .activate_next("user-ca", "user-ca.next", "user-ca.previous", day)
        .unwrap();
    // Run again (as after a crash): nothing is left to move, nothing moves.
    token
        .activate_next("user-ca", "user-ca.next", "user-ca.previous", day)
        .unwrap();
    assert!(!token.holds_any("user-ca.next").unwrap());

    let signing = token.key("user-ca").unwrap();
    assert_eq!(signing.public_key().key_data(), new.public_key().key_data());
    let msg = b"signed after the rotation";
    let sig = signing.sign_raw(msg).unwrap();
    signature::Verifier::verify(new.public_key().key_data(), msg, &sig).unwrap();
    let replaced = token.public_key("user-ca.previous").unwrap().unwrap();
    assert_eq!(replaced.key.key_data(), old.public_key().key_data());
    assert_eq!(replaced.end_date, Some(day));
    assert_eq!(token.public_key("user-ca.next").unwrap(), None);

    // An independent client sees the same labels and the end date.
    let listing = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .args([
            "--token-label",
            LABEL,
            "--login",
            "--pin",
            PIN,
            "--list-objects",
        ])
        .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
        .output()
        .expect("run pkcs11-tool (apt-get install opensc)");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("label:      user-ca.previous"),
        "{listing}"
    );
    assert!(!listing.contains("user-ca.next"), "{listing}");

    token.destroy("user-ca.previous").unwrap();
    assert_eq!(token.public_key("user-ca.previous").unwrap(), None);
    let gone = token.key("user-ca.previous").unwrap_err();
    assert!(gone.to_string().contains("no private key"), "{gone}");
    // Destroying what is not there is no error (a retire run twice).
    token.destroy("user-ca.previous").unwrap();
    // The signing key is untouched.
    token.key("user-ca").unwrap().sign_raw(msg).unwrap();

    // A previous key still there stops the next activation.
    token.generate("user-ca.previous").unwrap();
    token.generate("user-ca.next").unwrap();
    let held = token
        .activate_next("user-ca", "user-ca.next", "user-ca.previous", day)
        .unwrap_err();
    assert!(held.to_string().contains("retire it"), "{held}");
    token.key("user-ca").unwrap().sign_raw(msg).unwrap();
}
