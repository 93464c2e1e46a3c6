//! OpenSSH-side files and tools: the file key, ssh-agent (`ssh-add`), the
//! Include-able `ssh_config` (and which hosts it offers the certificate to) and
//! the `@cert-authority` known_hosts line.
//!
//! The file key is what `ssh-keygen -t ed25519 -N ''` would write: the
//! `openssh-key-v1` private key (PROTOCOL.key) mode 0600 and the one-line public key
//! beside it. The certificate goes to `<key>-cert.pub`, the name ssh and ssh-add
//! look for next to a key (ssh(1) `CertificateFile`, ssh-add(1)).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use ssh_key::{Certificate, LineEnding, PrivateKey, PublicKey};

use crate::error::{io_detail, CliError};
use crate::home::{write_atomic, Home};

/// Load the file key's public half, creating the key pair first if it is missing.
/// Returns the public key and whether it was created.
pub fn ensure_file_key(home: &Home, user: &str) -> Result<(PublicKey, bool), CliError> {
    let path = home.key_path();
    match std::fs::read_to_string(&path) {
        Ok(pem) => {
            // The public half is stored in clear even in an encrypted key, so this
            // works without a passphrase.
            let key = PrivateKey::from_openssh(pem.trim()).map_err(|e| {
                CliError::Other(anyhow::anyhow!(
                    "{} is not an OpenSSH private key: {e}",
                    path.display()
                ))
            })?;
            Ok((key.public_key().clone(), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            home.ensure()?;
            let key = generate_key(&format!("rampart:{user}"))?;
            let pem = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("cannot encode the new key: {e}"))?;
            write_atomic(&path, pem.as_bytes(), 0o600)?;
            let public = key.public_key().clone();
            let line = public
                .to_openssh()
                .map_err(|e| anyhow::anyhow!("cannot encode the new public key: {e}"))?;
            write_atomic(&pub_path(&path), format!("{line}\n").as_bytes(), 0o644)?;
            Ok((public, true))
        }
        Err(e) => Err(CliError::Other(
            anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
        )),
    }
}

/// A fresh, unencrypted Ed25519 key with `comment`.
fn generate_key(comment: &str) -> Result<PrivateKey, CliError> {
    use ssh_key::getrandom::SysRng;
    use ssh_key::rand_core::UnwrapErr;
    let mut key = PrivateKey::random(&mut UnwrapErr(SysRng), ssh_key::Algorithm::Ed25519)
        .map_err(|e| anyhow::anyhow!("cannot generate a key: {e}"))?;
    key.set_comment(comment);
    Ok(key)
}

/// `<path>.pub`.
pub fn pub_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// The certificate file for an agent key: `agent-<fingerprint>-cert.pub`, with the
/// base64 made file-name safe.
pub fn agent_cert_path(home: &Home, fp: &ssh_key::Fingerprint) -> PathBuf {
    let text = fp.to_string();
    let b64 = text.strip_prefix("SHA256:").unwrap_or(&text);
    let safe: String = b64
        .chars()
        .map(|c| match c {
            '/' => '_',
            '+' => '-',
            c => c,
        })
        .collect();
    home.dir().join(format!("agent-{safe}-cert.pub"))
}

/// Whether an ssh-agent is reachable by name (`SSH_AUTH_SOCK` set).
pub fn agent_present() -> bool {
    std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty())
}

/// Find the public key in the agent (`ssh-add -L`) whose SHA-256 fingerprint is `want`.
pub fn agent_key(want: &str) -> Result<PublicKey, CliError> {
    let want_fp: ssh_key::Fingerprint = want.trim().parse().map_err(|_| {
        CliError::Usage(format!(
            "invalid key fingerprint {want:?}: expected SHA256:<base64> as `ssh-add -l` prints"
        ))
    })?;
    if !agent_present() {
        return Err(CliError::Usage(
            "--agent-key needs a running ssh-agent (SSH_AUTH_SOCK is not set)".to_owned(),
        ));
    }
    let out = Command::new("ssh-add")
        .arg("-L")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| CliError::Other(anyhow::anyhow!("cannot run ssh-add: {}", io_detail(&e))))?;
    let text = String::from_utf8_lossy(&out.stdout);
    find_key(&text, &want_fp).ok_or_else(|| {
        CliError::Usage(format!(
            "no key with fingerprint {want_fp} in ssh-agent (see `ssh-add -l`)"
        ))
    })
}

