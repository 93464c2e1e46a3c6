//! Opening the bastion's leg to a target: the SSH client settings (ciphers
//! chosen for the CPU), the connection with its deadline, the login with the
//! per-session certificate, and why it can fail ([`DialError`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::ssh_key::{Certificate, PrivateKey};

use super::{AgentSlot, HostKeyRefused, HostTrust, RemoteForwards, TargetClient};
use crate::config::{HostKeyCheck, Target};

/// Why the bastion could not open its leg to a target. The text (with its
/// sources, see `rampart_api::report::one_line`) is what the user is told.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No TCP connection within the deadline.
    #[error("target {0} did not answer within 10 s")]
    Timeout(String),
    /// The TCP connection failed.
    #[error("cannot reach target {target}")]
    Unreachable {
        /// The target's name.
        target: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The target's host key was refused.
    #[error(transparent)]
    HostKey(#[from] HostKeyRefused),
    /// The SSH handshake failed for another reason.
    #[error("SSH handshake with target {target} failed")]
    Handshake {
        /// The target's name.
        target: String,
        /// russh's error.
        #[source]
        source: russh::Error,
    },
    /// The user-authentication exchange failed.
    #[error("login to target {target} failed")]
    Login {
        /// The target's name.
        target: String,
        /// russh's error.
        #[source]
        source: russh::Error,
    },
    /// The target's sshd did not accept the per-session certificate.
    #[error("target {target} refused the per-session certificate for {login}")]
    CertificateRefused {
        /// The target's name.
        target: String,
        /// The login asked for.
        login: String,
    },
}

/// The ciphers the bastion offers and asks for: AES-GCM only where the CPU has
/// AES and carry-less multiply instructions, russh's defaults elsewhere.
///
/// The bastion decrypts and re-encrypts every byte of a ProxyJump session
/// three times (target leg, inner session, outer connection), where an
/// OpenSSH jump host only relays the inner session. With
/// chacha20-poly1305, which OpenSSH clients pick first when offered, those
/// passes cap a session near 220 MB/s on a 2-core test machine; AES-GCM in
/// hardware costs a fraction of that. An OpenSSH client picks the first of
/// its own list that the server offers, so the server offers only AES-GCM
/// (every OpenSSH since 6.2 has it); it is no weaker.
pub fn ciphers() -> std::borrow::Cow<'static, [russh::cipher::Name]> {
    use russh::cipher::{AES_128_GCM, AES_256_GCM};
    if hardware_aes() {
        std::borrow::Cow::Borrowed(&[AES_256_GCM, AES_128_GCM])
    } else {
        russh::Preferred::default().cipher
    }
}

#[cfg(target_arch = "x86_64")]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

/// Client config for targets: certificate host keys first when the host CA is
/// used, and [`ciphers`].
pub fn client_config(target: &Target) -> client::Config {
    use russh::keys::ssh_key::Algorithm;
    let mut preferred = russh::Preferred {
        cipher: ciphers(),
        ..russh::Preferred::default()
    };
    if target.host_key == HostKeyCheck::HostCa {
        preferred.host_key_certificates = std::borrow::Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: russh::keys::ssh_key::EcdsaCurve::NistP256,
            },
            Algorithm::Rsa {
                hash: Some(russh::keys::ssh_key::HashAlg::Sha512),
            },
        ]);
    }
    client::Config {
        nodelay: true,
        preferred,
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(60)),
        ..client::Config::default()
    }
}

/// Dial `target`, check its host key and log in as `login` with `cert`.
pub async fn connect(
    target: &Target,
    trust: HostTrust,
    login: &str,
    key: PrivateKey,
    cert: Certificate,
    agent: AgentSlot,
    remote: RemoteForwards,
) -> Result<client::Handle<TargetClient>, DialError> {
    let refusal = Arc::new(Mutex::new(None));
    let handler = TargetClient {
        target: target.clone(),
        trust,
        refusal: refusal.clone(),
        agent,
        remote,
    };
    let addr = (target.address.as_str(), target.port);
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .map_err(|_| DialError::Timeout(target.name.clone()))?
    .map_err(|source| DialError::Unreachable {
        target: target.name.clone(),
        source,
    })?;
    let _ = stream.set_nodelay(true);
    let config = Arc::new(client_config(target));
    let mut handle = client::connect_stream(config, stream, handler)
        .await
        .map_err(|source| {
            // A refused host key ends the handshake too; say why it was refused.
            match refusal.lock().ok().and_then(|mut r| r.take()) {
                Some(why) => DialError::HostKey(why),
                None => DialError::Handshake {
                    target: target.name.clone(),
                    source,
                },
            }
        })?;
    let res = handle
        .authenticate_openssh_cert(login, Arc::new(key), cert)
        .await
        .map_err(|source| DialError::Login {
            target: target.name.clone(),
            source,
        })?;
    if !res.success() {
        return Err(DialError::CertificateRefused {
            target: target.name.clone(),
            login: login.to_owned(),
        });
    }
    Ok(handle)
}
