//! What every store must do, whatever the backend: one function per
//! behaviour, run against each backend by [`cases!`] (SQLite in a temporary
//! file, PostgreSQL in a throwaway cluster). A function gets a [`Backend`] and
//! opens stores from it: usually one, several where the behaviour is about
//! reopening or about several CAs (each store is its own connection, as
//! another process would be).
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

// ----- users and invites ------------------------------------------------------

pub(crate) fn users_round_trip_and_names_are_unique(b: &dyn Backend) {
    let s = with_alice(b);
    let u = s.user("alice").unwrap().unwrap();
    assert_eq!(u, user("alice"));
    assert!(matches!(
        s.create_user(&u).unwrap_err(),
        StoreError::Duplicate(_)
    ));
    assert_eq!(s.user("nobody").unwrap(), None);
    assert!(s.set_disabled("alice", true).unwrap());
    assert!(s.user("alice").unwrap().unwrap().disabled);
    assert!(!s.set_disabled("nobody", true).unwrap());
    assert!(s
        .set_groups("alice", &["ops".into(), "admins".into()])
        .unwrap());
    assert_eq!(s.user("alice").unwrap().unwrap().groups, ["ops", "admins"]);
    assert!(!s.set_groups("nobody", &[]).unwrap());
    s.create_user(&UserRecord {
        admin: true,
        groups: vec![],
        ..user("aaron")
    })
    .unwrap();
    let names: Vec<_> = s.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["aaron", "alice"]);
    assert!(s.user("aaron").unwrap().unwrap().admin);
}

pub(crate) fn invites_redeem_once_and_expire(b: &dyn Backend) {
    let s = with_alice(b);
    let h = [7u8; 32];
    s.create_invite(&h, "alice", now() + Duration::hours(1), now())
        .unwrap();
    assert_eq!(
        s.redeem_invite(&h, now()).unwrap(),
        InviteRedemption::Redeemed("alice".into())
    );
    assert_eq!(
        s.redeem_invite(&h, now()).unwrap(),
        InviteRedemption::AlreadyUsed
    );
    assert_eq!(
        s.redeem_invite(&[1; 32], now()).unwrap(),
        InviteRedemption::Unknown
    );
    let h2 = [8u8; 32];
    s.create_invite(&h2, "alice", now() + Duration::seconds(1), now())
        .unwrap();
    assert_eq!(
        s.redeem_invite(&h2, now() + Duration::seconds(2)).unwrap(),
        InviteRedemption::Expired
    );
    // Exactly at its expiry it is expired too.
    let h3 = [9u8; 32];
    s.create_invite(&h3, "alice", now(), now()).unwrap();
    assert_eq!(
        s.redeem_invite(&h3, now()).unwrap(),
        InviteRedemption::Expired
    );
}

/// Several CAs (one store each) redeem one invite at once: exactly one wins.
pub(crate) fn an_invite_redeemed_concurrently_is_redeemed_once(b: &dyn Backend) {
    let s = with_alice(b);
    let h = [3u8; 32];
    s.create_invite(&h, "alice", now() + Duration::hours(1), now())
        .unwrap();
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let outcomes = race(8, move |i| stores[i].redeem_invite(&h, now()).unwrap());
    let won = outcomes
        .iter()
        .filter(|o| **o == InviteRedemption::Redeemed("alice".into()))
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        InviteRedemption::Redeemed(_) | InviteRedemption::AlreadyUsed
    )));
}

// ----- factors ----------------------------------------------------------------

fn enrolled_alice(b: &dyn Backend, last_step: i64) -> Arc<dyn Store> {
    let s = with_alice(b);
    let t = [1u8; 32];
    let pending = PendingEnrollment {
        user: "alice".into(),
        sealed_seed: vec![1, 2, 3],
        expires_at: now(),
    };
    s.put_enrollment(&t, &pending).unwrap();
    assert_eq!(s.enrollment(&t).unwrap(), Some(pending));
    let rec = TotpRecord {
        sealed_seed: vec![1, 2, 3],
        last_step,
    };
    let codes = vec![
        ("abcd".to_string(), "hash-a".to_string()),
        ("efgh".to_string(), "hash-e".to_string()),
    ];
    assert!(s.complete_enrollment(&t, "alice", &rec, &codes).unwrap());
    assert!(
        !s.complete_enrollment(&t, "alice", &rec, &codes).unwrap(),
        "an enrolment completes once"
    );
    assert_eq!(s.enrollment(&t).unwrap(), None);
    assert_eq!(s.totp("alice").unwrap(), Some(rec));
    s
}

pub(crate) fn totp_steps_only_move_forward(b: &dyn Backend) {
    let s = enrolled_alice(b, 100);
    assert!(
        !s.advance_totp_step("alice", 100).unwrap(),
        "replay of the enrolment step"
    );
    assert!(s.advance_totp_step("alice", 101).unwrap());
    assert!(!s.advance_totp_step("alice", 101).unwrap(), "replay");
    assert!(!s.advance_totp_step("alice", 99).unwrap(), "older step");
    assert!(!s.advance_totp_step("bob", 500).unwrap(), "no such user");
    assert_eq!(s.totp("alice").unwrap().unwrap().last_step, 101);
}

/// One TOTP code presented to several CAs at once is accepted once.
pub(crate) fn a_totp_step_raced_is_accepted_once(b: &dyn Backend) {
    let _s = enrolled_alice(b, 100);
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let accepted = race(8, move |i| {
        stores[i].advance_totp_step("alice", 101).unwrap()
    });
    assert_eq!(accepted.iter().filter(|a| **a).count(), 1, "{accepted:?}");
}

