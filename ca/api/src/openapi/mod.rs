//! The CA's HTTPS API as an OpenAPI 3.1 document, built from this crate's wire
//! types.
//!
//! Each endpoint is one row of [`endpoints`] (in `endpoints.rs`): its method, its path (from the
//! constants in [`crate::paths`], [`crate::oidc`] and [`crate::webauthn`]), who
//! may call it, and the Rust types of its query, body and answer. The schemas
//! come from those types (`utoipa::ToSchema`, `IntoParams`), so a field added to
//! a request shows up in the document without anyone writing it twice.
//!
//! Two tests hold the document to the code: `ca/api/tests/api_reference.rs`
//! writes it to `docs/openapi.json` (with each endpoint constant's doc comment as
//! the operation's description) and fails when the committed file is stale or an
//! endpoint constant has no row; the `api_conformance` end-to-end test runs
//! schemathesis with the committed file against a real `rampart-ca`.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, Parameter};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ComponentsBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr,
    Required, ResponseBuilder, ResponsesBuilder,
};
use utoipa::ToSchema;

mod endpoints;

pub use endpoints::endpoints;

/// The committed document (`docs/openapi.json`), which the CA serves at
/// [`crate::paths::OPENAPI`]; the `api_reference` test keeps it equal to
/// [`document`] with the endpoints' descriptions.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// An endpoint's HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
}

impl Method {
    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }

    fn http(self) -> HttpMethod {
        match self {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
        }
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anybody: no credential, or one carried in the body (a join token, a
    /// poll token, a host's own certificate).
    Anyone,
    /// A session (`Authorization: Bearer` with the token `POST /v1/login`
    /// answers).
    Session,
    /// A session when there is one: an invite in the body serves instead.
    SessionOrInvite,
    /// An admin's session with fresh MFA.
    Admin,
    /// A joined bastion (`Authorization: Bearer` with its credential).
    Bastion,
}

impl Caller {
    fn security(self) -> Vec<SecurityRequirement> {
        let scheme = |name: &str| SecurityRequirement::new::<_, _, &str>(name, []);
        match self {
            Caller::Anyone => Vec::new(),
            Caller::Session | Caller::Admin => vec![scheme(SESSION_SCHEME)],
            Caller::SessionOrInvite => vec![scheme(SESSION_SCHEME), SecurityRequirement::default()],
            Caller::Bastion => vec![scheme(BASTION_SCHEME)],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Caller::Anyone => "Caller: anyone.",
            Caller::Session => "Caller: a session.",
            Caller::SessionOrInvite => "Caller: a session, or an invite in the body.",
            Caller::Admin => "Caller: an admin's session with fresh MFA.",
            Caller::Bastion => "Caller: a joined bastion.",
        }
    }
}

const SESSION_SCHEME: &str = "session";
const BASTION_SCHEME: &str = "bastion";

/// The schemas a body needs, collected by name, and the reference to use.
type Schemas = Vec<(String, RefOr<Schema>)>;

/// A request or response body.
#[derive(Clone, Copy)]
enum Body {
    /// No body.
    Empty,
    /// JSON of one type (its schema registered under its name).
    Json(fn(&mut Schemas) -> RefOr<Schema>),
    /// Bytes of these media types.
    Bytes(&'static [&'static str]),
    /// Text of this media type.
    Text(&'static str),
}

fn register<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
    Ref::from_schema_name(T::name()).into()
}

fn register_list<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    let item = register::<T>(schemas);
    ArrayBuilder::new().items(item).build().into()
}

fn json<T: ToSchema>() -> Body {
    Body::Json(register::<T>)
}

fn any_object(_: &mut Schemas) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .build()
        .into()
}

fn json_list<T: ToSchema>() -> Body {
    Body::Json(register_list::<T>)
}

/// One operation of the API.
#[derive(Clone)]
pub struct Endpoint {
    /// The method.
    pub method: Method,
    /// The path as the router has it (`{session_id}` for a path parameter).
    pub path: &'static str,
    /// Who may call.
    pub caller: Caller,
    /// The status of a success.
    pub status: u16,
    params: fn() -> Vec<Parameter>,
    request: Body,
    response: Body,
    /// A response header a success carries, with its description.
    response_header: Option<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("caller", &self.caller)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The media types of a body and the schema of each.
fn content(body: Body, schemas: &mut Schemas) -> Vec<(&'static str, utoipa::openapi::Content)> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    match body {
        Body::Empty => Vec::new(),
        Body::Json(schema) => vec![(
            "application/json",
            ContentBuilder::new().schema(Some(schema(schemas))).build(),
        )],
        Body::Bytes(media) => media
            .iter()
            .map(|m| {
                let binary = string().content_media_type("application/octet-stream");
                (*m, ContentBuilder::new().schema(Some(binary)).build())
            })
            .collect(),
        Body::Text(media) => vec![(media, ContentBuilder::new().schema(Some(string())).build())],
    }
}

