//! [`WireSecret`]: a secret that crosses the wire in a request or response body
//! (an invite code, a TOTP code, a bearer or join token, a poll handle).
//!
//! Why a type and not a `String`: a secret must not reach a log, a panic message
//! or an assertion diff by accident, and it must not outlive its use in freed
//! memory. Holding it as a [`SecretString`] gives both (redacted `Debug`, zeroized
//! on drop) in one place, instead of a hand-written `Debug` beside every struct
//! that carries one. It has no `PartialEq` on purpose: comparing a presented
//! secret with a stored one is the CA's job, done on digests in constant time
//! (`ca/src/secrets.rs`), never with `==` on the wire value.
//!
//! On the wire it is a plain JSON string, and the OpenAPI document says so
//! (`format: password`, so tools that render the document mask it).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret carried in a request or response body. See the module docs.
#[derive(Clone)]
pub struct WireSecret(SecretString);

impl WireSecret {
    /// Wraps `secret`; the `String` moves in and is zeroized with this value.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }

    /// The secret itself, for the one place that must use it: hashing it,
    /// sending it, or showing it to the person it belongs to.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Its length in bytes: bounds are checked before a secret is used.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether it is empty (a field sent as `""`).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// The secret as a [`SecretString`], for code that keeps holding it.
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl From<String> for WireSecret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl From<&str> for WireSecret {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl From<SecretString> for WireSecret {
    fn from(secret: SecretString) -> Self {
        Self(secret)
    }
}

impl std::fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for WireSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for WireSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl utoipa::PartialSchema for WireSecret {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .description(Some(
                "A secret (code, token or handle). Clients must not log it; \
                 the CA stores only its digest.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for WireSecret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_a_plain_string_on_the_wire() {
        let secret: WireSecret = serde_json::from_str(r#""s3cr3t-ü""#).unwrap();
        assert_eq!(secret.expose(), "s3cr3t-ü");
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#""s3cr3t-ü""#);
    }

    #[test]
    fn it_refuses_what_is_not_a_string() {
        for json in ["42", "null", r#"["a"]"#, r#"{"a":"b"}"#] {
            assert!(serde_json::from_str::<WireSecret>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn debug_never_shows_it() {
        #[derive(Debug)]
        #[allow(dead_code)] // read only through Debug
        struct Carrier {
            token: WireSecret,
            maybe: Option<WireSecret>,
            many: Vec<WireSecret>,
        }
        let carrier = Carrier {
            token: "tok-AAAA".into(),
            maybe: Some("tok-BBBB".into()),
            many: vec!["tok-CCCC".into()],
        };
        let shown = format!("{carrier:?} {carrier:#?}");
        assert!(!shown.contains("tok-"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn the_schema_is_a_masked_string() {
        let schema = serde_json::to_value(<WireSecret as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["format"], "password");
    }
}
