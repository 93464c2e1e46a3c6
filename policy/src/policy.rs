//! The policy file: its TOML shape (`Raw*`, file-facing) and the validated [`Policy`].
//!
//! "Parse, don't validate": everything an evaluation relies on (known role names,
//! well-formed principals, positive durations) is checked here once, so `evaluate`
//! never has to handle a malformed policy.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::duration::DurationValue;
use crate::names::{
    check_group_name, check_name, check_role_name, Cidr, ExtensionName, GroupName,
    PrincipalTemplate, TargetPattern, UserName,
};
use crate::{FactorStrength, PolicyError};

/// The policy format version this build understands.
pub const POLICY_VERSION: i64 = 1;

/// `defaults.ttl` when absent.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// `defaults.max_ttl` when absent.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(8 * 3600);
/// `defaults.min_factor` when absent.
pub const DEFAULT_MIN_FACTOR: FactorStrength = FactorStrength::Otp;
/// `hosts.max_ttl` when absent.
pub const DEFAULT_HOST_MAX_TTL: Duration = Duration::from_secs(30 * 86_400);
/// A role's `extensions` when absent: an interactive shell and nothing else.
pub const DEFAULT_EXTENSIONS: [&str; 1] = ["permit-pty"];

// ---------------------------------------------------------------------------
// File-facing shape. Nothing here is public: callers only ever see `Policy`.
// ---------------------------------------------------------------------------

/// Read before the full parse so that a future-version file gets "unsupported
/// version" rather than a confusing "unknown field" error.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[allow(dead_code)] // checked by VersionProbe; present here so it is required
    version: i64,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, RawRole>,
    #[serde(default)]
    groups: BTreeMap<GroupName, Vec<Spanned<String>>>,
    #[serde(default)]
    users: BTreeMap<UserName, Vec<Spanned<String>>>,
    #[serde(default)]
    deny: Vec<Spanned<RawDeny>>,
    #[serde(default)]
    hosts: RawHosts,
    #[serde(default)]
    bastions: BTreeMap<Spanned<String>, RawBastion>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    ttl: Option<DurationValue>,
    max_ttl: Option<DurationValue>,
    min_factor: Option<FactorStrength>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    #[serde(default)]
    principals: Vec<PrincipalTemplate>,
    max_ttl: Option<DurationValue>,
    min_factor: Option<FactorStrength>,
    #[serde(default)]
    allow_recovery: bool,
    mfa_max_age: Option<DurationValue>,
    #[serde(default)]
    source_address: Vec<Cidr>,
    extensions: Option<Vec<ExtensionName>>,
    #[serde(default)]
    targets: RawTargets,
    logins: Option<Vec<PrincipalTemplate>>,
    /// `"direct"` (default) or `"bastion"`: a bastion-only role's principals
    /// go only into per-session certificates.
    access: Option<String>,
    /// Whether a WebAuthn assertion given on the CA's approval page (reached
    /// through a link) satisfies the role; default true.
    webauthn_link: Option<bool>,
    /// Bastion: ask for a per-session code before connecting onward.
    #[serde(default)]
    session_mfa: bool,
    /// Bastion: record keystrokes as well as output.
    #[serde(default)]
    record_input: bool,
    /// Bastion: `"full"` (default) or `"metered"` (bulk exec and subsystem
    /// data beyond `record_metered_mib` per direction is counted and hashed,
    /// not stored).
    record: Option<String>,
    /// Bastion: with `record = "metered"`, MiB kept of each direction of an
    /// exec or subsystem channel (default [`DEFAULT_RECORD_METERED_MIB`]).
    record_metered_mib: Option<u64>,
    /// Bastion: allow port forwarding through sessions of this role.
    #[serde(default)]
    port_forwarding: bool,
    /// Bastion: allow agent forwarding to the target.
    #[serde(default)]
    agent_forwarding: bool,
    /// Bastion: labels a target must carry (all of them) for this role to reach it.
    #[serde(default)]
    target_labels: BTreeMap<String, String>,
    /// OIDC step-up: `acr` values any one of which satisfies the role.
    #[serde(default)]
    oidc_acr: Vec<String>,
    /// OIDC step-up: `amr` values that must all be present.
    #[serde(default)]
    oidc_amr: Vec<String>,
    /// Factor accepted instead of OIDC while the identity provider is down.
    fallback_factor: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    allow: Vec<TargetPattern>,
    #[serde(default)]
    deny: Vec<TargetPattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeny {
    #[serde(default)]
    groups: Vec<GroupName>,
    #[serde(default)]
    users: Vec<UserName>,
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    principals: Vec<PrincipalTemplate>,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHosts {
    max_ttl: Option<DurationValue>,
}

/// `[bastions.<name>]`: what a joined bastion may stand in for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBastion {
    /// Target names (globs) the bastion may get host and session certificates for.
    targets: Vec<TargetPattern>,
    /// Where users' ssh reaches the bastion, `host[:port]` (default: its name,
    /// port 22). Only the CLI uses it (`rampart ls`, `rampart ssh`, the Host
    /// blocks `rampart login` writes).
    address: Option<String>,
}

