//! The conformance cases for flows in progress.

use super::*;

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

pub(crate) fn pending_entries_of_a_kind_are_listed_live_only(b: &dyn Backend) {
    let s = b.open();
    let soon = now() + Duration::minutes(1);
    for (kind, key, forget_at) in [
        (PendingKind::HostJoinToken, 3, later()),
        (PendingKind::HostJoinToken, 1, soon),
        (PendingKind::OidcLogin, 2, later()),
    ] {
        let e = PendingEntry {
            created_at: now() + Duration::seconds(i64::from(key)),
            ..pending(kind, key, "admin", forget_at)
        };
        s.pending_put(&e, &ROOMY, now()).unwrap();
    }
    let keys = |at| -> Vec<u8> {
        b.open()
            .pending_list(PendingKind::HostJoinToken, at)
            .unwrap()
            .iter()
            .map(|e| e.key[0])
            .collect()
    };
    assert_eq!(keys(now()), [1, 3], "this kind only, oldest first");
    assert_eq!(keys(soon), [3], "an entry past its forget_at is not listed");
    assert!(s
        .pending_list(PendingKind::OidcDevice, now())
        .unwrap()
        .is_empty());
}