pub(crate) fn recovery_codes_are_single_use(b: &dyn Backend) {
    let s = enrolled_alice(b, 100);
    assert_eq!(s.recovery_codes_left("alice").unwrap(), 2);
    assert_eq!(
        s.recovery_code("alice", "abcd").unwrap().as_deref(),
        Some("hash-a")
    );
    assert_eq!(s.recovery_code("bob", "abcd").unwrap(), None, "not bob's");
    assert!(s.use_recovery_code("alice", "abcd", now()).unwrap());
    assert!(!s.use_recovery_code("alice", "abcd", now()).unwrap());
    assert_eq!(s.recovery_code("alice", "abcd").unwrap(), None);
    assert_eq!(s.recovery_codes_left("alice").unwrap(), 1);
    // Raced from several CAs, the other code is used once.
    let stores: Vec<_> = (0..6).map(|_| b.peer()).collect();
    let used = race(6, move |i| {
        stores[i].use_recovery_code("alice", "efgh", now()).unwrap()
    });
    assert_eq!(used.iter().filter(|u| **u).count(), 1, "{used:?}");
    assert_eq!(s.recovery_codes_left("alice").unwrap(), 0);
}

fn key(id: &str, credential_id: &str, name: &str) -> WebauthnKeyRecord {
    WebauthnKeyRecord {
        id: id.into(),
        user: "alice".into(),
        credential_id: credential_id.into(),
        credential: "{}".into(),
        aaguid: "00000000-0000-0000-0000-000000000000".into(),
        attestation_format: "packed".into(),
        user_verified: true,
        attestation_verified: true,
        backup_eligible: false,
        backup_state: false,
        sign_count: 5,
        name: name.into(),
        created_at: now(),
        last_used_at: None,
        disabled_reason: None,
    }
}

pub(crate) fn webauthn_keys_are_unique_replaced_and_removed(b: &dyn Backend) {
    let s = with_alice(b);
    let codes = vec![("r1".to_string(), "h1".to_string())];
    assert_eq!(
        s.add_webauthn_key(&key("k1", "c1", "yubi"), Some(&codes), None)
            .unwrap(),
        None
    );
    assert_eq!(s.recovery_codes_left("alice").unwrap(), 1);
    // Credential IDs are unique across users, names per user.
    assert!(matches!(
        s.add_webauthn_key(&key("k2", "c1", "other"), None, None)
            .unwrap_err(),
        StoreError::Duplicate(_)
    ));
    assert!(matches!(
        s.add_webauthn_key(&key("k2", "c2", "yubi"), None, None)
            .unwrap_err(),
        StoreError::Duplicate(_)
    ));
    // Replacing takes the old key's place (and name) in one step.
    let replaced = s
        .add_webauthn_key(&key("k2", "c2", "yubi"), None, Some("k1"))
        .unwrap();
    assert_eq!(replaced, Some(key("k1", "c1", "yubi")));
    let keys = s.webauthn_keys("alice").unwrap();
    assert_eq!(keys, [key("k2", "c2", "yubi")]);
    assert_eq!(
        s.webauthn_key_by_credential("c2").unwrap(),
        Some(key("k2", "c2", "yubi"))
    );
    assert_eq!(s.webauthn_key_by_credential("c1").unwrap(), None);
    // Someone else's key is not removed by naming it under another user.
    assert_eq!(s.remove_webauthn_key("bob", "k2").unwrap(), None);
    assert_eq!(
        s.remove_webauthn_key("alice", "k2").unwrap(),
        Some(key("k2", "c2", "yubi"))
    );
    assert_eq!(s.remove_webauthn_key("alice", "k2").unwrap(), None);
    assert!(s.webauthn_keys("alice").unwrap().is_empty());
}

pub(crate) fn webauthn_counters_only_move_forward(b: &dyn Backend) {
    let s = with_alice(b);
    s.add_webauthn_key(&key("k1", "c1", "yubi"), None, None)
        .unwrap();
    let later = now() + Duration::minutes(1);
    assert_eq!(
        s.webauthn_key_used("k1", 6, "{\"n\":6}", true, later)
            .unwrap(),
        CounterUpdate::Advanced
    );
    let k = s.webauthn_key_by_credential("c1").unwrap().unwrap();
    assert_eq!(
        (
            k.sign_count,
            k.credential.as_str(),
            k.backup_state,
            k.last_used_at
        ),
        (6, "{\"n\":6}", true, Some(later))
    );
    assert_eq!(
        s.webauthn_key_used("k1", 6, "{}", true, later).unwrap(),
        CounterUpdate::Regressed(6)
    );
    assert_eq!(
        s.webauthn_key_used("k1", 2, "{}", true, later).unwrap(),
        CounterUpdate::Regressed(6)
    );
    assert_eq!(
        s.webauthn_key_used("nope", 9, "{}", true, later).unwrap(),
        CounterUpdate::Gone
    );
    // Raced from several CAs with the same count, one assertion passes.
    let stores: Vec<_> = (0..6).map(|_| b.peer()).collect();
    let outcomes = race(6, move |i| {
        stores[i]
            .webauthn_key_used("k1", 7, "{}", false, later)
            .unwrap()
    });
    let advanced = outcomes
        .iter()
        .filter(|o| **o == CounterUpdate::Advanced)
        .count();
    assert_eq!(advanced, 1, "{outcomes:?}");
    // A disabled key is gone for logins.
    assert!(s
        .disable_webauthn_key("k1", "sign_count_regressed")
        .unwrap());
    assert!(!s.disable_webauthn_key("nope", "x").unwrap());
    assert_eq!(
        s.webauthn_key_used("k1", 100, "{}", false, later).unwrap(),
        CounterUpdate::Gone
    );
    let k = s.webauthn_keys("alice").unwrap().remove(0);
    assert_eq!(k.disabled_reason.as_deref(), Some("sign_count_regressed"));
    // Both counters zero: a key without a counter.
    s.add_webauthn_key(
        &WebauthnKeyRecord {
            sign_count: 0,
            ..key("k0", "c0", "passkey")
        },
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        s.webauthn_key_used("k0", 0, "{}", false, later).unwrap(),
        CounterUpdate::Advanced
    );
}

