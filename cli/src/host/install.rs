//! `rampart host install`: set a host up to trust Rampart, idempotently.
//!
//! Without `--write` it prints every file it would place and the commands to run;
//! with `--write` it places them (under `--root`, default `/`) and says, per file,
//! whether it wrote it or found it already right — a second run changes nothing
//! and ends with "nothing changed".
//!
//! | file | content | when it exists already |
//! |---|---|---|
//! | `/etc/ssh/rampart_user_ca.pub` | the user CA keys (several during a rotation), fetched from `--ca` over pinned TLS; krl-sync keeps them current | kept if it holds the CA's keys, else replaced |
//! | `/etc/ssh/rampart.krl` (+ `.sig`) | the first signed KRL (`rampart host krl-sync`) | krl-sync's rules (never older) |
//! | `/etc/rampart/host-policy.toml` | the example host policy | never overwritten |
//! | `/etc/default/rampart-krl-sync` | `RAMPART_CA_URL`, `RAMPART_CA_FINGERPRINT` | replaced if different |
//! | `/etc/systemd/system/rampart-krl-sync.{service,timer}` | `packaging/systemd/` | replaced if different |
//! | `/etc/systemd/system/rampart-host-cert.{service,timer}` | `packaging/systemd/` (renews the host certificate once there is one) | replaced if different |
//! | `/etc/ssh/ssh_host_ed25519_key-cert.pub` | the host's first certificate, with `--join-token` (`POST /v1/hosts/join`) | kept: the renewal timer keeps it fresh |
//! | `/etc/ssh/sshd_config.d/rampart.conf` | the sshd drop-in (with `HostCertificate` once the host has one) | replaced if different |
//!
//! The drop-in is written last: sshd must never read a `RevokedKeys` line before
//! the KRL exists, because an unreadable KRL makes it refuse every public-key
//! login. For the same reason `--write` needs `--ca`: without the CA there is no
//! key to trust and no KRL to install. The PAM line for `pam_rampart.so` is only
//! printed, commented out, until the PAM module ships.

use std::fs;
use std::path::{Path, PathBuf};

use rampart_api::{Client, Fingerprint};

use super::krl;
use crate::cli::{InstallArgs, KrlSyncArgs};
use crate::error::{io_detail, CliError};
use crate::host::HostError;

/// The sshd drop-in, relative to the root.
const DROP_IN: &str = "etc/ssh/sshd_config.d/rampart.conf";
/// The user CA key file (TrustedUserCAKeys).
const CA_KEY: &str = "etc/ssh/rampart_user_ca.pub";
/// The KRL (RevokedKeys).
const KRL: &str = "etc/ssh/rampart.krl";
/// The host policy.
const POLICY: &str = "etc/rampart/host-policy.toml";
/// krl-sync's settings.
const ENV_FILE: &str = "etc/default/rampart-krl-sync";
/// The krl-sync units.
const SERVICE: &str = "etc/systemd/system/rampart-krl-sync.service";
const TIMER: &str = "etc/systemd/system/rampart-krl-sync.timer";
/// The host certificate renewal units.
const RENEW_SERVICE: &str = "etc/systemd/system/rampart-host-cert.service";
const RENEW_TIMER: &str = "etc/systemd/system/rampart-host-cert.timer";

const POLICY_EXAMPLE: &str = include_str!("../../../packaging/examples/host-policy.toml");
const SERVICE_UNIT: &str = include_str!("../../../packaging/systemd/rampart-krl-sync.service");
const TIMER_UNIT: &str = include_str!("../../../packaging/systemd/rampart-krl-sync.timer");
const RENEW_SERVICE_UNIT: &str =
    include_str!("../../../packaging/systemd/rampart-host-cert.service");
const RENEW_TIMER_UNIT: &str = include_str!("../../../packaging/systemd/rampart-host-cert.timer");

