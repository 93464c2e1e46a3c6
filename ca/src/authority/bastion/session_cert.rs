//! Per-session user certificates: the checks, in order, and the issuance.

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::Decision;
use ssh_key::certificate::CertType;
use ssh_key::Certificate;

use crate::authority::{cert_response, key_fingerprint, to_chrono, Authority, Caller};
use crate::error::CaError;
use crate::factor::FactorFailure;
use crate::store::{CertKind, ProofClaim};

use super::*;

impl Authority {
    /// `POST /v1/bastion/session-cert`: check the user's outer certificate and
    /// the policy for (user, login, target); issue a ≈1-minute certificate for the
    /// bastion's ephemeral key. Every decision is audited. See the module docs.
    pub fn bastion_session_cert(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
    ) -> Result<api::SessionCertResponse, CaError> {
        let session_mfa = req.totp_code.is_some() || req.webauthn_approval.is_some();
        let mut outer_serial: Option<u64> = None;
        let started = std::time::Instant::now();
        let result = self.session_cert_inner(caller, bastion, req, &mut outer_serial);
        // The metric's per-session flow is the TOTP code's (the approval's
        // latency and outcome are counted where it is answered).
        crate::metrics::session_cert_finished(
            req.totp_code.is_some(),
            match &result {
                Ok(_) => Ok(()),
                Err(Ok(refusal)) => Err(refusal.code),
                Err(Err(e)) => Err(e.code()),
            },
            started.elapsed(),
        );
        match result {
            Ok(resp) => Ok(resp),
            Err(Ok(refusal)) => {
                let mut ev = self
                    .event(EventKind::AccessDenied, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .target(&req.target)
                    .session(&req.session_id)
                    .reason(&refusal.message)
                    .detail("code", refusal.code)
                    .detail("login", req.login.clone())
                    .detail("session_mfa", session_mfa);
                if let Some(u) = &refusal.user {
                    ev = ev.user(u);
                }
                if let Some(s) = outer_serial {
                    ev = ev.detail("outer_serial", s);
                }
                if let Some(src) = &req.source {
                    ev = ev.detail("user_source", src.clone());
                }
                self.record(ev)?;
                Err(if refusal.bad_request {
                    CaError::bad_request(refusal.code, refusal.message)
                } else {
                    CaError::forbidden(refusal.code, refusal.message)
                })
            }
            Err(Err(e)) => Err(e),
        }
    }

    /// The checks and the issuance; a refusal comes back as `Err(Ok(_))` for the
    /// caller to audit, an internal failure as `Err(Err(_))`.
    pub(super) fn session_cert_inner(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::SessionCertRequest,
        outer_serial: &mut Option<u64>,
    ) -> Result<api::SessionCertResponse, Result<Refusal, CaError>> {
        let now = self.now();
        let bad = |code: &'static str, message: String| {
            Err(Ok(Refusal {
                code,
                message,
                user: None,
                bad_request: true,
            }))
        };
        if !clean_token(&req.session_id) {
            return bad(
                "invalid_session_id",
                "session_id must be 1-128 of [A-Za-z0-9._-]".into(),
            );
        }
        if req.target_labels.len() > MAX_LABELS
            || req
                .target_labels
                .iter()
                .any(|(k, v)| k.len() > 128 || v.len() > 256)
        {
            return bad(
                "invalid_labels",
                format!("at most {MAX_LABELS} target labels, keys ≤ 128 and values ≤ 256 bytes"),
            );
        }
        if req.source.as_ref().is_some_and(|s| s.len() > 64) {
            return bad("invalid_source", "source is longer than 64 bytes".into());
        }
        // A bastion serves only the targets the policy registers for it: a
        // stolen credential must not reach hosts its bastion never fronted.
        let policy = self.policy().map_err(Err)?;
        if let Err(d) =
            rampart_policy::bastion_may_serve(&policy, &bastion.record.name, &req.target)
        {
            return Err(Ok(Refusal::new(d.code.as_str(), d.reason)));
        }
        if req.totp_code.is_some() && req.webauthn_approval.is_some() {
            return bad(
                "mfa_conflict",
                "send a totp_code or a webauthn_approval, not both".into(),
            );
        }
        let key = self.parse_public_key(&req.public_key).map_err(Err)?;

        // --- the outer certificate ---------------------------------------
        let line = req.user_certificate.trim();
        if line.is_empty() || line.len() > MAX_CERT_LINE {
            return bad(
                "certificate_malformed",
                "user_certificate must be one OpenSSH certificate line".into(),
            );
        }
        let outer = match Certificate::from_openssh(line) {
            Ok(c) => c,
            Err(e) => {
                return bad(
                    "certificate_malformed",
                    format!("user_certificate is not an OpenSSH certificate ({e})"),
                )
            }
        };
        *outer_serial = Some(outer.serial());
        let refuse = |code: &'static str, message: String| Err(Ok(Refusal::new(code, message)));

        // --- the user's proof of presence, before any other decision -------
        // The certificate is public; the signature the user's client made to
        // log in to the bastion on this connection is not (see user_proof).
        let proof = match crate::authority::user_proof::verify(req.user_proof.as_ref(), &outer) {
            Ok(p) => p,
            Err((code, message)) => return refuse(code, message),
        };
        if outer.cert_type() != CertType::User {
            return refuse(
                "certificate_not_user",
                "user_certificate is a host certificate".into(),
            );
        }
        let user_ca = self.keys.user_ca.public_key();
        let ca_fp = user_ca.fingerprint(ssh_key::HashAlg::Sha256);
        if outer.signature_key().fingerprint(ssh_key::HashAlg::Sha256) != ca_fp {
            return refuse(
                "certificate_foreign",
                "the user certificate was not issued by this CA".into(),
            );
        }
        let unix_now = u64::try_from(now.timestamp()).unwrap_or(0);
        // PROTOCOL.certkeys: "valid after <= current time < valid before".
        if !(outer.valid_after() <= unix_now && unix_now < outer.valid_before()) {
            return refuse(
                "certificate_expired",
                "the user certificate is not valid now (expired or not yet valid); run `rampart login`"
                    .into(),
            );
        }
        if outer.validate_at(unix_now, [&ca_fp]).is_err() {
            return refuse(
                "certificate_invalid",
                "the user certificate's signature does not verify".into(),
            );
        }
        // A certificate of this CA, valid now: bind the proof to this bastion
        // (only now, so that only this CA's certificates, whose lifetime
        // policy bounds, leave rows behind).
        self.claim_user_proof(bastion, &outer, &proof, now)
            .map_err(|r| {
                r.map(|r| Refusal {
                    user: key_id_user(outer.key_id()).map(str::to_owned),
                    ..r
                })
            })?;
        let Some(user_name) = key_id_user(outer.key_id()).map(str::to_owned) else {
            return refuse(
                "certificate_unknown",
                "the user certificate's key ID names no user".into(),
            );
        };
        let outer_key = ssh_key::PublicKey::from(outer.public_key().clone());
        let outer_fp = key_fingerprint(&outer_key);
        let record = self.store.cert(outer.serial()).map_err(|e| Err(e.into()))?;
        let matches = record.as_ref().is_some_and(|r| {
            r.kind == CertKind::User && r.subject == user_name && r.key_fingerprint == outer_fp
        });
        if !matches {
            return Err(Ok(Refusal::new(
                "certificate_unknown",
                "this CA has no record of issuing that certificate to that user",
            )
            .user(&user_name)));
        }
        if self
            .store
            .serial_revoked(outer.serial())
            .map_err(|e| Err(e.into()))?
            || self
                .store
                .key_revoked(&outer_fp)
                .map_err(|e| Err(e.into()))?
        {
            return Err(Ok(Refusal::new(
                "certificate_revoked",
                format!(
                    "the user certificate (serial {}) is revoked",
                    outer.serial()
                ),
            )
            .user(&user_name)));
        }
        let user = match self.store.user(&user_name).map_err(|e| Err(e.into()))? {
            Some(u) if !u.disabled => u,
            Some(_) => {
                return Err(Ok(
                    Refusal::new("user_disabled", "this user is disabled").user(&user_name)
                ))
            }
            None => {
                return Err(Ok(
                    Refusal::new("user_unknown", "this user does not exist").user(&user_name)
                ))
            }
        };

        // --- MFA evidence: the outer certificate's, or a fresh per-session code ---
        let ext = |name: &str| outer.extensions().get(name).cloned();
        let mut method = ext(rampart_signer::EXT_MFA_METHOD).unwrap_or_default();
        let mut mfa_time = match ext(rampart_signer::EXT_MFA_TIME)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        {
            Some(t) => t.with_timezone(&Utc),
            None => {
                return Err(Ok(Refusal::new(
                    "certificate_no_mfa",
                    "the user certificate carries no MFA evidence",
                )
                .user(&user.name)))
            }
        };
        let mut mfa_event = ext(rampart_signer::EXT_MFA_EVENT).unwrap_or_default();
        // An IdP's (or a security key's) evidence travels with the outer
        // certificate's MFA; a fresh per-session code replaces that MFA, and the
        // evidence with it.
        let mut idp_evidence: Vec<(String, String)> = [
            crate::authority::oidc_login::EXT_MFA_IDP,
            crate::authority::oidc_login::EXT_MFA_ACR,
            crate::authority::oidc_login::EXT_MFA_AMR,
            crate::authority::oidc_login::EXT_MFA_AUTH_TIME,
            api::webauthn::EXT_MFA_UV,
            api::webauthn::EXT_MFA_ATTESTED,
            api::webauthn::EXT_MFA_LINK,
            api::webauthn::EXT_MFA_AAGUID,
        ]
        .iter()
        .filter_map(|name| ext(name).map(|v| ((*name).to_owned(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
        if let Some(code) = &req.totp_code {
            let event_id = self
                .verify_session_totp(
                    caller,
                    bastion,
                    req.source.as_deref(),
                    &user.name,
                    code,
                    &req.session_id,
                )
                .map_err(Err)?
                .map_err(|failure| {
                    Ok(Refusal::new(
                        failure.code(),
                        match failure {
                            FactorFailure::Replayed => {
                                "that code was already used; wait for the next one"
                            }
                            FactorFailure::Malformed => "that is not a well-formed totp code",
                            FactorFailure::Invalid => "that code is not right",
                        },
                    )
                    .user(&user.name))
                })?;
            method = "totp".to_owned();
            mfa_time = now;
            mfa_event = event_id;
            idp_evidence.clear();
        }
        // A security-key approval given for this bastion, user and session:
        // consumed here (single use); its evidence replaces the outer
        // certificate's. Denied, expired, pending or foreign approvals refuse
        // the certificate (audited `access_denied` with the approval's code).
        let mut approval_key = None;
        if let Some(approval) = &req.webauthn_approval {
            let ev = self
                .take_webauthn_approval(
                    &bastion.record.name,
                    approval,
                    &user.name,
                    &req.session_id,
                    &req.target,
                    &req.login,
                )
                .map_err(Err)?
                .map_err(|(code, message)| Ok(Refusal::new(code, message).user(&user.name)))?;
            method = "webauthn".to_owned();
            mfa_time = ev.mfa_time;
            mfa_event = ev.mfa_event;
            // A per-session approval is always given on the CA's page.
            idp_evidence = crate::authority::webauthn::evidence_extensions(
                ev.user_verified,
                ev.attested,
                true,
                &ev.aaguid,
            );
            approval_key = Some((ev.user_verified, ev.attested, true));
        }
        let factor = match method.as_str() {
            "totp" => rampart_policy::Factor::Totp,
            "recovery" => rampart_policy::Factor::Recovery,
            "oidc" => rampart_policy::Factor::Oidc,
            // The key's UV flag and whether the CA trusted its model travel in
            // the outer certificate (signed by this CA). A certificate without
            // the attestation extension predates it: its key counts as
            // unattested; without the link extension, its assertion counts as
            // given through a link (only `no` proves a key on the user's machine).
            "webauthn" => {
                let (user_verified, attested, via_link) = approval_key.unwrap_or_else(|| {
                    (
                        ext(api::webauthn::EXT_MFA_UV).as_deref() == Some("yes"),
                        ext(api::webauthn::EXT_MFA_ATTESTED).as_deref() == Some("yes"),
                        ext(api::webauthn::EXT_MFA_LINK).as_deref() != Some("no"),
                    )
                });
                rampart_policy::Factor::Webauthn {
                    user_verified,
                    attested,
                    via_link,
                }
            }
            other => {
                return Err(Ok(Refusal::new(
                    "certificate_no_mfa",
                    format!("the user certificate names an unknown MFA method {other:?}"),
                )
                .user(&user.name)))
            }
        };

        // --- policy -------------------------------------------------------
        // The outer certificate's key was PIV-attested when the CA marked it so
        // (only the CA can sign that extension): hardware-bound roles apply.
        let piv = ext(crate::piv::EXT_KEY).as_deref() == Some(crate::piv::EXT_KEY_PIV);
        let key_assurance = if piv {
            rampart_policy::KeyAssurance::HardwareAttested
        } else {
            rampart_policy::KeyAssurance::Unattested
        };
        let policy = self.policy().map_err(Err)?;
        let access = rampart_policy::evaluate_access_with_key(
            &rampart_policy::AccessRequest {
                user: &user.name,
                groups: &user.groups,
                factor: factor.clone(),
                mfa_time,
                login: &req.login,
                target: &req.target,
                labels: &req.target_labels,
            },
            key_assurance,
            &policy,
            now,
        )
        .map_err(|d| Ok(Refusal::new(access_denial_code(&d), d.reason).user(&user.name)))?;
        if access.session_mfa() && req.totp_code.is_none() && req.webauthn_approval.is_none() {
            // Not a denial: the bastion asks the user for a code (or an
            // approval) and retries, and that retry is audited
            // (mfa_succeeded/failed, access_granted/denied). Auditing this step
            // too would log every session twice.
            if self.has_usable_security_key(&user.name).map_err(Err)? {
                if access.webauthn_link() {
                    return Err(Err(CaError::unauthenticated(
                        api::SESSION_APPROVAL_REQUIRED,
                        "policy wants a per-session approval with your security key",
                    )));
                }
                // A per-session approval is given on the CA's page, which
                // these roles refuse: a TOTP code is the only per-session
                // check left (and must still meet the roles' min_factor).
                if self
                    .store
                    .totp(&user.name)
                    .map_err(|e| Err(e.into()))?
                    .is_none()
                {
                    return Err(Ok(Refusal::new(
                        "webauthn_link_refused",
                        format!(
                            "the roles that reach {}@{} take no security-key approval through \
                             a link, and a per-session check here is one; {} has no TOTP to \
                             enter instead: ask an admin",
                            req.login, req.target, user.name
                        ),
                    )
                    .user(&user.name)));
                }
            }
            return Err(Err(CaError::unauthenticated(
                api::SESSION_MFA_REQUIRED,
                "policy wants a per-session code for this target; enter your TOTP code",
            )));
        }
        let grant = match rampart_policy::evaluate_session_with_key(
            &rampart_policy::CertRequest {
                user: &user.name,
                groups: &user.groups,
                factor,
                mfa_time,
                requested_ttl: Some(SESSION_CERT_TTL),
                login: None,
            },
            key_assurance,
            &policy,
            now,
        ) {
            Decision::Allow(g) => g,
            Decision::Deny(d) => {
                return Err(Ok(
                    Refusal::new(access_denial_code(&d), d.reason).user(&user.name)
                ))
            }
        };

        // --- where the user is -------------------------------------------
        // The bastion reports the user's address; a per-session certificate
        // must not carry a user past a `source-address` rule that sshd would
        // have enforced on the user's own certificate.
        self.check_user_source(&outer, &grant, req.source.as_deref())
            .map_err(|message| {
                Ok(Refusal::new("source_address_denied", message).user(&user.name))
            })?;

        // --- issue ----------------------------------------------------------
        let serial = self.next_serial().map_err(Err)?;
        let fingerprint = key_fingerprint(&key);
        let source = match caller.source {
            std::net::IpAddr::V4(a) => format!("{a}/32"),
            std::net::IpAddr::V6(a) => format!("{a}/128"),
        };
        let spec = rampart_signer::UserCertSpec::for_bastion_session(
            &grant,
            &access,
            &rampart_signer::BastionSession {
                id: &req.session_id,
                bastion: &bastion.record.name,
                ttl: SESSION_CERT_TTL,
                source_address: std::slice::from_ref(&source),
            },
            key,
            serial,
            rampart_signer::MfaEvidence {
                method: method.clone(),
                time: mfa_time,
                event_id: mfa_event,
            },
            now,
        )
        .and_then(|spec| spec.with_idp_evidence(&idp_evidence))
        .map_err(|e| Err(e.into()))?;
        let cert = rampart_signer::sign_user_cert(self.keys.user_ca.as_ref(), &spec)
            .map_err(|e| Err(e.into()))?;
        let mut ev = self
            .event(EventKind::AccessGranted, Outcome::Success, Some(caller))
            .actor(&bastion.actor())
            .user(&user.name)
            .target(&req.target)
            .session(&req.session_id)
            .serial(serial)
            .mfa_method(&method)
            .mfa_age_seconds((now - mfa_time).num_seconds())
            .detail("login", req.login.clone())
            .detail("principals", spec.principals().to_vec())
            .detail("roles", access.roles().to_vec())
            .detail("outer_serial", outer.serial())
            .detail("key_id", spec.key_id())
            .detail("key_fingerprint", fingerprint.clone())
            .detail("valid_before", spec.valid_before())
            .detail(
                "session_mfa",
                req.totp_code.is_some() || approval_key.is_some(),
            )
            .detail("record_input", access.record_input())
            .detail("record_metered_mib", access.record_metered_mib())
            .detail("port_forwarding", access.port_forwarding())
            .detail("agent_forwarding", access.agent_forwarding())
            .detail(
                "target_labels",
                serde_json::to_value(&req.target_labels).unwrap_or_default(),
            );
        if let Some(src) = &req.source {
            ev = ev.detail("user_source", src.clone());
        }
        self.record(ev).map_err(Err)?;
        let (record, line) = self
            .store_issued(&cert, CertKind::User, &user.name, &fingerprint, now)
            .map_err(Err)?;
        Ok(api::SessionCertResponse {
            certificate: cert_response(record, line),
            user: user.name,
            roles: access.roles().to_vec(),
            session_mfa: req.totp_code.is_some() || approval_key.is_some(),
            record_input: access.record_input(),
            record_metered_mib: access.record_metered_mib(),
            port_forwarding: access.port_forwarding(),
            agent_forwarding: access.agent_forwarding(),
        })
    }

    /// Bind a verified proof to `bastion` on first use; refuse it when another
    /// bastion presented it first or its window is over
    /// ([`crate::authority::user_proof::USER_PROOF_WINDOW`], and never past the outer
    /// certificate's expiry).
    pub(super) fn claim_user_proof(
        &self,
        bastion: &Bastion,
        outer: &Certificate,
        proof: &crate::authority::user_proof::VerifiedProof,
        now: DateTime<Utc>,
    ) -> Result<(), Result<Refusal, CaError>> {
        use crate::authority::user_proof::{CODE_EXPIRED, CODE_FOREIGN, USER_PROOF_WINDOW};
        let cert_end = i64::try_from(outer.valid_before())
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let accept_until = (now + to_chrono(USER_PROOF_WINDOW)).min(cert_end);
        match self
            .store
            .claim_user_proof(
                &proof.session_hash,
                &bastion.record.name,
                now,
                accept_until,
                cert_end,
            )
            .map_err(|e| Err(e.into()))?
        {
            ProofClaim::First | ProofClaim::Again => Ok(()),
            ProofClaim::Foreign(owner) => Err(Ok(Refusal::new(
                CODE_FOREIGN,
                format!(
                    "this proof of the user's login was presented first by bastion {owner:?}; \
                     a proof is good only at the bastion the user logged in to"
                ),
            ))),
            ProofClaim::Expired => Err(Ok(Refusal::new(
                CODE_EXPIRED,
                format!(
                    "this proof of the user's login was first used more than {} minutes ago",
                    USER_PROOF_WINDOW.as_secs() / 60
                ),
            ))),
        }
    }
}