pub(crate) fn webauthn_evidence_round_trips_and_expires(b: &dyn Backend) {
    let s = b.open();
    let ev = WebauthnEvidence {
        key_id: "k1".into(),
        aaguid: "a".into(),
        user_verified: true,
        attested: false,
        via_link: false,
    };
    s.put_webauthn_evidence("s1", &ev, now() + Duration::hours(1), now())
        .unwrap();
    assert_eq!(s.webauthn_evidence("s1").unwrap(), Some(ev.clone()));
    assert_eq!(s.webauthn_evidence("s2").unwrap(), None);
    // Written again for the same session: the newer one holds.
    let ev2 = WebauthnEvidence {
        attested: true,
        via_link: true,
        ..ev
    };
    s.put_webauthn_evidence("s1", &ev2, now() + Duration::hours(1), now())
        .unwrap();
    assert_eq!(s.webauthn_evidence("s1").unwrap(), Some(ev2.clone()));
    // Expired rows go when a later one is written.
    s.put_webauthn_evidence(
        "s3",
        &ev2,
        now() + Duration::hours(3),
        now() + Duration::hours(2),
    )
    .unwrap();
    assert_eq!(s.webauthn_evidence("s1").unwrap(), None);
}

// ----- attempts ---------------------------------------------------------------

/// Begin and fail one attempt; the lock it set, if any.
fn fail(s: &dyn Store, net: &str, at: DateTime<Utc>) -> Result<FailureTally, AttemptLock> {
    s.begin_attempt("alice", net, at, &limits()).unwrap()?;
    Ok(s.attempt_failed("alice", net, at, &limits()).unwrap())
}

pub(crate) fn a_pair_locks_at_its_limit_and_backs_off(b: &dyn Backend) {
    let s = with_alice(b);
    let s = &*s;
    let t = now();
    assert_eq!(fail(s, "192.0.2.1", t).unwrap().source_failures, 1);
    assert_eq!(fail(s, "192.0.2.1", t).unwrap().locked, None);
    let third = fail(s, "192.0.2.1", t).unwrap();
    let first_lock = AttemptLock {
        scope: LockScope::Source,
        until: t + Duration::seconds(60),
    };
    assert_eq!(third.locked, Some(first_lock));
    // Locked: refused without being counted, from that network only.
    assert_eq!(fail(s, "192.0.2.1", t), Err(first_lock));
    assert_eq!(
        s.attempt_lock("alice", "192.0.2.1", t).unwrap(),
        Some(first_lock)
    );
    assert_eq!(s.attempt_lock("alice", "198.51.100.7", t).unwrap(), None);
    assert!(fail(s, "198.51.100.7", t).is_ok());
    // After the lock, three more failures lock twice as long, then 200 s at most.
    let t2 = t + Duration::seconds(61);
    for _ in 0..2 {
        fail(s, "192.0.2.1", t2).unwrap();
    }
    let second = fail(s, "192.0.2.1", t2).unwrap().locked.unwrap();
    assert_eq!(second.until, t2 + Duration::seconds(120));
    let t3 = t2 + Duration::seconds(121);
    for _ in 0..2 {
        fail(s, "192.0.2.1", t3).unwrap();
    }
    let third = fail(s, "192.0.2.1", t3).unwrap().locked.unwrap();
    assert_eq!(third.until, t3 + Duration::seconds(200));
}

pub(crate) fn a_success_takes_back_the_count_and_the_back_off(b: &dyn Backend) {
    let s = with_alice(b);
    let s = &*s;
    let t = now();
    fail(s, "192.0.2.1", t).unwrap();
    fail(s, "192.0.2.1", t).unwrap();
    s.begin_attempt("alice", "192.0.2.1", t, &limits())
        .unwrap()
        .unwrap();
    s.attempt_succeeded("alice", "192.0.2.1").unwrap();
    assert_eq!(fail(s, "192.0.2.1", t).unwrap().source_failures, 1);
    // The user-wide count keeps the two real failures and this one.
    assert_eq!(fail(s, "192.0.2.1", t).unwrap().user_failures, 4);
}

pub(crate) fn parallel_guesses_cannot_pass_the_check_before_any_is_counted(b: &dyn Backend) {
    let s = with_alice(b);
    let t = now();
    // Three attempts begun, none finished yet: the fourth is refused.
    for _ in 0..3 {
        s.begin_attempt("alice", "192.0.2.1", t, &limits())
            .unwrap()
            .unwrap();
    }
    let refused = s.begin_attempt("alice", "192.0.2.1", t, &limits()).unwrap();
    assert_eq!(refused.unwrap_err().scope, LockScope::Source);
}

/// Guesses raced through several CAs: no more begin than the limit allows.
pub(crate) fn raced_guesses_from_several_cas_stop_at_the_limit(b: &dyn Backend) {
    let _s = with_alice(b);
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let begun = race(8, move |i| {
        stores[i]
            .begin_attempt("alice", "192.0.2.1", now(), &limits())
            .unwrap()
            .is_ok()
    });
    assert_eq!(begun.iter().filter(|b| **b).count(), 3, "{begun:?}");
}

