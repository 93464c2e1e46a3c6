//! Roles that refuse security keys approved through the CA's page.

use super::*;

const LINK: &str = r#"
version = 1
[roles.anywhere]
principals = ["{user}"]
targets = { allow = ["*"] }
[roles.desk]
principals = ["root"]
min_factor = "unattested-key"
webauthn_link = false
targets = { allow = ["prod-*"] }
[groups]
desk = ["desk"]
both = ["anywhere", "desk"]
"#;

fn key(via_link: bool) -> Factor {
    Factor::Webauthn {
        user_verified: true,
        attested: true,
        via_link,
    }
}

/// A role with `webauthn_link = false` takes a key used from the user's own
/// machine and refuses the same key approved through the CA's page; other
/// roles are not affected, and other failures keep their own code.
#[test]
fn a_role_without_link_approval_refuses_a_key_used_through_the_page() {
    let policy = Policy::from_toml(LINK).unwrap();
    let cert = |groups: &[&str], factor: Factor| {
        let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        evaluate(
            &CertRequest {
                user: "alice",
                groups: &groups,
                factor,
                mfa_time: now(),
                requested_ttl: None,
                login: None,
            },
            &policy,
            now(),
        )
    };
    match cert(&["desk"], key(true)) {
        Decision::Deny(d) => {
            assert_eq!(d.code, DenyCode::WebauthnLinkRefused);
            assert_eq!(d.code.as_str(), "webauthn_link_refused");
            assert!(
                d.reason.contains("role desk") && d.reason.contains("own machine"),
                "{}",
                d.reason
            );
        }
        Decision::Allow(g) => panic!("link approval granted {:?}", g.principals()),
    }
    match cert(&["desk"], key(false)) {
        Decision::Allow(g) => assert_eq!(g.principals(), ["root"]),
        Decision::Deny(d) => panic!("direct key refused: {d:?}"),
    }
    // The strength check comes first: a TOTP code is simply too weak here.
    match cert(&["desk"], Factor::Totp) {
        Decision::Deny(d) => assert_eq!(d.code, DenyCode::FactorTooWeak),
        Decision::Allow(_) => panic!("totp granted an unattested-key role"),
    }
    // With a second role, the page approval gets that role only.
    match cert(&["both"], key(true)) {
        Decision::Allow(g) => {
            assert_eq!(g.principals(), ["alice"]);
            assert!(
                g.reasons()
                    .iter()
                    .any(|r| r.starts_with("not used: role desk accepts")),
                "{:?}",
                g.reasons()
            );
        }
        Decision::Deny(d) => panic!("{d:?}"),
    }
    match cert(&["both"], key(false)) {
        Decision::Allow(g) => assert_eq!(g.principals(), ["alice", "root"]),
        Decision::Deny(d) => panic!("{d:?}"),
    }
}

/// Bastion access applies the same rule, and the grant says whether a
/// per-session approval (always given on the page) could satisfy it.
#[test]
fn bastion_access_knows_whether_a_link_approval_would_do() {
    let policy = Policy::from_toml(LINK).unwrap();
    let no_labels = BTreeMap::new();
    let access = |groups: &[&str], factor: Factor, login: &str| {
        let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        evaluate_access(
            &AccessRequest {
                user: "alice",
                groups: &groups,
                factor,
                mfa_time: now(),
                login,
                target: "prod-db",
                labels: &no_labels,
            },
            &policy,
            now(),
        )
    };
    let d = access(&["desk"], key(true), "root").unwrap_err();
    assert_eq!(d.code, DenyCode::WebauthnLinkRefused);
    // Beside a role that reaches the target but not as root, the denial
    // still names the role the link kept out.
    let d = access(&["both"], key(true), "root").unwrap_err();
    assert_eq!(d.code, DenyCode::WebauthnLinkRefused);
    assert!(
        d.reason.contains("role desk would permit root@prod-db"),
        "{}",
        d.reason
    );
    // A login no role would grant is still just that.
    let d = access(&["both"], key(true), "nobody").unwrap_err();
    assert_eq!(d.code, DenyCode::LoginNotGranted);
    let g = access(&["desk"], key(false), "root").unwrap();
    assert!(!g.webauthn_link());
    // `anywhere` reaches prod-db too and keeps link approval on.
    let g = access(&["both"], key(false), "alice").unwrap();
    assert!(g.webauthn_link());
    assert_eq!(g.roles(), ["anywhere"]);
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["webauthn_link"], true);
    // The default is on.
    let plain = Policy::from_toml(
        "version = 1\n[roles.r]\nprincipals = [\"{user}\"]\ntargets = { allow = [\"*\"] }\n\
         [groups]\ng = [\"r\"]\n",
    )
    .unwrap();
    let groups = vec!["g".to_owned()];
    let g = evaluate_access(
        &AccessRequest {
            user: "alice",
            groups: &groups,
            factor: key(true),
            mfa_time: now(),
            login: "alice",
            target: "db",
            labels: &no_labels,
        },
        &plain,
        now(),
    )
    .unwrap();
    assert!(g.webauthn_link());
}
