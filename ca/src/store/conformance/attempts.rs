//! The conformance cases for failed-attempt counting and lockouts.

use super::*;

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