// ---------------------------------------------------------------------------
// Validated shape.
// ---------------------------------------------------------------------------

/// A validated policy. Build one with [`Policy::from_toml`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) default_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) min_factor: FactorStrength,
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    pub(crate) users: BTreeMap<String, Vec<String>>,
    pub(crate) deny: Vec<DenyRule>,
    pub(crate) host_max_ttl: Duration,
    /// `[bastions.<name>] targets`, by bastion name.
    pub(crate) bastions: BTreeMap<String, Vec<String>>,
    /// `[bastions.<name>] address`, by bastion name: host and port.
    pub(crate) bastion_addresses: BTreeMap<String, (String, u16)>,
}

/// One `[roles.<name>]` table, validated.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) name: String,
    /// Templates; `{user}` is expanded at evaluation.
    pub(crate) principals: Vec<String>,
    pub(crate) max_ttl: Option<Duration>,
    pub(crate) min_factor: Option<FactorStrength>,
    pub(crate) allow_recovery: bool,
    pub(crate) mfa_max_age: Option<Duration>,
    /// `webauthn_link = false`: a WebAuthn assertion counts only when the
    /// client obtained it from a key on its own machine (CTAP2), never one
    /// given on the CA's approval page.
    pub(crate) webauthn_link: bool,
    pub(crate) source_address: Vec<IpNet>,
    pub(crate) extensions: Vec<String>,
    pub(crate) targets_allow: Vec<String>,
    pub(crate) targets_deny: Vec<String>,
    /// Templates; `None` means "the same as `principals`".
    pub(crate) logins: Option<Vec<String>>,
    /// `access = "bastion"`: the role's principals never go into the user's
    /// own certificate, only into a bastion's per-session certificates.
    pub(crate) bastion_only: bool,
    /// Bastion switches; see [`crate::AccessGrant`].
    pub(crate) session_mfa: bool,
    pub(crate) record_input: bool,
    /// `record = "metered"`: MiB kept of each direction of an exec or
    /// subsystem channel; `None` records in full.
    pub(crate) record_metered_mib: Option<u64>,
    /// `record_metered_mib` was set (for the lint when `record` is full).
    pub(crate) record_metered_mib_set: bool,
    pub(crate) port_forwarding: bool,
    pub(crate) agent_forwarding: bool,
    /// Every one of these must be among the target's labels.
    pub(crate) target_labels: BTreeMap<String, String>,
    /// OIDC step-up requirements and the outage fallback.
    pub(crate) oidc: crate::oidc::RoleOidc,
}

impl Role {
    /// The login templates the bastion may use for this role.
    pub(crate) fn login_templates(&self) -> &[String] {
        self.logins.as_deref().unwrap_or(&self.principals)
    }
}

