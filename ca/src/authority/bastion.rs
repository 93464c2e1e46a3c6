//! The CA side of the bastion (DESIGN.md flow 4): join tokens, bastion identity,
//! host certificates for targets, and per-session user certificates.
//!
//! **Owns:** every rule about what a bastion may obtain from the CA. The bastion
//! daemon (`rampart-bastion`) holds no CA key; it calls these operations over the
//! HTTPS API and proves who it is with a credential it received at join.
//! **Must never:** sign anything for a caller that is not a joined bastion, or
//! issue a per-session certificate without the user's proof of presence, the
//! user's own certificate and a policy decision for (user, login, target).
//!
//! # The flow
//!
//! 1. `rampart admin bastion-token [--name NAME] [--ttl 1h]` (admin, fresh MFA) →
//!    `POST /v1/admin/bastion-tokens`: a single-use join token, default 1 h, at
//!    most 24 h, optionally bound to a name. Stored as a SHA-256 hash, like
//!    invites. Audited `bastion_token_created` (RA-BAS-001).
//! 2. `POST /v1/bastion/join {token, name, host_public_key}`: the token is
//!    consumed atomically (a second use, an expired or unknown token is refused
//!    and audited `bastion_join_refused`, RA-BAS-003; failures count against the
//!    source address like bad invites). The bastion is registered (name, host
//!    key fingerprint) and gets back, once: a credential
//!    ([`api::BASTION_CREDENTIAL_PREFIX`] + 256 random bits, stored hashed), both
//!    CA public keys, and a host certificate for its own host key (principal =
//!    its name, lifetime `[hosts] max_ttl`). A name already joined is refused
//!    unless the token was made for that name: then the join replaces the host
//!    key and the credential (rotation), and the old credential stops working.
//!    Audited `bastion_joined` (RA-BAS-002).
//! 3. With `Authorization: Bearer rpb_…` (the credential; a user session token is
//!    refused on these endpoints, and a credential is refused on user and admin
//!    endpoints, because each is looked up only in its own table):
//!    - `POST /v1/bastion/host-cert {target, host_public_key}`: a host
//!      certificate for the target's name (the only principal), for the host
//!      key the bastion joined with and no other (`host_key_not_registered`),
//!      for a name the policy registers for this bastion (`[bastions.NAME]
//!      targets`, else `target_not_registered`; per-session certificates check
//!      the same), valid
//!      [`TARGET_HOST_CERT_TTL`] clamped by `[hosts] max_ttl`, so the bastion can
//!      terminate the inner SSH session for `db-1` under a certificate the
//!      client's `@cert-authority` line trusts. Names that are not IP addresses or
//!      RFC 1123 host names are refused. Audited `host_cert_issued` with
//!      `actor = bastion:NAME`.
//!    - `POST /v1/bastion/session-cert`: see [`Authority::bastion_session_cert`].
//!    - `GET /v1/bastion/revocations?since_version=N`: the KRL version, every
//!      revoked serial and key fingerprint, and the disabled users, as JSON — so
//!      the bastion can end live sessions without parsing the binary KRL. When
//!      `since_version` is current, `changed` is false and the lists are empty,
//!      which makes a tight polling loop cheap. (`GET /v1/krl` stays the source
//!      for sshd.)
//!
//! 4. `rampart admin revoke --bastion NAME` (admin) → `POST
//!    /v1/admin/bastions/revoke`: the credential stops working at once (audited
//!    `revoked`, `target` = `bastion:NAME`) and its host key is revoked, so
//!    clients list it `@revoked` and it cannot join again; the name is free for
//!    a join from a fresh directory (a new key).
//!
//! # Per-session certificates
//!
//! The outer certificate is public, so it cannot show on its own that its
//! user is the one asking. Before any other decision the request's
//! `user_proof` must be what the user's SSH client signed to log in to the
//! bastion on this connection (RFC 4252 §7 publickey userauth data naming
//! exactly the outer certificate, signed by its key with the algorithm it
//! names; rsa-sha2-256/512, ECDSA and Ed25519); a missing one is refused
//! `user_proof_required`, any other `user_proof_invalid` (both audited
//! `access_denied`). Once the outer certificate is known to be this CA's and
//! valid, the proof is bound to this bastion by the SHA-256 of the session
//! identifier it signs: another bastion presenting it later is refused
//! `user_proof_foreign`, and its own bastion may use it again (per-session MFA
//! retries) for [`super::user_proof::USER_PROOF_WINDOW`] after the first use
//! (`user_proof_expired` after that). The binding is kept in the store until
//! the outer certificate expires, so a restart of the CA forgets none. See
//! [`super::user_proof`].
//!
//! The outer certificate itself must be a user certificate signed by this CA's user
//! CA, valid now by the CA's clock, with a serial this CA issued to the user its
//! key ID names (`user=<name>`), for the same key, and neither its serial nor
//! its key revoked; the user must exist and be enabled. Policy is then asked
//! twice with the factor and MFA time the outer certificate carries
//! (`mfa-method@rampart`, `mfa-time@rampart`): `evaluate_access` decides
//! whether `login@target` is allowed, and `evaluate` (lifetime 60 s) gives the
//! extensions and the lifetime ceiling. The certificate is for the bastion's
//! ephemeral key: principal = the login, key ID
//! `user=<name> session=<id> serial=<n> via=<bastion>`, valid
//! [`SESSION_CERT_TTL`] (plus the usual 5-minute backdate), the user's MFA
//! evidence copied into the extensions, `source-address` = the bastion's
//! address as the CA sees it (the TCP peer of this request; a bastion behind
//! NAT will need its egress addresses registered at join — a later seam). It is
//! recorded like any user certificate, so `revoke --user` covers it. Every
//! decision, allow or deny, is audited (`access_granted` RA-BAS-004 /
//! `access_denied` RA-BAS-005) with the bastion's session ID, target and login.
//!
//! # Per-session MFA and the session switches
//!
//! A role may say `session_mfa = true` (policy README): when any role that
//! permits the access does, and the request carries no `totp_code`, the answer
//! is 401 with code [`api::SESSION_MFA_REQUIRED`] — after every other check, so
//! a user who would be refused anyway is never asked for a code. That answer is
//! not audited: it is a prompt, not a decision; the bastion asks the user
//! (keyboard-interactive) and retries, and the retry is audited like any other.
//! A `totp_code` is verified through the same TOTP verifier as `login` (RFC 6238
//! §5.2 replay rule: a time step is accepted once; failures count toward the
//! user's lockout), audited as `mfa_succeeded`/`mfa_failed`, and on success the
//! per-session certificate carries the fresh evidence (method `totp`, time now,
//! that event's ID) instead of the outer certificate's. `session_mfa` in the
//! response and the audit event says whether fresh per-session MFA (a code or
//! an approval) was verified.
//!
//! When the user has a usable security key (and the CA a WebAuthn relying
//! party), the answer is [`api::SESSION_APPROVAL_REQUIRED`] instead: the
//! bastion starts an approval (`POST /v1/bastion/approvals/start`), shows its
//! URL and short code to the user, waits on `approvals/wait`, and retries with
//! `webauthn_approval = {request_id, poll_token}`. The approval must have been
//! given for this bastion, user and session ID; it is consumed (single use)
//! and the certificate carries its evidence: `mfa-method@rampart=webauthn`,
//! the key's use as `mfa-time`, the approval's `mfa_succeeded` event, and
//! `mfa-uv@rampart`/`mfa-aaguid@rampart`. A denied, expired, pending or foreign
//! approval refuses the certificate, audited `access_denied` with the
//! approval's code (`webauthn_denied`, `webauthn_expired`, …).
//!
//! `record_input`, `port_forwarding` and `agent_forwarding` in the response come
//! from the policy grant (true if any permitting role sets them) and are audited
//! as details of `access_granted`. The request's `target_labels` are matched
//! against the roles' `target_labels`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api as api;
use rampart_audit::{EventKind, Outcome};
use rampart_policy::Decision;
use ssh_key::certificate::CertType;
use ssh_key::Certificate;

