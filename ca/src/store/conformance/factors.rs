//! The conformance cases for factors: TOTP steps, recovery codes, security keys.

use super::*;

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