/// The sshd_config drop-in. Paths are the host's real ones even under `--root`.
/// `host_cert`: the host's certificate, once it has one.
pub fn drop_in(rampart_bin: &Path, principals_user: &str, host_cert: Option<&Path>) -> String {
    let mut text = format!(
        "# Rampart: trust Rampart user certificates on this host.\n\
         # Written by `rampart host install`; rerun it rather than editing this file.\n\
         TrustedUserCAKeys /{CA_KEY}\n\
         # Kept fresh by rampart-krl-sync.timer; an unreadable KRL refuses every key login.\n\
         RevokedKeys /{KRL}\n\
         # Which certificate principals may use which account: /{POLICY}.\n\
         AuthorizedPrincipalsCommand {} host principals --policy /{POLICY} %u %t %k\n\
         AuthorizedPrincipalsCommandUser {principals_user}\n",
        rampart_bin.display()
    );
    if let Some(cert) = host_cert {
        text.push_str(&format!(
            "# This host's certificate from the Rampart host CA; rampart-host-cert.timer renews it.\n\
             HostCertificate {}\n",
            cert.display()
        ));
    }
    text
}

/// The certificate file beside a host key: `KEY-cert.pub`, as sshd and
/// `ssh-keygen -s` name it.
fn cert_beside(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push("-cert.pub");
    PathBuf::from(name)
}

/// `path` (absolute on the host) below `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The `auth` line for sudo step-up with pam_rampart.so, built from the argument
/// names the module itself parses (an argument it does not know makes it refuse
/// everyone). The KRL age matches the module's default; krl-sync refreshes far
/// more often.
pub fn pam_line() -> String {
    use pam_rampart::args::names;
    format!(
        "auth required pam_rampart.so {}=/{CA_KEY} {}=/{KRL} {}=1d {}=15m {}=otp",
        names::CA_KEYS,
        names::KRL,
        names::KRL_MAX_AGE,
        names::MAX_MFA_AGE,
        names::MIN_FACTOR,
    )
}

/// How to turn on sudo step-up, printed (never written: `/etc/pam.d` is the
/// admin's to edit).
fn pam_advice() -> String {
    format!(
        "# sudo step-up: add this line to /etc/pam.d/sudo above `@include common-auth`\n\
         # (the rampart package ships pam_rampart.so; see\n\
         # /usr/share/doc/rampart/examples/pam.d-sudo for the choices):\n\
         {}",
        pam_line()
    )
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Wrote,
    Unchanged,
    /// The admin's own version is there and is left alone.
    Kept,
}

