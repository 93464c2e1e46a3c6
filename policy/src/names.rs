//! Validation of the names that end up inside certificates or in matching.
//!
//! Principals are copied verbatim into the certificate's "valid principals" field
//! (PROTOCOL.certkeys) and, on the host, compared against
//! `AuthorizedPrincipalsFile` lines and `principals="…"` options, which are comma
//! separated lists. A principal with a comma, whitespace or a control character could
//! therefore mean something different to sshd than to us, so we refuse them.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Longest user name or principal we accept.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// The placeholder that expands to the requesting user's name.
pub(crate) const USER_PLACEHOLDER: &str = "{user}";

/// The five extensions OpenSSH defines (PROTOCOL.certkeys, "Extensions").
pub(crate) const STANDARD_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// A user name or an expanded principal: 1–64 characters, no whitespace, commas or
/// control characters.
pub(crate) fn check_name(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{kind} must not be empty"));
    }
    if s.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} {s:?} is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == ',')
    {
        return Err(format!(
            "{kind} {s:?} contains {c:?} (whitespace, commas and control characters are not allowed)"
        ));
    }
    Ok(())
}

/// A principal as written in the policy, possibly containing `{user}`.
pub(crate) fn check_principal_template(s: &str) -> Result<(), String> {
    // Validate the template with the placeholder stood in by a one-character name;
    // the expanded form is checked again at evaluation time (a long user name can
    // push it over the limit).
    let stand_in = s.replace(USER_PLACEHOLDER, "u");
    if stand_in.contains('{') || stand_in.contains('}') {
        return Err(format!(
            "principal {s:?} has an unknown placeholder (only {USER_PLACEHOLDER} is supported)"
        ));
    }
    check_name("principal", &stand_in).map_err(|_| {
        format!(
            "principal {s:?} is not valid: 1 to {MAX_NAME_LEN} characters, \
             no whitespace, commas or control characters"
        )
    })
}

/// Expand `{user}` in a principal template.
pub(crate) fn expand(template: &str, user: &str) -> String {
    template.replace(USER_PLACEHOLDER, user)
}

/// Role names: `[A-Za-z0-9_.-]`, 1–64 characters, so they are safe in logs and keys.
pub(crate) fn check_role_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(format!(
            "role name {s:?} must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "role name {s:?} may only contain letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Group names come from the identity store and may contain spaces ("Domain Admins"),
/// but never control characters.
pub(crate) fn check_group_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 256 {
        return Err(format!("group name {s:?} must be 1 to 256 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("group name {s:?} contains a control character"));
    }
    Ok(())
}

/// Extension names: one of OpenSSH's five, or a vendor `name@domain` extension.
/// `…@rampart` is reserved for the CA's own MFA extensions, which policy must not
/// be able to forge.
pub(crate) fn check_extension(s: &str) -> Result<(), String> {
    if STANDARD_EXTENSIONS.contains(&s) {
        return Ok(());
    }
    let Some((name, domain)) = s.split_once('@') else {
        return Err(format!(
            "unknown extension {s:?}: use one of {} or a vendor name@domain",
            STANDARD_EXTENSIONS.join(", ")
        ));
    };
    if name.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(format!("extension {s:?} must look like name@domain"));
    }
    if domain == "rampart" {
        return Err(format!(
            "extension {s:?}: the @rampart namespace is reserved for the CA"
        ));
    }
    check_name("extension", s)
}

/// A target-name glob: `*` and `?` wildcards, otherwise a host name character set.
pub(crate) fn check_target_pattern(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err(format!("target pattern {s:?} must be 1 to 253 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == ',')
    {
        return Err(format!("target pattern {s:?} contains {c:?}"));
    }
    Ok(())
}

/// A host certificate principal: an IP address or an RFC 1123 host name.
pub(crate) fn check_host_name(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if s.is_empty() || s.len() > 253 {
        return Err(format!("host name {s:?} must be 1 to 253 characters"));
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "{s:?} is neither an IP address nor a valid host name (RFC 1123 labels: letters, digits, '-')"
            ));
        }
    }
    Ok(())
}

/// Parse a bastion's `address`: `host`, `host:port` or `[v6]:port`, the host
/// an IP address or RFC 1123 name (so nothing an ssh_config line could
/// misread), the port 1-65535 (default 22).
pub(crate) fn parse_ssh_address(s: &str) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("address {s:?}: port {p:?} is not 1-65535");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {s:?}: no closing ']'"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("address {s:?}: {h:?} is not an IPv6 address"));
        }
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(|| bad_port(p))?)),
        }
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
        (s, None)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    check_host_name(host).map_err(|m| format!("address {s:?}: {m}"))?;
    let port = match port {
        None => 22,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad_port(p))?,
    };
    Ok((host.to_owned(), port))
}

