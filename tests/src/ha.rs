//! The scene the high-availability tests share: a CA keeping its state and
//! audit log in PostgreSQL, with everything a live session through a bastion
//! needs around it (an admin, alice logged in as an engineer, a target sshd
//! that trusts the host CA, a bastion joined through that CA serving it as
//! `db-1`).
//!
//! The test keeps PostgreSQL and the CAs itself: it stops and restarts the
//! one, copies or kills the others, and they must outlive the scene (declared
//! before it, they are dropped after it).

use std::path::PathBuf;
use std::process::Child;

use tempfile::TempDir;

use crate::bastion::{host_ca_target, scratch, ssh_spawn, Bastion, TargetSpec};
use crate::{bootstrap_admin, eventually, onboard, Ca, Enrolled, Sshd, TEST_ACCOUNT};

/// The bastion's name in the policy and at the CA.
pub const BASTION: &str = "bastion-1";
/// The target's name at the bastion.
pub const TARGET: &str = "db-1";

/// A CA (not started) whose state and audit log are in the PostgreSQL
/// database at `url`, with the policy that lets engineers reach `db-*`
/// through [`BASTION`].
pub fn postgres_ca(url: &str) -> Ca {
    let ca = Ca::init_postgres(url, "");
    ca.write_policy(&crate::policy::bastion_policy(
        &ca.info().admin_user.clone(),
        BASTION,
    ));
    ca
}

/// Who and what a session through the bastion involves, set up through one
/// running CA. Fields drop in order: the scratch folder, the bastion, the
/// target, then the users.
#[derive(Debug)]
pub struct Scene {
    /// Scratch files: alice's ssh config, the output of sessions.
    pub dir: TempDir,
    /// alice's ssh config, reaching [`TARGET`] through the bastion.
    pub config: PathBuf,
    /// The bastion, joined through the CA and started.
    pub bastion: Bastion,
    /// The target, trusting the CA's host CA.
    pub sshd: Sshd,
    /// An engineer, logged in.
    pub alice: Enrolled,
    /// The admin.
    pub admin: Enrolled,
}

impl Scene {
    /// Bootstrap the admin of the running `ca`, onboard and log in alice,
    /// start the target and join and start the bastion through `ca`; `tag`
    /// names the scratch folder.
    pub fn new(ca: &Ca, tag: &str) -> Scene {
        let admin = bootstrap_admin(ca);
        let mut alice = onboard(ca, &admin, "alice", &["engineers"]);
        alice.login();
        let sshd = host_ca_target(ca, &admin, Vec::new());
        let mut bastion = Bastion::join(
            ca,
            &admin,
            BASTION,
            &[TargetSpec::host_ca(TARGET, sshd.port())],
        );
        bastion.start();
        let dir = scratch(tag);
        let config = bastion.ssh_config(&alice, dir.path(), &[TARGET]);
        Scene {
            dir,
            config,
            bastion,
            sshd,
            alice,
            admin,
        }
    }

    /// `LOGIN@db-1`, for ssh.
    pub fn target(&self) -> String {
        format!("{TEST_ACCOUNT}@{TARGET}")
    }

    /// alice's `ssh` running `command` on the target in the background, once
    /// the target has seen her log in: the child and the files its stdout and
    /// stderr go to.
    pub fn live_session(&self, command: &str) -> (Child, PathBuf, PathBuf) {
        let live = ssh_spawn(
            &self.config,
            &[&self.target(), command],
            self.dir.path(),
            "live",
        );
        eventually("the live session reaches the target", || {
            self.sshd.log().contains("user=alice")
        });
        live
    }
}