/// One `[[deny]]` rule, validated.
#[derive(Debug, Clone)]
pub(crate) struct DenyRule {
    /// 1-based position in the file, for messages.
    pub(crate) number: usize,
    pub(crate) groups: Vec<String>,
    pub(crate) users: Vec<String>,
    /// `None` = every role (`roles = ["*"]`).
    pub(crate) roles: Option<Vec<String>>,
    /// Templates; `{user}` is expanded at evaluation.
    pub(crate) principals: Vec<String>,
    pub(crate) reason: String,
}

impl DenyRule {
    /// Whether this rule applies to the given user.
    pub(crate) fn matches(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Whether this rule removes the named role.
    pub(crate) fn removes_role(&self, role: &str) -> bool {
        match &self.roles {
            None => true,
            Some(list) => list.iter().any(|r| r == role),
        }
    }
}

/// `record_metered_mib` when a `record = "metered"` role sets none.
pub const DEFAULT_RECORD_METERED_MIB: u64 = 16;
/// The largest `record_metered_mib`: more is a full recording in all but name.
pub const MAX_RECORD_METERED_MIB: u64 = 4096;

/// Longest label key and value in `target_labels`.
pub const MAX_LABEL_KEY: usize = 64;
/// Longest label value in `target_labels`.
pub const MAX_LABEL_VALUE: usize = 256;

/// Label keys are `[A-Za-z0-9_.-]{1,64}`; values any text up to 256 bytes
/// without control characters (they are compared exactly).
fn check_labels(labels: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    for (k, v) in &labels {
        if k.is_empty()
            || k.len() > MAX_LABEL_KEY
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(format!(
                "label key {k:?} must be 1-{MAX_LABEL_KEY} of [A-Za-z0-9_.-]"
            ));
        }
        if v.len() > MAX_LABEL_VALUE || v.chars().any(char::is_control) {
            return Err(format!(
                "label {k} must be at most {MAX_LABEL_VALUE} bytes without control characters"
            ));
        }
    }
    Ok(labels)
}

/// 1-based line number of a byte offset.
fn line_at(src: &str, offset: usize) -> usize {
    src.get(..offset)
        .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count())
        .saturating_add(1)
}

impl Policy {
    /// Parse and validate a policy file.
    ///
    /// Unknown keys anywhere are errors (`deny_unknown_fields`): a misspelt
    /// `min_factr` silently ignored would weaken the policy without anyone noticing.
    pub fn from_toml(src: &str) -> Result<Policy, PolicyError> {
        let probe: VersionProbe = toml::from_str(src)?;
        match probe.version {
            Some(toml::Value::Integer(v)) if v != POLICY_VERSION => {
                return Err(PolicyError::UnsupportedVersion {
                    found: v,
                    supported: POLICY_VERSION,
                })
            }
            // Missing or mistyped: the full parse below reports it with a location.
            _ => {}
        }
        let raw: RawPolicy = toml::from_str(src)?;
        Self::from_raw(raw, src)
    }

