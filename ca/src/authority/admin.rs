//! Administration: the admin gate, users, groups, invites and revocation.

use super::*;
use crate::store::{CertKind, IdpBinding};
use rampart_api::ErrorCode;

impl Authority {
    /// Refuse unless the session belongs to an admin with a fresh, strong enough
    /// factor. Refusals are audited.
    pub fn require_admin(
        &self,
        caller: &Caller,
        session: &Session,
        action: &str,
    ) -> Result<(), CaError> {
        let now = self.now();
        let reason = if !session.user.admin {
            Some((
                ErrorCode::NotAdmin,
                "this operation needs an admin".to_owned(),
            ))
        } else if session.record.mfa_method == rampart_policy::MfaMethod::Recovery
            && !self.settings.admin_allow_recovery
        {
            Some((
                ErrorCode::AdminNeedsMfa,
                "admin operations are not allowed from a recovery-code login; log in with your factor"
                    .to_owned(),
            ))
        } else if now - session.record.mfa_time > to_chrono(self.settings.admin_max_mfa_age) {
            Some((
                ErrorCode::AdminMfaStale,
                "admin operations need a recent MFA check; run `rampart login` again".to_owned(),
            ))
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some((code, message)) => {
                self.record(
                    self.event(EventKind::AdminActionDenied, Outcome::Failure, Some(caller))
                        .actor(&session.user.name)
                        .session(&session.record.id)
                        .reason(code.as_str())
                        .detail("action", action),
                )?;
                Err(CaError::forbidden(code, message))
            }
        }
    }

    pub(super) fn require_user(&self, name: &str) -> Result<UserRecord, CaError> {
        self.store.user(name)?.ok_or_else(|| {
            CaError::not_found(ErrorCode::UserUnknown, format!("no user named {name:?}"))
        })
    }

    pub(super) fn check_groups(groups: &[String]) -> Result<(), CaError> {
        match groups.iter().find(|g| !valid_group_name(g)) {
            Some(bad) => Err(CaError::bad_request(
                ErrorCode::InvalidGroup,
                format!("{bad:?} is not a valid group name (letters, digits, _ . -)"),
            )),
            None => Ok(()),
        }
    }

    /// Create a user. `actor` is `None` only for the bootstrap admin at `init`.
    pub fn create_user(
        &self,
        caller: Option<&Caller>,
        actor: Option<&Session>,
        req: &api::CreateUserRequest,
    ) -> Result<api::User, CaError> {
        if !valid_user_name(&req.name) {
            return Err(CaError::bad_request(
                ErrorCode::InvalidUserName,
                format!(
                    "{:?} is not a valid user name (lower case letters, digits, _ . -, at most 32, starting with a letter or _)",
                    req.name
                ),
            ));
        }
        Self::check_groups(&req.groups)?;
        let record = UserRecord {
            name: req.name.clone(),
            groups: req.groups.clone(),
            admin: req.admin,
            disabled: false,
            created_at: self.now(),
        };
        let exists = || CaError::Conflict {
            code: ErrorCode::UserExists,
            message: format!("a user named {:?} already exists", req.name),
        };
        if self.store.user(&req.name)?.is_some() {
            return Err(exists());
        }
        // Audit first: a state change the log does not know about must not happen.
        let mut ev = self
            .event(EventKind::UserCreated, Outcome::Success, caller)
            .user(&req.name)
            .detail("groups", req.groups.clone())
            .detail("admin", req.admin);
        if let Some(s) = actor {
            ev = ev.actor(&s.user.name).session(&s.record.id);
        } else {
            ev = ev.actor("rampart-ca init");
        }
        self.record(ev)?;
        match self.store.create_user(&record) {
            Ok(()) => {}
            Err(StoreError::Duplicate(_)) => return Err(exists()),
            Err(e) => return Err(e.into()),
        }
        self.user_view(record)
    }

