//! User certificates (plain and PIV-attested), and what a session may reach: SSH hosts, bastion targets, `whoami`.

use super::*;

/// `POST /v1/certs`: sign this public key for the session's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertRequest {
    /// OpenSSH one-line public key (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    /// Requested lifetime; policy clamps it. `None` takes the role's default.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A YubiKey PIV attestation of the key in a certificate request: what the
/// YubiKey gives out for a key generated in a slot, both PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PivAttestation {
    /// The slot's attestation certificate (`ATTEST` instruction, e.g.
    /// `ykman piv keys attest 9a -`), one PEM `CERTIFICATE`.
    pub slot_cert_pem: String,
    /// The device's attestation certificate from slot `f9` (`ykman piv
    /// certificates export f9 -`), optionally followed by further intermediates
    /// towards Yubico's root.
    pub intermediate_pem: String,
}

/// The full body of `POST /v1/certs`: a [`CertRequest`] plus, optionally, a PIV
/// attestation proving that the key lives in a YubiKey. With a valid
/// attestation the certificate is marked `mfa-key@rampart=piv-attested` and
/// roles with `min_factor = "hardware-bound"` can contribute; an invalid one
/// refuses the request (`piv_attestation_*` codes), never silently downgrades it.
/// A plain `CertRequest` body is a valid `AttestedCertRequest` without the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestedCertRequest {
    /// OpenSSH one-line public key.
    pub public_key: String,
    /// Requested lifetime; policy clamps it.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// The YubiKey PIV attestation of `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piv_attestation: Option<PivAttestation>,
}

impl AttestedCertRequest {
    /// The request without its attestation.
    pub fn cert_request(&self) -> CertRequest {
        CertRequest {
            public_key: self.public_key.clone(),
            ttl_seconds: self.ttl_seconds,
        }
    }
}

impl From<CertRequest> for AttestedCertRequest {
    fn from(r: CertRequest) -> Self {
        AttestedCertRequest {
            public_key: r.public_key,
            ttl_seconds: r.ttl_seconds,
            piv_attestation: None,
        }
    }
}

/// A signed certificate and what it says, so the client need not parse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertResponse {
    /// OpenSSH one-line certificate (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
    /// Serial number.
    pub serial: u64,
    /// Key ID (`user=<name> serial=<n> mfa=<method>` for user certificates).
    pub key_id: String,
    /// Principals.
    pub principals: Vec<String>,
    /// Start of validity (back-dated for clock skew).
    pub valid_after: DateTime<Utc>,
    /// End of validity.
    pub valid_before: DateTime<Utc>,
}

/// `GET /v1/ssh-hosts`: the hosts the CA knows users reach with Rampart
/// certificates, so that the CLI's ssh_config offers the certificate to them and
/// to no other host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshHosts {
    /// Host names and patterns, sorted: the joined bastions' names (each is
    /// its host certificate's principal) and the target name globs the policy
    /// registers for bastions (`[bastions.<name>] targets`), for `Host` lines.
    pub hosts: Vec<String>,
    /// Public keys (OpenSSH one-line) of certified hosts whose key is revoked:
    /// the CLI marks them `@revoked` in its known_hosts, so ssh refuses them
    /// whatever certificate they show.
    #[serde(default)]
    pub revoked_host_keys: Vec<String>,
}

/// `GET /v1/targets`: what the session's user may reach through the
/// bastions, from the policy (`rampart ls`, `rampart ssh`, the Host blocks of
/// `rampart login`). A view for the client, not a grant: the bastion asks the
/// CA again for every session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// The user the view is for (the session's).
    pub user: String,
    /// Targets, by bastion, each bastion's in the order the policy registers them.
    pub targets: Vec<TargetAccess>,
    /// Where ssh reaches each bastion named in `targets`, sorted by name.
    pub bastions: Vec<BastionAddress>,
    /// Why the list is empty when policy selects no role for the session
    /// (no role, deny rules, factor too weak, MFA too old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,
}

/// One row of [`Targets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetAccess {
    /// Target name as the bastion knows it, or a glob when `pattern`.
    pub target: String,
    /// `target` is a pattern a bastion registers (`db-*`), not one host.
    pub pattern: bool,
    /// The joined bastion that serves it.
    pub bastion: String,
    /// Accounts the user may log in as there, sorted.
    pub logins: Vec<String>,
    /// The roles that grant them, sorted.
    pub roles: Vec<String>,
    /// What each session asks for first: `none`, `code` (a TOTP code at the
    /// bastion) or `approval` (a security-key approval on the CA's page).
    pub session_check: String,
    /// Labels the target must carry in the bastion's config for these roles
    /// to reach it (empty: any).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Where users' ssh reaches a bastion (policy `[bastions.NAME] address`,
/// else its name on port 22). Its host certificate is for `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionAddress {
    /// The bastion's name (its host certificate's principal).
    pub name: String,
    /// Host name or address to connect to.
    pub host: String,
    /// SSH port.
    pub port: u16,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhoAmI {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Admin flag.
    pub admin: bool,
    /// Factor of this session.
    pub mfa_method: String,
    /// When the factor was verified.
    pub mfa_time: DateTime<Utc>,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}