    fn from_raw(raw: RawPolicy, src: &str) -> Result<Policy, PolicyError> {
        let invalid = |key: String, line: Option<usize>, message: String| PolicyError::Invalid {
            key,
            line,
            message,
        };

        let mut roles = BTreeMap::new();
        for (name, r) in raw.roles {
            let line = Some(line_at(src, name.span().start));
            let name = name.into_inner();
            check_role_name(&name)
                .map_err(|m| invalid(format!("roles.{}", quote_key(&name)), line, m))?;
            if name == "*" {
                // Unreachable given check_role_name, but "*" is the deny wildcard and
                // must never be a real role name.
                return Err(invalid(format!("roles.{name}"), line, "reserved".into()));
            }
            let mut extensions: Vec<String> = match r.extensions {
                Some(list) => list.into_iter().map(|e| e.0).collect(),
                None => DEFAULT_EXTENSIONS.iter().map(|s| (*s).to_owned()).collect(),
            };
            extensions.sort();
            extensions.dedup();
            let role = Role {
                name: name.clone(),
                principals: dedup(r.principals.into_iter().map(|p| p.0)),
                max_ttl: r.max_ttl.map(|d| d.0),
                min_factor: r.min_factor,
                allow_recovery: r.allow_recovery,
                mfa_max_age: r.mfa_max_age.map(|d| d.0),
                webauthn_link: r.webauthn_link.unwrap_or(true),
                source_address: dedup(r.source_address.into_iter().map(|c| c.0)),
                extensions,
                targets_allow: r.targets.allow.into_iter().map(|p| p.0).collect(),
                targets_deny: r.targets.deny.into_iter().map(|p| p.0).collect(),
                logins: r.logins.map(|l| dedup(l.into_iter().map(|p| p.0))),
                bastion_only: match r.access.as_deref() {
                    None | Some("direct") => false,
                    Some("bastion") => true,
                    Some(other) => {
                        return Err(invalid(
                            format!("roles.{}.access", quote_key(&name)),
                            line,
                            format!(
                                "{other:?} is not an access mode: use \"direct\" or \"bastion\""
                            ),
                        ))
                    }
                },
                session_mfa: r.session_mfa,
                record_input: r.record_input,
                record_metered_mib: match r.record.as_deref() {
                    None | Some("full") => None,
                    Some("metered") => {
                        let mib = r.record_metered_mib.unwrap_or(DEFAULT_RECORD_METERED_MIB);
                        if !(1..=MAX_RECORD_METERED_MIB).contains(&mib) {
                            return Err(invalid(
                                format!("roles.{}.record_metered_mib", quote_key(&name)),
                                line,
                                format!("{mib} is not between 1 and {MAX_RECORD_METERED_MIB}"),
                            ));
                        }
                        Some(mib)
                    }
                    Some(other) => {
                        return Err(invalid(
                            format!("roles.{}.record", quote_key(&name)),
                            line,
                            format!(
                                "{other:?} is not a recording mode: use \"full\" or \"metered\""
                            ),
                        ))
                    }
                },
                record_metered_mib_set: r.record_metered_mib.is_some(),
                port_forwarding: r.port_forwarding,
                agent_forwarding: r.agent_forwarding,
                target_labels: check_labels(r.target_labels).map_err(|m| {
                    invalid(format!("roles.{}.target_labels", quote_key(&name)), line, m)
                })?,
                oidc: crate::oidc::RoleOidc::from_raw(r.oidc_acr, r.oidc_amr, r.fallback_factor)
                    .map_err(|m| invalid(format!("roles.{}", quote_key(&name)), line, m))?,
            };
            roles.insert(name, role);
        }

        // Role references must resolve; an unknown role name in a grant is a typo
        // that would silently grant nothing, and in a deny rule one that would
        // silently deny nothing.
        let resolve =
            |key: String, list: Vec<Spanned<String>>| -> Result<Vec<String>, PolicyError> {
                let mut out = Vec::new();
                for r in list {
                    let line = Some(line_at(src, r.span().start));
                    let r = r.into_inner();
                    if !roles.contains_key(&r) {
                        return Err(PolicyError::UnknownRole { key, line, role: r });
                    }
                    if !out.contains(&r) {
                        out.push(r);
                    }
                }
                Ok(out)
            };

        let mut groups = BTreeMap::new();
        for (g, list) in raw.groups {
            let key = format!("groups.{}", quote_key(&g.0));
            groups.insert(g.0, resolve(key, list)?);
        }
        let mut users = BTreeMap::new();
        for (u, list) in raw.users {
            let key = format!("users.{}", quote_key(&u.0));
            users.insert(u.0, resolve(key, list)?);
        }

        let mut deny = Vec::new();
        for (i, rule) in raw.deny.into_iter().enumerate() {
            let number = i.saturating_add(1);
            let key = format!("deny[{number}]");
            let line = Some(line_at(src, rule.span().start));
            let rule = rule.into_inner();
            if rule.groups.is_empty() && rule.users.is_empty() {
                return Err(invalid(
                    key,
                    line,
                    "must name at least one group or user it applies to".into(),
                ));
            }
            if rule.roles.is_empty() && rule.principals.is_empty() {
                return Err(invalid(
                    key,
                    line,
                    "removes nothing: set roles (\"*\" for all) and/or principals".into(),
                ));
            }
            let all = rule.roles.iter().any(|r| r.get_ref() == "*");
            let roles_sel = if all {
                None
            } else {
                Some(resolve(format!("{key}.roles"), rule.roles)?)
            };
            let reason = match rule.reason {
                Some(r) if !r.trim().is_empty() => {
                    if r.chars().any(char::is_control) {
                        return Err(invalid(
                            format!("{key}.reason"),
                            line,
                            "must not contain control characters".into(),
                        ));
                    }
                    r
                }
                _ => format!("deny rule #{number}"),
            };
            deny.push(DenyRule {
                number,
                groups: dedup(rule.groups.into_iter().map(|g| g.0)),
                users: dedup(rule.users.into_iter().map(|u| u.0)),
                roles: roles_sel,
                principals: dedup(rule.principals.into_iter().map(|p| p.0)),
                reason,
            });
        }

        // Belt and braces: these are checked during deserialisation already.
        for g in groups.keys() {
            check_group_name(g)
                .map_err(|m| invalid(format!("groups.{}", quote_key(g)), None, m))?;
        }
        for u in users.keys() {
            check_name("user name", u)
                .map_err(|m| invalid(format!("users.{}", quote_key(u)), None, m))?;
        }

        let mut bastions = BTreeMap::new();
        let mut bastion_addresses = BTreeMap::new();
        for (name, b) in raw.bastions {
            let line = Some(line_at(src, name.span().start));
            let name = name.into_inner();
            let key = format!("bastions.{}", quote_key(&name));
            crate::names::check_host_name(&name).map_err(|m| invalid(key.clone(), line, m))?;
            if b.targets.is_empty() {
                return Err(invalid(
                    format!("{key}.targets"),
                    line,
                    "list at least one target name or pattern; remove the table to register none"
                        .into(),
                ));
            }
            if let Some(address) = &b.address {
                let parsed = crate::names::parse_ssh_address(address)
                    .map_err(|m| invalid(format!("{key}.address"), line, m))?;
                bastion_addresses.insert(name.clone(), parsed);
            }
            bastions.insert(name, dedup(b.targets.into_iter().map(|t| t.0)));
        }

        Ok(Policy {
            default_ttl: raw.defaults.ttl.map_or(DEFAULT_TTL, |d| d.0),
            max_ttl: raw.defaults.max_ttl.map_or(DEFAULT_MAX_TTL, |d| d.0),
            min_factor: raw.defaults.min_factor.unwrap_or(DEFAULT_MIN_FACTOR),
            roles,
            groups,
            users,
            deny,
            host_max_ttl: raw.hosts.max_ttl.map_or(DEFAULT_HOST_MAX_TTL, |d| d.0),
            bastions,
            bastion_addresses,
        })
    }

