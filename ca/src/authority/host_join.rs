//! Host join tokens: a host's first certificate without a further admin step
//! (`POST /v1/admin/host-tokens`, then `POST /v1/hosts/join` from the host,
//! which `rampart host install --join-token=…` makes).
//!
//! **Owns:** making a token (the policy's `[hosts]` must allow the names now,
//! audited `host_token_created` before it exists) and redeeming it once. A
//! token lives in the shared store of flows in progress (kind
//! `host_join_token`, keyed by its SHA-256), so any CA redeems a token another
//! CA made, and a used one stays there, marked, until its end: a second use
//! says "already used" rather than "unknown". Of two hosts racing with one
//! token, the compare-and-set on the entry lets exactly one through. Every
//! refusal is audited (`host_cert_issued`, failure, with the reason) and
//! counts against the caller's network, like a failed login.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api::{self as api, ErrorCode};
use serde::{Deserialize, Serialize};

use super::{key_fingerprint, to_chrono, Authority, Caller, Session};
use crate::error::CaError;
use crate::secrets;
use crate::store::{PendingCaps, PendingEntry, PendingKind, PendingPut};

const KIND: PendingKind = PendingKind::HostJoinToken;

/// Outstanding tokens: in all, and per admin.
const CAPS: PendingCaps = PendingCaps {
    total: 10_000,
    per_owner: 1_000,
};

/// How long a used or expired token is remembered, to say so.
const REMEMBER_AFTER_END: Duration = Duration::from_secs(24 * 3600);

/// What the store keeps of a token (its hash is the key).
#[derive(Clone, Serialize, Deserialize)]
struct HostToken {
    name: String,
    extra_principals: Vec<String>,
    expires_at: DateTime<Utc>,
    created_by: String,
    used_at: Option<DateTime<Utc>>,
}

impl Authority {
    /// `POST /v1/admin/host-tokens`: a single-use token for one host's first
    /// certificate.
    pub fn create_host_token(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::HostTokenRequest,
    ) -> Result<api::HostTokenResponse, CaError> {
        let ttl = match req.ttl_seconds {
            None => api::HOST_TOKEN_DEFAULT_TTL_SECONDS,
            Some(s) if (1..=api::HOST_TOKEN_MAX_TTL_SECONDS).contains(&s) => s,
            Some(_) => {
                return Err(CaError::bad_request(
                    ErrorCode::InvalidTtl,
                    format!(
                        "a host join token lives 1 s to {} s",
                        api::HOST_TOKEN_MAX_TTL_SECONDS
                    ),
                ))
            }
        };
        // Refused now rather than when the host is already waiting for it.
        let policy = self.policy()?;
        let grant = rampart_policy::approve_host(&policy, &req.name, &req.extra_principals, None)
            .map_err(|d| CaError::bad_request(ErrorCode::HostRefused, d.reason))?;
        let now = self.now();
        let expires_at = now + to_chrono(Duration::from_secs(ttl));
        let token = secrets::new_token();
        let value = HostToken {
            name: req.name.clone(),
            extra_principals: req.extra_principals.clone(),
            expires_at,
            created_by: actor.user.name.clone(),
            used_at: None,
        };
        let entry = PendingEntry {
            kind: KIND,
            key: secrets::digest_secret(token.expose()),
            owner: actor.user.name.clone(),
            counts_until: expires_at,
            payload: serde_json::to_vec(&value)
                .map_err(|e| CaError::Internal(format!("host join token: {e}")))?,
            version: 0,
            created_at: now,
            forget_at: expires_at + to_chrono(REMEMBER_AFTER_END),
        };
        let event = |outcome| {
            self.event(
                rampart_audit::EventKind::HostTokenCreated,
                outcome,
                Some(caller),
            )
            .actor(&actor.user.name)
            .session(&actor.record.id)
            .target(&req.name)
            .detail("principals", grant.principals().to_vec())
            .detail("expires_at", expires_at.to_rfc3339())
        };
        // Audit first: a token the log does not know about must not exist.
        self.record(event(rampart_audit::Outcome::Success))?;
        match self.store.pending_put(&entry, &CAPS, now)? {
            PendingPut::Stored => {}
            PendingPut::Full => {
                // The log said it was made: say that it was not after all.
                self.record(event(rampart_audit::Outcome::Failure).reason("host_tokens_full"))?;
                return Err(CaError::RateLimited {
                    code: ErrorCode::HostTokensFull,
                    message: format!(
                        "too many unused host join tokens (at most {} per admin, {} in all); \
                         use or let some expire first",
                        CAPS.per_owner, CAPS.total
                    ),
                    retry_after_secs: 3600,
                });
            }
        }
        Ok(api::HostTokenResponse {
            token,
            name: req.name.clone(),
            extra_principals: req.extra_principals.clone(),
            expires_at,
        })
    }