pub(crate) fn the_user_wide_lock_needs_many_networks_and_ends(b: &dyn Backend) {
    let s = with_alice(b);
    let s = &*s;
    let t = now();
    let mut locked = None;
    for i in 0..20 {
        let net = format!("192.0.2.{i}");
        locked = fail(s, &net, t).unwrap().locked;
    }
    let lock = locked.expect("the twentieth failure locks the user");
    assert_eq!(lock.scope, LockScope::User);
    assert_eq!(
        s.attempt_lock("alice", "203.0.113.9", t).unwrap(),
        Some(lock)
    );
    let later = lock.until + Duration::seconds(1);
    assert_eq!(s.attempt_lock("alice", "203.0.113.9", later).unwrap(), None);
    assert!(fail(s, "203.0.113.9", later).is_ok());
}

// ----- sessions and identity providers ----------------------------------------

pub(crate) fn sessions_are_found_by_token_and_ended(b: &dyn Backend) {
    let s = with_alice(b);
    let rec = |id: &str| SessionRecord {
        id: id.into(),
        user: "alice".into(),
        mfa_method: "totp".into(),
        mfa_time: now(),
        mfa_event: "01EVENT".into(),
        expires_at: now() + Duration::hours(8),
    };
    s.create_session(&[1; 32], &rec("s1")).unwrap();
    s.create_session(&[2; 32], &rec("s2")).unwrap();
    s.create_session(
        &[3; 32],
        &SessionRecord {
            user: "bob".into(),
            ..rec("s3")
        },
    )
    .unwrap();
    assert_eq!(s.session(&[1; 32]).unwrap(), Some(rec("s1")));
    assert_eq!(s.session(&[9; 32]).unwrap(), None);
    s.delete_session(&[1; 32]).unwrap();
    assert_eq!(s.session(&[1; 32]).unwrap(), None);
    assert_eq!(s.delete_user_sessions("alice").unwrap(), 1);
    assert_eq!(s.session(&[2; 32]).unwrap(), None);
    assert!(s.session(&[3; 32]).unwrap().is_some(), "bob's stays");
    assert_eq!(s.delete_user_sessions("alice").unwrap(), 0);
}

pub(crate) fn idp_subjects_bind_once_and_both_ways(b: &dyn Backend) {
    let s = b.open();
    let bind = |sub: &str, user: &str| s.bind_idp_subject("corp", sub, user, now()).unwrap();
    assert_eq!(bind("sub-a", "alice"), IdpBinding::Bound);
    assert_eq!(bind("sub-a", "alice"), IdpBinding::Matches);
    assert_eq!(
        bind("sub-a", "bob"),
        IdpBinding::SubjectBoundTo("alice".into())
    );
    assert_eq!(bind("sub-b", "alice"), IdpBinding::UserBoundElsewhere);
    // Another provider is another namespace.
    assert_eq!(
        s.bind_idp_subject("other", "sub-b", "alice", now())
            .unwrap(),
        IdpBinding::Bound
    );
}

pub(crate) fn idp_links_are_looked_up_both_ways_and_unlinked_per_provider(b: &dyn Backend) {
    let s = b.open();
    s.bind_idp_subject("corp", "sub-a", "alice", now()).unwrap();
    s.bind_idp_subject("other", "sub-x", "alice", now())
        .unwrap();
    assert_eq!(
        s.idp_subject_user("corp", "sub-a").unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(s.idp_subject_user("corp", "sub-x").unwrap(), None);
    assert_eq!(
        s.idp_link("corp", "alice").unwrap().as_deref(),
        Some("sub-a")
    );
    assert_eq!(
        s.unlink_idp_subject("corp", "alice").unwrap().as_deref(),
        Some("sub-a")
    );
    assert_eq!(s.unlink_idp_subject("corp", "alice").unwrap(), None);
    assert_eq!(s.idp_subject_user("corp", "sub-a").unwrap(), None);
    // The other provider's link stands, and the subject is free to bind anew.
    assert_eq!(
        s.idp_link("other", "alice").unwrap().as_deref(),
        Some("sub-x")
    );
    assert_eq!(
        s.bind_idp_subject("corp", "sub-a", "bob", now()).unwrap(),
        IdpBinding::Bound
    );
}

pub(crate) fn idp_evidence_round_trips(b: &dyn Backend) {
    let s = b.open();
    let ev = IdpEvidence {
        provider: "corp".into(),
        acr: Some("gold".into()),
        amr: vec!["pwd".into(), "hwk".into()],
        auth_time: now(),
    };
    s.put_idp_evidence("s1", &ev, now() + Duration::hours(1), now())
        .unwrap();
    assert_eq!(s.idp_evidence("s1").unwrap(), Some(ev.clone()));
    assert_eq!(s.idp_evidence("s2").unwrap(), None);
    let bare = IdpEvidence {
        acr: None,
        amr: vec![],
        ..ev
    };
    s.put_idp_evidence("s2", &bare, now() + Duration::hours(1), now())
        .unwrap();
    assert_eq!(s.idp_evidence("s2").unwrap(), Some(bare));
}

// ----- certificates, serials, revocations ---------------------------------------

pub(crate) fn serial_reservations_never_overlap_across_reopen(b: &dyn Backend) {
    assert_eq!(b.open().reserve_serials(100).unwrap(), 1);
    let s = b.open();
    assert_eq!(s.reserve_serials(100).unwrap(), 101);
    assert_eq!(s.reserve_serials(1).unwrap(), 201);
}

/// Several CAs reserving serials at once get disjoint, increasing ranges.
pub(crate) fn serials_reserved_concurrently_never_collide(b: &dyn Backend) {
    let stores: Vec<_> = (0..6).map(|_| b.peer()).collect();
    let per_thread = race(6, move |i| {
        (0..20)
            .map(|_| {
                let first = stores[i].reserve_serials(5).unwrap();
                first..first + 5
            })
            .collect::<Vec<_>>()
    });
    let mut all: Vec<u64> = Vec::new();
    for ranges in &per_thread {
        // Each CA's own reservations increase.
        assert!(
            ranges.windows(2).all(|w| w[0].end <= w[1].start),
            "{ranges:?}"
        );
        all.extend(ranges.iter().cloned().flatten());
    }
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "a serial was handed out twice");
    assert_eq!(all, (1..=600).collect::<Vec<_>>());
}

