//! The conformance cases for bastions: join tokens and user proofs.

use super::*;

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