/// `rampart host install`.
pub fn run(a: &InstallArgs) -> Result<(), HostError> {
    if !valid_user(&a.principals_user) {
        return Err(CliError::Usage(format!(
            "--principals-user {:?} is not a user name",
            a.principals_user
        ))
        .into());
    }
    if !a.rampart_bin.is_absolute() || !a.host_key.is_absolute() {
        return Err(CliError::Usage(
            "--rampart-bin and --host-key must be absolute paths (sshd requires them)".to_owned(),
        )
        .into());
    }
    let host_cert = cert_beside(&a.host_key);
    let ca = match (&a.ca, &a.ca_fingerprint) {
        (Some(url), Some(fp)) => Some((url.clone(), fp.clone())),
        _ => None,
    };
    if !a.write {
        let cert = a.join_token.is_some().then_some(host_cert.as_path());
        let dropin = drop_in(&a.rampart_bin, &a.principals_user, cert);
        print_plan(a, &dropin, ca.as_ref())?;
        return Ok(());
    }
    let Some((url, fp)) = ca else {
        return Err(CliError::Usage(
            "--write needs --ca and --ca-fingerprint: the host needs the user CA key and a first \
             KRL before sshd may read the drop-in"
                .to_owned(),
        )
        .into());
    };
    let root = a.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let at = |rel: &str| root.join(rel);
    let changed = std::cell::Cell::new(false);
    let note = |path: &Path, o: Outcome| {
        if o == Outcome::Wrote {
            changed.set(true);
        }
        let p = path.display();
        match o {
            Outcome::Wrote => println!("wrote     {p}"),
            Outcome::Unchanged => println!("unchanged {p}"),
            Outcome::Kept => {
                println!("kept      {p} (yours differs from the example; not overwritten)")
            }
        }
    };

    // 1. The user CA key, from the CA itself over pinned TLS.
    let client = Client::new(&url, Fingerprint::parse(&fp).map_err(CliError::from)?)
        .map_err(CliError::from)?;
    let ca_keys = format!("{}\n", client.user_ca().map_err(CliError::from)?);
    let served: Vec<_> = krl::parse_ca_keys(&ca_keys)
        .map_err(|e| CliError::Unreachable(format!("the CA's user CA keys do not parse: {e}")))?
        .iter()
        .map(|k| k.key_data().clone())
        .collect();
    let key_path = at(CA_KEY);
    let has_keys = krl::read_ca_keys(&key_path)
        .map(|keys| {
            keys.iter()
                .map(|k| k.key_data().clone())
                .eq(served.iter().cloned())
        })
        .unwrap_or(false);
    if has_keys {
        note(&key_path, Outcome::Unchanged);
    } else {
        note(&key_path, put(&key_path, ca_keys.as_bytes())?);
    }

    // 2. The first KRL (krl-sync prints what it did).
    let krl_path = at(KRL);
    let before = fs::read(&krl_path).ok();
    krl::run(&KrlSyncArgs {
        ca: url.clone(),
        ca_fingerprint: fp.clone(),
        ca_key: key_path.clone(),
        out: krl_path.clone(),
        max_age: None,
    })?;
    if before != fs::read(&krl_path).ok() {
        changed.set(true);
    }

    // 3. The host certificate: one the host has is kept (the renewal timer
    // keeps it fresh); without one, a join token gets the first.
    let cert_path = under(&root, &host_cert);
    let has_cert = if cert_path.exists() {
        note(&cert_path, Outcome::Unchanged);
        true
    } else if let Some(token) = &a.join_token {
        let cert = join(&client, token, &under(&root, &a.host_key))?;
        note(&cert_path, put(&cert_path, cert.as_bytes())?);
        true
    } else {
        false
    };

    // 4. The host policy: an example the admin edits; never overwritten.
    let policy_path = at(POLICY);
    let o = match fs::read(&policy_path) {
        Ok(existing) if existing == POLICY_EXAMPLE.as_bytes() => Outcome::Unchanged,
        Ok(_) => Outcome::Kept,
        Err(_) => put(&policy_path, POLICY_EXAMPLE.as_bytes())?,
    };
    note(&policy_path, o);

    // 5. The timers and their settings.
    let env = format!("RAMPART_CA_URL={url}\nRAMPART_CA_FINGERPRINT={fp}\n");
    for (rel, text) in [
        (ENV_FILE, env.as_str()),
        (SERVICE, SERVICE_UNIT),
        (TIMER, TIMER_UNIT),
        (RENEW_SERVICE, RENEW_SERVICE_UNIT),
        (RENEW_TIMER, RENEW_TIMER_UNIT),
    ] {
        let p = at(rel);
        note(&p, put(&p, text.as_bytes())?);
    }

    // 6. Last, the drop-in that makes sshd use all of the above.
    let dropin = drop_in(
        &a.rampart_bin,
        &a.principals_user,
        has_cert.then_some(host_cert.as_path()),
    );
    let p = at(DROP_IN);
    note(&p, put(&p, dropin.as_bytes())?);
    if !includes_drop_ins(&root) {
        println!(
            "note: {} has no `Include /etc/ssh/sshd_config.d/*.conf`; add it near the top",
            root.join("etc/ssh/sshd_config").display()
        );
    }

    println!("{}", pam_advice());
    if changed.get() {
        println!(
            "next: sshd -t && systemctl reload ssh; systemctl daemon-reload && \
             systemctl enable --now rampart-krl-sync.timer{}",
            if has_cert {
                " rampart-host-cert.timer"
            } else {
                ""
            }
        );
    } else {
        println!("nothing changed: this host is already set up");
    }
    Ok(())
}