use super::{cert_response, key_fingerprint, to_chrono, Authority, Caller, Session};
use crate::error::CaError;
use crate::factor::{FactorContext, FactorFailure, FactorVerifier};
use crate::secrets;
use crate::store::{BastionJoin, BastionRecord, CertKind, ProofClaim};

/// Default lifetime of a bastion join token.
pub const BASTION_TOKEN_DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime of a bastion join token.
pub const BASTION_TOKEN_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a host certificate for a target (policy `[hosts] max_ttl` clamps).
pub const TARGET_HOST_CERT_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of a per-session certificate: long enough to log in onward.
pub const SESSION_CERT_TTL: Duration = Duration::from_secs(60);
/// Longest certificate line accepted from a bastion.
const MAX_CERT_LINE: usize = 16 * 1024;
/// Most target labels accepted (they are only audited).
const MAX_LABELS: usize = 32;

/// A joined bastion, authenticated by its credential.
#[derive(Debug, Clone)]
pub struct Bastion {
    /// The stored record.
    pub record: BastionRecord,
}

impl Bastion {
    fn actor(&self) -> String {
        format!("bastion:{}", self.record.name)
    }
}

/// Why a per-session certificate is refused: the API error and the audit reason.
struct Refusal {
    code: &'static str,
    message: String,
    user: Option<String>,
    bad_request: bool,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            user: None,
            bad_request: false,
        }
    }

    fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }
}