    /// `POST /v1/hosts/join`: redeem a host join token for the host key in
    /// the request; the certificate carries the names the token was made for.
    pub fn host_join(
        &self,
        caller: &Caller,
        req: &api::HostJoinRequest,
    ) -> Result<api::CertResponse, CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        let key_hash = secrets::digest_secret(req.token.expose());
        let refuse = |code, message: &str| {
            self.refuse_host_cert(caller, "host join", code, message.to_owned())
        };
        let Some(entry) = self.store.pending_get(KIND, &key_hash, now)? else {
            return refuse(ErrorCode::TokenUnknown, "this join token is not valid");
        };
        let mut token = decode(&entry)?;
        if token.used_at.is_some() {
            return refuse(
                ErrorCode::TokenUsed,
                "this join token has already been used",
            );
        }
        if now >= token.expires_at {
            return refuse(ErrorCode::TokenExpired, "this join token has expired");
        }
        // Everything that can refuse the key comes before the token is spent.
        let key = self.parse_public_key(&req.public_key)?;
        if self.store.key_revoked(&key_fingerprint(&key))? {
            return refuse(ErrorCode::KeyRevoked, "this host key is revoked");
        }
        let policy = self.policy()?;
        rampart_policy::approve_host(&policy, &token.name, &token.extra_principals, None)
            .map_err(|d| CaError::bad_request(ErrorCode::HostRefused, d.reason))?;
        token.used_at = Some(now);
        let payload = serde_json::to_vec(&token)
            .map_err(|e| CaError::Internal(format!("host join token: {e}")))?;
        let spent =
            self.store
                .pending_update(KIND, &key_hash, entry.version, &payload, now, now)?;
        if !spent {
            // Another host redeemed it between our read and our write.
            return refuse(
                ErrorCode::TokenUsed,
                "this join token has already been used",
            );
        }
        let created_by = token.created_by.clone();
        self.sign_host(
            caller,
            &req.public_key,
            &token.name,
            &token.extra_principals,
            None,
            ErrorCode::HostRefused,
            |ev| ev.actor("host join").detail("token_created_by", created_by),
        )
    }

    /// `GET /v1/admin/host-tokens`: the tokens the store still knows.
    pub fn list_host_tokens(&self) -> Result<api::HostTokenList, CaError> {
        let now = self.now();
        let tokens = self
            .store
            .pending_list(KIND, now)?
            .iter()
            .map(|e| Ok(info(e, &decode(e)?)))
            .collect::<Result<_, CaError>>()?;
        Ok(api::HostTokenList { tokens })
    }

    /// `POST /v1/admin/host-tokens/revoke`: withdraw an unused token, audited
    /// (`revoked`, target `host-token:ID`) before it goes.
    pub fn revoke_host_token(
        &self,
        caller: &Caller,
        actor: &Session,
        req: &api::HostTokenRevokeRequest,
    ) -> Result<api::HostTokenInfo, CaError> {
        let reason = crate::authority::admin::revocation_reason(req.reason.as_deref())?;
        let now = self.now();
        let found = self
            .store
            .pending_list(KIND, now)?
            .into_iter()
            .find(|e| token_id(&e.key) == req.id)
            .ok_or_else(|| {
                CaError::not_found(
                    ErrorCode::TokenUnknown,
                    format!("no host join token has the ID {:?}", req.id),
                )
            })?;
        let token = decode(&found)?;
        if token.used_at.is_some() {
            return Err(CaError::Conflict {
                code: ErrorCode::TokenUsed,
                message: "that join token has been used already: revoke the host's key instead \
                          (rampart admin revoke --key)"
                    .into(),
            });
        }
        self.record(
            self.event(
                rampart_audit::EventKind::Revoked,
                rampart_audit::Outcome::Success,
                Some(caller),
            )
            .actor(&actor.user.name)
            .session(&actor.record.id)
            .target(&format!("host-token:{}", req.id))
            .reason(&reason)
            .detail("name", token.name.clone()),
        )?;
        if self.store.pending_take(KIND, &found.key, now)?.is_none() {
            return Err(CaError::Conflict {
                code: ErrorCode::TokenUsed,
                message: "that join token was used or ended while it was being revoked".into(),
            });
        }
        Ok(info(&found, &token))
    }
}

/// A token's public handle: the first 16 hex digits of its SHA-256.
fn token_id(key: &[u8; 32]) -> String {
    hex::encode(key.get(..8).unwrap_or_default())
}

fn decode(entry: &PendingEntry) -> Result<HostToken, CaError> {
    serde_json::from_slice(&entry.payload).map_err(|e| {
        CaError::Store(crate::store::StoreError::Corrupt(format!(
            "host join token: {e}"
        )))
    })
}

fn info(entry: &PendingEntry, token: &HostToken) -> api::HostTokenInfo {
    api::HostTokenInfo {
        id: token_id(&entry.key),
        name: token.name.clone(),
        extra_principals: token.extra_principals.clone(),
        created_by: token.created_by.clone(),
        created_at: entry.created_at,
        expires_at: token.expires_at,
        used_at: token.used_at,
    }
}
