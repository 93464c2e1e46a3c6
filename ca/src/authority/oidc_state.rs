//! Where an OIDC login waits between its requests: in the store's pending
//! area, so that a login started on one CA is finished (or polled) on any CA
//! sharing the database.
//!
//! An entry is found by the SHA-256 of the handle the client holds (the
//! `state` of an authorisation-code login, the handle of a device grant); the
//! handle itself is never stored. What the entry holds (the nonce and PKCE
//! verifier, or the device code, with the provider and the expiry) is JSON
//! sealed with the CA's sealing key, bound to the entry's kind and key, so the
//! database alone gives none of it away and an entry cannot be moved under
//! another handle. Every CA of a shared database has the same sealing key
//! (the same passphrase and salt), as it must for TOTP seeds already.
//!
//! A started login is single use: `finish` takes it from the store before
//! anything else, and of CAs racing for one state exactly one gets it. A
//! device grant's polls claim the next token request by compare-and-set, so
//! polls racing on several CAs make one request to the provider between them.

use chrono::{DateTime, Utc};
use rampart_api::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{to_chrono, Authority, Caller};
use crate::error::CaError;
use crate::oidc::{DevicePoll, IdpLogin, OidcFailure, Pending, PendingDevice, MAX_PENDING};
use crate::store::{PendingCaps, PendingEntry, PendingKind, PendingPut, StoreError};

/// How long an ended login is kept after its end, so that a late answer is
/// told "expired" rather than "unknown".
const KEEP_AFTER_END: std::time::Duration = std::time::Duration::from_secs(10 * 60);

const CAPS: PendingCaps = PendingCaps {
    total: MAX_PENDING,
    per_owner: MAX_PENDING,
};

fn key(handle: &str) -> [u8; 32] {
    Sha256::digest(handle.as_bytes()).into()
}

fn context(kind: PendingKind, key: &[u8; 32]) -> String {
    format!("pending {} {}", kind.as_str(), hex::encode(key))
}

fn busy() -> CaError {
    CaError::RateLimited {
        code: ErrorCode::OidcBusy,
        message: "too many OIDC logins in progress; try again shortly".into(),
        retry_after_secs: 30,
    }
}

impl Authority {
    fn seal_pending(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        value: &impl Serialize,
    ) -> Result<Vec<u8>, CaError> {
        let json = Zeroizing::new(
            serde_json::to_vec(value)
                .map_err(|e| CaError::Internal(format!("pending {}: {e}", kind.as_str())))?,
        );
        self.sealer.seal(&json, &context(kind, key))
    }

    fn open_pending<T: DeserializeOwned>(&self, entry: &PendingEntry) -> Result<T, CaError> {
        let json = self
            .sealer
            .open(&entry.payload, &context(entry.kind, &entry.key))?;
        serde_json::from_slice(&json).map_err(|e| {
            CaError::Store(StoreError::Corrupt(format!(
                "pending {}: {e}",
                entry.kind.as_str()
            )))
        })
    }

    /// Keep a new login under `handle` until its end (and a while after).
    fn keep_pending(
        &self,
        caller: &Caller,
        kind: PendingKind,
        handle: &str,
        value: &impl Serialize,
        ends_at: DateTime<Utc>,
    ) -> Result<(), CaError> {
        let key = key(handle);
        let now = self.now();
        let entry = PendingEntry {
            kind,
            key,
            owner: caller.network(),
            counts_until: ends_at,
            payload: self.seal_pending(kind, &key, value)?,
            version: 0,
            created_at: now,
            forget_at: ends_at + to_chrono(KEEP_AFTER_END),
        };
        match self.store.pending_put(&entry, &CAPS, now)? {
            PendingPut::Stored => Ok(()),
            PendingPut::Full => Err(busy()),
        }
    }

    /// Keep a started authorisation-code login under its state.
    pub(super) fn keep_oidc_login(
        &self,
        caller: &Caller,
        state: &str,
        pending: &Pending,
    ) -> Result<(), CaError> {
        self.keep_pending(
            caller,
            PendingKind::OidcLogin,
            state,
            pending,
            pending.expires_at,
        )
    }

    /// The login started under `state`, left in place.
    pub(super) fn oidc_login_pending(&self, state: &str) -> Result<Option<Pending>, CaError> {
        self.store
            .pending_get(PendingKind::OidcLogin, &key(state), self.now())?
            .map(|e| self.open_pending(&e))
            .transpose()
    }

    /// Take the login started under `state` (single use, on every CA).
    pub(super) fn take_oidc_login(&self, state: &str) -> Result<Option<Pending>, CaError> {
        self.store
            .pending_take(PendingKind::OidcLogin, &key(state), self.now())?
            .map(|e| self.open_pending(&e))
            .transpose()
    }

    /// Keep a started device grant under its handle.
    pub(super) fn keep_oidc_device(
        &self,
        caller: &Caller,
        handle: &str,
        pending: &PendingDevice,
    ) -> Result<(), CaError> {
        self.keep_pending(
            caller,
            PendingKind::OidcDevice,
            handle,
            pending,
            pending.expires_at,
        )
    }

    /// The provider of the device grant under `handle`, if one is kept.
    pub(super) fn oidc_device_provider(&self, handle: &str) -> Result<Option<String>, CaError> {
        Ok(self
            .store
            .pending_get(PendingKind::OidcDevice, &key(handle), self.now())?
            .map(|e| self.open_pending::<PendingDevice>(&e))
            .transpose()?
            .map(|d| d.provider.clone()))
    }

    /// One poll of the device grant under `handle`: `Ok(None)` while the user
    /// has not answered. At most one token request per provider interval,
    /// whichever CAs the polls reach; the grant is forgotten once it ends.
    pub(super) fn poll_oidc_device(
        &self,
        handle: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Option<IdpLogin>, OidcFailure>, CaError> {
        let rp = self.oidc()?;
        let key = key(handle);
        let kind = PendingKind::OidcDevice;
        let Some(entry) = self.store.pending_get(kind, &key, now)? else {
            return Ok(Err(OidcFailure::StateUnknown));
        };
        let mut d: PendingDevice = self.open_pending(&entry)?;
        if d.expires_at <= now {
            self.store.pending_take(kind, &key, now)?;
            return Ok(Err(OidcFailure::StateExpired));
        }
        if !d.claim_request(now) {
            return Ok(Ok(None));
        }
        // Another poll (here or on another CA) claimed this slot first.
        let claimed = self.seal_pending(kind, &key, &d)?;
        if !self
            .store
            .pending_update(kind, &key, entry.version, &claimed, d.expires_at, now)?
        {
            return Ok(Ok(None));
        }
        let end = match rp.device_poll(&d, now) {
            Ok(DevicePoll::Pending) => return Ok(Ok(None)),
            Ok(DevicePoll::SlowDown) => {
                d.slow_down(now);
                let slower = self.seal_pending(kind, &key, &d)?;
                // Lost to a later poll's claim: that one set its own slot.
                self.store.pending_update(
                    kind,
                    &key,
                    entry.version + 1,
                    &slower,
                    d.expires_at,
                    now,
                )?;
                return Ok(Ok(None));
            }
            Ok(DevicePoll::Ended(end)) => end,
            Err(f) => return Ok(Err(f)),
        };
        // Single use from here on, whatever the provider said: the grant is
        // gone for every CA before its outcome is read.
        if self.store.pending_take(kind, &key, now)?.is_none() {
            return Ok(Err(OidcFailure::StateUnknown));
        }
        Ok(rp.device_login(&d, end, now).map(Some))
    }
}
