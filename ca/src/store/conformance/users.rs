//! The conformance cases for users and invites.

use super::*;

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