fn cert(serial: u64, kind: CertKind, subject: &str, fp: &str) -> CertRecord {
    CertRecord {
        serial,
        kind,
        subject: subject.into(),
        key_fingerprint: fp.into(),
        key_id: format!("{subject}-{serial}"),
        principals: vec![subject.into(), "ops".into()],
        valid_after: 1_767_225_600,
        valid_before: 1_767_229_200,
        issued_at: now(),
    }
}

pub(crate) fn certificates_are_recorded_and_found(b: &dyn Backend) {
    let s = b.open();
    let c1 = cert(1, CertKind::User, "alice", "SHA256:ka");
    s.insert_cert(&c1).unwrap();
    s.insert_cert(&cert(2, CertKind::User, "alice", "SHA256:kb"))
        .unwrap();
    s.insert_cert(&cert(3, CertKind::Host, "alice", "SHA256:ka"))
        .unwrap();
    s.insert_cert(&cert(4, CertKind::User, "bob", "SHA256:ka"))
        .unwrap();
    assert!(s.insert_cert(&c1).is_err(), "a serial is recorded once");
    assert_eq!(s.cert(1).unwrap(), Some(c1));
    assert_eq!(s.cert(3).unwrap().unwrap().kind, CertKind::Host);
    assert_eq!(s.cert(99).unwrap(), None);
    let mut mine = s.serials_for_user("alice").unwrap();
    mine.sort_unstable();
    assert_eq!(mine, [1, 2], "user certificates only");
    let mut by_key = s.serials_for_key("SHA256:ka").unwrap();
    by_key.sort_unstable();
    assert_eq!(by_key, [1, 4]);
}

pub(crate) fn revocations_bump_the_version_only_when_something_is_new(b: &dyn Backend) {
    let s = b.open();
    assert_eq!(s.revocations().unwrap(), Default::default());
    assert_eq!(s.revoke(&[5, 6], &[], "test", now()).unwrap(), 1);
    assert_eq!(s.revoke(&[5], &[], "again", now()).unwrap(), 1);
    assert_eq!(
        s.revoke(&[], &["SHA256:abc".into()], "key", now()).unwrap(),
        2
    );
    let r = s.revocations().unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(s.krl_version().unwrap(), 2, "the version alone agrees");
    assert_eq!(r.serials, vec![5, 6]);
    assert_eq!(r.key_fingerprints, ["SHA256:abc"]);
    assert!(s.key_revoked("SHA256:abc").unwrap());
    assert!(!s.key_revoked("SHA256:other").unwrap());
    assert!(s.serial_revoked(5).unwrap() && s.serial_revoked(6).unwrap());
    assert!(!s.serial_revoked(7).unwrap());
    assert!(!s.serial_revoked(u64::MAX).unwrap());
    // Seen by another CA on the same database.
    assert_eq!(b.open().revocations().unwrap(), r);
    assert_eq!(b.open().krl_version().unwrap(), 2);
}

pub(crate) fn revoked_host_keys_are_those_whose_fingerprint_is_revoked(b: &dyn Backend) {
    let s = b.open();
    s.record_host_key("SHA256:a", "ssh-ed25519 AAAA-a").unwrap();
    s.record_host_key("SHA256:b", "ssh-ed25519 AAAA-b").unwrap();
    // A second certificate for the same key records nothing new.
    s.record_host_key("SHA256:a", "ssh-ed25519 AAAA-a").unwrap();
    assert!(s.revoked_host_keys().unwrap().is_empty());
    s.revoke(&[], &["SHA256:b".into(), "SHA256:user".into()], "t", now())
        .unwrap();
    assert_eq!(s.revoked_host_keys().unwrap(), ["ssh-ed25519 AAAA-b"]);
}

// ----- bastions ---------------------------------------------------------------

fn bastion(name: &str, fingerprint: &str) -> BastionRecord {
    BastionRecord {
        name: name.into(),
        host_key_fingerprint: fingerprint.into(),
        joined_at: now(),
    }
}

pub(crate) fn join_tokens_are_single_use_bound_and_expire(b: &dyn Backend) {
    let s = b.open();
    let hour = now() + Duration::hours(1);
    let join = |token: u8, name: &str, cred: u8, at| {
        s.join_bastion(&[token; 32], &bastion(name, "SHA256:h"), &[cred; 32], at)
            .unwrap()
    };
    s.create_bastion_token(&[1; 32], None, hour, now()).unwrap();
    assert_eq!(join(9, "b1", 1, now()), BastionJoin::Unknown);
    assert_eq!(join(1, "b1", 1, now()), BastionJoin::Joined);
    assert_eq!(join(1, "b1", 2, now()), BastionJoin::AlreadyUsed);
    assert_eq!(
        s.bastion_by_credential(&[1; 32]).unwrap().unwrap().name,
        "b1"
    );
    assert_eq!(s.bastion("b1").unwrap(), Some(bastion("b1", "SHA256:h")));

    // An unbound token cannot take a joined name, and stays unused.
    s.create_bastion_token(&[2; 32], None, hour, now()).unwrap();
    assert_eq!(join(2, "b1", 3, now()), BastionJoin::NameTaken);
    assert_eq!(join(2, "b2", 3, now()), BastionJoin::Joined);

    // A token bound to a name joins only that name; it re-registers it.
    s.create_bastion_token(&[3; 32], Some("b1"), hour, now())
        .unwrap();
    assert_eq!(
        join(3, "b3", 4, now()),
        BastionJoin::NameMismatch("b1".into())
    );
    assert_eq!(join(3, "b1", 4, now()), BastionJoin::Joined);
    assert_eq!(s.bastion_by_credential(&[1; 32]).unwrap(), None);
    assert_eq!(s.bastion_names().unwrap(), ["b1", "b2"]);

    // Past its expiry, a token joins nothing.
    s.create_bastion_token(&[4; 32], None, now(), now())
        .unwrap();
    assert_eq!(join(4, "b4", 5, now()), BastionJoin::Expired);
    assert!(s.remove_bastion("b2").unwrap());
    assert!(!s.remove_bastion("b2").unwrap());
    assert_eq!(s.bastion("b2").unwrap(), None);
    assert_eq!(s.bastion_by_credential(&[3; 32]).unwrap(), None);
}