/// The OpenAPI document. `describe` gives an endpoint's description (the
/// `api_reference` test passes the endpoint constants' doc comments); the
/// caller and the success status are added to it.
pub fn document(describe: impl Fn(&Endpoint) -> String) -> OpenApi {
    let mut schemas: Schemas = Vec::new();
    let error = register::<crate::ErrorBody>(&mut schemas);
    let mut paths = PathsBuilder::new().build();
    for e in endpoints() {
        let mut responses = ResponsesBuilder::new();
        let mut ok = ResponseBuilder::new().description(success(e.status));
        for (media, c) in content(e.response, &mut schemas) {
            ok = ok.content(media, c);
        }
        if let Some((name, doc)) = e.response_header {
            ok = ok.header(
                name,
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(doc))
                    .build(),
            );
        }
        responses = responses
            .response(e.status.to_string(), ok.build())
            .response(
                "default",
                ResponseBuilder::new()
                    .description("A refusal or a failure: the `code` is stable (see `ErrorCode`).")
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(error.clone())).build(),
                    )
                    .build(),
            );
        let request_content = content(e.request, &mut schemas);
        let request = (!request_content.is_empty()).then(|| {
            request_content
                .into_iter()
                .fold(RequestBodyBuilder::new(), |b, (media, c)| {
                    b.content(media, c)
                })
                .required(Some(Required::True))
                .build()
        });
        let description = format!("{} {}", describe(&e), e.caller.describe());
        let operation = OperationBuilder::new()
            .operation_id(Some(operation_id(&e)))
            .description(Some(description.trim()))
            .parameters(Some((e.params)()))
            .request_body(request)
            .responses(responses.build())
            .securities(Some(e.caller.security()))
            .build();
        paths.add_path_operation(e.path, vec![e.method.http()], operation);
    }
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    let bearer = |doc: &str| {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(doc.to_owned());
        SecurityScheme::Http(http)
    };
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            SESSION_SCHEME,
            bearer("The session token `POST /v1/login` (or a finished OIDC or WebAuthn login) answers."),
        )
        .security_scheme(
            BASTION_SCHEME,
            bearer("The credential `POST /v1/bastion/join` answered (`rampart-bastion join`)."),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("rampart-ca HTTPS API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The API of Rampart's CA. Bodies are JSON and request bodies refuse unknown \
                     fields. The CA's TLS certificate is self-signed: clients pin its SHA-256 \
                     fingerprint.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

fn success(status: u16) -> &'static str {
    match status {
        201 => "Created.",
        204 => "Done; no body.",
        _ => "Success.",
    }
}

/// `post_v1_admin_users`: stable, unique per method and path.
fn operation_id(e: &Endpoint) -> String {
    let path: String = e
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}{}", e.method.as_str().to_ascii_lowercase(), path)
        .replace("__", "_")
        .trim_end_matches('_')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_unique_and_every_schema_it_names_is_in_the_document() {
        let doc = document(|_| String::new());
        let json = serde_json::to_value(&doc).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for e in endpoints() {
            assert!(
                seen.insert((e.path, e.method.as_str())),
                "{} {} twice",
                e.method.as_str(),
                e.path
            );
        }
        let text = json.to_string();
        let schemas = &json["components"]["schemas"];
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.get(name).is_some(),
                "{name} is referenced but not defined"
            );
        }
    }

    /// A field whose name says it holds a secret must be a [`crate::WireSecret`]
    /// (redacted `Debug`, zeroized, no `==`), so that a new request or answer
    /// type cannot carry one as a plain `String` unnoticed.
    #[test]
    fn every_secret_field_is_a_wire_secret() {
        const SECRET_NAMES: &[&str] = &[
            "code",
            "credential",
            "enrollment_token",
            "handle",
            "invite",
            "poll_token",
            "recovery_codes",
            "session_token",
            "state",
            "token",
            "totp_code",
            "totp_secret",
            "totp_uri",
        ];
        // Public despite the name: a stable error code, and a WebAuthn
        // `PublicKeyCredential` (signed data, no secret).
        const PUBLIC: &[(&str, &str)] = &[
            ("ErrorBody", "code"),
            ("OidcFinishResponse", "code"),
            ("FinishRequest", "credential"),
        ];
        fn walk(schema_name: &str, node: &serde_json::Value, found: &mut Vec<String>) {
            match node {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                        for (field, spec) in props {
                            if SECRET_NAMES.contains(&field.as_str())
                                && !PUBLIC.contains(&(schema_name, field.as_str()))
                                && !spec.to_string().contains("#/components/schemas/WireSecret")
                            {
                                found.push(format!("{schema_name}.{field}"));
                            }
                        }
                    }
                    for value in map.values() {
                        walk(schema_name, value, found);
                    }
                }
                serde_json::Value::Array(items) => {
                    for item in items {
                        walk(schema_name, item, found);
                    }
                }
                _ => {}
            }
        }
        let json = serde_json::to_value(document(|_| String::new())).unwrap();
        let schemas = json["components"]["schemas"].as_object().unwrap();
        let mut plain = Vec::new();
        for (name, schema) in schemas {
            walk(name, schema, &mut plain);
        }
        assert!(
            plain.is_empty(),
            "secrets typed as plain strings: {plain:?}"
        );
        // And the check can see one: the error body's public code is a string.
        let mut public = Vec::new();
        walk("Probe", &schemas["ErrorBody"], &mut public);
        assert_eq!(public, ["Probe.code"]);
    }

    #[test]
    fn a_request_schema_refuses_unknown_fields_as_the_server_does() {
        let json = serde_json::to_value(document(|_| String::new())).unwrap();
        let login = &json["components"]["schemas"]["LoginRequest"];
        assert_eq!(
            login["additionalProperties"],
            serde_json::json!(false),
            "{login}"
        );
        assert_eq!(
            json["paths"]["/v1/admin/users"]["post"]["responses"]["201"]["content"]
                ["application/json"]["schema"]["$ref"],
            "#/components/schemas/User"
        );
    }
}
