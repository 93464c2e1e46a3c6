//! Which Rampart user a provider-vouched login is: the linked user, an
//! invite's user (linked now), or one created just in time; groups synced
//! from the token; disabled users refused.

use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;

use rampart_audit::{EventKind, Outcome};

use super::{Authority, Caller};
use crate::error::CaError;
use crate::oidc::IdpLogin;
use crate::store::{IdpBinding, StoreError, UserRecord};

impl Authority {
    /// The Rampart user for a provider-vouched login: the user the account is
    /// linked to, else the invite's user (linked now), else one created just in
    /// time where the provider allows it; groups synced from the token, refused
    /// if disabled whatever the provider says.
    pub(super) fn oidc_user(
        &self,
        caller: &Caller,
        login: &IdpLogin,
        invite: Option<&str>,
    ) -> Result<UserRecord, CaError> {
        let c = &login.claims;
        let refuse = |reason: &str, err: CaError| -> Result<UserRecord, CaError> {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&c.username)
                    .mfa_method(MfaMethod::Oidc.as_str())
                    .reason(reason)
                    .detail("provider", login.provider.clone()),
            )?;
            Err(err)
        };
        let settings = self.oidc()?.settings(&login.provider).cloned();
        let jit = settings.as_ref().is_some_and(|s| s.jit_users);
        let sync_groups = settings.as_ref().is_none_or(|s| s.sync_groups);
        // Only the provider's subject names the user: the user-name claim is
        // often editable at the provider, so it may create a new user (JIT) but
        // never claim an existing one. An existing user is tied to a provider
        // account by an admin (`rampart admin user link`) or by an invite
        // redeemed with this login. A linked account logs in as its user and
        // leaves any invite it brought unspent.
        let linked = self.store.idp_subject_user(&login.provider, &c.subject)?;
        let mut user = match (linked, invite) {
            (Some(linked), _) => self.require_user(&linked)?,
            // With an invite, the invite alone names the user: no lookup by
            // name, no JIT.
            (None, Some(invite)) => self.oidc_link_by_invite(caller, login, invite)?,
            (None, None) => match self.store.user(&c.username)? {
                Some(existing) => {
                    return refuse(
                        "oidc_account_not_linked",
                        CaError::forbidden(
                            ErrorCode::OidcAccountNotLinked,
                            format!(
                                "Rampart user {} exists but is not linked to this {} account; \
                                 an admin links it with `rampart admin user link {} \
                                 --provider {} --subject {}`, or sends an invite to redeem \
                                 with `rampart enroll --invite CODE --oidc {}`",
                                existing.name,
                                login.provider,
                                existing.name,
                                login.provider,
                                c.subject,
                                login.provider
                            ),
                        ),
                    )
                }
                None if jit => self.oidc_create_user(caller, login)?,
                None => {
                    return refuse(
                        "oidc_user_unknown",
                        CaError::forbidden(
                            ErrorCode::OidcUserUnknown,
                            format!(
                                "the provider vouched for {}, who is not a Rampart user; ask an \
                                 admin",
                                c.username
                            ),
                        ),
                    )
                }
            },
        };
        if user.disabled {
            return refuse(
                "user_disabled",
                CaError::forbidden(ErrorCode::UserDisabled, "this user is disabled"),
            );
        }
        // With `sync_groups`, the provider is the source of truth for groups
        // when it sends them.
        if sync_groups && !c.groups.is_empty() && c.groups != user.groups {
            self.store.set_groups(&user.name, &c.groups)?;
            self.record(
                self.event(EventKind::UserGroupsChanged, Outcome::Success, Some(caller))
                    .actor(&format!("oidc:{}", login.provider))
                    .user(&user.name)
                    .detail("from", user.groups.clone())
                    .detail("to", c.groups.clone()),
            )?;
            user.groups = c.groups.clone();
        }
        Ok(user)
    }

    /// Link a login's provider account, which no user holds yet, to the user
    /// an invite names: the invite holder's way to what `rampart admin user
    /// link` does. It grants nothing new: the holder could enrol a TOTP for
    /// that user with the same invite. Redemption spends the invite, so a
    /// refusal after it (the user is disabled, or linked to another account at
    /// this provider) spends it too, as a refused enrolment does.
    pub(super) fn oidc_link_by_invite(
        &self,
        caller: &Caller,
        login: &IdpLogin,
        invite: &str,
    ) -> Result<UserRecord, CaError> {
        let c = &login.claims;
        let now = self.now();
        // Audits and counts its refusals (unknown, used or expired invite,
        // disabled user).
        let name = self.redeem_invite(caller, invite, now)?;
        let event = |kind: EventKind, outcome: Outcome| {
            self.event(kind, outcome, Some(caller))
                .user(&name)
                .mfa_method(MfaMethod::Oidc.as_str())
                .detail("provider", login.provider.clone())
                .detail("subject", c.subject.clone())
        };
        // One account per user per provider: an invite does not move a link;
        // only an admin removes one.
        if let Some(current) = self
            .store
            .idp_link(&login.provider, &name)?
            .filter(|s| *s != c.subject)
        {
            self.record(
                event(EventKind::InviteRefused, Outcome::Failure)
                    .reason("oidc_user_linked")
                    .detail("linked_subject", current),
            )?;
            return Err(CaError::Conflict {
                code: ErrorCode::OidcUserLinked,
                message: format!(
                    "{name} is already linked to another {} account; an admin removes that \
                     link first (`rampart admin user link {name} --provider {} --unlink`)",
                    login.provider, login.provider
                ),
            });
        }
        // Audit first: the link is a state change the log must know of.
        self.record(event(EventKind::InviteRedeemed, Outcome::Success))?;
        self.record(
            event(EventKind::UserIdpLinked, Outcome::Success)
                .actor(&name)
                .detail("via", "invite"),
        )?;
        match self
            .store
            .bind_idp_subject(&login.provider, &c.subject, &name, now)?
        {
            IdpBinding::Bound | IdpBinding::Matches => self.require_user(&name),
            // A login or an admin linked either side between the checks and
            // the bind.
            IdpBinding::SubjectBoundTo(_) | IdpBinding::UserBoundElsewhere => {
                Err(CaError::Conflict {
                    code: ErrorCode::OidcLinkConflict,
                    message: "the link changed meanwhile; ask an admin".to_owned(),
                })
            }
        }
    }

    /// Create the user a provider vouched for (just-in-time) and link the
    /// provider account to it in the same breath. A concurrent first login of
    /// the same account finds the user and the link already there.
    pub(super) fn oidc_create_user(
        &self,
        caller: &Caller,
        login: &IdpLogin,
    ) -> Result<UserRecord, CaError> {
        let c = &login.claims;
        let now = self.now();
        let record = UserRecord {
            name: c.username.clone(),
            groups: c.groups.clone(),
            admin: false,
            disabled: false,
            created_at: now,
        };
        match self.store.create_user(&record) {
            Ok(()) => {
                self.record(
                    self.event(EventKind::UserCreated, Outcome::Success, Some(caller))
                        .actor(&format!("oidc:{}", login.provider))
                        .user(&c.username)
                        .detail("groups", c.groups.clone())
                        .detail("subject", c.subject.clone())
                        .detail("jit", true),
                )?;
            }
            // A user of that name appeared since the lookup: whoever made it, it
            // is not this login's to claim (a concurrent first login of the
            // same account links it, and the next try finds the link).
            Err(StoreError::Duplicate(_)) => {
                return match self.store.idp_subject_user(&login.provider, &c.subject)? {
                    Some(linked) if linked == c.username => self.require_user(&linked),
                    _ => Err(CaError::Conflict {
                        code: ErrorCode::OidcAccountNotLinked,
                        message: format!(
                            "Rampart user {} was created meanwhile and is not linked to this \
                             {} account; try again or ask an admin",
                            c.username, login.provider
                        ),
                    }),
                };
            }
            Err(e) => return Err(e.into()),
        }
        match self
            .store
            .bind_idp_subject(&login.provider, &c.subject, &c.username, now)?
        {
            IdpBinding::Bound | IdpBinding::Matches => self.require_user(&c.username),
            // Someone else's user of that name appeared meanwhile.
            IdpBinding::SubjectBoundTo(_) | IdpBinding::UserBoundElsewhere => {
                Err(CaError::forbidden(
                    ErrorCode::OidcAccountNotLinked,
                    format!(
                        "Rampart user {} is linked to another {} account",
                        c.username, login.provider
                    ),
                ))
            }
        }
    }
}