/// One join token presented through several CAs at once joins one bastion.
pub(crate) fn a_join_token_raced_joins_once(b: &dyn Backend) {
    let s = b.open();
    s.create_bastion_token(&[1; 32], None, now() + Duration::hours(1), now())
        .unwrap();
    let stores: Vec<_> = (0..6).map(|_| b.peer()).collect();
    let outcomes = race(6, move |i| {
        let name = format!("b{i}");
        let cred = [u8::try_from(i).unwrap() + 10; 32];
        stores[i]
            .join_bastion(&[1; 32], &bastion(&name, "SHA256:h"), &cred, now())
            .unwrap()
    });
    let joined = outcomes
        .iter()
        .filter(|o| **o == BastionJoin::Joined)
        .count();
    assert_eq!(joined, 1, "{outcomes:?}");
    assert_eq!(s.bastion_names().unwrap().len(), 1);
}

fn minutes(m: i64) -> DateTime<Utc> {
    now() + Duration::minutes(m)
}

pub(crate) fn the_first_bastion_owns_a_proof_for_its_window(b: &dyn Backend) {
    let s = b.open();
    let h = [1u8; 32];
    let claim = |bastion: &str, at: i64| {
        s.claim_user_proof(&h, bastion, minutes(at), minutes(15), minutes(60))
            .unwrap()
    };
    assert_eq!(claim("bastion-a", 0), ProofClaim::First);
    assert_eq!(claim("bastion-a", 1), ProofClaim::Again);
    assert_eq!(
        claim("bastion-b", 2),
        ProofClaim::Foreign("bastion-a".into())
    );
    // Past the window: refused, and still owned (kept until the
    // certificate's expiry) so it cannot be claimed afresh.
    assert_eq!(claim("bastion-a", 15), ProofClaim::Expired);
    assert_eq!(
        claim("bastion-b", 30),
        ProofClaim::Foreign("bastion-a".into())
    );
    // Another session's proof is independent.
    let other = s
        .claim_user_proof(
            &[2u8; 32],
            "bastion-b",
            minutes(30),
            minutes(45),
            minutes(60),
        )
        .unwrap();
    assert_eq!(other, ProofClaim::First);
    // Bindings outlive the store that made them.
    assert_eq!(
        b.open()
            .claim_user_proof(&h, "bastion-c", minutes(31), minutes(46), minutes(60))
            .unwrap(),
        ProofClaim::Foreign("bastion-a".into())
    );
}

/// Two bastions (through two CAs) presenting one proof at once: one is first.
pub(crate) fn a_user_proof_raced_has_one_first_owner(b: &dyn Backend) {
    let stores: Vec<_> = (0..6).map(|_| b.peer()).collect();
    let outcomes = race(6, move |i| {
        stores[i]
            .claim_user_proof(&[5; 32], &format!("b{i}"), now(), minutes(15), minutes(60))
            .unwrap()
    });
    let first = outcomes.iter().filter(|o| **o == ProofClaim::First).count();
    assert_eq!(first, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, ProofClaim::First | ProofClaim::Foreign(_))));
}

// ----- meta -------------------------------------------------------------------

// ----- flows in progress -------------------------------------------------------

fn pending(kind: PendingKind, key: u8, owner: &str, forget_at: DateTime<Utc>) -> PendingEntry {
    PendingEntry {
        kind,
        key: [key; 32],
        owner: owner.into(),
        counts_until: forget_at,
        payload: vec![key, 1, 2, 3],
        version: 0,
        created_at: now(),
        forget_at,
    }
}

fn later() -> DateTime<Utc> {
    now() + Duration::minutes(10)
}

const ROOMY: PendingCaps = PendingCaps {
    total: 100,
    per_owner: 100,
};

