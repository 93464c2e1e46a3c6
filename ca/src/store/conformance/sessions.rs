//! The conformance cases for sessions and identity-provider links.

use super::*;
use rampart_policy::MfaMethod;

pub(crate) fn sessions_are_found_by_token_and_ended(b: &dyn Backend) {
    let s = with_alice(b);
    let rec = |id: &str| SessionRecord {
        id: id.into(),
        user: "alice".into(),
        mfa_method: MfaMethod::Totp,
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