/// The session ID and bastion name end up in the key ID: one clean token each.
fn clean_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `user=<name>` from a Rampart key ID (`user=alice serial=7 mfa=totp`).
fn key_id_user(key_id: &str) -> Option<&str> {
    key_id
        .split(' ')
        .find_map(|part| part.strip_prefix("user="))
        .filter(|u| !u.is_empty())
}

impl Authority {
    /// `POST /v1/admin/bastion-tokens`: a single-use join token.
    pub fn create_bastion_token(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::BastionTokenRequest,
    ) -> Result<api::BastionTokenResponse, CaError> {
        if let Some(name) = &req.name {
            self.check_bastion_name(name)?;
        }
        let ttl = match req.ttl_seconds {
            None => BASTION_TOKEN_DEFAULT_TTL,
            Some(0) => {
                return Err(CaError::bad_request(
                    "invalid_ttl",
                    "ttl_seconds must be positive",
                ))
            }
            Some(s) => Duration::from_secs(s),
        };
        if ttl > BASTION_TOKEN_MAX_TTL {
            return Err(CaError::bad_request(
                "invalid_ttl",
                format!(
                    "bastion join tokens may live at most {} s",
                    BASTION_TOKEN_MAX_TTL.as_secs()
                ),
            ));
        }
        let now = self.now();
        let token = secrets::new_token();
        let expires_at = now + to_chrono(ttl);
        let mut ev = self
            .event(
                EventKind::BastionTokenCreated,
                Outcome::Success,
                Some(caller),
            )
            .actor(&actor.user.name)
            .session(&actor.record.id)
            .detail("expires_at", expires_at.to_rfc3339());
        if let Some(name) = &req.name {
            ev = ev.target(name);
        }
        // Audit first: a token the log does not know about must not exist.
        self.record(ev)?;
        self.store.create_bastion_token(
            &secrets::digest_secret(&token),
            req.name.as_deref(),
            expires_at,
            now,
        )?;
        Ok(api::BastionTokenResponse {
            token,
            name: req.name.clone(),
            expires_at,
        })
    }

    fn check_bastion_name(&self, name: &str) -> Result<(), CaError> {
        let policy = self.policy()?;
        rampart_policy::approve_host(&policy, name, &[], None)
            .map(|_| ())
            .map_err(|d| CaError::bad_request("invalid_bastion_name", d.reason))?;
        if !clean_token(name) {
            return Err(CaError::bad_request(
                "invalid_bastion_name",
                "a bastion name is a host name of at most 128 characters",
            ));
        }
        Ok(())
    }

