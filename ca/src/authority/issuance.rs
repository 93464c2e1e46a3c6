//! Issuing certificates: serials, user certificates (plain and PIV-attested)
//! and host certificates, each recorded from what was actually signed.

use super::*;
use rampart_api::ErrorCode;

impl Authority {
    pub(super) fn next_serial(&self) -> Result<u64, CaError> {
        let mut block = self
            .serials
            .lock()
            .map_err(|_| CaError::Internal("serial lock poisoned".into()))?;
        if block.next >= block.end {
            let first = self.store.reserve_serials(SERIAL_BLOCK)?;
            block.next = first;
            block.end = first + SERIAL_BLOCK;
        }
        let serial = block.next;
        block.next += 1;
        Ok(serial)
    }

    pub(super) fn parse_public_key(&self, line: &str) -> Result<PublicKey, CaError> {
        let line = line.trim();
        if line.is_empty() || line.len() > 16 * 1024 {
            return Err(CaError::bad_request(
                ErrorCode::InvalidPublicKey,
                "public_key must be one OpenSSH public key line",
            ));
        }
        let key = PublicKey::from_openssh(line).map_err(|e| {
            CaError::bad_request(
                ErrorCode::InvalidPublicKey,
                format!("public_key is not an OpenSSH public key ({e})"),
            )
        })?;
        rampart_signer::check_subject_key(&key)
            .map_err(|e| CaError::bad_request(ErrorCode::UnsupportedKey, e.to_string()))?;
        Ok(key)
    }

    /// Sign the caller's public key, if policy allows it for this session.
    pub fn issue_user_cert(
        &self,
        caller: &Caller,
        session: &Session,
        req: &api::CertRequest,
    ) -> Result<api::CertResponse, CaError> {
        self.issue_attested_user_cert(caller, session, &req.clone().into())
    }

    /// Trust these YubiKey PIV attestation roots (none: attestations are refused).
    pub fn set_piv(&self, verifier: crate::piv::PivVerifier) {
        if let Ok(mut slot) = self.piv.write() {
            *slot = Some(Arc::new(verifier));
        }
    }

    pub(super) fn verify_piv(
        &self,
        att: &api::PivAttestation,
        key: &PublicKey,
        now: DateTime<Utc>,
    ) -> Result<crate::piv::Attested, crate::piv::PivError> {
        let verifier = self
            .piv
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(crate::piv::PivError::NotConfigured)?;
        verifier.verify(&att.slot_cert_pem, &att.intermediate_pem, key, now)
    }