pub(crate) fn pending_entries_are_found_updated_and_taken_once(b: &dyn Backend) {
    let s = b.open();
    let e = pending(
        PendingKind::OidcLogin,
        1,
        "192.0.2.1",
        now() + Duration::minutes(10),
    );
    assert_eq!(
        s.pending_put(&e, &ROOMY, now()).unwrap(),
        PendingPut::Stored
    );
    assert!(matches!(
        s.pending_put(&e, &ROOMY, now()),
        Err(StoreError::Duplicate(_))
    ));
    // Keys are per kind.
    let other_kind = PendingEntry {
        kind: PendingKind::OidcDevice,
        ..e.clone()
    };
    assert_eq!(
        s.pending_put(&other_kind, &ROOMY, now()).unwrap(),
        PendingPut::Stored
    );
    // Another CA sees it.
    let peer = b.open();
    assert_eq!(
        peer.pending_get(PendingKind::OidcLogin, &[1; 32], now())
            .unwrap(),
        Some(e.clone())
    );
    assert_eq!(
        peer.pending_get(PendingKind::OidcLogin, &[2; 32], now())
            .unwrap(),
        None
    );
    // Compare-and-set: the version moves, a stale version loses.
    assert!(peer
        .pending_update(PendingKind::OidcLogin, &[1; 32], 0, b"next", later(), now())
        .unwrap());
    assert!(!s
        .pending_update(
            PendingKind::OidcLogin,
            &[1; 32],
            0,
            b"stale",
            later(),
            now()
        )
        .unwrap());
    let got = s
        .pending_get(PendingKind::OidcLogin, &[1; 32], now())
        .unwrap()
        .unwrap();
    assert_eq!((got.version, got.payload.as_slice()), (1, &b"next"[..]));
    // Taken once, by whichever CA asks first.
    let taken = s
        .pending_take(PendingKind::OidcLogin, &[1; 32], now())
        .unwrap()
        .unwrap();
    assert_eq!(taken.payload, b"next");
    assert_eq!(
        peer.pending_take(PendingKind::OidcLogin, &[1; 32], now())
            .unwrap(),
        None
    );
    assert!(!s
        .pending_update(PendingKind::OidcLogin, &[1; 32], 1, b"late", later(), now())
        .unwrap());
    // The other kind's entry under the same key is untouched.
    assert!(s
        .pending_get(PendingKind::OidcDevice, &[1; 32], now())
        .unwrap()
        .is_some());
}

/// N CAs take one entry at once: exactly one gets it.
pub(crate) fn a_pending_entry_raced_is_taken_once(b: &dyn Backend) {
    let s = b.open();
    let e = pending(PendingKind::OidcLogin, 7, "", now() + Duration::minutes(10));
    s.pending_put(&e, &ROOMY, now()).unwrap();
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let won = race(8, move |i| {
        stores[i]
            .pending_take(PendingKind::OidcLogin, &[7; 32], now())
            .unwrap()
            .is_some()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
}

/// N CAs update one version at once: exactly one wins.
pub(crate) fn a_pending_update_raced_wins_once(b: &dyn Backend) {
    let s = b.open();
    let e = pending(
        PendingKind::OidcDevice,
        8,
        "",
        now() + Duration::minutes(10),
    );
    s.pending_put(&e, &ROOMY, now()).unwrap();
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let won = race(8, move |i| {
        stores[i]
            .pending_update(
                PendingKind::OidcDevice,
                &[8; 32],
                0,
                &[i as u8],
                later(),
                now(),
            )
            .unwrap()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
}

pub(crate) fn pending_entries_end_at_their_forget_time(b: &dyn Backend) {
    let s = b.open();
    let end = now() + Duration::minutes(1);
    s.pending_put(&pending(PendingKind::OidcLogin, 1, "", end), &ROOMY, now())
        .unwrap();
    s.pending_put(
        &pending(PendingKind::OidcLogin, 2, "", end + Duration::hours(1)),
        &ROOMY,
        now(),
    )
    .unwrap();
    let at_end = end;
    assert_eq!(
        s.pending_get(PendingKind::OidcLogin, &[1; 32], at_end)
            .unwrap(),
        None
    );
    assert_eq!(
        s.pending_take(PendingKind::OidcLogin, &[1; 32], at_end)
            .unwrap(),
        None
    );
    assert!(!s
        .pending_update(PendingKind::OidcLogin, &[1; 32], 0, b"x", later(), at_end)
        .unwrap());
    assert_eq!(s.pending_purge(at_end).unwrap(), 1);
    assert_eq!(s.pending_purge(at_end).unwrap(), 0);
    assert!(s
        .pending_get(PendingKind::OidcLogin, &[2; 32], at_end)
        .unwrap()
        .is_some());
    // An ended key can be used again (a put forgets what ended first).
    let again = pending(PendingKind::OidcLogin, 2, "", end + Duration::hours(3));
    assert_eq!(
        s.pending_put(&again, &ROOMY, end + Duration::hours(2))
            .unwrap(),
        PendingPut::Stored
    );
}

pub(crate) fn pending_caps_refuse_new_entries_until_some_end(b: &dyn Backend) {
    let s = b.open();
    let caps = PendingCaps {
        total: 3,
        per_owner: 2,
    };
    let end = now() + Duration::minutes(1);
    let put = |key: u8, owner: &str, at: DateTime<Utc>| {
        s.pending_put(&pending(PendingKind::OidcLogin, key, owner, end), &caps, at)
            .unwrap()
    };
    assert_eq!(put(1, "a", now()), PendingPut::Stored);
    assert_eq!(put(2, "a", now()), PendingPut::Stored);
    assert_eq!(put(3, "a", now()), PendingPut::Full, "per owner");
    assert_eq!(put(3, "b", now()), PendingPut::Stored);
    assert_eq!(put(4, "c", now()), PendingPut::Full, "in all");
    // Another kind has its own count.
    assert_eq!(
        s.pending_put(&pending(PendingKind::OidcDevice, 4, "c", end), &caps, now())
            .unwrap(),
        PendingPut::Stored
    );
    // Ended entries no longer count.
    let later = end + Duration::seconds(1);
    let fresh = PendingEntry {
        forget_at: later + Duration::minutes(1),
        ..pending(PendingKind::OidcLogin, 4, "c", end)
    };
    assert_eq!(
        s.pending_put(&fresh, &caps, later).unwrap(),
        PendingPut::Stored
    );
}

/// An entry that stopped counting (its flow ended, kept for late callers)
/// leaves its owner room, but is still found.
pub(crate) fn an_entry_stops_counting_against_its_owner_when_told(b: &dyn Backend) {
    let s = b.open();
    let caps = PendingCaps {
        total: 10,
        per_owner: 1,
    };
    let e = pending(PendingKind::OidcLogin, 1, "alice", later());
    assert_eq!(s.pending_put(&e, &caps, now()).unwrap(), PendingPut::Stored);
    let second = pending(PendingKind::OidcLogin, 2, "alice", later());
    assert_eq!(
        s.pending_put(&second, &caps, now()).unwrap(),
        PendingPut::Full
    );
    // Ended now: it counts no more, from any CA's view.
    assert!(b
        .peer()
        .pending_update(PendingKind::OidcLogin, &[1; 32], 0, b"ended", now(), now())
        .unwrap());
    assert_eq!(
        s.pending_put(&second, &caps, now()).unwrap(),
        PendingPut::Stored
    );
    let kept = s
        .pending_get(PendingKind::OidcLogin, &[1; 32], now())
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.payload.as_slice(), kept.counts_until),
        (&b"ended"[..], now())
    );
    // One whose count ran out by itself leaves room too.
    let brief = PendingEntry {
        counts_until: now() + Duration::seconds(5),
        ..pending(PendingKind::OidcDevice, 3, "bob", later())
    };
    s.pending_put(&brief, &caps, now()).unwrap();
    let next = pending(PendingKind::OidcDevice, 4, "bob", later());
    assert_eq!(
        s.pending_put(&next, &caps, now()).unwrap(),
        PendingPut::Full
    );
    assert_eq!(
        s.pending_put(&next, &caps, now() + Duration::seconds(5))
            .unwrap(),
        PendingPut::Stored
    );
}

/// Starts raced through several CAs: the caps hold for them all together.
pub(crate) fn pending_caps_hold_across_cas_racing(b: &dyn Backend) {
    let _s = b.open();
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let caps = PendingCaps {
        total: 100,
        per_owner: 3,
    };
    let stored = race(8, move |i| {
        let e = pending(
            PendingKind::OidcLogin,
            i as u8,
            "192.0.2.9",
            now() + Duration::minutes(5),
        );
        stores[i].pending_put(&e, &caps, now()).unwrap() == PendingPut::Stored
    });
    assert_eq!(stored.iter().filter(|s| **s).count(), 3, "{stored:?}");
}

// ----- budgets -------------------------------------------------------------------

const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) fn budgets_count_within_their_window(b: &dyn Backend) {
    let s = b.open();
    let net = "192.0.2.1";
    let fresh = s.budget_use("starts", net, now(), WINDOW).unwrap();
    assert_eq!((fresh.used, fresh.frees_at), (0, None));
    let first = s.budget_spend("starts", net, now(), WINDOW, 2).unwrap();
    assert_eq!(first.unwrap().used, 1);
    let t1 = now() + Duration::seconds(10);
    assert_eq!(
        s.budget_spend("starts", net, t1, WINDOW, 2)
            .unwrap()
            .unwrap()
            .used,
        2
    );
    let refused = s
        .budget_spend("starts", net, t1, WINDOW, 2)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.used, 2);
    assert_eq!(refused.frees_at, Some(now() + Duration::seconds(60)));
    // Other networks and other budgets are apart; a note ignores the max.
    assert!(s
        .budget_spend("starts", "192.0.2.2", t1, WINDOW, 2)
        .unwrap()
        .is_ok());
    assert_eq!(s.budget_use("failures", net, t1, WINDOW).unwrap().used, 0);
    for _ in 0..3 {
        s.budget_note("failures", net, t1, WINDOW).unwrap();
    }
    assert_eq!(
        b.open()
            .budget_use("failures", net, t1, WINDOW)
            .unwrap()
            .used,
        3
    );
    // The first start leaves the window, the second stays.
    let t2 = now() + Duration::seconds(61);
    assert_eq!(s.budget_use("starts", net, t2, WINDOW).unwrap().used, 1);
    assert!(s
        .budget_spend("starts", net, t2, WINDOW, 2)
        .unwrap()
        .is_ok());
    assert!(s
        .budget_spend("starts", net, t2, WINDOW, 2)
        .unwrap()
        .is_err());
    let t3 = t1 + Duration::seconds(61);
    assert_eq!(s.budget_use("starts", net, t3, WINDOW).unwrap().used, 1);
}

