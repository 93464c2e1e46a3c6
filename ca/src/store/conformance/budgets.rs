//! The conformance cases for per-network budgets.

use super::*;

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
