//! A small real filesystem (tmpfs) mounted over a test's directory, for the
//! disk-full cases: the audit database, a bastion's recordings. Needs root, as
//! the end-to-end suite runs; unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size over a directory.
#[derive(Debug)]
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mount `size` (tmpfs syntax: `512k`, `4m`) over `dir`, creating it.
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mkdir");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs for a disk-full test needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk {
            dir: dir.to_path_buf(),
        }
    }

    /// The mounted directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write zeros until the filesystem is full; returns the filler file.
    pub fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        // dd stops with ENOSPC, which is the point; its exit status is not.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4096"])
            .arg(format!("of={}", filler.display()))
            .output();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