/// Redeem a host join token for the key whose private half is at `key` (its
/// `.pub` is sent): the certificate line, newline-terminated.
fn join(client: &Client, token: &str, key: &Path) -> Result<String, CliError> {
    let mut pub_path = key.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let public_key =
        fs::read_to_string(&pub_path).map_err(|e| CliError::no_input(&pub_path, &e))?;
    let cert: rampart_api::CertResponse = client
        .post_json(
            rampart_api::paths::HOST_JOIN,
            &rampart_api::HostJoinRequest {
                token: token.to_owned().into(),
                public_key: public_key.trim().to_owned(),
            },
        )
        .map_err(CliError::from)?;
    println!(
        "host certificate serial {} for {}, valid until {}",
        cert.serial,
        cert.principals.join(", "),
        cert.valid_before.format("%Y-%m-%dT%H:%M:%SZ")
    );
    Ok(format!("{}\n", cert.certificate.trim()))
}

/// Print every file and step, writing nothing.
fn print_plan(
    a: &InstallArgs,
    dropin: &str,
    ca: Option<&(String, String)>,
) -> Result<(), HostError> {
    let show = |rel: &str, text: &str| {
        println!("==> /{rel} (mode 0644)");
        print!("{text}");
        println!();
    };
    let ca_text = match ca {
        Some((url, fp)) => {
            let client = Client::new(url, Fingerprint::parse(fp).map_err(CliError::from)?)
                .map_err(CliError::from)?;
            format!("{}\n", client.user_ca().map_err(CliError::from)?)
        }
        None => "# the user CA key: GET <CA>/v1/ca/user.pub (pass --ca and --ca-fingerprint)\n"
            .to_owned(),
    };
    show(CA_KEY, &ca_text);
    let (url, fp) = ca
        .map(|(u, f)| (u.as_str(), f.as_str()))
        .unwrap_or(("https://CA:8443", "SHA256:…"));
    println!(
        "==> /{KRL} (and .sig)\n{} host krl-sync --ca {url} --ca-fingerprint {fp} --ca-key /{CA_KEY} --out /{KRL}\n",
        a.rampart_bin.display()
    );
    show(POLICY, POLICY_EXAMPLE);
    show(
        ENV_FILE,
        &format!("RAMPART_CA_URL={url}\nRAMPART_CA_FINGERPRINT={fp}\n"),
    );
    show(SERVICE, SERVICE_UNIT);
    show(TIMER, TIMER_UNIT);
    show(RENEW_SERVICE, RENEW_SERVICE_UNIT);
    show(RENEW_TIMER, RENEW_TIMER_UNIT);
    if a.join_token.is_some() {
        println!(
            "==> {} (unless there is one)\nthe host's first certificate: POST {url}{} with the \
             join token and {}.pub\n",
            cert_beside(&a.host_key).display(),
            rampart_api::paths::HOST_JOIN,
            a.host_key.display()
        );
    }
    show(DROP_IN, dropin);
    println!("==> PAM (sudo step-up)\n{}\n", pam_advice());
    println!("nothing written: pass --write (with --ca and --ca-fingerprint) to place these files");
    Ok(())
}

/// Write `bytes` to `path` (0644, atomically, creating parent directories 0755)
/// unless it already holds exactly them.
fn put(path: &Path, bytes: &[u8]) -> Result<Outcome, CliError> {
    if fs::read(path).is_ok_and(|b| b == bytes) {
        return Ok(Outcome::Unchanged);
    }
    if let Some(dir) = path.parent() {
        create_dirs(dir)?;
    }
    krl::write_atomic(path, bytes)?;
    Ok(Outcome::Wrote)
}

