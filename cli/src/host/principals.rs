//! `rampart host principals`: sshd's `AuthorizedPrincipalsCommand`.
//!
//! sshd (sshd_config(5)) runs the command for a user certificate signed by a
//! `TrustedUserCAKeys` key and accepts the certificate if one of its principals is
//! among the lines the command prints. The sshd_config line is
//!
//! ```text
//! AuthorizedPrincipalsCommand /usr/bin/rampart host principals --policy /etc/rampart/host-policy.toml %u %t %k
//! AuthorizedPrincipalsCommandUser nobody
//! ```
//!
//! with the tokens `%u` (the local account), `%t` (the key/certificate type) and
//! `%k` (the certificate, base64). sshd has already checked the CA signature,
//! validity, `RevokedKeys` and critical options; this command only decides which
//! of the certificate's principals may log in to this account, by the host policy
//! (parsed and matched by `rampart_policy::host`):
//!
//! ```toml
//! version = 1
//! [accounts.root]
//! principals = ["alice", "sre-*"]      # `*` and `?` wildcards
//! [accounts."*"]                       # every account without its own entry
//! principals = ["{account}"]           # {account} = the local account name
//! ```
//!
//! It prints each certificate principal that a pattern of the account's entry
//! (or else of `"*"`) matches, one per line, and exits 0 — with no output when
//! none match (sshd then refuses). It makes no network call.
//!
//! An account with `via_bastion = true` takes only a bastion's per-session
//! certificate (one that carries the CA-signed `bastion-session@rampart`
//! extension): a user's own certificate gets no line for it, so nobody reaches
//! that account without the bastion's recording and per-session MFA.
//!
//! sshd refuses to run a command that is not root-owned or sits under a group- or
//! world-writable directory (e.g. /tmp); this command in turn refuses a policy
//! file that group or others can write, since whoever writes it decides who gets
//! in.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use rampart_policy::host::HostPolicy;
use ssh_key::certificate::CertType;
use ssh_key::Certificate;

use crate::cli::PrincipalsArgs;
use crate::error::CliError;
use crate::host::HostError;

/// Largest host policy file read.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;
/// Largest base64 certificate accepted (an RSA-16384 certificate with many
/// principals stays well below this).
const MAX_CERT_B64: usize = 64 * 1024;

/// The principals of `cert` accepted for `account`: none for an account that
/// takes only per-session certificates when `cert` is not one.
pub fn allowed_for<'a>(policy: &HostPolicy, account: &str, cert: &'a Certificate) -> Vec<&'a str> {
    let per_session = cert
        .extensions()
        .contains_key(rampart_policy::EXT_BASTION_SESSION);
    if policy.bastion_only(account) && !per_session {
        return Vec::new();
    }
    policy.allowed(account, cert.valid_principals())
}

/// Read the policy file, refusing one that group or others can write.
pub fn load_policy(path: &Path) -> Result<HostPolicy, CliError> {
    use std::os::unix::fs::PermissionsExt as _;
    let file = File::open(path).map_err(|e| CliError::no_input(path, &e))?;
    let meta = file.metadata().map_err(|e| CliError::no_input(path, &e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CliError::PolicyInvalid(format!(
            "{}: mode {mode:04o} lets group or others write the host policy; chmod go-w it",
            path.display()
        )));
    }
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| CliError::no_input(path, &e))?;
    HostPolicy::parse(&text)
        .map_err(|e| CliError::PolicyInvalid(format!("{}: {e}", path.display())))
}

/// Decode sshd's `%k` for a user certificate and check it is of type `%t`.
pub fn decode_cert(key_type: &str, b64: &str) -> Result<Certificate, CliError> {
    let usage = |m: &str| CliError::Usage(m.to_owned());
    if !key_type.ends_with("-cert-v01@openssh.com") {
        return Err(usage(
            "not a certificate (key type is not *-cert-v01@openssh.com); pass sshd's %u %t %k",
        ));
    }
    if b64.len() > MAX_CERT_B64 {
        return Err(usage("certificate argument too large"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| usage("the certificate argument is not base64 (sshd's %k)"))?;
    let cert = Certificate::from_bytes(&bytes)
        .map_err(|e| CliError::Usage(format!("the certificate argument does not parse: {e}")))?;
    if cert.algorithm().to_certificate_type() != key_type {
        return Err(CliError::Usage(format!(
            "the certificate is a {}, not the {key_type} sshd named",
            cert.algorithm().to_certificate_type()
        )));
    }
    if cert.cert_type() != CertType::User {
        return Err(usage("a host certificate cannot log in to an account"));
    }
    Ok(cert)
}

/// `rampart host principals`.
pub fn run(a: &PrincipalsArgs) -> Result<(), HostError> {
    let policy = load_policy(&a.policy)?;
    let cert = decode_cert(&a.key_type, &a.cert)?;
    let mut out = String::new();
    for p in allowed_for(&policy, &a.account, &cert) {
        out.push_str(p);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_writable_policy_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host-policy.toml");
        std::fs::write(&path, "version = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_policy(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_policy(&path).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_POLICY_INVALID);
    }

    fn cert(principal: &str, extensions: &[(&str, &str)]) -> Certificate {
        use ssh_key::private::{Ed25519Keypair, PrivateKey};
        let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[1u8; 32]));
        let user = PrivateKey::from(Ed25519Keypair::from_seed(&[2u8; 32]));
        let mut b = ssh_key::certificate::Builder::new(
            [3u8; 32].to_vec(),
            user.public_key().key_data().clone(),
            1,
            u64::MAX - 1,
        )
        .unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal(principal).unwrap();
        for (name, value) in extensions {
            b.extension(*name, *value).unwrap();
        }
        b.sign(&ca).unwrap()
    }

    #[test]
    fn a_via_bastion_account_takes_only_per_session_certificates() {
        let p = HostPolicy::parse(
            r#"
version = 1
[accounts.postgres]
principals = ["postgres"]
via_bastion = true
[accounts."*"]
principals = ["{account}"]
"#,
        )
        .unwrap();
        let own = cert("postgres", &[]);
        let session = cert(
            "postgres",
            &[(
                rampart_policy::EXT_BASTION_SESSION,
                "bastion-1 01J0000000000000000000ABCD",
            )],
        );
        assert!(
            allowed_for(&p, "postgres", &own).is_empty(),
            "a user's own certificate"
        );
        assert_eq!(allowed_for(&p, "postgres", &session), ["postgres"]);
        // Other accounts are not affected.
        let alice = cert("alice", &[]);
        assert_eq!(allowed_for(&p, "alice", &alice), ["alice"]);
    }

    #[test]
    fn decodes_only_user_certificates_of_the_named_type() {
        let e = decode_cert("ssh-ed25519", "AAAA").unwrap_err();
        assert!(e.to_string().contains("not a certificate"), "{e}");
        let e = decode_cert("ssh-ed25519-cert-v01@openssh.com", "!!!").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = decode_cert("ssh-ed25519-cert-v01@openssh.com", "AAAA").unwrap_err();
        assert!(e.to_string().contains("does not parse"), "{e}");
    }
}