/// Parse a `source_address` entry: CIDR, or a bare address meaning that one host
/// (OpenSSH's source-address option accepts both, PROTOCOL.certkeys).
pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    Err(format!(
        "invalid source address {s:?}: expected a CIDR such as \"10.0.0.0/8\" or an IP address"
    ))
}

/// Defines a string newtype whose `Deserialize` runs a check, so that a bad value is
/// reported by the TOML parser together with its line and column.
macro_rules! checked_string {
    ($(#[$m:meta])* $name:ident, $check:path, $expecting:literal) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) struct $name(pub(crate) String);

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $check(v).map_err(E::custom)?;
                        Ok($name(v.to_owned()))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

checked_string!(
    /// A principal or login template from the policy file.
    PrincipalTemplate,
    check_principal_template,
    "a principal name such as \"root\" or \"{user}\""
);
checked_string!(
    /// An extension name from the policy file.
    ExtensionName,
    check_extension,
    "an extension name such as \"permit-pty\""
);
checked_string!(
    /// A target glob from the policy file.
    TargetPattern,
    check_target_pattern,
    "a target name pattern such as \"db-*\""
);
checked_string!(
    /// A group name from the policy file.
    GroupName,
    check_group_name,
    "a group name"
);

fn check_user_name(s: &str) -> Result<(), String> {
    check_name("user name", s)
}
checked_string!(
    /// A user name from the policy file.
    UserName,
    check_user_name,
    "a user name"
);

/// A `source_address` entry from the policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr(pub(crate) IpNet);

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CIDR string such as \"10.0.0.0/8\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Cidr, E> {
                parse_cidr(v).map(Cidr).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bastion_addresses() {
        for (s, want) in [
            ("bastion-1", ("bastion-1", 22)),
            (
                "bastion-1.example.com:2222",
                ("bastion-1.example.com", 2222),
            ),
            ("127.0.0.1:2222", ("127.0.0.1", 2222)),
            ("[::1]:2222", ("::1", 2222)),
            ("[::1]", ("::1", 22)),
            ("::1", ("::1", 22)),
        ] {
            assert_eq!(parse_ssh_address(s), Ok((want.0.to_owned(), want.1)), "{s}");
        }
        for bad in [
            "",
            "b:0",
            "b:65536",
            "b:x",
            "b 1",
            "b\nProxyCommand x",
            "[::1",
            "[x]:22",
            "[::1]22",
            "*.example.com",
            "b#c",
        ] {
            assert!(parse_ssh_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        let ok = ["alice", "a.b-c_d", "user@example.com", &"x".repeat(64)];
        for s in ok {
            assert!(check_name("user name", s).is_ok(), "{s}");
        }
        let bad = ["", "a b", "a,b", "a\tb", "a\u{0}b", "a\nb", &"x".repeat(65)];
        for s in bad {
            assert!(check_name("user name", s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn principal_templates() {
        for s in ["{user}", "root", "{user}-admin", "x{user}{user}"] {
            assert!(check_principal_template(s).is_ok(), "{s}");
        }
        for s in ["{usr}", "{user", "a b", "", "r,oot", "{}"] {
            assert!(check_principal_template(s).is_err(), "{s:?}");
        }
        assert_eq!(expand("{user}-admin", "bob"), "bob-admin");
    }

    #[test]
    fn role_and_group_names() {
        assert!(check_role_name("prod-root.v2_x").is_ok());
        for s in ["", "a b", "a/b", "ä", &"r".repeat(65)] {
            assert!(check_role_name(s).is_err(), "{s:?}");
        }
        assert!(check_group_name("Domain Admins").is_ok());
        assert!(check_group_name("").is_err());
        assert!(check_group_name("a\u{7}").is_err());
    }

    #[test]
    fn extensions() {
        for s in STANDARD_EXTENSIONS {
            assert!(check_extension(s).is_ok());
        }
        assert!(check_extension("login@github.com").is_ok());
        for s in [
            "permit-everything",
            "@x",
            "x@",
            "a@b@c",
            "mfa@rampart",
            "permit pty",
        ] {
            assert!(check_extension(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn hosts_and_cidrs() {
        for s in ["db-1", "db-1.prod.example.com", "10.0.0.1", "::1", "A1"] {
            assert!(check_host_name(s).is_ok(), "{s}");
        }
        for s in [
            "",
            "-db",
            "db-",
            "a..b",
            "db_1",
            "db 1",
            "*.example.com",
            &"a".repeat(64),
        ] {
            assert!(check_host_name(s).is_err(), "{s:?}");
        }
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(
            parse_cidr("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        for s in [
            "10.0.0.0/33",
            "10.0.0/8",
            "",
            "any",
            "10.0.0.0/-1",
            "::/129",
        ] {
            assert!(parse_cidr(s).is_err(), "{s:?}");
        }
    }
}
