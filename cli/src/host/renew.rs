//! `rampart host renew-cert`: keep this host's certificate from expiring.
//!
//! The host signs its current certificate line and the time with the
//! certificate's private key (SSHSIG, namespace `rampart-host-renew@rampart`)
//! and sends both to `POST /v1/hosts/renew` over pinned TLS; the CA re-issues
//! the same names if that certificate is its own, valid now and not revoked.
//! The new certificate replaces the file atomically; nothing is touched when
//! more than `--renew-before` is left, or on any failure. sshd reads its
//! `HostCertificate` at start: the timer's unit reloads it afterwards.

use std::fs;
use std::path::PathBuf;

use rampart_api::{
    paths, CertResponse, Client, Fingerprint, HostRenewRequest, HOST_RENEW_NAMESPACE,
};
use ssh_key::{Certificate, HashAlg, LineEnding, PrivateKey};

use super::krl::{show_time, write_atomic};
use super::HostError;
use crate::cli::RenewCertArgs;
use crate::error::CliError;

/// Renew the certificate if it is due.
pub fn run(a: &RenewCertArgs) -> Result<(), HostError> {
    let cert_path = a.cert.clone().unwrap_or_else(|| {
        let mut p = a.key.as_os_str().to_owned();
        p.push("-cert.pub");
        PathBuf::from(p)
    });
    let bad = |path: &std::path::Path, detail: String| CliError::NoInput {
        path: path.display().to_string(),
        detail,
    };
    let key = PrivateKey::read_openssh_file(&a.key).map_err(|e| bad(&a.key, e.to_string()))?;
    let line = fs::read_to_string(&cert_path).map_err(|e| CliError::no_input(&cert_path, &e))?;
    let cert = Certificate::from_openssh(line.trim())
        .map_err(|e| bad(&cert_path, format!("not an OpenSSH certificate: {e}")))?;
    if cert.public_key() != key.public_key().key_data() {
        return Err(bad(
            &cert_path,
            format!("not a certificate for {}", a.key.display()),
        )
        .into());
    }
    let now = crate::clock::unix_secs();
    let left = cert.valid_before().saturating_sub(now);
    if left > a.renew_before.as_secs() {
        println!(
            "{}: valid until {}, more than the renewal window left: nothing to do",
            cert_path.display(),
            show_time(cert.valid_before())
        );
        return Ok(());
    }
    let signed_at = i64::try_from(now).unwrap_or(i64::MAX);
    let message = HostRenewRequest::signed_message(&line, signed_at);
    let signature = key
        .sign(HOST_RENEW_NAMESPACE, HashAlg::Sha512, &message)
        .and_then(|s| s.to_pem(LineEnding::LF))
        .map_err(|e| bad(&a.key, format!("cannot sign with it: {e}")))?;
    let pin = Fingerprint::parse(&a.ca_fingerprint).map_err(CliError::from)?;
    let client = Client::new(&a.ca, pin).map_err(CliError::from)?;
    let renewed: CertResponse = client
        .post_json(
            paths::HOST_RENEW,
            &HostRenewRequest {
                certificate: line.trim().to_owned(),
                signed_at,
                signature,
            },
        )
        .map_err(CliError::from)?;
    write_atomic(
        &cert_path,
        format!("{}\n", renewed.certificate.trim()).as_bytes(),
    )?;
    println!(
        "renewed {}: serial {}, principals {}, valid until {}",
        cert_path.display(),
        renewed.serial,
        renewed.principals.join(","),
        renewed.valid_before.format("%Y-%m-%dT%H:%M:%SZ")
    );
    Ok(())
}