/// A network spending its budget through several CAs at once gets the
/// budget once, not once per CA.
pub(crate) fn a_budget_spent_through_several_cas_allows_its_max(b: &dyn Backend) {
    let _s = b.open();
    let stores: Vec<_> = (0..8).map(|_| b.peer()).collect();
    let spent = race(8, move |i| {
        stores[i]
            .budget_spend("starts", "192.0.2.1", now(), WINDOW, 3)
            .unwrap()
            .is_ok()
    });
    assert_eq!(spent.iter().filter(|s| **s).count(), 3, "{spent:?}");
}

pub(crate) fn meta_values_are_set_and_replaced(b: &dyn Backend) {
    let s = b.open();
    assert_eq!(s.meta("salt").unwrap(), None);
    s.set_meta("salt", &[1, 2, 3]).unwrap();
    assert_eq!(s.meta("salt").unwrap(), Some(vec![1, 2, 3]));
    s.set_meta("salt", &[]).unwrap();
    assert_eq!(s.meta("salt").unwrap(), Some(vec![]));
    assert_eq!(b.open().meta("salt").unwrap(), Some(vec![]));
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
            revocations_bump_the_version_only_when_something_is_new,
            revoked_host_keys_are_those_whose_fingerprint_is_revoked,
            join_tokens_are_single_use_bound_and_expire,
            a_join_token_raced_joins_once,
            the_first_bastion_owns_a_proof_for_its_window,
            a_user_proof_raced_has_one_first_owner,
            meta_values_are_set_and_replaced,
            pending_entries_are_found_updated_and_taken_once,
            a_pending_entry_raced_is_taken_once,
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
