//! Checkpoints are plain SSHSIG signatures: stock OpenSSH `ssh-keygen -Y verify`
//! accepts them, and (the other way round) a signature `ssh-keygen -Y sign` makes
//! over a checkpoint message verifies with this crate.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests;
// a panic in a test binary is a failed test, not a crashed daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use rampart_audit::{
    allowed_signers_line, checkpoint_message, verify, Checkpoint, CHECKPOINT_NAMESPACE,
};

fn ssh_keygen_verify(dir: &Path, namespace: &str, sig: &Path, msg: &[u8]) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(dir.join("allowed_signers"))
        .args(["-I", "audit@rampart", "-n", namespace, "-s"])
        .arg(sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen (openssh-client) is installed");
    child.stdin.take().unwrap().write_all(msg).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn stored_checkpoint(path: &Path, seq: i64) -> (String, String) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(
        "SELECT signature, hash, time FROM checkpoints WHERE seq = ?1",
        [seq],
        |r| {
            let sig: String = r.get(0)?;
            let hash: Vec<u8> = r.get(1)?;
            let time: String = r.get(2)?;
            Ok((
                sig,
                checkpoint_message(seq as u64, &hash.try_into().unwrap(), &time),
            ))
        },
    )
    .unwrap()
}

#[test]
fn ssh_keygen_verifies_stored_checkpoints() {
    let f = Fixture::new();
    build(&f.path, 25, 10);
    let dir = f.dir.path();
    std::fs::write(
        dir.join("allowed_signers"),
        format!(
            "{}\n",
            allowed_signers_line(key().public_key(), "audit@rampart").unwrap()
        ),
    )
    .unwrap();

    for seq in [10, 20, 25] {
        let (sig, msg) = stored_checkpoint(&f.path, seq);
        let sig_path = dir.join(format!("cp{seq}.sig"));
        std::fs::write(&sig_path, &sig).unwrap();
        let (ok, out) = ssh_keygen_verify(dir, CHECKPOINT_NAMESPACE, &sig_path, msg.as_bytes());
        assert!(ok, "ssh-keygen refused checkpoint {seq}: {out}");
        assert!(
            out.contains("Good \"rampart-audit@rampart\" signature for audit@rampart"),
            "{out}"
        );

        // Negative: another message, another namespace.
        let forged = msg.replace(&format!("seq={seq}"), "seq=1");
        let (ok, out) = ssh_keygen_verify(dir, CHECKPOINT_NAMESPACE, &sig_path, forged.as_bytes());
        assert!(!ok, "ssh-keygen accepted an altered message: {out}");
        let (ok, _) = ssh_keygen_verify(dir, "git", &sig_path, msg.as_bytes());
        assert!(!ok, "signature must be bound to its namespace");
    }
}

#[test]
fn documented_sqlite3_pipeline_works() {
    // The exact recipe from the crate docs, with the stock sqlite3 and ssh-keygen.
    let f = Fixture::new();
    build(&f.path, 1000, 1000);
    let dir = f.dir.path();
    key()
        .public_key()
        .write_openssh_file(dir.join("audit_key.pub"))
        .unwrap();
    let script = r#"
set -e
echo "audit@rampart namespaces=\"rampart-audit@rampart\" $(cat audit_key.pub)" > allowed_signers
sqlite3 audit.db "SELECT signature FROM checkpoints WHERE seq = 1000" > cp.sig
sqlite3 audit.db "SELECT 'rampart-audit-checkpoint v1' || char(10) || 'seq=' || seq || char(10)
    || 'hash=' || lower(hex(hash)) || char(10) || 'time=' || time || char(10)
    FROM checkpoints WHERE seq = 1000" | head -c -1 > cp.msg   # drop sqlite3's extra newline
ssh-keygen -Y verify -f allowed_signers -I audit@rampart -n rampart-audit@rampart -s cp.sig < cp.msg
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Good"), "{text}");
    let (_, msg) = stored_checkpoint(&f.path, 1000);
    assert_eq!(std::fs::read_to_string(dir.join("cp.msg")).unwrap(), msg);
}

#[test]
fn ssh_keygen_signature_verifies_as_checkpoint() {
    let f = Fixture::new();
    build(&f.path, 10, 10);
    let dir = f.dir.path();
    let key_path = dir.join("audit_key");
    key()
        .write_openssh_file(&key_path, ssh_key::LineEnding::LF)
        .unwrap();
    let (_, msg) = stored_checkpoint(&f.path, 10);
    let msg_path = dir.join("cp.msg");
    std::fs::write(&msg_path, &msg).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-f"])
        .arg(&key_path)
        .args(["-n", CHECKPOINT_NAMESPACE])
        .arg(&msg_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = std::fs::read_to_string(dir.join("cp.msg.sig")).unwrap();
    let c = rusqlite::Connection::open(&f.path).unwrap();
    let (hash, time): (Vec<u8>, String) = c
        .query_row(
            "SELECT hash, time FROM checkpoints WHERE seq = 10",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let cp = Checkpoint {
        seq: 10,
        hash: hash.try_into().unwrap(),
        time: chrono::DateTime::parse_from_rfc3339(&time)
            .unwrap()
            .with_timezone(&chrono::Utc),
        signature: sig.clone(),
    };
    cp.verify(key().public_key()).unwrap();
    assert!(cp.verify(other_key().public_key()).is_err());
    // and the whole log still verifies with the OpenSSH-made signature swapped in
    let a = attacker(&f.path);
    a.execute(
        "UPDATE checkpoints SET signature = ?1 WHERE seq = 10",
        [sig],
    )
    .unwrap();
    drop(a);
    assert!(verify(&f.path, Some(key().public_key())).unwrap().is_ok());
}