/// The key among `ssh-add -L` lines whose fingerprint is `want` (certificate lines
/// are left_out: they do not parse as plain public keys).
fn find_key(listing: &str, want: &ssh_key::Fingerprint) -> Option<PublicKey> {
    listing
        .lines()
        .filter_map(|l| PublicKey::from_openssh(l.trim()).ok())
        .find(|k| k.fingerprint(want.algorithm()) == *want)
}

/// `ssh-add -t <secs> <key>`; ssh-add loads `<key>-cert.pub` beside it too.
pub fn agent_add(key: &Path, lifetime_secs: u64) -> Result<(), String> {
    run_ssh_add(&["-t", &lifetime_secs.max(1).to_string()], key)
}

/// `ssh-add -d <key>`, which also removes `<key>-cert.pub` from the agent.
pub fn agent_remove(key: &Path) -> Result<(), String> {
    run_ssh_add(&["-d"], key)
}

fn run_ssh_add(args: &[&str], key: &Path) -> Result<(), String> {
    let out = Command::new("ssh-add")
        .args(args)
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-add: {}", io_detail(&e)))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(if line.is_empty() {
            format!("ssh-add exited with {}", out.status)
        } else {
            line
        })
    }
}

/// The `known_hosts` content that trusts host certificates from the host CA
/// keys (one per line of `host_ca_keys`: several while a rotation runs) and
/// marks revoked host keys `@revoked` (ssh refuses those whatever certificate
/// they carry). A key that does not parse as an OpenSSH public key is left out
/// rather than written as a line ssh might misread.
pub fn known_hosts(host_ca_keys: &str, revoked_host_keys: &[String]) -> String {
    let mut out = String::new();
    for line in host_ca_keys
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if ssh_key::PublicKey::from_openssh(line).is_ok() {
            out.push_str(&format!("@cert-authority * {line}\n"));
        }
    }
    for key in revoked_host_keys {
        if let Ok(k) = ssh_key::PublicKey::from_openssh(key.trim()) {
            // Written without its comment: only the key goes on the line.
            let bare = ssh_key::PublicKey::new(k.key_data().clone(), "");
            if let Ok(line) = bare.to_openssh() {
                out.push_str(&format!("@revoked * {line}\n"));
            }
        }
    }
    out
}

/// Whether `p` may go on the ssh_config `Host` line: a host name, address or
/// pattern (`*`, `?`) made of the characters host names use, naming at least one
/// of them. So no pattern that matches every host (`*`, `*.*`), no negation, and
/// nothing that could end the line and start another directive (the CA's list
/// is checked with this too).
pub fn host_pattern_ok(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 253
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '*' | '?'))
        && p.chars().any(|c| c.is_ascii_alphanumeric())
}

/// The host name in a CA URL (`https://host:port/…`, `https://[::1]:port`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h).unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    Some(host.to_ascii_lowercase()).filter(|h| host_pattern_ok(h))
}

