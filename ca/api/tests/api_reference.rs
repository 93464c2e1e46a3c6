//! `docs/api.md`, the HTTP API reference, is generated from the endpoint
//! constants in this crate and their doc comments, the one place server routes
//! and client calls take their paths from; `docs/openapi.json` is
//! `rampart_api::openapi::document` with those doc comments as descriptions.
//! These tests fail when a committed file differs from what the code says, when
//! an endpoint constant is not routed by the CA, and when the OpenAPI rows and
//! the constants disagree on a path or a method. `RAMPART_BLESS=1 cargo test -p
//! rampart-api --test api_reference` (or `scripts/api-reference`) rewrites both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// One endpoint: where it is declared, its path and what its doc says.
struct Endpoint {
    constant: String,
    path: String,
    doc: String,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `pub const NAME: &str = "/v1/…";` with the `///` lines right above it,
/// from `file` (module name `module` in the generated table).
fn endpoints_in(file: &Path, module: &str) -> Vec<Endpoint> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut doc: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_owned());
            continue;
        }
        if let Some(rest) = t.strip_prefix("pub const ") {
            if let Some((name, value)) = rest.split_once(": &str = \"") {
                if let Some(path) = value.strip_suffix("\";") {
                    if path.starts_with("/v1/") {
                        out.push(Endpoint {
                            constant: format!("{module}::{name}"),
                            path: path.to_owned(),
                            doc: plain(&doc.join(" ")),
                        });
                    }
                }
            }
        }
        doc.clear();
    }
    out
}

/// Rustdoc links (`[`super::X`]`, `[`X`]`) as plain code spans, and `|`
/// escaped for the table.
fn plain(doc: &str) -> String {
    let mut s = doc.replace("[`super::", "`").replace("[`crate::", "`");
    s = s.replace("[`", "`").replace("`]", "`");
    s.replace('|', "\\|")
}

fn endpoints() -> Vec<Endpoint> {
    let src = crate_dir().join("src");
    let mut all = endpoints_in(&src.join("lib.rs"), "paths");
    all.extend(endpoints_in(&src.join("oidc.rs"), "oidc"));
    all.extend(endpoints_in(&src.join("webauthn.rs"), "webauthn"));
    all.sort_by(|a, b| a.path.cmp(&b.path));
    all
}

/// Bless or compare one generated file.
fn check_generated(relative: &str, wanted: &str) {
    let file = crate_dir().join("../..").join(relative);
    if std::env::var_os("RAMPART_BLESS").is_some() {
        std::fs::write(&file, wanted).unwrap();
    }
    let have = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        have == wanted,
        "{relative} is not what the code says: run scripts/api-reference and commit the result"
    );
}

fn render(all: &[Endpoint]) -> String {
    let mut out = String::from(
        "# HTTP API reference\n\n\
         <!-- Generated from ca/api/src/ (the endpoint constants and their doc comments)\n\
         by `scripts/api-reference`; the `api_reference` test fails when this file differs. -->\n\n\
         Every endpoint of `rampart-ca`'s HTTPS API, from the constants that both the\n\
         server's routes and the clients (the `rampart` CLI, `rampart-bastion`) use, so\n\
         the list cannot drift from the code. Bodies are JSON; request bodies refuse\n\
         unknown fields. Errors are `{\"code\": \"…\", \"message\": \"…\"}` with a stable\n\
         `code`. Who may call: no credential (health, CA keys, KRL, enrolment and login\n\
         steps), *bearer* (the session token `rampart login` keeps), *admin* (an admin's\n\
         session with fresh MFA), a *bastion credential* (from `rampart-bastion join`), or\n\
         a single-use *join token*. The request and response types are the Rust types\n\
         named below, in `ca/api/src/`; their schemas are in the OpenAPI 3.1 document\n\
         [`openapi.json`](openapi.json), generated from the same types.\n\n\
         | path | constant | method, caller and body |\n|---|---|---|\n",
    );
    for e in all {
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            e.path, e.constant, e.doc
        ));
    }
    out
}

#[test]
fn the_api_reference_is_what_the_code_says() {
    let all = endpoints();
    assert!(
        all.len() >= 40,
        "only {} endpoints found: the parser broke",
        all.len()
    );
    check_generated("docs/api.md", &render(&all));
}

/// The methods a constant's doc comment names (`` `GET` ``, `` `POST` ``…).
fn methods_in(doc: &str) -> std::collections::BTreeSet<&'static str> {
    ["GET", "POST", "PUT", "DELETE", "PATCH"]
        .into_iter()
        .filter(|m| doc.contains(&format!("`{m}`")))
        .collect()
}

#[test]
fn the_openapi_document_is_what_the_types_say() {
    let constants = endpoints();
    let operations = rampart_api::openapi::endpoints();
    for c in &constants {
        let documented: std::collections::BTreeSet<_> = operations
            .iter()
            .filter(|o| o.path == c.path)
            .map(|o| o.method.as_str())
            .collect();
        assert!(
            !documented.is_empty(),
            "{} ({}) has no row in rampart_api::openapi::endpoints",
            c.constant,
            c.path
        );
        assert_eq!(
            methods_in(&c.doc),
            documented,
            "{} ({}): its doc comment and its OpenAPI rows name different methods",
            c.constant,
            c.path
        );
    }
    for o in &operations {
        assert!(
            constants.iter().any(|c| c.path == o.path),
            "OpenAPI row {} {} has no endpoint constant",
            o.method.as_str(),
            o.path
        );
    }
    let doc = rampart_api::openapi::document(|o| {
        constants
            .iter()
            .find(|c| c.path == o.path)
            .map(|c| c.doc.replace("\\|", "|"))
            .unwrap_or_default()
    });
    let mut json = serde_json::to_string_pretty(&doc).unwrap();
    json.push('\n');
    check_generated("docs/openapi.json", &json);
}

#[test]
fn every_endpoint_has_a_doc_and_a_route() {
    let ca = crate_dir().join("../src");
    let routes = ["http/mod.rs", "webauthn/routes.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(ca.join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for e in endpoints() {
        assert!(
            !e.doc.is_empty(),
            "{} ({}) has no doc comment",
            e.constant,
            e.path
        );
        let name = e.constant.rsplit("::").next().unwrap();
        let routed = ["paths", "oidc", "wapi", "webauthn"].iter().any(|m| {
            routes.contains(&format!("{m}::{name},")) || routes.contains(&format!("{m}::{name})"))
        });
        assert!(
            routed,
            "{} ({}) is not routed by the CA",
            e.constant, e.path
        );
    }
}