    /// Lifetime of a user certificate when the client asks for none
    /// (`defaults.ttl`, default 1h). Evaluation still clamps it to the ceilings.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// The hard ceiling for every user certificate (`defaults.max_ttl`, default 8h).
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// The factor-strength floor for every role (`defaults.min_factor`, default otp).
    pub fn min_factor(&self) -> FactorStrength {
        self.min_factor
    }

    /// The ceiling for host certificates (`hosts.max_ttl`, default 30d).
    pub fn host_max_ttl(&self) -> Duration {
        self.host_max_ttl
    }

    /// Names of all defined roles, sorted.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// Roles a user would hold before deny rules and factor checks: the union of
    /// the user's `[groups]` mappings and their `[users]` entry, sorted.
    pub fn roles_for(&self, user: &str, groups: &[String]) -> BTreeSet<String> {
        groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .chain(self.users.get(user))
            .flatten()
            .cloned()
            .collect()
    }
}

fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Render a TOML key as it would be written in a dotted path.
pub(crate) fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "version = 1\n[roles.dev]\nprincipals = [\"{user}\"]\n[groups]\neng = [\"dev\"]\n";

    fn err(src: &str) -> String {
        Policy::from_toml(src).unwrap_err().to_string()
    }

    #[test]
    fn minimal_policy_gets_documented_defaults() {
        let p = Policy::from_toml(MINIMAL).unwrap();
        assert_eq!(p.default_ttl(), DEFAULT_TTL);
        assert_eq!(p.max_ttl(), DEFAULT_MAX_TTL);
        assert_eq!(p.min_factor(), FactorStrength::Otp);
        assert_eq!(p.host_max_ttl(), DEFAULT_HOST_MAX_TTL);
        let dev = p.roles.get("dev").unwrap();
        assert_eq!(dev.extensions, ["permit-pty"]);
        assert!(!dev.allow_recovery);
        assert!(dev.targets_allow.is_empty(), "no targets unless configured");
        assert_eq!(dev.login_templates(), ["{user}"]);
        assert_eq!(p.role_names().collect::<Vec<_>>(), ["dev"]);
    }

    /// (name, source, substrings the error must contain)
    #[test]
    fn rejects_bad_policies_with_located_messages() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "missing version",
                "[defaults]\nttl = \"1h\"\n",
                &["version"],
            ),
            (
                "future version",
                "version = 2\nnew_thing = 1\n",
                &["unsupported version 2"],
            ),
            ("version type", "version = \"1\"\n", &["version", "line 1"]),
            (
                "unknown top-level key",
                "version = 1\nrolez = {}\n",
                &["rolez", "line 2"],
            ),
            (
                "unknown key in role",
                "version = 1\n[roles.dev]\nprincipals = [\"x\"]\nmin_factr = \"otp\"\n",
                &["min_factr", "line 4"],
            ),
            (
                "unknown key in defaults",
                "version = 1\n[defaults]\ntll = \"1h\"\n",
                &["tll", "line 3"],
            ),
            (
                "unknown key in targets",
                "version = 1\n[roles.dev]\ntargets = { allow = [\"*\"], block = [] }\n",
                &["block", "line 3"],
            ),
            (
                "unknown key in deny",
                "version = 1\n[[deny]]\nusers = [\"a\"]\nrole = [\"x\"]\n",
                &["role", "line 4"],
            ),
            (
                "zero duration",
                "version = 1\n[defaults]\nttl = \"0s\"\n",
                &["ttl", "line 3", "greater than zero"],
            ),
            (
                "negative duration",
                "version = 1\n[defaults]\nmax_ttl = \"-1h\"\n",
                &["max_ttl", "line 3", "unexpected '-'"],
            ),
            (
                "garbage duration",
                "version = 1\n[hosts]\nmax_ttl = \"forever\"\n",
                &["max_ttl", "line 3", "forever"],
            ),
            (
                "integer duration",
                "version = 1\n[defaults]\nttl = 3600\n",
                &["ttl", "line 3", "duration string"],
            ),
            (
                "bad duration in role",
                "version = 1\n[roles.dev]\nmfa_max_age = \"1.5h\"\n",
                &["mfa_max_age", "line 3"],
            ),
            (
                "bad cidr",
                "version = 1\n[roles.dev]\nsource_address = [\"10.0.0.0/33\"]\n",
                &["source_address", "line 3", "10.0.0.0/33"],
            ),
            (
                "garbage cidr",
                "version = 1\n[roles.dev]\nsource_address = [\"office\"]\n",
                &["line 3", "office"],
            ),
            (
                "bad factor",
                "version = 1\n[defaults]\nmin_factor = \"sms\"\n",
                &["min_factor", "line 3", "sms"],
            ),
            (
                "link approval switch as a string",
                "version = 1\n[roles.dev]\nwebauthn_link = \"no\"\n",
                &["webauthn_link", "line 3", "boolean"],
            ),
            (
                "unknown role in group",
                "version = 1\n[roles.dev]\n[groups]\neng = [\"dev\", \"prod\"]\n",
                &["groups.eng", "line 4", "unknown role \"prod\""],
            ),
            (
                "unknown role in users",
                "version = 1\n[users]\nalice = [\"admin\"]\n",
                &["users.alice", "line 3", "\"admin\""],
            ),
            (
                "unknown role in deny",
                "version = 1\n[roles.dev]\n[[deny]]\nusers = [\"a\"]\nroles = [\"dve\"]\n",
                &["deny[1].roles", "line 5", "\"dve\""],
            ),
            (
                "deny without subject",
                "version = 1\n[roles.dev]\n[[deny]]\nroles = [\"dev\"]\n",
                &["deny[1]", "line 3", "group or user"],
            ),
            (
                "deny removing nothing",
                "version = 1\n[[deny]]\nusers = [\"a\"]\n",
                &["deny[1]", "removes nothing"],
            ),
            (
                "bad role name",
                "version = 1\n[roles.\"prod root\"]\n",
                &["roles.\"prod root\"", "line 2", "letters, digits"],
            ),
            (
                "bad principal",
                "version = 1\n[roles.dev]\nprincipals = [\"root,admin\"]\n",
                &["principals", "line 3", "root,admin"],
            ),
            (
                "unknown placeholder",
                "version = 1\n[roles.dev]\nprincipals = [\"{username}\"]\n",
                &["line 3", "placeholder"],
            ),
            (
                "unknown extension",
                "version = 1\n[roles.dev]\nextensions = [\"permit-everything\"]\n",
                &["extensions", "line 3", "permit-everything"],
            ),
            (
                "reserved extension",
                "version = 1\n[roles.dev]\nextensions = [\"mfa-method@rampart\"]\n",
                &["line 3", "reserved"],
            ),
            (
                "bad user name key",
                "version = 1\n[users]\n\"bob smith\" = []\n",
                &["bob smith", "line 3"],
            ),
            ("not toml", "version = 1\n[roles\n", &["line 2"]),
            (
                "duplicate role",
                "version = 1\n[roles.dev]\n[roles.dev]\n",
                &["line 3"],
            ),
        ];
        for (name, src, wants) in cases {
            let e = err(src);
            for w in *wants {
                assert!(e.contains(w), "{name}: {e:?} does not contain {w:?}");
            }
        }
    }

    #[test]
    fn deny_wildcard_and_default_reason() {
        let src = "version = 1\n[roles.dev]\n[[deny]]\nusers = [\"mallory\"]\nroles = [\"*\"]\n";
        let p = Policy::from_toml(src).unwrap();
        let rule = p.deny.first().unwrap();
        assert!(rule.roles.is_none());
        assert!(rule.removes_role("dev"));
        assert_eq!(rule.reason, "deny rule #1");
    }

    #[test]
    fn bare_ip_source_address_is_a_host_route() {
        let src = "version = 1\n[roles.dev]\nsource_address = [\"192.0.2.7\", \"2001:db8::/32\"]\n";
        let p = Policy::from_toml(src).unwrap();
        let nets: Vec<String> = p
            .roles
            .get("dev")
            .unwrap()
            .source_address
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["192.0.2.7/32", "2001:db8::/32"]);
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 4), 3);
        assert_eq!(line_at("a", 99), 1);
    }

    // -----------------------------------------------------------------------
    // The policy example in docs/configuration.md against the keys accepted.
    // -----------------------------------------------------------------------

    use crate::reference::BOGUS_KEY;

    /// The keys a table accepts ([`crate::reference::accepted_keys`]).
    fn accepted_keys(table: &str, probe: &str) -> BTreeSet<String> {
        crate::reference::accepted_keys::<RawPolicy>(probe)
            .unwrap_or_else(|e| panic!("[{table}]: {e}"))
    }

    /// The keys of a TOML table, or of every table in an array of tables.
    fn keys_of(value: Option<&toml::Value>) -> BTreeSet<String> {
        match value {
            Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
            Some(toml::Value::Array(items)) => {
                items.iter().flat_map(|v| keys_of(Some(v))).collect()
            }
            _ => BTreeSet::new(),
        }
    }

    /// The keys of every table under a map such as `[roles.NAME]`.
    fn keys_of_each(value: Option<&toml::Value>) -> BTreeSet<String> {
        match value {
            Some(toml::Value::Table(t)) => t.values().flat_map(|v| keys_of(Some(v))).collect(),
            _ => BTreeSet::new(),
        }
    }

    /// The example policy in docs/configuration.md uses every key each policy
    /// table accepts, and is itself a valid policy (so it names no key the code
    /// refuses): a key added, renamed or removed without the doc fails here.
    #[test]
    fn the_documented_policy_example_uses_exactly_the_keys_the_policy_accepts() {
        const DOC: &str = "docs/configuration.md";
        let doc = include_str!("../../docs/configuration.md");
        let heading = "## The policy: `policy.toml`";
        let section = doc
            .split_once(heading)
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{DOC} has no heading {heading:?}"));
        let example = section
            .split_once("```toml\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .map(|(toml, _)| toml)
            .unwrap_or_else(|| panic!("{DOC}: no ```toml example under {heading:?}"));

        if let Err(e) = Policy::from_toml(example) {
            panic!("{DOC}: the policy example is refused: {e}");
        }
        let value: toml::Value = toml::from_str(example).unwrap();
        let role_targets = value
            .get("roles")
            .and_then(|roles| roles.as_table())
            .map(|roles| {
                roles
                    .values()
                    .flat_map(|role| keys_of(role.get("targets")))
                    .collect::<BTreeSet<_>>()
            });

        // Each table: its name, the keys the example gives it, and a policy
        // that puts the bogus key in it.
        let tables: [(&str, BTreeSet<String>, String); 7] = [
            (
                "the top level",
                keys_of(Some(&value)),
                format!("{BOGUS_KEY} = 1"),
            ),
            (
                "[defaults]",
                keys_of(value.get("defaults")),
                format!("[defaults]\n{BOGUS_KEY} = 1"),
            ),
            (
                "[roles.NAME]",
                keys_of_each(value.get("roles")),
                format!("[roles.r]\n{BOGUS_KEY} = 1"),
            ),
            (
                "[roles.NAME] targets",
                role_targets.unwrap_or_default(),
                format!("[roles.r]\ntargets = {{ {BOGUS_KEY} = 1 }}"),
            ),
            (
                "[[deny]]",
                keys_of(value.get("deny")),
                format!("[[deny]]\n{BOGUS_KEY} = 1"),
            ),
            (
                "[hosts]",
                keys_of(value.get("hosts")),
                format!("[hosts]\n{BOGUS_KEY} = 1"),
            ),
            (
                "[bastions.NAME]",
                keys_of_each(value.get("bastions")),
                format!("[bastions.b]\n{BOGUS_KEY} = 1"),
            ),
        ];
        let mut problems = Vec::new();
        for (table, shown, probe) in &tables {
            let accepted = accepted_keys(table, probe);
            for key in accepted.difference(shown) {
                problems.push(format!(
                    "{table}: key `{key}` is accepted by the code but missing from the policy example in {DOC}"
                ));
            }
            for key in shown.difference(&accepted) {
                problems.push(format!(
                    "{table}: key `{key}` is in the policy example in {DOC} but the code refuses it"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
