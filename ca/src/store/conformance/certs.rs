//! The conformance cases for certificates, serials and revocations.

use super::*;

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
    // A serial no database column can hold (an admin's typo, a fuzzer) is
    // simply unknown.
    assert_eq!(s.cert(u64::MAX).unwrap(), None);
    let mut mine = s.serials_for_user("alice").unwrap();
    mine.sort_unstable();
    assert_eq!(mine, [1, 2], "user certificates only");
    let mut by_key = s.serials_for_key("SHA256:ka").unwrap();
    by_key.sort_unstable();
    assert_eq!(by_key, [1, 4]);
}

pub(crate) fn the_last_expiry_of_a_kind_is_found_by_validity_start(b: &dyn Backend) {
    let s = b.open();
    assert_eq!(s.last_expiry(CertKind::User, u64::MAX).unwrap(), None);
    let at = |serial, kind, after, before| CertRecord {
        valid_after: after,
        valid_before: before,
        ..cert(serial, kind, "alice", "SHA256:k")
    };
    s.insert_cert(&at(1, CertKind::User, 100, 500)).unwrap();
    s.insert_cert(&at(2, CertKind::User, 200, 400)).unwrap();
    s.insert_cert(&at(3, CertKind::User, 300, 900)).unwrap();
    s.insert_cert(&at(4, CertKind::Host, 150, 5_000)).unwrap();
    assert_eq!(s.last_expiry(CertKind::User, 99).unwrap(), None);
    assert_eq!(s.last_expiry(CertKind::User, 250).unwrap(), Some((500, 1)));
    assert_eq!(s.last_expiry(CertKind::User, 300).unwrap(), Some((900, 3)));
    assert_eq!(
        s.last_expiry(CertKind::Host, 300).unwrap(),
        Some((5_000, 4))
    );
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