/// The hosts the certificate is offered to, and the CA's entries left out as
/// unusable. The CA's list (its joined bastions) comes first, then the user's
/// own (`login --ssh-host`), without duplicates; when both are empty, the CA's
/// own host, the one host name the CLI's config holds.
///
/// Never every host: a certificate offered to every server (`ssh
/// git@github.com`, or a hostile one) tells it who the user is and what they may
/// reach (key ID, principals, MFA extensions).
pub fn cert_hosts(
    from_ca: &[String],
    configured: &[String],
    ca_url: &str,
) -> (Vec<String>, Vec<String>) {
    let mut hosts: Vec<String> = Vec::new();
    let mut left_out = Vec::new();
    for h in from_ca {
        if !host_pattern_ok(h) {
            left_out.push(h.clone());
        } else if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    for h in configured {
        if host_pattern_ok(h) && !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    if hosts.is_empty() {
        hosts.extend(url_host(ca_url));
    }
    (hosts, left_out)
}

/// The Include-able `ssh_config`: one `Host` block for `hosts` with the key,
/// the certificate and the Rampart known_hosts (and, for a YubiKey, its PKCS#11
/// module). With no hosts it holds no directive at all: outside a `Host` block
/// they would apply to every host.
pub fn ssh_config(
    home: &Home,
    hosts: &[String],
    identity: Option<&Path>,
    cert: &Path,
    pkcs11: Option<&str>,
) -> String {
    let mut out = String::from(
        "# Written by `rampart login`; rewritten at every login.\n\
         # Use it with this line at the top of ~/.ssh/config:\n",
    );
    out.push_str(&format!("#   {}\n", include_line(home)));
    let hosts: Vec<&str> = hosts
        .iter()
        .map(String::as_str)
        .filter(|h| host_pattern_ok(h))
        .collect();
    if hosts.is_empty() {
        out.push_str(
            "# No host to offer the certificate to: name them with `rampart login --ssh-host`.\n",
        );
        return out;
    }
    out.push_str(
        "# The certificate is offered to these hosts only (the CA's bastions and\n\
         # `rampart login --ssh-host PATTERN`), never to every host.\n",
    );
    out.push_str(&format!("Host {}\n", hosts.join(" ")));
    if let Some(key) = identity {
        out.push_str(&format!("    IdentityFile {}\n", quote(key)));
    }
    out.push_str(&format!("    CertificateFile {}\n", quote(cert)));
    out.push_str(&format!(
        "    UserKnownHostsFile {} ~/.ssh/known_hosts\n",
        quote(&home.known_hosts_path())
    ));
    if let Some(module) = pkcs11 {
        out.push_str(&format!("    PKCS11Provider {module}\n"));
    }
    out
}

/// The `Host` blocks that make `ssh TARGET` jump through the bastion serving
/// it: per bastion, where to dial it and the name its host certificate is for
/// (`HostKeyAlias`, so a bastion dialled by address still matches
/// `@cert-authority`), then its targets with `ProxyJump`. Every name comes
/// from the CA and goes on a line only if [`host_pattern_ok`] passes it, so no
/// name can end a line and start a directive, nor match every host; bastion
/// names are negated on every target line so a pattern cannot make a bastion
/// jump through itself. Returns the blocks and the names left out.
pub fn jump_blocks(t: &rampart_api::Targets) -> (String, Vec<String>) {
    let plain = |h: &str| host_pattern_ok(h) && !h.contains(['*', '?']);
    let mut left_out = Vec::new();
    let mut bastions = Vec::new();
    for b in &t.bastions {
        if plain(&b.name) && plain(&b.host) && b.port != 0 {
            bastions.push(b);
        } else {
            left_out.push(b.name.clone());
        }
    }
    let negated: Vec<String> = bastions.iter().map(|b| format!("!{}", b.name)).collect();
    let mut out = String::new();
    for b in &bastions {
        let names: Vec<&str> = t
            .targets
            .iter()
            .filter(|r| r.bastion == b.name)
            .map(|r| r.target.as_str())
            .filter(|n| {
                let ok = host_pattern_ok(n) && !bastions.iter().any(|b| b.name == *n);
                if !ok {
                    left_out.push((*n).to_owned());
                }
                ok
            })
            .collect();
        if names.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str(
                "# Targets you reach through a bastion (`rampart ls`): `ssh TARGET` jumps\n\
                 # through the bastion that serves it.\n",
            );
        }
        out.push_str(&format!(
            "Host {name}\n    HostName {host}\n    Port {port}\n    User rampart\n    \
             HostKeyAlias {name}\n",
            name = b.name,
            host = b.host,
            port = b.port
        ));
        out.push_str(&format!(
            "Host {} {}\n    ProxyJump {}\n",
            names.join(" "),
            negated.join(" "),
            b.name
        ));
    }
    for r in &t.targets {
        if !bastions.iter().any(|b| b.name == r.bastion) && !left_out.contains(&r.target) {
            left_out.push(r.target.clone());
        }
    }
    (out, left_out)
}

/// Whether `config` (an ssh_config [`jump_blocks`] wrote into) has the block
/// for `bastion`: a `Host` line naming exactly it.
pub fn has_host_block(config: &str, bastion: &str) -> bool {
    config.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next().is_some_and(|k| k.eq_ignore_ascii_case("host"))
            && words.next() == Some(bastion)
            && words.next().is_none()
    })
}