fn create_dirs(dir: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| {
            CliError::Other(anyhow::anyhow!(
                "cannot create {}: {}",
                dir.display(),
                io_detail(&e)
            ))
        })
}

/// Whether the main sshd_config includes the drop-in directory (Debian's does).
fn includes_drop_ins(root: &Path) -> bool {
    fs::read_to_string(root.join("etc/ssh/sshd_config")).is_ok_and(|t| {
        t.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next().is_some_and(|k| k.eq_ignore_ascii_case("include"))
                && w.any(|arg| arg.starts_with("/etc/ssh/sshd_config.d/"))
        })
    })
}

fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_pam_line_parses_with_the_modules_own_parser() {
        let line = pam_line();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words.get(..3),
            Some(&["auth", "required", "pam_rampart.so"][..]),
            "{line}"
        );
        let args = pam_rampart::Args::parse(words.get(3..).unwrap_or_default().iter().copied())
            .unwrap_or_else(|e| panic!("pam_rampart refuses its own line {line:?}: {e}"));
        assert_eq!(args.ca_keys, Path::new("/etc/ssh/rampart_user_ca.pub"));
        assert_eq!(args.krl, Path::new("/etc/ssh/rampart.krl"));
        assert_eq!(args.krl_max_age, pam_rampart::args::DEFAULT_KRL_MAX_AGE);
        assert_eq!(args.max_mfa_age, 15 * 60);
        // The advice carries the line uncommented, ready to paste.
        assert!(pam_advice().lines().any(|l| l == line), "{}", pam_advice());
    }

    #[test]
    fn packaged_sshd_example_is_what_install_writes() {
        assert_eq!(
            include_str!("../../../packaging/examples/sshd_config.rampart"),
            drop_in(Path::new("/usr/bin/rampart"), "nobody", None),
            "packaging/examples/sshd_config.rampart must be `rampart host install`'s drop-in \
             with the default --rampart-bin and --principals-user"
        );
    }

    #[test]
    fn drop_in_names_every_file_and_token() {
        let d = drop_in(Path::new("/usr/bin/rampart"), "nobody", None);
        assert!(
            !d.contains("HostCertificate"),
            "no certificate, no line:\n{d}"
        );
        let with_cert = drop_in(
            Path::new("/usr/bin/rampart"),
            "nobody",
            Some(&cert_beside(Path::new("/etc/ssh/ssh_host_ed25519_key"))),
        );
        assert!(
            with_cert.ends_with("HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n"),
            "{with_cert}"
        );
        for want in [
            "TrustedUserCAKeys /etc/ssh/rampart_user_ca.pub\n",
            "RevokedKeys /etc/ssh/rampart.krl\n",
            "AuthorizedPrincipalsCommand /usr/bin/rampart host principals --policy \
             /etc/rampart/host-policy.toml %u %t %k\n",
            "AuthorizedPrincipalsCommandUser nobody\n",
        ] {
            assert!(d.contains(want), "missing {want:?} in\n{d}");
        }
    }

    #[test]
    fn put_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/file");
        assert_eq!(put(&p, b"x").unwrap(), Outcome::Wrote);
        assert_eq!(put(&p, b"x").unwrap(), Outcome::Unchanged);
        assert_eq!(put(&p, b"y").unwrap(), Outcome::Wrote);
    }

    #[test]
    fn finds_the_include_line() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!includes_drop_ins(dir.path()));
        fs::create_dir_all(dir.path().join("etc/ssh")).unwrap();
        fs::write(
            dir.path().join("etc/ssh/sshd_config"),
            "# x\nInclude /etc/ssh/sshd_config.d/*.conf\nPort 22\n",
        )
        .unwrap();
        assert!(includes_drop_ins(dir.path()));
    }
}
