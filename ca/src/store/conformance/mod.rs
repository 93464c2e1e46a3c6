//! What every store must do, whatever the backend: one function per
//! behaviour, run against each backend by [`cases!`] (SQLite in a temporary
//! file, PostgreSQL in a throwaway cluster). A function gets a [`Backend`] and
//! opens stores from it: usually one, several where the behaviour is about
//! reopening or about several CAs (each store is its own connection, as
//! another process would be).
//!
//! The cases live in one file per store area (`users`, `factors`, …); this
//! file holds the backends, the shared helpers and the test table.
//!
//! Backend-specific behaviour stays with the backend: SQLite's file header,
//! migrations and durability modes in `sqlite/`, PostgreSQL's schema table in
//! `postgres/migrate.rs`.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};

use super::prelude::*;
use super::{
    AttemptLimits, AttemptLock, BastionJoin, BastionRecord, CertKind, CertRecord, CounterUpdate,
    FailureTally, IdpBinding, IdpEvidence, InviteRedemption, LockScope, PendingCaps,
    PendingEnrollment, PendingEntry, PendingKind, PendingPut, ProofClaim, SessionRecord,
    StoreError, TotpRecord, UserRecord, WebauthnEvidence, WebauthnKeyRecord,
};

/// Where stores come from; every store opened from one backend sees the same
/// data.
pub(crate) trait Backend {
    /// A new handle on the backend's database (a restart).
    fn open(&self) -> Arc<dyn Store>;

    /// What another CA racing this one uses: for PostgreSQL its own store
    /// (own connections); SQLite serves one CA process, whose requests share
    /// its one store.
    fn peer(&self) -> Arc<dyn Store> {
        self.open()
    }
}

/// SQLite in a temporary directory.
pub(crate) struct Sqlite {
    dir: tempfile::TempDir,
    shared: std::sync::OnceLock<Arc<dyn Store>>,
}

impl Sqlite {
    pub(crate) fn new() -> Sqlite {
        Sqlite {
            dir: tempfile::tempdir().unwrap(),
            shared: std::sync::OnceLock::new(),
        }
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(super::sqlite::SqliteStore::open(&self.dir.path().join("ca.db")).unwrap())
    }

    fn peer(&self) -> Arc<dyn Store> {
        Arc::clone(self.shared.get_or_init(|| self.open()))
    }
}

/// PostgreSQL in a throwaway cluster.
pub(crate) struct Postgres {
    target: super::postgres::PgTarget,
    _cluster: super::postgres::testing::TestPostgres,
}

impl Postgres {
    pub(crate) fn new() -> Postgres {
        let cluster = super::postgres::testing::TestPostgres::start();
        let url = cluster.create_database("rampart_ca");
        Postgres {
            target: super::postgres::PgTarget::new(&url, None).unwrap(),
            _cluster: cluster,
        }
    }
}

impl Backend for Postgres {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(super::postgres::PostgresStore::open(&self.target).unwrap())
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        name: name.into(),
        groups: vec!["engineers".into()],
        admin: false,
        disabled: false,
        created_at: now(),
    }
}

fn with_alice(b: &dyn Backend) -> Arc<dyn Store> {
    let s = b.open();
    s.create_user(&user("alice")).unwrap();
    s
}

pub(crate) fn limits() -> AttemptLimits {
    AttemptLimits {
        max_failures: 3,
        lockout: std::time::Duration::from_secs(60),
        max_lockout: std::time::Duration::from_secs(200),
        user_max_failures: 20,
        user_window: std::time::Duration::from_secs(3600),
        user_lockout: std::time::Duration::from_secs(900),
    }
}

/// Run `f` on `n` threads released together; their results in thread order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (f, start) = (Arc::clone(&f), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

mod attempts;
mod bastions;
mod budgets;
mod certs;
mod factors;
mod pending;
mod sessions;
mod users;

pub(crate) use attempts::*;
pub(crate) use bastions::*;
pub(crate) use budgets::*;
pub(crate) use certs::*;
pub(crate) use factors::*;
pub(crate) use pending::*;
pub(crate) use sessions::*;
pub(crate) use users::*;

