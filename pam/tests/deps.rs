//! DESIGN/STYLE: "pam links no tokio and no network crate". Walks the committed
//! Cargo.lock from `rampart-pam` (dev-dependencies included: the lock does not
//! tell them apart, which only makes the check stricter) and fails if an async
//! runtime, an HTTP/TLS stack or a Rampart crate that pulls one is reachable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeSet, HashMap};

const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
    "axum",
    "russh",
    "rampart-api",
    "rampart-ca",
    "openidconnect",
];

#[test]
fn pam_links_no_runtime_and_no_network_crate() {
    let lock_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    let lock: toml::Value = toml::from_str(&std::fs::read_to_string(lock_path).unwrap()).unwrap();
    let packages = lock["package"].as_array().unwrap();
    // "name" → versions, and "name version" → dependency strings.
    let mut versions: HashMap<String, Vec<String>> = HashMap::new();
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap().to_owned();
        let version = p["version"].as_str().unwrap().to_owned();
        let list = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|a| a.iter().map(|d| d.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        deps.insert(format!("{name} {version}"), list);
        versions.entry(name).or_default().push(version);
    }
    // A dependency string is "name" (one version in the lock) or "name version[ (source)]".
    let resolve = |d: &str| -> String {
        let mut parts = d.split(' ');
        let name = parts.next().unwrap();
        match parts.next() {
            Some(v) => format!("{name} {v}"),
            None => format!("{name} {}", versions[name][0]),
        }
    };
    let root = resolve("rampart-pam");
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        for d in &deps[&p] {
            stack.push(resolve(d));
        }
    }
    let bad: Vec<&String> = seen
        .iter()
        .filter(|p| FORBIDDEN.contains(&p.split(' ').next().unwrap()))
        .collect();
    assert!(bad.is_empty(), "rampart-pam reaches {bad:?}");
    assert!(
        seen.iter().any(|p| p.starts_with("ssh-key ")),
        "the walk works"
    );
}
