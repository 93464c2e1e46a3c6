//! Logging in with a second factor, the per-source failure limiter, and what a
//! session may ask about itself (whoami, the hosts it may reach).

use super::lockout;
use super::*;
use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;

impl Authority {
    pub(super) fn verifier<'p>(
        &self,
        proof: &'p api::FactorProof,
    ) -> Result<(&dyn FactorVerifier, &'p str), CaError> {
        match proof {
            api::FactorProof::Totp { code } => Ok((&self.totp, code.expose())),
            api::FactorProof::Recovery { code } => Ok((&self.recovery, code.expose())),
            _ => Err(CaError::bad_request(
                ErrorCode::FactorUnsupported,
                "this CA does not support that factor yet",
            )),
        }
    }

    /// Verify a factor and open a session.
    pub fn login(
        &self,
        caller: &Caller,
        req: &api::LoginRequest,
    ) -> Result<api::LoginResponse, CaError> {
        let started = std::time::Instant::now();
        let result = self.login_checked(caller, req);
        crate::metrics::login_finished(req.factor.method(), &result, started.elapsed());
        result
    }

    pub(super) fn login_checked(
        &self,
        caller: &Caller,
        req: &api::LoginRequest,
    ) -> Result<api::LoginResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        let (verifier, secret) = self.verifier(&req.factor)?;
        let method = verifier.method();
        let user = match self.store.user(&req.user)? {
            Some(u) => u,
            None => {
                // Same answer as a wrong code, so user names cannot be probed.
                self.note_source_failure(caller);
                self.record(
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .user(&req.user)
                        .mfa_method(method.as_str())
                        .reason("unknown user"),
                )?;
                return Err(CaError::unauthenticated(
                    FactorFailure::Invalid.code(),
                    "the user name or code is not right",
                ));
            }
        };
        if user.disabled {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&user.name)
                    .mfa_method(method.as_str())
                    .reason("user disabled"),
            )?;
            return Err(CaError::forbidden(
                ErrorCode::UserDisabled,
                "this user is disabled",
            ));
        }
        let network = caller.network();
        if let Err(lock) = self.begin_attempt(&user.name, &network)? {
            self.record(
                self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                    .user(&user.name)
                    .mfa_method(method.as_str())
                    .reason("user locked out")
                    .detail("scope", lock.scope.as_str()),
            )?;
            return Err(lockout::locked_error(&user.name, &lock, now));
        }
        let ctx = FactorContext {
            store: self.store.as_ref(),
            sealer: &self.sealer,
            now,
        };
        let verified = match verifier.verify(&ctx, &user.name, secret)? {
            Ok(v) => v,
            Err(failure) => {
                self.attempt_failed(
                    caller,
                    &user.name,
                    &network,
                    crate::metrics::Factor::from(method),
                    self.event(EventKind::MfaFailed, Outcome::Failure, Some(caller))
                        .user(&user.name)
                        .mfa_method(method.as_str())
                        .reason(failure.code().as_str()),
                )?;
                let message = match failure {
                    FactorFailure::Replayed => {
                        "that code was already used; wait for the next one".to_owned()
                    }
                    FactorFailure::Malformed => format!("that is not a well-formed {method} code"),
                    FactorFailure::Invalid => "the user name or code is not right".to_owned(),
                };
                return Err(CaError::unauthenticated(failure.code(), message));
            }
        };
        self.attempt_succeeded(&user.name, &network)?;
        let token = secrets::new_token();
        let session_id = secrets::new_public_id();
        tracing::Span::current().record("session_id", session_id.as_str());
        let expires_at = now + to_chrono(self.settings.session_ttl);
        let mut ev = self
            .event(EventKind::MfaSucceeded, Outcome::Success, Some(caller))
            .user(&user.name)
            .mfa_method(method.as_str())
            .session(&session_id);
        if let Some((k, v)) = &verified.detail {
            ev = ev.detail(k, v.clone());
        }
        let mfa_event = self.record(ev)?.id.to_string();
        if method == MfaMethod::Recovery {
            self.record(
                self.event(EventKind::RecoveryCodeUsed, Outcome::Success, Some(caller))
                    .user(&user.name)
                    .session(&session_id)
                    .detail(
                        "codes_left",
                        u64::from(self.store.recovery_codes_left(&user.name)?),
                    ),
            )?;
        }
        self.open_session(
            caller,
            ProvenLogin {
                user: &user.name,
                admin: user.admin,
                mfa_method: method,
                mfa_time: now,
                mfa_event,
                session_id,
                token,
                expires_at,
            },
        )
    }

    /// Open the session a successful login earned, whatever the factor (TOTP,
    /// recovery code, security key, OIDC): store it under the token's digest
    /// only, audit `session_created`, and answer the client with the token.
    pub(crate) fn open_session(
        &self,
        caller: &Caller,
        login: ProvenLogin<'_>,
    ) -> Result<api::LoginResponse, CaError> {
        let ProvenLogin {
            user,
            admin,
            mfa_method,
            mfa_time,
            mfa_event,
            session_id,
            token,
            expires_at,
        } = login;
        self.store.create_session(
            &secrets::digest_secret(token.expose()),
            &SessionRecord {
                id: session_id.clone(),
                user: user.to_owned(),
                mfa_method,
                mfa_time,
                mfa_event: mfa_event.clone(),
                expires_at,
            },
        )?;
        self.record(
            self.event(EventKind::SessionCreated, Outcome::Success, Some(caller))
                .user(user)
                .session(&session_id)
                .mfa_method(mfa_method.as_str()),
        )?;
        Ok(api::LoginResponse {
            user: user.to_owned(),
            session_token: token,
            expires_at,
            mfa_method: mfa_method.as_str().to_owned(),
            mfa_time,
            mfa_event,
            admin,
        })
    }

    /// Resolve a bearer token to a live session of an enabled user.
    pub fn authenticate(&self, token: &str) -> Result<Session, CaError> {
        let hash = secrets::digest_secret(token);
        let unauth = || {
            CaError::unauthenticated(
                ErrorCode::SessionInvalid,
                "not logged in or the session expired; run `rampart login`",
            )
        };
        let record = self.store.session(&hash)?.ok_or_else(unauth)?;
        if record.expires_at <= self.now() {
            self.store.delete_session(&hash)?;
            return Err(unauth());
        }
        tracing::Span::current().record("session_id", record.id.as_str());
        let user = self.store.user(&record.user)?.ok_or_else(unauth)?;
        if user.disabled {
            return Err(CaError::forbidden(
                ErrorCode::UserDisabled,
                "this user is disabled",
            ));
        }
        Ok(Session { record, user })
    }

    /// End a session.
    pub fn logout(&self, caller: &Caller, token: &str) -> Result<(), CaError> {
        let session = self.authenticate(token)?;
        self.store.delete_session(&secrets::digest_secret(token))?;
        self.record(
            self.event(EventKind::SessionEnded, Outcome::Success, Some(caller))
                .user(&session.user.name)
                .session(&session.record.id),
        )?;
        Ok(())
    }

    /// `GET /v1/whoami`.
    pub fn whoami(&self, session: &Session) -> api::WhoAmI {
        api::WhoAmI {
            user: session.user.name.clone(),
            groups: session.user.groups.clone(),
            admin: session.user.admin,
            mfa_method: session.record.mfa_method.as_str().to_owned(),
            mfa_time: session.record.mfa_time,
            expires_at: session.record.expires_at,
        }
    }

    /// `GET /v1/ssh-hosts`: the joined bastions and the target names the
    /// policy registers for bastions — the hosts users reach with a Rampart
    /// certificate (the CLI scopes its ssh_config to them). Any live session
    /// may ask: users must know the bastion's name to use it.
    pub fn ssh_hosts(&self, _session: &Session) -> Result<api::SshHosts, CaError> {
        let policy = self.policy()?;
        let mut hosts = self.store.bastion_names()?;
        for bastion in policy.registered_bastions() {
            hosts.extend(
                policy
                    .bastion_targets(bastion)
                    .unwrap_or_default()
                    .iter()
                    .cloned(),
            );
        }
        hosts.sort();
        hosts.dedup();
        Ok(api::SshHosts {
            hosts,
            revoked_host_keys: self.store.revoked_host_keys()?,
        })
    }

    /// `GET /v1/targets`: the session user's own view of what policy lets
    /// them reach through the joined bastions. Not audited, like `whoami`:
    /// it changes nothing and grants nothing (each session is decided again).
    pub fn targets(&self, session: &Session) -> Result<api::Targets, CaError> {
        let policy = self.policy()?;
        let user = &session.user;
        let request = rampart_policy::ReachRequest {
            user: &user.name,
            groups: &user.groups,
            factor: self.session_factor(session)?,
            mfa_time: session.record.mfa_time,
        };
        // The session does not know which key the user's certificate is
        // for, so roles needing a PIV-attested key are left out here.
        let rows = match rampart_policy::reachable(
            &request,
            rampart_policy::KeyAssurance::Unattested,
            &policy,
            self.now(),
        ) {
            Ok(rows) => rows,
            Err(denial) => {
                return Ok(api::Targets {
                    user: user.name.clone(),
                    targets: Vec::new(),
                    bastions: Vec::new(),
                    denied: Some(denial.reason),
                })
            }
        };
        // A bastion the policy registers but that never joined serves nothing.
        let joined: std::collections::BTreeSet<String> =
            self.store.bastion_names()?.into_iter().collect();
        let security_key = self.has_usable_security_key(&user.name)?;
        let mut targets = Vec::new();
        let mut bastions = std::collections::BTreeSet::new();
        for row in rows.into_iter().filter(|r| joined.contains(&r.bastion)) {
            let session_check = if !row.session_mfa {
                "none"
            } else if security_key && row.webauthn_link {
                "approval"
            } else {
                "code"
            };
            bastions.insert(row.bastion.clone());
            targets.push(api::TargetAccess {
                target: row.target,
                pattern: row.pattern,
                bastion: row.bastion,
                logins: row.logins,
                roles: row.roles,
                session_check: session_check.to_owned(),
                labels: row.labels,
            });
        }
        let bastions = bastions
            .into_iter()
            .map(|name| {
                let (host, port) = policy.bastion_address(&name);
                api::BastionAddress { name, host, port }
            })
            .collect();
        Ok(api::Targets {
            user: user.name.clone(),
            targets,
            bastions,
            denied: None,
        })
    }
}
