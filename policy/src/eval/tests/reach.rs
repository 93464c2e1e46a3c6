//! The listing behind `rampart ls`: registered names and patterns intersected
//! with what the user's roles grant.

use super::*;

const L: &str = r#"
version = 1
[defaults]
min_factor = "otp"

[roles.dev]
principals = ["{user}"]
logins = ["{user}", "app"]
targets = { allow = ["db-*", "web-9"], deny = ["db-secret"] }

[roles.guarded]
principals = ["{user}"]
logins = ["postgres"]
session_mfa = true
webauthn_link = false
targets = { allow = ["db-1"] }

[roles.labelled]
principals = ["{user}"]
logins = ["deploy"]
targets = { allow = ["app-*"] }
target_labels = { env = "prod" }

[roles.other]
principals = ["{user}"]
targets = { allow = ["mail-*"] }

[groups]
eng = ["dev", "guarded", "labelled"]
mail = ["other"]

[[deny]]
users = ["carol"]
principals = ["app"]
reason = "carol never runs as app"

[bastions.b1]
targets = ["db-1", "db-2", "db-secret", "web-1"]

[bastions.b2]
targets = ["app-*", "db-2", "cache-*"]
address = "b2.example.com:2222"
"#;

fn list(user: &str, groups: &[&str]) -> Result<Vec<Reachable>, Denial> {
    let policy = Policy::from_toml(L).unwrap();
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    reachable(
        &ReachRequest {
            user,
            groups: &groups,
            factor: Factor::Totp,
            mfa_time: now(),
        },
        KeyAssurance::Unattested,
        &policy,
        now(),
    )
}

#[test]
fn registered_names_the_roles_grant_are_listed_with_their_logins() {
    let rows = list("alice", &["eng"]).unwrap();
    let keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.bastion.as_str(), r.target.as_str()))
        .collect();
    // db-secret is denied, web-1 granted by no role, web-9 granted but
    // registered by no bastion, cache-* granted by no role.
    assert_eq!(
        keys,
        [
            ("b1", "db-1"),
            ("b1", "db-2"),
            ("b2", "app-*"),
            ("b2", "db-2")
        ]
    );
    let db1 = &rows[0];
    assert_eq!(db1.logins, ["alice", "app", "postgres"]);
    assert_eq!(db1.roles, ["dev", "guarded"]);
    assert!(db1.session_mfa && !db1.pattern && db1.labels.is_empty());
    assert!(db1.webauthn_link, "dev keeps webauthn_link on");
    let db2 = &rows[1];
    assert_eq!(db2.logins, ["alice", "app"]);
    assert!(!db2.session_mfa);
    let app = &rows[2];
    assert!(app.pattern);
    assert_eq!(app.logins, ["deploy"]);
    assert_eq!(
        app.labels,
        BTreeMap::from([("env".to_owned(), "prod".to_owned())])
    );
}

#[test]
fn deny_rules_and_other_groups_change_the_view() {
    let carol = list("carol", &["eng"]).unwrap();
    assert!(carol.iter().all(|r| !r.logins.contains(&"app".to_owned())));
    assert!(carol.iter().any(|r| r.logins.contains(&"carol".to_owned())));
    // A role granting only names no bastion registers lists nothing.
    assert_eq!(list("dave", &["mail"]).unwrap(), []);
    // No role at all is the selection's denial, as for a certificate.
    assert_eq!(list("erin", &[]).unwrap_err().code, DenyCode::NoRole);
}

#[test]
fn bastion_addresses_default_to_the_name() {
    let policy = Policy::from_toml(L).unwrap();
    assert_eq!(policy.bastion_address("b1"), ("b1".to_owned(), 22));
    assert_eq!(
        policy.bastion_address("b2"),
        ("b2.example.com".to_owned(), 2222)
    );
    let bad = L.replace("b2.example.com:2222", "b2 ProxyCommand x");
    assert!(Policy::from_toml(&bad).is_err());
}
