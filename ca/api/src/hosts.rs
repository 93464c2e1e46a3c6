//! A host renewing its own host certificate (`POST /v1/hosts/renew`).
//!
//! The host proves two things with no credential of its own: it holds a host
//! certificate from this CA that is valid now (the CA's word about the host,
//! given once by an admin with `rampart admin host-cert`), and it holds that
//! certificate's private key, by signing [`HostRenewRequest::signed_message`]
//! with it (an SSHSIG in [`HOST_RENEW_NAMESPACE`]). The signed time bounds a
//! replay to [`HOST_RENEW_MAX_SKEW_SECONDS`], and a replay could only get the
//! same host another certificate for the same names.

use super::*;

/// SSHSIG namespace of a renewal proof: a host key signature made for
/// anything else never passes for one.
pub const HOST_RENEW_NAMESPACE: &str = "rampart-host-renew@rampart";

/// How far the signed time may be from the CA's clock, either way.
pub const HOST_RENEW_MAX_SKEW_SECONDS: i64 = 300;

/// `POST /v1/hosts/renew` → [`CertResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRenewRequest {
    /// The host's current certificate (OpenSSH one-line form).
    pub certificate: String,
    /// When the host signed, Unix seconds.
    pub signed_at: i64,
    /// Armored SSHSIG over [`HostRenewRequest::signed_message`] by the
    /// certificate's key.
    pub signature: String,
}

impl HostRenewRequest {
    /// What the host signs: the certificate line and the time, one per line.
    pub fn signed_message(certificate: &str, signed_at: i64) -> Vec<u8> {
        format!("{}\n{signed_at}\n", certificate.trim()).into_bytes()
    }
}