pub(crate) fn meta_values_are_set_and_replaced(b: &dyn Backend) {
    let s = b.open();
    assert_eq!(s.meta("salt").unwrap(), None);
    s.set_meta("salt", &[1, 2, 3]).unwrap();
    assert_eq!(s.meta("salt").unwrap(), Some(vec![1, 2, 3]));
    s.set_meta("salt", &[]).unwrap();
    assert_eq!(s.meta("salt").unwrap(), Some(vec![]));
    assert_eq!(b.open().meta("salt").unwrap(), Some(vec![]));
}

pub(crate) fn meta_values_are_replaced_only_from_the_expected_value(b: &dyn Backend) {
    let s = b.open();
    assert!(s.replace_meta("policy", None, b"v1").unwrap());
    assert!(
        !s.replace_meta("policy", None, b"other").unwrap(),
        "set already"
    );
    assert!(
        !s.replace_meta("policy", Some(b"v0"), b"v2").unwrap(),
        "not v0"
    );
    assert_eq!(s.meta("policy").unwrap(), Some(b"v1".to_vec()));
    assert!(s.replace_meta("policy", Some(b"v1"), b"v2").unwrap());
    assert_eq!(b.open().meta("policy").unwrap(), Some(b"v2".to_vec()));
    // Eight CAs from the same value: exactly one wins.
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let won = race(8, move |i| {
        stores[i]
            .replace_meta("policy", Some(b"v2"), &[b'w', i as u8])
            .unwrap()
    });
    let wins = won.iter().filter(|w| **w).count();
    assert_eq!(wins, 1);
}

/// One `#[test]` per behaviour above, against the backend `$backend` makes.
macro_rules! cases {
    ($backend:expr) => {
        cases!($backend;
            users_round_trip_and_names_are_unique,
            invites_redeem_once_and_expire,
            an_invite_redeemed_concurrently_is_redeemed_once,
            totp_steps_only_move_forward,
            a_totp_step_raced_is_accepted_once,
            recovery_codes_are_single_use,
            webauthn_keys_are_unique_replaced_and_removed,
            webauthn_counters_only_move_forward,
            webauthn_evidence_round_trips_and_expires,
            a_pair_locks_at_its_limit_and_backs_off,
            a_success_takes_back_the_count_and_the_back_off,
            parallel_guesses_cannot_pass_the_check_before_any_is_counted,
            raced_guesses_from_several_cas_stop_at_the_limit,
            the_user_wide_lock_needs_many_networks_and_ends,
            sessions_are_found_by_token_and_ended,
            idp_subjects_bind_once_and_both_ways,
            idp_links_are_looked_up_both_ways_and_unlinked_per_provider,
            idp_evidence_round_trips,
            serial_reservations_never_overlap_across_reopen,
            serials_reserved_concurrently_never_collide,
            certificates_are_recorded_and_found,
            the_last_expiry_of_a_kind_is_found_by_validity_start,
            revocations_bump_the_version_only_when_something_is_new,
            revoked_host_keys_are_those_whose_fingerprint_is_revoked,
            join_tokens_are_single_use_bound_and_expire,
            a_join_token_raced_joins_once,
            the_first_bastion_owns_a_proof_for_its_window,
            a_user_proof_raced_has_one_first_owner,
            meta_values_are_set_and_replaced,
            meta_values_are_replaced_only_from_the_expected_value,
            pending_entries_are_found_updated_and_taken_once,
            a_pending_entry_raced_is_taken_once,
            pending_entries_of_a_kind_are_listed_live_only,
            a_pending_update_raced_wins_once,
            pending_entries_end_at_their_forget_time,
            pending_caps_refuse_new_entries_until_some_end,
            pending_caps_hold_across_cas_racing,
            an_entry_stops_counting_against_its_owner_when_told,
            budgets_count_within_their_window,
            a_budget_spent_through_several_cas_allows_its_max
        );
    };
    ($backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let backend = $backend;
                super::$case(&backend);
            }
        )*
    };
}

mod sqlite {
    cases!(super::Sqlite::new());
}

mod postgres {
    cases!(super::Postgres::new());
}
