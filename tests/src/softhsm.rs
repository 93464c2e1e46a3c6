//! A throwaway SoftHSM2 token (Debian's `softhsm2`): its own config and
//! object directory in a temporary directory, a user PIN in a 0600 file.
//! SoftHSM finds its config through `SOFTHSM2_CONF`, which [`SoftHsm::new`]
//! sets for this test process and so for every program it starts.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs the module.
const MODULES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

/// One initialised token.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
    /// The token's label.
    pub label: String,
}

impl SoftHsm {
    /// A fresh token labelled `label`. Fails (never skips) when SoftHSM2 is
    /// not installed.
    pub fn new(label: &str) -> SoftHsm {
        let module = MODULES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!("SoftHSM2 is not installed (apt-get install softhsm2; scripts/test does it)")
            });
        let dir = crate::tempdir("softhsm");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token directory");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let pin = "e2e-user-pin-1234";
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, pin).expect("write the PIN file");
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the PIN file");
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", pin, "--so-pin", "e2e-so-pin-5678"])
            .output()
            .expect("run softhsm2-util");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SoftHsm {
            dir,
            module,
            label: label.to_owned(),
        }
    }

    /// The PKCS#11 module.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The file holding the user PIN.
    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    /// `rampart-ca init` options that make the CA keys in this token.
    pub fn init_args(&self) -> Vec<String> {
        vec![
            "--pkcs11-module".into(),
            self.module.display().to_string(),
            "--pkcs11-token".into(),
            self.label.clone(),
            "--pkcs11-pin-file".into(),
            self.pin_file().display().to_string(),
        ]
    }
}