/// `Include <home>/ssh_config`.
pub fn include_line(home: &Home) -> String {
    format!("Include {}", quote(&home.ssh_config_path()))
}

/// ssh_config(5) takes double quotes around arguments with spaces.
fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s
    }
}

/// Parse a one-line OpenSSH certificate file.
pub fn read_cert(path: &Path) -> Result<Option<Certificate>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot read {}", path.display()))
                .into())
        }
    };
    Certificate::from_openssh(text.trim())
        .map(Some)
        .with_context(|| format!("{} is not an OpenSSH certificate", path.display()))
        .map_err(CliError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::HashAlg;

    #[test]
    fn file_key_is_created_once_and_readable_by_ssh_keygen() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(&tmp.path().join("h"));
        let (pk, created) = ensure_file_key(&home, "alice").unwrap();
        assert!(created);
        let (pk2, created2) = ensure_file_key(&home, "alice").unwrap();
        assert!(!created2);
        assert_eq!(pk.key_data(), pk2.key_data());
        assert_eq!(pk.comment().as_str_lossy(), "rampart:alice");

        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(home.key_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // ssh-keygen derives the same public key from our private key file.
        if let Ok(out) = Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(home.key_path())
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let derived =
                PublicKey::from_openssh(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
            assert_eq!(derived.key_data(), pk.key_data());
        }
    }

    #[test]
    fn finds_agent_key_by_fingerprint_skipping_certs() {
        let a = generate_key("a").unwrap();
        let b = generate_key("b").unwrap();
        let listing = format!(
            "ssh-ed25519-cert-v01@openssh.com AAAAbogus cert\n{}\n{}\n",
            a.public_key().to_openssh().unwrap(),
            b.public_key().to_openssh().unwrap()
        );
        let want = b.public_key().fingerprint(HashAlg::Sha256);
        let found = find_key(&listing, &want).unwrap();
        assert_eq!(found.key_data(), b.public_key().key_data());
        let other = generate_key("c")
            .unwrap()
            .public_key()
            .fingerprint(HashAlg::Sha256);
        assert!(find_key(&listing, &other).is_none());
    }

    #[test]
    fn config_files_render() {
        let home = Home::at(Path::new("/h/my home"));
        let hosts = ["bastion.example.com".to_owned(), "db-*".to_owned()];
        let cfg = ssh_config(
            &home,
            &hosts,
            Some(&home.key_path()),
            &home.cert_path(),
            None,
        );
        assert!(cfg.contains("\nHost bastion.example.com db-*\n"), "{cfg}");
        assert!(cfg.contains("    IdentityFile \"/h/my home/id_ed25519\"\n"));
        assert!(cfg.contains("    CertificateFile \"/h/my home/id_ed25519-cert.pub\"\n"));
        assert!(
            cfg.contains("    UserKnownHostsFile \"/h/my home/known_hosts\" ~/.ssh/known_hosts\n")
        );
        assert_eq!(include_line(&home), "Include \"/h/my home/ssh_config\"");
        let key = |byte, comment: &str| {
            ssh_key::PublicKey::new(
                ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([byte; 32])),
                comment,
            )
        };
        let host_ca = key(1, "").to_openssh().unwrap();
        let next_ca = key(2, "").to_openssh().unwrap();
        assert_eq!(
            known_hosts(&format!("{host_ca}\n"), &[]),
            format!("@cert-authority * {host_ca}\n")
        );
        // A rotation: both keys trusted; a line that is not a key is left out.
        assert_eq!(
            known_hosts(&format!("{host_ca}\n{next_ca}\n* evil\n"), &[]),
            format!("@cert-authority * {host_ca}\n@cert-authority * {next_ca}\n")
        );
        let revoked = key(7, "web-1 old key");
        let bare = ssh_key::PublicKey::new(revoked.key_data().clone(), "")
            .to_openssh()
            .unwrap();
        let with_comment = revoked.to_openssh().unwrap();
        assert_eq!(
            known_hosts(
                &host_ca,
                &[with_comment, "not a key\n@cert-authority * x".into()]
            ),
            format!("@cert-authority * {host_ca}\n@revoked * {bare}\n")
        );
        let fp: ssh_key::Fingerprint = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
            .parse()
            .unwrap();
        let p = agent_cert_path(&home, &fp);
        assert_eq!(
            p,
            Path::new("/h/my home/agent-47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU-cert.pub")
        );
    }

    fn listing(bastions: &[(&str, &str, u16)], rows: &[(&str, &str)]) -> rampart_api::Targets {
        rampart_api::Targets {
            user: "alice".into(),
            targets: rows
                .iter()
                .map(|(t, b)| rampart_api::TargetAccess {
                    target: (*t).into(),
                    pattern: t.contains('*'),
                    bastion: (*b).into(),
                    logins: vec!["alice".into()],
                    roles: vec!["dev".into()],
                    session_check: "none".into(),
                    labels: Default::default(),
                })
                .collect(),
            bastions: bastions
                .iter()
                .map(|(n, h, p)| rampart_api::BastionAddress {
                    name: (*n).into(),
                    host: (*h).into(),
                    port: *p,
                })
                .collect(),
            denied: None,
        }
    }

    #[test]
    fn jump_blocks_name_each_bastion_and_its_targets() {
        let t = listing(
            &[
                ("bastion-1", "127.0.0.1", 2222),
                ("b2.example", "b2.example", 22),
            ],
            &[
                ("db-1", "bastion-1"),
                ("db-*", "bastion-1"),
                ("web-1", "b2.example"),
            ],
        );
        let (cfg, left_out) = jump_blocks(&t);
        assert_eq!(
            cfg,
            "# Targets you reach through a bastion (`rampart ls`): `ssh TARGET` jumps\n\
             # through the bastion that serves it.\n\
             Host bastion-1\n    HostName 127.0.0.1\n    Port 2222\n    User rampart\n    HostKeyAlias bastion-1\n\
             Host db-1 db-* !bastion-1 !b2.example\n    ProxyJump bastion-1\n\
             Host b2.example\n    HostName b2.example\n    Port 22\n    User rampart\n    HostKeyAlias b2.example\n\
             Host web-1 !bastion-1 !b2.example\n    ProxyJump b2.example\n"
        );
        assert!(left_out.is_empty(), "{left_out:?}");
        assert_eq!(jump_blocks(&listing(&[], &[])).0, "");
        assert!(has_host_block(&cfg, "bastion-1") && has_host_block(&cfg, "b2.example"));
        // A bastion named only among other hosts or negated has no block.
        assert!(!has_host_block(&cfg, "db-1"));
        assert!(!has_host_block("Host db-1 !bastion-3\n", "bastion-3"));
    }

    /// Names the CA sends that could end a config line, start a comment or
    /// directive, quote, or match every host never reach a line.
    #[test]
    fn odd_target_and_bastion_names_never_make_a_config_line() {
        let evil = [
            "db 1",
            "db-1\nHost *",
            "db-1\r\nProxyCommand sh -c x",
            "db#1",
            "db-1\tProxyCommand x",
            "\"db-1\"",
            "*",
            "!db-1",
            "db-1,db-2",
            "=x",
            "",
        ];
        for name in evil {
            for (bastions, rows, expected) in [
                (
                    vec![("bastion-1", "127.0.0.1", 2222)],
                    vec![(name, "bastion-1"), ("db-ok", "bastion-1")],
                    name,
                ),
                (vec![(name, "127.0.0.1", 2222)], vec![("db-ok", name)], name),
                (
                    vec![("bastion-1", name, 2222)],
                    vec![("db-ok", "bastion-1")],
                    "bastion-1",
                ),
            ] {
                let (cfg, left_out) = jump_blocks(&listing(&bastions, &rows));
                assert!(
                    left_out.iter().any(|s| s == expected),
                    "{name:?}: {left_out:?}"
                );
                for line in cfg.lines() {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    assert!(
                        line.starts_with('#') || name.is_empty() || !words.contains(&name),
                        "{name:?} reached a line: {line:?}"
                    );
                    assert!(!line.contains(['"', '=', ',', '\t', '\r']), "{line:?}");
                    if !line.starts_with('#') {
                        assert!(!line.contains('#'), "{line:?}");
                    }
                }
                for (host, d) in directives(&cfg) {
                    let host = host.expect("every directive is under a Host line");
                    assert!(
                        host.split_whitespace()
                            .filter(|p| !p.starts_with('!'))
                            .all(host_pattern_ok),
                        "{host:?} {d:?}"
                    );
                }
            }
        }
    }

    /// Every directive of the config, with the `Host` patterns it applies under
    /// (`None` before the first `Host` line: such directives apply to every host).
    fn directives(cfg: &str) -> Vec<(Option<String>, String)> {
        let mut host = None;
        let mut out = Vec::new();
        for line in cfg.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(' ') {
                Some((k, v)) if k.eq_ignore_ascii_case("host") => host = Some(v.to_owned()),
                _ => out.push((host.clone(), line.to_owned())),
            }
        }
        out
    }

    /// No block that applies to every host (`Host *`, or no `Host` line at all)
    /// carries the Rampart key or certificate, whatever the CA or the user names.
    #[test]
    fn no_block_for_every_host_carries_the_certificate() {
        let home = Home::at(Path::new("/h"));
        let cases: [(&[&str], &[&str], &str); 5] = [
            (&["bastion.example.com"], &[], "https://ca.example.com:8443"),
            (&[], &["db-*"], "https://ca.example.com:8443"),
            (&[], &[], "https://ca.example.com:8443"),
            (
                &["*", "a\nHost *"],
                &["*", "*.*", "!x"],
                "https://ca.example.com",
            ),
            (&[], &[], "not a url"),
        ];
        for (from_ca, configured, url) in cases {
            let from_ca: Vec<String> = from_ca.iter().map(|s| s.to_string()).collect();
            let configured: Vec<String> = configured.iter().map(|s| s.to_string()).collect();
            let (hosts, _) = cert_hosts(&from_ca, &configured, url);
            for pkcs11 in [None, Some("/usr/lib/libykcs11.so")] {
                let cfg = ssh_config(
                    &home,
                    &hosts,
                    Some(&home.key_path()),
                    &home.cert_path(),
                    pkcs11,
                );
                for (host, d) in directives(&cfg) {
                    let everywhere = match &host {
                        None => true,
                        Some(h) => h.split_whitespace().any(|p| !host_pattern_ok(p)),
                    };
                    assert!(!everywhere, "{d:?} under {host:?} for {hosts:?}:\n{cfg}");
                    let d = d.to_ascii_lowercase();
                    if d.starts_with("certificatefile") || d.starts_with("identityfile") {
                        assert!(host.is_some(), "{cfg}");
                    }
                }
                assert!(!cfg.contains("Host *\n"), "{cfg}");
            }
        }
    }

    #[test]
    fn the_hosts_are_the_cas_then_the_users_else_the_cas_own() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (hosts, left_out) = cert_hosts(
            &s(&["bastion-a", "bastion-b", "*", "x y"]),
            &s(&["db-*", "bastion-a"]),
            "https://ca.example.com:8443",
        );
        assert_eq!(hosts, s(&["bastion-a", "bastion-b", "db-*"]));
        assert_eq!(left_out, s(&["*", "x y"]));
        // Nothing named: the CA's own host, never `*`.
        let (hosts, _) = cert_hosts(&[], &[], "https://CA.example.com:8443/");
        assert_eq!(hosts, s(&["ca.example.com"]));
        assert_eq!(cert_hosts(&[], &[], "https://[::1]:8443").0, s(&["::1"]));
        assert_eq!(
            cert_hosts(&[], &[], "https://127.0.0.1:8443").0,
            s(&["127.0.0.1"])
        );

        for ok in ["db-1", "*.prod.example.com", "10.0.0.?", "::1", "bastion_2"] {
            assert!(host_pattern_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "*",
            "*.*",
            "?",
            "!db-1",
            "a b",
            "a\nHost *",
            "a\"",
            "h#x",
            "é.example",
        ] {
            assert!(!host_pattern_ok(bad), "{bad:?}");
        }
    }
}