    /// `POST /v1/bastion/join`: redeem a join token; register the bastion.
    pub fn bastion_join(
        &self,
        caller: &Caller,
        req: &api::BastionJoinRequest,
    ) -> Result<api::BastionJoinResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        self.check_bastion_name(&req.name)?;
        let key = self.parse_public_key(&req.host_public_key)?;
        let fingerprint = key_fingerprint(&key);
        let credential = format!("{}{}", api::BASTION_CREDENTIAL_PREFIX, secrets::new_token());
        let record = BastionRecord {
            name: req.name.clone(),
            host_key_fingerprint: fingerprint.clone(),
            joined_at: now,
        };
        let refused = |code: &'static str, message: String| -> Result<_, CaError> {
            self.note_source_failure(caller);
            self.record(
                self.event(
                    EventKind::BastionJoinRefused,
                    Outcome::Failure,
                    Some(caller),
                )
                .target(&req.name)
                .reason(code),
            )?;
            Err(CaError::unauthenticated(code, message))
        };
        if self.store.key_revoked(&fingerprint)? {
            return refused(
                "host_key_revoked",
                "this host key has been revoked; join from a fresh directory, which makes a new key"
                    .into(),
            );
        }
        let token_hash = secrets::digest_secret(&req.token);
        let rejoin = self.store.bastion(&req.name)?.is_some();
        match self.store.join_bastion(
            &token_hash,
            &record,
            &secrets::digest_secret(&credential),
            now,
        )? {
            BastionJoin::Joined => {}
            BastionJoin::Unknown => {
                return refused("token_unknown", "this join token is not valid".into())
            }
            BastionJoin::AlreadyUsed => {
                return refused(
                    "token_used",
                    "this join token has already been used".into(),
                )
            }
            BastionJoin::Expired => {
                return refused("token_expired", "this join token has expired".into())
            }
            BastionJoin::NameMismatch(bound) => {
                return refused(
                    "name_mismatch",
                    format!("this join token is for the bastion {bound:?}"),
                )
            }
            BastionJoin::NameTaken => {
                return refused(
                    "name_taken",
                    format!(
                        "a bastion named {:?} has joined already; an admin can make a token for that name to re-join it",
                        req.name
                    ),
                )
            }
        }
        let policy = self.policy()?;
        let grant = rampart_policy::approve_host(&policy, &req.name, &[], None)
            .map_err(|d| CaError::bad_request("invalid_bastion_name", d.reason))?;
        let serial = self.next_serial()?;
        let spec = rampart_signer::HostCertSpec::from_grant(&grant, key, serial, now)?;
        let cert = rampart_signer::sign_host_cert(self.keys.host_ca.as_ref(), &spec)?;
        let (cert_record, line) =
            self.store_issued(&cert, CertKind::Host, &req.name, &fingerprint, now)?;
        let bastion = Bastion { record };
        self.record(
            self.event(EventKind::BastionJoined, Outcome::Success, Some(caller))
                .actor(&bastion.actor())
                .target(&req.name)
                .serial(serial)
                .detail("host_key_fingerprint", fingerprint)
                .detail("rejoin", rejoin),
        )?;
        Ok(api::BastionJoinResponse {
            name: req.name.clone(),
            credential,
            user_ca: self.user_ca_line(),
            host_ca: self.host_ca_line(),
            host_certificate: cert_response(cert_record, line),
        })
    }

    /// `POST /v1/admin/bastions/revoke` (`rampart admin revoke --bastion NAME`):
    /// the bastion's credential stops working at once, so it can obtain no more
    /// certificates, and its host key is revoked; its name is free for a new
    /// join with a new key.
    pub fn revoke_bastion(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::BastionRevokeRequest,
    ) -> Result<api::BastionRevokeResponse, CaError> {
        let reason = req
            .reason
            .clone()
            .unwrap_or_else(|| "unspecified".to_owned());
        if reason.len() > 512 {
            return Err(CaError::bad_request(
                "invalid_reason",
                "reason is longer than 512 bytes",
            ));
        }
        let Some(record) = self.store.bastion(&req.name)? else {
            return Err(CaError::not_found(
                "bastion_unknown",
                format!("no bastion named {:?} has joined", req.name),
            ));
        };
        // Audit first, then change state.
        self.record(
            self.event(EventKind::Revoked, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .target(&format!("bastion:{}", req.name))
                .reason(&reason)
                .detail("keys", vec![record.host_key_fingerprint.clone()]),
        )?;
        self.store.remove_bastion(&req.name)?;
        // Its host key too: every host certificate it holds (its own and the
        // targets') is for that key, and clients that refresh their
        // known_hosts get it as `@revoked`, so a stolen bastion cannot go on
        // impersonating targets until its certificates run out.
        let version = self.store.revoke(
            &[],
            std::slice::from_ref(&record.host_key_fingerprint),
            &format!("bastion {} revoked: {reason}", req.name),
            self.now(),
        )?;
        self.rebuild_krl()?;
        self.record(
            self.event(EventKind::KrlPublished, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .detail("krl_version", version),
        )?;
        Ok(api::BastionRevokeResponse {
            name: req.name.clone(),
        })
    }

    /// Resolve a bastion credential. User session tokens never resolve here.
    pub fn authenticate_bastion(&self, credential: &str) -> Result<Bastion, CaError> {
        let refused = || {
            CaError::unauthenticated(
                "bastion_credential_invalid",
                "this endpoint needs a bastion credential (rampart-bastion join)",
            )
        };
        if !credential.starts_with(api::BASTION_CREDENTIAL_PREFIX) {
            return Err(refused());
        }
        let record = self
            .store
            .bastion_by_credential(&secrets::digest_secret(credential))?
            .ok_or_else(refused)?;
        Ok(Bastion { record })
    }

    /// `POST /v1/bastion/host-cert`: a short-lived host certificate for a target.
    pub fn bastion_host_cert(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        req: &api::BastionHostCertRequest,
    ) -> Result<api::CertResponse, CaError> {
        // The bastion terminates inner sessions under its own host key, the one
        // it joined with: a certificate for any other key would let whoever
        // holds the credential impersonate a target anywhere.
        let key = self.parse_public_key(&req.host_public_key)?;
        if key_fingerprint(&key) != bastion.record.host_key_fingerprint {
            self.record(
                self.event(EventKind::CertDenied, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .target(&req.target)
                    .reason("a target host certificate was asked for a key the bastion did not join with")
                    .detail("code", "host_key_not_registered")
                    .detail("key_fingerprint", key_fingerprint(&key)),
            )?;
            return Err(CaError::bad_request(
                "host_key_not_registered",
                "a bastion gets target host certificates only for the host key it joined with",
            ));
        }
        let policy = self.policy()?;
        if let Err(d) =
            rampart_policy::bastion_may_serve(&policy, &bastion.record.name, &req.target)
        {
            self.record(
                self.event(EventKind::CertDenied, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .target(&req.target)
                    .reason(&d.reason)
                    .detail("code", d.code.as_str()),
            )?;
            return Err(CaError::forbidden(d.code.as_str(), d.reason));
        }
        self.sign_host(
            caller,
            &req.host_public_key,
            &req.target,
            &[],
            Some(TARGET_HOST_CERT_TTL),
            "invalid_target",
            |ev| ev.actor(&bastion.actor()),
        )
    }

    /// `GET /v1/bastion/revocations`.
    pub fn bastion_revocations(
        &self,
        _bastion: &Bastion,
        since_version: Option<u64>,
    ) -> Result<api::BastionRevocations, CaError> {
        let rev = self.store.revocations()?;
        let disabled: Vec<String> = self
            .store
            .users()?
            .into_iter()
            .filter(|u| u.disabled)
            .map(|u| u.name)
            .collect();
        if since_version == Some(rev.version) {
            return Ok(api::BastionRevocations {
                version: rev.version,
                changed: false,
                serials: Vec::new(),
                key_fingerprints: Vec::new(),
                disabled_users: disabled,
            });
        }
        Ok(api::BastionRevocations {
            version: rev.version,
            changed: true,
            serials: rev.serials,
            key_fingerprints: rev.key_fingerprints,
            disabled_users: disabled,
        })
    }

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
    fn session_cert_inner(
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
        let proof = match super::user_proof::verify(req.user_proof.as_ref(), &outer) {
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
            super::oidc_login::EXT_MFA_IDP,
            super::oidc_login::EXT_MFA_ACR,
            super::oidc_login::EXT_MFA_AMR,
            super::oidc_login::EXT_MFA_AUTH_TIME,
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
            idp_evidence = super::webauthn::evidence_extensions(
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
    /// ([`super::user_proof::USER_PROOF_WINDOW`], and never past the outer
    /// certificate's expiry).
    fn claim_user_proof(
        &self,
        bastion: &Bastion,
        outer: &Certificate,
        proof: &super::user_proof::VerifiedProof,
        now: DateTime<Utc>,
    ) -> Result<(), Result<Refusal, CaError>> {
        use super::user_proof::{CODE_EXPIRED, CODE_FOREIGN, USER_PROOF_WINDOW};
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

    /// The user's address as the bastion reported it, against the outer
    /// certificate's critical options (`source-address` is the only one a
    /// Rampart certificate carries; any other refuses it, as sshd would) and
    /// the granting roles' `source_address`. `Err` is the refusal message.
    fn check_user_source(
        &self,
        outer: &Certificate,
        grant: &rampart_policy::Grant,
        reported: Option<&str>,
    ) -> Result<(), String> {
        let client = reported.and_then(|s| s.parse::<std::net::IpAddr>().ok());
        let mut by_cert = None;
        for (name, value) in outer.critical_options().iter() {
            if name.as_str() != api::source::SOURCE_ADDRESS {
                return Err(format!(
                    "the user certificate carries critical option {:?}, which a bastion session cannot honour",
                    name.chars().take(64).collect::<String>()
                ));
            }
            by_cert = Some(value.clone());
        }
        let by_role = grant.source_address();
        if by_cert.is_none() && by_role.is_empty() {
            return Ok(());
        }
        let Some(client) = client.map(|c| c.to_canonical()) else {
            return Err(
                "this access is limited by source address and the bastion did not report the user's address"
                    .into(),
            );
        };
        if let Some(value) = by_cert {
            if !api::source::source_address_allows(&value, client)? {
                return Err(format!(
                    "the user certificate is not valid from {client} (source-address {})",
                    value.chars().take(256).collect::<String>()
                ));
            }
        }
        if !by_role.is_empty() && !by_role.iter().any(|net| net.contains(&client)) {
            let allowed: Vec<String> = by_role.iter().map(ToString::to_string).collect();
            return Err(format!(
                "policy allows this access only from {}; the user is at {client}",
                allowed.join(",")
            ));
        }
        Ok(())
    }

    /// Whether per-session MFA for `user` should be a security-key approval:
    /// the CA has a WebAuthn relying party and the user a key that is not
    /// disabled. Otherwise the bastion asks for a TOTP code.
    fn has_usable_security_key(&self, user: &str) -> Result<bool, CaError> {
        if self.webauthn().is_err() {
            return Ok(false);
        }
        Ok(self
            .store
            .webauthn_keys(user)?
            .iter()
            .any(|k| k.disabled_reason.is_none()))
    }

    /// Verify a per-session TOTP code with the login path's rules (replay,
    /// failure counting, lockout, audit). `Ok(Ok(event id))` on success.
    /// Failures count against the user's own network as the bastion reports
    /// it, never against the bastion's address, which all its users share.
    fn verify_session_totp(
        &self,
        caller: &Caller,
        bastion: &Bastion,
        client: Option<&str>,
        user: &str,
        code: &str,
        session_id: &str,
    ) -> Result<Result<String, FactorFailure>, CaError> {
        let now = self.now();
        let client = Caller {
            source: client
                .and_then(|c| c.parse::<std::net::IpAddr>().ok())
                .unwrap_or(caller.source),
        };
        let network = client.network();
        if let Err(lock) = self.begin_attempt(user, &network)? {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .actor(&bastion.actor())
                    .user(user)
                    .session(session_id)
                    .mfa_method("totp")
                    .reason("user locked out")
                    .detail("scope", lock.scope.as_str()),
            )?;
            return Ok(Err(FactorFailure::Invalid));
        }
        let ctx = FactorContext {
            store: self.store.as_ref(),
            sealer: &self.sealer,
            now,
        };
        match self.totp.verify(&ctx, user, code)? {
            Ok(_) => {
                self.attempt_succeeded(user, &network)?;
                let appended = self.record(
                    self.event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
                        .actor(&bastion.actor())
                        .user(user)
                        .session(session_id)
                        .mfa_method("totp")
                        .detail("per_session", true),
                )?;
                Ok(Ok(appended.id.to_string()))
            }
            Err(failure) => {
                self.attempt_failed(
                    &client,
                    user,
                    &network,
                    crate::metrics::Factor::Totp,
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .actor(&bastion.actor())
                        .user(user)
                        .session(session_id)
                        .mfa_method("totp")
                        .reason(failure.code())
                        .detail("per_session", true),
                )?;
                Ok(Err(failure))
            }
        }
    }
}

/// The refusal code of a policy denial at the bastion: `access_denied`, except
/// that a security key used through a link for roles that refuse that says so
/// (`webauthn_link_refused`), so the user learns what would work.
fn access_denial_code(d: &rampart_policy::Denial) -> &'static str {
    match d.code {
        rampart_policy::DenyCode::WebauthnLinkRefused => "webauthn_link_refused",
        _ => "access_denied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_user_takes_the_user_field() {
        assert_eq!(key_id_user("user=alice serial=7 mfa=totp"), Some("alice"));
        assert_eq!(key_id_user("serial=7 user=bob"), Some("bob"));
        assert_eq!(key_id_user("user= serial=7"), None);
        assert_eq!(key_id_user("alice"), None);
    }

    #[test]
    fn session_ids_are_single_clean_tokens() {
        assert!(clean_token("01JABC-def_1.2"));
        for bad in ["", "a b", "a=b", "x\n", &"a".repeat(129)] {
            assert!(!clean_token(bad), "{bad:?}");
        }
    }
}