    /// [`Authority::issue_user_cert`] with an optional YubiKey PIV attestation of
    /// the key (see [`crate::piv`]): verified before policy runs; a refused one
    /// denies the request (`piv_attestation_*`), an accepted one lets
    /// `hardware-bound` roles contribute and marks the certificate.
    pub fn issue_attested_user_cert(
        &self,
        caller: &Caller,
        session: &Session,
        req: &api::AttestedCertRequest,
    ) -> Result<api::CertResponse, CaError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let user = &session.user;
        let key = self.parse_public_key(&req.public_key)?;
        let fingerprint = key_fingerprint(&key);
        let deny = |code: api::ErrorCode, reason: String| -> Result<api::CertResponse, CaError> {
            crate::metrics::cert_denied(crate::metrics::CertKind::User, code.as_str());
            self.record(
                self.event(EventKind::CertDenied, Outcome::Failure, Some(caller))
                    .user(&user.name)
                    .session(&session.record.id)
                    .mfa_method(session.record.mfa_method.as_str())
                    .reason(&reason)
                    .detail("code", code.as_str())
                    .detail("key_fingerprint", fingerprint.clone()),
            )?;
            Err(CaError::forbidden(code, reason))
        };
        if self.store.key_revoked(&fingerprint)? {
            return deny(
                ErrorCode::KeyRevoked,
                format!("the key {fingerprint} is revoked"),
            );
        }
        let attested = match &req.piv_attestation {
            None => None,
            Some(att) => match self.verify_piv(att, &key, now) {
                Ok(a) => Some(a),
                Err(e) => return deny(e.code(), e.to_string()),
            },
        };
        let key_assurance = match attested {
            Some(_) => rampart_policy::KeyAssurance::HardwareAttested,
            None => rampart_policy::KeyAssurance::Unattested,
        };
        let factor = self.session_factor(session)?;
        let policy = self.policy()?;
        let request = rampart_policy::CertRequest {
            user: &user.name,
            groups: &user.groups,
            factor,
            mfa_time: session.record.mfa_time,
            requested_ttl: req.ttl_seconds.map(Duration::from_secs),
            login: None,
        };
        let grant = match rampart_policy::evaluate_with_key(&request, key_assurance, &policy, now) {
            Decision::Allow(grant) => grant,
            Decision::Deny(denial) => return deny(denial.code.into(), denial.reason),
        };
        if let Err((code, reason)) = self.oidc_gate(caller, &policy, grant.roles(), session)? {
            return deny(code, reason);
        }
        let serial = self.next_serial()?;
        let spec = rampart_signer::UserCertSpec::from_grant(
            &grant,
            key,
            serial,
            rampart_signer::MfaEvidence {
                method: session.record.mfa_method.as_str().to_owned(),
                time: session.record.mfa_time,
                event_id: session.record.mfa_event.clone(),
            },
            now,
        )?
        .with_idp_evidence(&self.idp_extensions(session)?)?
        .with_idp_evidence(&self.webauthn_extensions(session)?)?
        .with_idp_evidence(
            &attested
                .as_ref()
                .map(|a| a.extensions())
                .unwrap_or_default(),
        )?;
        let cert = rampart_signer::sign_user_cert(self.keys.user_ca.as_ref(), &spec)?;
        let mfa_age = (now - session.record.mfa_time).num_seconds();
        let issued = self.event(EventKind::CertIssued, Outcome::Success, Some(caller));
        let issued = match &attested {
            Some(a) => issued.detail("piv_attestation", a.audit_detail()),
            None => issued,
        };
        self.record(
            issued
                .user(&user.name)
                .session(&session.record.id)
                .serial(serial)
                .mfa_method(session.record.mfa_method.as_str())
                .mfa_age_seconds(mfa_age)
                .detail("key_id", spec.key_id())
                .detail("key_fingerprint", fingerprint.clone())
                .detail("principals", spec.principals().to_vec())
                .detail("roles", grant.roles().to_vec())
                .detail("valid_after", spec.valid_after())
                .detail("valid_before", spec.valid_before()),
        )?;
        // Audit first, record second: a certificate the log does not show is never
        // stored or handed out.
        let (record, line) =
            self.store_issued(&cert, CertKind::User, &user.name, &fingerprint, now)?;
        crate::metrics::cert_issued(crate::metrics::CertKind::User, started.elapsed());
        Ok(cert_response(record, line))
    }

    /// Sign a host key.
    pub fn issue_host_cert(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::HostCertRequest,
    ) -> Result<api::CertResponse, CaError> {
        self.sign_host(
            caller,
            &req.public_key,
            &req.name,
            &req.extra_principals,
            req.ttl_seconds.map(Duration::from_secs),
            ErrorCode::HostRefused,
            |ev| ev.actor(&actor.user.name).session(&actor.record.id),
        )
    }

    /// Sign a host key for `name` as policy approves it (`[hosts]`), record it and
    /// audit it; `who` names the requester in the event (an admin or a bastion).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sign_host(
        &self,
        caller: &Caller,
        public_key: &str,
        name: &str,
        extra_principals: &[String],
        ttl: Option<Duration>,
        refused_code: api::ErrorCode,
        who: impl FnOnce(NewEvent) -> NewEvent,
    ) -> Result<api::CertResponse, CaError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let key = self.parse_public_key(public_key)?;
        let policy = self.policy()?;
        let grant = rampart_policy::approve_host(&policy, name, extra_principals, ttl)
            .map_err(|d| CaError::bad_request(refused_code, d.reason))?;
        let serial = self.next_serial()?;
        let fingerprint = key_fingerprint(&key);
        let spec = rampart_signer::HostCertSpec::from_grant(&grant, key, serial, now)?;
        let cert = rampart_signer::sign_host_cert(self.keys.host_ca.as_ref(), &spec)?;
        self.record(
            who(self.event(EventKind::HostCertIssued, Outcome::Success, Some(caller)))
                .target(name)
                .serial(serial)
                .detail("key_fingerprint", fingerprint.clone())
                .detail("principals", spec.principals().to_vec())
                .detail("valid_before", spec.valid_before()),
        )?;
        let (record, line) = self.store_issued(&cert, CertKind::Host, name, &fingerprint, now)?;
        crate::metrics::cert_issued(crate::metrics::CertKind::Host, started.elapsed());
        Ok(cert_response(record, line))
    }
}

impl Authority {
    /// Record a freshly signed certificate; what is stored is read back from the
    /// certificate itself, so the record cannot drift from what was signed.
    pub(super) fn store_issued(
        &self,
        cert: &ssh_key::Certificate,
        kind: CertKind,
        subject: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<(CertRecord, String), CaError> {
        let line = cert
            .to_openssh()
            .map_err(|e| CaError::Internal(format!("encoding certificate: {e}")))?;
        let record = CertRecord {
            serial: cert.serial(),
            kind,
            subject: subject.to_owned(),
            key_fingerprint: fingerprint.to_owned(),
            key_id: cert.key_id().to_owned(),
            principals: cert.valid_principals().to_vec(),
            valid_after: cert.valid_after(),
            valid_before: cert.valid_before(),
            issued_at: now,
        };
        if kind == CertKind::Host {
            // Kept so that revoking this key can publish it for `@revoked`
            // (known_hosts names keys, not fingerprints or serials).
            let public = ssh_key::PublicKey::from(cert.public_key().clone())
                .to_openssh()
                .map_err(|e| CaError::Internal(format!("encoding host key: {e}")))?;
            self.store.record_host_key(fingerprint, &public)?;
        }
        self.store.insert_cert(&record)?;
        Ok((record, line))
    }
}

pub(super) fn cert_response(record: CertRecord, certificate: String) -> api::CertResponse {
    api::CertResponse {
        certificate,
        serial: record.serial,
        key_id: record.key_id,
        principals: record.principals,
        valid_after: unix_to_utc(record.valid_after),
        valid_before: unix_to_utc(record.valid_before),
    }
}

fn unix_to_utc(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