    pub(super) fn user_view(&self, u: UserRecord) -> Result<api::User, CaError> {
        Ok(api::User {
            totp_enrolled: self.store.totp(&u.name)?.is_some(),
            recovery_codes_left: self.store.recovery_codes_left(&u.name)?,
            name: u.name,
            groups: u.groups,
            admin: u.admin,
            disabled: u.disabled,
            created_at: u.created_at,
        })
    }

    /// All users.
    pub fn list_users(&self) -> Result<Vec<api::User>, CaError> {
        self.store
            .users()?
            .into_iter()
            .map(|u| self.user_view(u))
            .collect()
    }

    /// Disable (ending sessions) or enable a user.
    pub fn set_user_state(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::SetUserStateRequest,
    ) -> Result<api::User, CaError> {
        if req.disabled && req.name == actor.user.name {
            return Err(CaError::bad_request(
                ErrorCode::CannotDisableSelf,
                "an admin cannot disable their own account",
            ));
        }
        self.require_user(&req.name)?;
        let kind = if req.disabled {
            EventKind::UserDisabled
        } else {
            EventKind::UserEnabled
        };
        self.record(
            self.event(kind, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .user(&req.name),
        )?;
        self.store.set_disabled(&req.name, req.disabled)?;
        if req.disabled {
            self.store.delete_user_sessions(&req.name)?;
        }
        let u = self.require_user(&req.name)?;
        self.user_view(u)
    }

    /// Replace a user's groups.
    pub fn set_user_groups(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::SetGroupsRequest,
    ) -> Result<api::User, CaError> {
        Self::check_groups(&req.groups)?;
        let before = self.require_user(&req.name)?;
        self.record(
            self.event(EventKind::UserGroupsChanged, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .user(&req.name)
                .detail("groups", req.groups.clone())
                .detail("previous_groups", before.groups),
        )?;
        self.store.set_groups(&req.name, &req.groups)?;
        let u = self.require_user(&req.name)?;
        self.user_view(u)
    }

    /// Link a user to an account at an OIDC provider, or remove the link.
    /// After a link, that account (and only it) logs in as the user through the
    /// provider; nothing else ties an existing user to a provider account.
    pub fn link_idp_subject(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::IdpLinkRequest,
    ) -> Result<api::IdpLinkResponse, CaError> {
        if self.oidc()?.settings(&req.provider).is_none() {
            return Err(CaError::bad_request(
                ErrorCode::OidcProviderUnknown,
                format!("no OIDC provider named {:?} is configured", req.provider),
            ));
        }
        self.require_user(&req.name)?;
        let answer = |subject: Option<String>, linked: bool| api::IdpLinkResponse {
            name: req.name.clone(),
            provider: req.provider.clone(),
            subject,
            linked,
        };
        let event = |kind: EventKind| {
            self.event(kind, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .user(&req.name)
                .detail("provider", req.provider.clone())
        };
        if req.unlink {
            let Some(subject) = self.store.idp_link(&req.provider, &req.name)? else {
                return Ok(answer(None, false));
            };
            // Audit first: a state change the log does not know about must not happen.
            self.record(event(EventKind::UserIdpUnlinked).detail("subject", subject.clone()))?;
            let removed = self.store.unlink_idp_subject(&req.provider, &req.name)?;
            return Ok(answer(removed.or(Some(subject)), false));
        }
        // A subject is an opaque string of at most 255 ASCII characters (OpenID
        // Connect Core §2); refuse anything else rather than store it.
        let subject = req.subject.as_str();
        if subject.is_empty() || subject.len() > 255 || subject.chars().any(|c| c.is_control()) {
            return Err(CaError::bad_request(
                ErrorCode::InvalidSubject,
                "the subject must be 1 to 255 bytes with no control characters",
            ));
        }
        if let Some(other) = self.store.idp_subject_user(&req.provider, subject)? {
            if other != req.name {
                return Err(CaError::Conflict {
                    code: ErrorCode::OidcSubjectLinked,
                    message: format!(
                        "that {} account is linked to Rampart user {other}; unlink it first",
                        req.provider
                    ),
                });
            }
            return Ok(answer(Some(subject.to_owned()), true));
        }
        if let Some(current) = self.store.idp_link(&req.provider, &req.name)? {
            return Err(CaError::Conflict {
                code: ErrorCode::OidcUserLinked,
                message: format!(
                    "{} is already linked to {} account {current:?}; unlink it first",
                    req.name, req.provider
                ),
            });
        }
        self.record(event(EventKind::UserIdpLinked).detail("subject", subject.to_owned()))?;
        match self
            .store
            .bind_idp_subject(&req.provider, subject, &req.name, self.now())?
        {
            IdpBinding::Bound | IdpBinding::Matches => Ok(answer(Some(subject.to_owned()), true)),
            // A login or another admin got there between the checks and the bind.
            IdpBinding::SubjectBoundTo(_) | IdpBinding::UserBoundElsewhere => {
                Err(CaError::Conflict {
                    code: ErrorCode::OidcLinkConflict,
                    message: "the link changed meanwhile; list and try again".to_owned(),
                })
            }
        }
    }

    /// Create a single-use invite for an existing user. `actor` is `None` only
    /// at `init` (the bootstrap admin's invite).
    pub fn create_invite(
        &self,
        caller: Option<&Caller>,
        actor: Option<&Session>,
        req: &api::InviteRequest,
    ) -> Result<api::InviteResponse, CaError> {
        let by = match actor {
            Some(s) => InviteBy::Session(s),
            None => InviteBy::Offline("rampart-ca init"),
        };
        self.new_invite(caller, by, req)
    }

    /// Create an invite from a command run on the CA host itself (no session:
    /// `by` names the command in the audit log).
    pub fn create_offline_invite(
        &self,
        by: &'static str,
        req: &api::InviteRequest,
    ) -> Result<api::InviteResponse, CaError> {
        self.new_invite(None, InviteBy::Offline(by), req)
    }

    fn new_invite(
        &self,
        caller: Option<&Caller>,
        by: InviteBy<'_>,
        req: &api::InviteRequest,
    ) -> Result<api::InviteResponse, CaError> {
        let user = self.require_user(&req.user)?;
        if user.disabled {
            return Err(CaError::bad_request(
                ErrorCode::UserDisabled,
                "this user is disabled",
            ));
        }
        let ttl = match req.ttl_seconds {
            None => self.settings.invite_default_ttl,
            Some(0) => {
                return Err(CaError::bad_request(
                    ErrorCode::InvalidTtl,
                    "ttl_seconds must be positive",
                ))
            }
            Some(s) => Duration::from_secs(s),
        };
        if ttl > self.settings.invite_max_ttl {
            return Err(CaError::bad_request(
                ErrorCode::InvalidTtl,
                format!(
                    "invites may live at most {} s",
                    self.settings.invite_max_ttl.as_secs()
                ),
            ));
        }
        if self.store.totp(&user.name)?.is_some() {
            // An invite for someone who already has a factor: they lost it (M4).
            crate::metrics::recovery_request();
        }
        let now = self.now();
        let code = secrets::new_invite_code();
        let expires_at = now + to_chrono(ttl);
        let mut ev = self
            .event(EventKind::InviteCreated, Outcome::Success, caller)
            .user(&user.name)
            .detail("expires_at", expires_at.to_rfc3339());
        ev = match by {
            InviteBy::Session(s) => ev.actor(&s.user.name).session(&s.record.id),
            InviteBy::Offline(command) => ev.actor(command),
        };
        // Audit first: an invite the log does not know about must not exist.
        self.record(ev)?;
        self.store.create_invite(
            &secrets::digest_secret(code.expose()),
            &user.name,
            expires_at,
            now,
        )?;
        Ok(api::InviteResponse {
            user: user.name,
            code,
            expires_at,
        })
    }

    /// Revoke by serial, user or key; rebuild the KRL.
    pub fn revoke(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::RevokeRequest,
    ) -> Result<api::RevokeResponse, CaError> {
        let chosen = [
            req.serial.is_some(),
            req.user.is_some(),
            req.key_fingerprint.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen != 1 {
            return Err(CaError::bad_request(
                ErrorCode::InvalidRevocation,
                "give exactly one of serial, user or key_fingerprint",
            ));
        }
        let reason = revocation_reason(req.reason.as_deref())?;
        let now = self.now();
        let mut serials = Vec::new();
        let mut keys = Vec::new();
        let mut target = String::new();
        if let Some(serial) = req.serial {
            let Some(cert) = self.store.cert(serial)? else {
                return Err(CaError::not_found(
                    ErrorCode::SerialUnknown,
                    format!("this CA issued no certificate with serial {serial}"),
                ));
            };
            match cert.kind {
                CertKind::User => serials.push(serial),
                // The KRL's serial section is for the user CA, and ssh clients
                // check host keys against known_hosts, which names keys: a host
                // certificate is revoked through its key (`@revoked` for the
                // CLI's known_hosts, the key list for bastions), which also
                // refuses any other certificate for that key.
                CertKind::Host => keys.push(cert.key_fingerprint),
            }
            target = format!("serial:{serial}");
        }
        let disable_user = req
            .user
            .as_ref()
            .filter(|u| *u != &actor.user.name)
            .cloned();
        if let Some(user) = &req.user {
            self.require_user(user)?;
            serials = self.store.serials_for_user(user)?;
            target = format!("user:{user}");
        }
        if let Some(fp) = &req.key_fingerprint {
            rampart_signer::parse_fingerprint(fp).map_err(|_| {
                CaError::bad_request(
                    ErrorCode::InvalidFingerprint,
                    "key_fingerprint must look like SHA256:<base64>, as ssh-keygen -l prints",
                )
            })?;
            serials = self.store.serials_for_key(fp)?;
            keys.push(fp.clone());
            target = format!("key:{fp}");
        }
        let before = self.store.revocations()?;
        let newly_serials: Vec<u64> = serials
            .iter()
            .copied()
            .filter(|s| !before.serials.contains(s))
            .collect();
        let newly_keys: Vec<String> = keys
            .iter()
            .filter(|k| !before.key_fingerprints.contains(k))
            .cloned()
            .collect();
        // Audit first, then change state: nothing is revoked or disabled that the
        // log does not show.
        self.record(
            self.event(EventKind::Revoked, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .session(&actor.record.id)
                .target(&target)
                .reason(&reason)
                .detail("serials", newly_serials.clone())
                .detail("keys", newly_keys.clone()),
        )?;
        if let Some(user) = &disable_user {
            self.record(
                self.event(EventKind::UserDisabled, Outcome::Success, Some(caller))
                    .actor(&actor.user.name)
                    .session(&actor.record.id)
                    .user(user)
                    .reason("revoked"),
            )?;
            self.store.set_disabled(user, true)?;
        }
        if let Some(user) = &req.user {
            self.store.delete_user_sessions(user)?;
        }
        let version = self.store.revoke(&serials, &keys, &reason, now)?;
        self.rebuild_krl()?;
        self.record(
            self.event(EventKind::KrlPublished, Outcome::Success, Some(caller))
                .actor(&actor.user.name)
                .detail("krl_version", version)
                .detail("serials", self.store.revocations()?.serials.len() as u64),
        )?;
        Ok(api::RevokeResponse {
            revoked_serials: newly_serials,
            revoked_keys: newly_keys,
            krl_version: version,
        })
    }
}

/// A revocation's reason as given (default `unspecified`), at most 512 bytes.
pub(super) fn revocation_reason(reason: Option<&str>) -> Result<String, CaError> {
    let reason = reason.unwrap_or("unspecified");
    if reason.len() > 512 {
        return Err(CaError::bad_request(
            ErrorCode::InvalidReason,
            "reason is longer than 512 bytes",
        ));
    }
    Ok(reason.to_owned())
}

/// Who creates an invite: an admin's session, or a command on the CA host.
enum InviteBy<'a> {
    Session(&'a Session),
    Offline(&'static str),
}
