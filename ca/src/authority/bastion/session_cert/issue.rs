//! Issuing a per-session certificate once every check passed: the
//! certificate for the bastion's ephemeral key (principal = the login,
//! [`SESSION_CERT_TTL`], `source-address` = the bastion as the CA sees it, the
//! user's address and address rules and the MFA evidence copied in), its `access_granted` audit event, and the stored
//! record, in that order: the event is written before the certificate leaves
//! the CA, and a failed write refuses it.
//!
//! **Owns:** the certificate's contents and the `access_granted` details.

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_audit::{EventKind, NewEvent, Outcome};
use rampart_policy::{AccessGrant, Grant};

use crate::authority::{cert_response, key_fingerprint, Authority, Caller};
use crate::error::CaError;
use crate::store::CertKind;

use super::super::{Bastion, SESSION_CERT_TTL};
use super::mfa::SessionMfa;

/// What the checks established, which the certificate, its audit event and
/// the answer carry.
#[derive(Debug)]
pub(super) struct Cleared {
    /// The user the outer certificate names.
    pub(super) user: String,
    /// The outer certificate's serial.
    pub(super) outer_serial: u64,
    /// The MFA evidence (the outer certificate's or a per-session one).
    pub(super) mfa: SessionMfa,
    /// Policy's answer for (user, login, target).
    pub(super) access: AccessGrant,
    /// Policy's grant for a per-session certificate.
    pub(super) grant: Grant,
}

impl Authority {
    /// Sign, audit `access_granted`, store, answer.
    pub(super) fn issue_session_cert(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        key: ssh_key::PublicKey,
        cleared: Cleared,
        now: DateTime<Utc>,
    ) -> Result<api::SessionCertResponse, CaError> {
        let serial = self.next_serial()?;
        let fingerprint = key_fingerprint(&key);
        let spec = cleared.spec(caller, bastion, req, key, serial, now)?;
        let cert = rampart_signer::sign_user_cert(self.keys.user_ca.as_ref(), &spec)?;
        let ev = self
            .event(EventKind::AccessGranted, Outcome::Success, Some(caller))
            .actor(&bastion.actor());
        self.record(cleared.granted_event(ev, req, serial, &spec, &fingerprint, now))?;
        let (record, line) =
            self.store_issued(&cert, CertKind::User, &cleared.user, &fingerprint, now)?;
        Ok(cleared.response(cert_response(record, line)))
    }
}

impl Cleared {
    /// The certificate: the grant's extensions and lifetime ceiling, this
    /// session's key ID, the bastion's own address (the TCP peer of this
    /// request) as its only `source-address`, and the user's address and
    /// address rules (already checked) as extensions beside it.
    fn spec(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        key: ssh_key::PublicKey,
        serial: u64,
        now: DateTime<Utc>,
    ) -> Result<rampart_signer::UserCertSpec, CaError> {
        let source = match caller.source {
            std::net::IpAddr::V4(a) => format!("{a}/32"),
            std::net::IpAddr::V6(a) => format!("{a}/128"),
        };
        let spec = rampart_signer::UserCertSpec::for_bastion_session(
            &self.grant,
            &self.access,
            &rampart_signer::BastionSession {
                id: &req.session_id,
                bastion: &bastion.record.name,
                ttl: SESSION_CERT_TTL,
                source_address: std::slice::from_ref(&source),
                user_address: req
                    .source
                    .as_deref()
                    .and_then(|s| s.parse::<std::net::IpAddr>().ok()),
            },
            key,
            serial,
            rampart_signer::MfaEvidence {
                method: self.mfa.method_name().to_owned(),
                time: self.mfa.time,
                event_id: self.mfa.event.clone(),
            },
            now,
        )
        .and_then(|spec| spec.with_idp_evidence(&self.mfa.idp_evidence))?;
        Ok(spec)
    }

    /// `ev` (kind, caller, actor) with this session's details.
    fn granted_event(
        &self,
        ev: NewEvent,
        req: &api::SessionCertRequest,
        serial: u64,
        spec: &rampart_signer::UserCertSpec,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> NewEvent {
        let ev = ev
            .user(&self.user)
            .target(&req.target)
            .session(&req.session_id)
            .serial(serial)
            .mfa_method(self.mfa.method_name())
            .mfa_age_seconds((now - self.mfa.time).num_seconds())
            .detail("login", req.login.clone())
            .detail("principals", spec.principals().to_vec())
            .detail("roles", self.access.roles().to_vec())
            .detail("outer_serial", self.outer_serial)
            .detail("key_id", spec.key_id())
            .detail("key_fingerprint", fingerprint.to_owned())
            .detail("valid_before", spec.valid_before())
            .detail("session_mfa", self.mfa.per_session)
            .detail("record_input", self.access.record_input())
            .detail("record_metered_mib", self.access.record_metered_mib())
            .detail("port_forwarding", self.access.port_forwarding())
            .detail("agent_forwarding", self.access.agent_forwarding())
            .detail(
                "target_labels",
                serde_json::to_value(&req.target_labels).unwrap_or_default(),
            );
        match &req.source {
            Some(src) => ev.detail("user_source", src.clone()),
            None => ev,
        }
    }

    fn response(self, certificate: api::CertResponse) -> api::SessionCertResponse {
        api::SessionCertResponse {
            certificate,
            user: self.user,
            roles: self.access.roles().to_vec(),
            session_mfa: self.mfa.per_session,
            record_input: self.access.record_input(),
            record_metered_mib: self.access.record_metered_mib(),
            port_forwarding: self.access.port_forwarding(),
            agent_forwarding: self.access.agent_forwarding(),
        }
    }
}
