//! Evaluation: a request plus a policy plus `now` gives a [`Decision`].
//!
//! Semantics, in order (each step fails closed):
//!
//! 1. The request itself must be well formed (user name, requested lifetime).
//! 2. MFA time may not lie in the future by more than [`MAX_CLOCK_SKEW`].
//! 3. Candidate roles = union of the roles of the user's groups and the user's own
//!    `[users]` entry. None → [`DenyCode::NoRole`].
//! 4. Every matching `[[deny]]` rule removes its roles (deny beats allow) and marks its
//!    principals as never grantable. All removed → [`DenyCode::DeniedByRule`].
//! 5. Each remaining role *contributes* only if the factor passes: recovery codes need
//!    `allow_recovery`; strength must be ≥ the role's `min_factor` and ≥
//!    `defaults.min_factor`; a WebAuthn assertion given on the CA's approval page
//!    needs `webauthn_link` (default true); MFA age must be ≤ `mfa_max_age` when
//!    set. No role contributes → the most specific failure (recovery refused, then
//!    link approval refused, then factor too weak, then MFA too old), with every
//!    role's reason in the message.
//! 6. The grant is the union over contributing roles: principals (`{user}` expanded,
//!    deny-rule principals removed), extensions, and `source-address`.
//!    `source-address` is the one place a union could *widen* access, so it fails
//!    closed: if ANY contributing role restricts the source, the certificate carries
//!    the union of the restricting roles' CIDRs, and unrestricted roles do not lift
//!    the restriction.
//! 7. The lifetime is the requested (or default) TTL clamped to `defaults.max_ttl`
//!    and to the smallest `max_ttl` among contributing roles. `mfa_max_age` gates
//!    issuance only; the CA records the MFA time in the certificate so that the
//!    bastion and PAM re-check freshness when the certificate is used.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::ser::SerializeStruct;

use crate::duration::format_duration;
use crate::glob::glob_match;
use crate::names::{check_host_name, check_name, check_target_pattern, expand};
use crate::policy::Role;
use crate::{Factor, FactorStrength, KeyAssurance, Policy};

/// How far in the future an MFA time may lie before we call it forged or broken.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A request for a user certificate, after the CA has verified the factor.
#[derive(Debug, Clone)]
pub struct CertRequest<'a> {
    /// The authenticated user name.
    pub user: &'a str,
    /// The user's groups, from the identity store.
    pub groups: &'a [String],
    /// The factor the user just proved.
    pub factor: Factor,
    /// When that factor was proved.
    pub mfa_time: DateTime<Utc>,
    /// Lifetime the client asked for; `None` = `defaults.ttl`.
    pub requested_ttl: Option<Duration>,
    /// If set, deny unless this login is among the granted principals.
    pub login: Option<&'a str>,
}

/// Why a request was denied. Stable: these strings appear in audit events and JSON.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// The request is malformed (bad user name, zero lifetime, bad login or target).
    InvalidRequest,
    /// No group or user entry grants the user any role.
    NoRole,
    /// Every role the user would have is removed by a `[[deny]]` rule.
    DeniedByRule,
    /// The user logged in with a recovery code and no role accepts one.
    RecoveryRefused,
    /// The factor used is weaker than every role requires.
    FactorTooWeak,
    /// The security key was used on the CA's approval page (through a link),
    /// and every role that would accept the key wants it used directly from the
    /// user's own machine (`webauthn_link = false`).
    WebauthnLinkRefused,
    /// The MFA is older than every role's `mfa_max_age`.
    MfaTooOld,
    /// The MFA time lies further in the future than the allowed clock skew.
    MfaInFuture,
    /// The contributing roles yield no principal. An empty principal list in an
    /// OpenSSH certificate means "valid for any principal" (PROTOCOL.certkeys:
    /// "As a special case, a zero-length "valid principals" field means the
    /// certificate is valid for any principal of the specified type"), so this is
    /// a denial, never an empty grant.
    NoPrincipals,
    /// The requested login is not among the granted principals (or role logins).
    LoginNotGranted,
    /// No contributing role's `targets` allow the requested bastion target.
    TargetNotAllowed,
    /// A host certificate name or principal is not a host name or IP address.
    InvalidHostName,
    /// The bastion asking is not registered (`[bastions.<name>]`) for the target.
    TargetNotRegistered,
}

impl DenyCode {
    /// Stable snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::InvalidRequest => "invalid_request",
            DenyCode::NoRole => "no_role",
            DenyCode::DeniedByRule => "denied_by_rule",
            DenyCode::RecoveryRefused => "recovery_refused",
            DenyCode::FactorTooWeak => "factor_too_weak",
            DenyCode::WebauthnLinkRefused => "webauthn_link_refused",
            DenyCode::MfaTooOld => "mfa_too_old",
            DenyCode::MfaInFuture => "mfa_in_future",
            DenyCode::NoPrincipals => "no_principals",
            DenyCode::LoginNotGranted => "login_not_granted",
            DenyCode::TargetNotAllowed => "target_not_allowed",
            DenyCode::InvalidHostName => "invalid_host_name",
            DenyCode::TargetNotRegistered => "target_not_registered",
        }
    }
}

impl fmt::Display for DenyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: a stable code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    /// Machine-readable cause.
    pub code: DenyCode,
    /// What happened and, where possible, what would work instead.
    pub reason: String,
}

impl Denial {
    pub(crate) fn new(code: DenyCode, reason: impl Into<String>) -> Denial {
        Denial {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied ({}): {}", self.code, self.reason)
    }
}

impl std::error::Error for Denial {}

/// The outcome of [`evaluate`]. Serialises as `{"decision":"allow", …grant}` or
/// `{"decision":"deny","code":…,"reason":…}`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Issue a certificate exactly as described.
    Allow(Grant),
    /// Issue nothing.
    Deny(Denial),
}

impl Decision {
    /// Whether this is an `Allow`.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The grant, if allowed.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Decision::Allow(g) => Some(g),
            Decision::Deny(_) => None,
        }
    }

    /// The denial, if denied.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Decision::Allow(_) => None,
            Decision::Deny(d) => Some(d),
        }
    }

    /// `Ok(grant)` or `Err(denial)`, for `?`.
    pub fn into_result(self) -> Result<Grant, Denial> {
        match self {
            Decision::Allow(g) => Ok(g),
            Decision::Deny(d) => Err(d),
        }
    }
}

/// An approved user certificate specification.
///
/// Fields are private and there is no constructor or `Deserialize`: the only way to
/// get one is [`evaluate`], so code that takes a `Grant` cannot sign without a
/// policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    user: String,
    roles: Vec<String>,
    principals: Vec<String>,
    ttl: Duration,
    extensions: BTreeMap<String, String>,
    source_address: Vec<IpNet>,
    factor: Factor,
    mfa_time: DateTime<Utc>,
    reasons: Vec<String>,
    key: KeyAssurance,
}

impl Grant {
    /// The user the certificate is for.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// Principals to put in the certificate; never empty.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }
    /// The roles that contributed to this grant, sorted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// Certificate lifetime, whole seconds, at least 1s:
    /// min(requested or default, smallest contributing role `max_ttl`, `defaults.max_ttl`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// Certificate extensions, e.g. `"permit-pty" → ""` (OpenSSH's flag extensions
    /// have empty data, PROTOCOL.certkeys).
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }
    /// CIDRs for the `source-address` critical option; empty = unrestricted.
    pub fn source_address(&self) -> &[IpNet] {
        &self.source_address
    }
    /// The factor the user proved.
    pub fn factor(&self) -> &Factor {
        &self.factor
    }
    /// When the factor was proved.
    pub fn mfa_time(&self) -> DateTime<Utc> {
        self.mfa_time
    }
    /// Human-readable explanation: which roles contributed, why others did not.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// What was proved about the certified key (see [`evaluate_with_key`]).
    pub fn key_assurance(&self) -> KeyAssurance {
        self.key
    }
}

/// JSON for `rampart policy test`; the lifetime is `ttl_seconds`.
impl serde::Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Grant", 9)?;
        st.serialize_field("user", &self.user)?;
        st.serialize_field("roles", &self.roles)?;
        st.serialize_field("principals", &self.principals)?;
        st.serialize_field("ttl_seconds", &self.ttl.as_secs())?;
        st.serialize_field("extensions", &self.extensions)?;
        let nets: Vec<String> = self
            .source_address
            .iter()
            .map(ToString::to_string)
            .collect();
        st.serialize_field("source_address", &nets)?;
        st.serialize_field("factor", &self.factor)?;
        st.serialize_field("factor_strength", &self.key.lift(self.factor.strength()))?;
        if self.key != KeyAssurance::Unattested {
            st.serialize_field("key", &self.key)?;
        }
        st.serialize_field("mfa_time", &self.mfa_time)?;
        st.serialize_field("reasons", &self.reasons)?;
        st.end()
    }
}

/// Who is asking, shared by certificate and access evaluation.
struct Subject<'a> {
    user: &'a str,
    groups: &'a [String],
    factor: &'a Factor,
    mfa_time: DateTime<Utc>,
    key: KeyAssurance,
}

/// Roles that survived deny rules and factor checks.
struct Selection<'p> {
    roles: Vec<&'p Role>,
    /// Roles left out only because the key was used through a link
    /// (`webauthn_link = false`): bastion access names them when they are
    /// what would have permitted the session.
    link_refused: Vec<&'p Role>,
    /// Expanded principal → the deny rule reason that removes it.
    denied_principals: BTreeMap<String, String>,
    reasons: Vec<String>,
}

/// Steps 2–5 of the module documentation.
fn select<'p>(
    s: &Subject<'_>,
    policy: &'p Policy,
    now: DateTime<Utc>,
) -> Result<Selection<'p>, Denial> {
    check_name("user name", s.user).map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;

    let skew = chrono::TimeDelta::from_std(MAX_CLOCK_SKEW).unwrap_or(chrono::TimeDelta::MAX);
    if s.mfa_time
        > now
            .checked_add_signed(skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    {
        return Err(Denial::new(
            DenyCode::MfaInFuture,
            format!(
                "MFA time {} is in the future (now {}); check the CA's clock",
                s.mfa_time.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    // A small negative age (clock skew) counts as "just now".
    let age = now
        .signed_duration_since(s.mfa_time)
        .to_std()
        .unwrap_or(Duration::ZERO);

    let mut candidates = policy.roles_for(s.user, s.groups);
    if candidates.is_empty() {
        let groups = if s.groups.is_empty() {
            "no groups".to_owned()
        } else {
            format!("groups: {}", s.groups.join(", "))
        };
        return Err(Denial::new(
            DenyCode::NoRole,
            format!("no role is granted to {} ({groups})", s.user),
        ));
    }

    let mut reasons = Vec::new();
    let mut denied_principals = BTreeMap::new();
    for rule in policy.deny.iter().filter(|r| r.matches(s.user, s.groups)) {
        candidates.retain(|role| {
            let removed = rule.removes_role(role);
            if removed {
                reasons.push(format!(
                    "role {role} removed by a deny rule: {}",
                    rule.reason
                ));
            }
            !removed
        });
        for p in &rule.principals {
            denied_principals
                .entry(expand(p, s.user))
                .or_insert_with(|| rule.reason.clone());
        }
    }
    if candidates.is_empty() {
        return Err(Denial::new(DenyCode::DeniedByRule, reasons.join("; ")));
    }

    let strength = s.key.lift(s.factor.strength());
    let mut contributing = Vec::new();
    let mut link_refused = Vec::new();
    let mut failures: Vec<(DenyCode, String)> = Vec::new();
    for name in &candidates {
        let Some(role) = policy.roles.get(name) else {
            // from_toml guarantees every referenced role exists.
            continue;
        };
        let needed = role
            .min_factor
            .unwrap_or(policy.min_factor)
            .max(policy.min_factor);
        let failure = if *s.factor == Factor::Recovery && !role.allow_recovery {
            Some((
                DenyCode::RecoveryRefused,
                format!("role {name} does not accept recovery codes"),
            ))
        } else if strength < needed {
            Some((
                DenyCode::FactorTooWeak,
                format!(
                    "role {name} needs a {needed} factor; you used {} ({strength}){}",
                    s.factor,
                    if needed == FactorStrength::HardwareBound {
                        " (hardware-bound needs a PIV-attested key: rampart login --key piv)"
                    } else if strength == FactorStrength::UnattestedKey {
                        " (the CA does not trust this security key's model: its attestation \
                         was not verified and its AAGUID is not allow-listed)"
                    } else {
                        ""
                    }
                ),
            ))
        } else if matches!(s.factor, Factor::Webauthn { via_link: true, .. }) && !role.webauthn_link
        {
            Some((
                DenyCode::WebauthnLinkRefused,
                format!(
                    "role {name} accepts a security key only from your own machine, not \
                     approved through a link (rampart login --mfa fido2)"
                ),
            ))
        } else {
            match role.mfa_max_age {
                Some(max) if age > max => Some((
                    DenyCode::MfaTooOld,
                    format!(
                        "role {name} needs MFA within the last {}; yours is {} old",
                        format_duration(max),
                        format_duration(age)
                    ),
                )),
                _ => None,
            }
        };
        match failure {
            Some(f) => {
                if f.0 == DenyCode::WebauthnLinkRefused {
                    link_refused.push(role);
                }
                failures.push(f);
            }
            None => contributing.push(role),
        }
    }

    if contributing.is_empty() {
        // The most specific cause: the one the user can act on most directly.
        let order = [
            DenyCode::RecoveryRefused,
            DenyCode::WebauthnLinkRefused,
            DenyCode::FactorTooWeak,
            DenyCode::MfaTooOld,
        ];
        let code = order
            .into_iter()
            .find(|c| failures.iter().any(|(fc, _)| fc == c))
            .unwrap_or(DenyCode::NoRole);
        let mut all: Vec<String> = failures.into_iter().map(|(_, m)| m).collect();
        all.extend(reasons);
        return Err(Denial::new(code, all.join("; ")));
    }
    for (_, m) in failures {
        reasons.push(format!("not used: {m}"));
    }
    Ok(Selection {
        roles: contributing,
        link_refused,
        denied_principals,
        reasons,
    })
}

/// Decide whether to issue a user certificate, and with what contents.
///
/// Pure: `now` is the only notion of time. See the module docs for the semantics.
pub fn evaluate(req: &CertRequest<'_>, policy: &Policy, now: DateTime<Utc>) -> Decision {
    evaluate_with_key(req, KeyAssurance::Unattested, policy, now)
}

/// [`evaluate`] for a key whose custody the CA has verified (e.g. a YubiKey PIV
/// attestation): the factor strength is lifted by [`KeyAssurance::lift`], so a
/// role with `min_factor = "hardware-bound"` contributes only with an attested
/// key. The grant remembers the assurance ([`Grant::key_assurance`]).
pub fn evaluate_with_key(
    req: &CertRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    match evaluate_inner(req, key, policy, now, CertUse::User) {
        Ok(g) => Decision::Allow(g),
        Err(d) => Decision::Deny(d),
    }
}

/// [`evaluate_with_key`] for a bastion's per-session certificate: roles with
/// `access = "bastion"` contribute too. The CA calls this only for a bastion,
/// after [`evaluate_access_with_key`] allowed the login and target.
pub fn evaluate_session_with_key(
    req: &CertRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    match evaluate_inner(req, key, policy, now, CertUse::BastionSession) {
        Ok(g) => Decision::Allow(g),
        Err(d) => Decision::Deny(d),
    }
}

/// The principal a user certificate carries when every principal the user's
/// roles grant is bastion-only. A certificate with no principal at all would
/// be valid for every account (PROTOCOL.certkeys), so it gets this one, which
/// no account can match: `:` cannot appear in a Unix account name.
pub const BASTION_ONLY_PRINCIPAL: &str = "rampart:bastion-only";

/// Extension that marks a bastion's per-session certificate, with the value
/// `<bastion> <session id>`. Only the CA signs it, and only into a per-session
/// certificate, so a host can require it for accounts that must be reached
/// through a bastion (`rampart host principals`, `via_bastion = true`).
pub const EXT_BASTION_SESSION: &str = "bastion-session@rampart";

/// What a certificate is for, which decides whether bastion-only roles
/// contribute principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertUse {
    /// The user's own certificate (`rampart login`).
    User,
    /// A bastion's per-session certificate.
    BastionSession,
}

fn evaluate_inner(
    req: &CertRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
    cert_use: CertUse,
) -> Result<Grant, Denial> {
    if let Some(t) = req.requested_ttl {
        if t.as_secs() == 0 {
            return Err(Denial::new(
                DenyCode::InvalidRequest,
                "requested lifetime must be at least 1s",
            ));
        }
    }
    if let Some(login) = req.login {
        check_name("login", login).map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;
    }
    let subject = Subject {
        user: req.user,
        groups: req.groups,
        factor: &req.factor,
        mfa_time: req.mfa_time,
        key,
    };
    let sel = select(&subject, policy, now)?;
    let mut reasons = Vec::new();

    let mut principals: Vec<String> = Vec::new();
    for role in &sel.roles {
        if role.bastion_only && cert_use == CertUse::User {
            reasons.push(format!(
                "role {} is bastion-only: its principals go only into per-session certificates",
                role.name
            ));
            continue;
        }
        let mut from_role = Vec::new();
        for t in &role.principals {
            let p = expand(t, req.user);
            if let Err(m) = check_name("principal", &p) {
                reasons.push(format!("role {}: skipped principal: {m}", role.name));
                continue;
            }
            if let Some(why) = sel.denied_principals.get(&p) {
                reasons.push(format!(
                    "role {}: principal {p} removed by a deny rule: {why}",
                    role.name
                ));
                continue;
            }
            from_role.push(p.clone());
            if !principals.contains(&p) {
                principals.push(p);
            }
        }
        reasons.push(if from_role.is_empty() {
            format!("role {} contributes no principals", role.name)
        } else {
            format!("role {} grants {}", role.name, from_role.join(", "))
        });
    }
    reasons.extend(sel.reasons);
    let role_names: Vec<String> = sel.roles.iter().map(|r| r.name.clone()).collect();

    if principals.is_empty()
        && cert_use == CertUse::User
        && sel.roles.iter().any(|r| r.bastion_only)
    {
        // The certificate is for reaching the bastion only.
        principals.push(BASTION_ONLY_PRINCIPAL.to_owned());
    }
    if principals.is_empty() {
        return Err(Denial::new(
            DenyCode::NoPrincipals,
            format!(
                "roles {} grant no principals ({})",
                role_names.join(", "),
                reasons.join("; ")
            ),
        ));
    }
    if let Some(login) = req.login {
        if !principals.iter().any(|p| p == login) {
            return Err(Denial::new(
                DenyCode::LoginNotGranted,
                format!(
                    "login {login} is not granted; your principals are {}",
                    principals.join(", ")
                ),
            ));
        }
    }

    // Lifetime: requested or default, clamped to the global and the strictest role
    // ceiling (fail closed: a short-lived role keeps the whole certificate short).
    let wanted = req.requested_ttl.unwrap_or(policy.default_ttl);
    let mut ceiling = policy.max_ttl;
    let mut ceiling_src = "defaults.max_ttl".to_owned();
    for role in &sel.roles {
        if let Some(m) = role.max_ttl {
            if m < ceiling {
                ceiling = m;
                ceiling_src = format!("roles.{}.max_ttl", role.name);
            }
        }
    }
    let ttl = if wanted > ceiling {
        reasons.push(format!(
            "lifetime {} clamped to {} by {ceiling_src}",
            format_duration(wanted),
            format_duration(ceiling)
        ));
        ceiling
    } else {
        wanted
    };
    // Certificates count in whole seconds; never round up past a ceiling.
    let ttl = Duration::from_secs(ttl.as_secs().max(1));

    let mut extensions = BTreeMap::new();
    for role in &sel.roles {
        for e in &role.extensions {
            extensions.insert(e.clone(), String::new());
        }
    }

    // Fail closed: any restricting role restricts the whole certificate.
    let mut source_address: Vec<IpNet> = Vec::new();
    for role in &sel.roles {
        for net in &role.source_address {
            if !source_address.contains(net) {
                source_address.push(*net);
            }
        }
    }
    if !source_address.is_empty() {
        let restricting: Vec<&str> = sel
            .roles
            .iter()
            .filter(|r| !r.source_address.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        reasons.push(format!(
            "source-address restricted by role(s) {}",
            restricting.join(", ")
        ));
    }

    Ok(Grant {
        user: req.user.to_owned(),
        roles: role_names,
        principals,
        ttl,
        extensions,
        source_address,
        factor: req.factor.clone(),
        mfa_time: req.mfa_time,
        reasons,
        key,
    })
}

/// A bastion access request: may `user` open `login@target`?
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    /// The authenticated user name (from the outer certificate).
    pub user: &'a str,
    /// The user's groups.
    pub groups: &'a [String],
    /// The factor the user proved.
    pub factor: Factor,
    /// When that factor was proved.
    pub mfa_time: DateTime<Utc>,
    /// The account on the target.
    pub login: &'a str,
    /// The target's name as the user addressed it.
    pub target: &'a str,
    /// The target's labels (from the bastion's target list). A role with
    /// `target_labels` reaches the target only if each of its labels is here
    /// with the same value.
    pub labels: &'a BTreeMap<String, String>,
}

/// Permission to open one bastion session. Only [`evaluate_access`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    user: String,
    login: String,
    target: String,
    roles: Vec<String>,
    reasons: Vec<String>,
    session_mfa: bool,
    webauthn_link: bool,
    record_input: bool,
    record_metered_mib: Option<u64>,
    port_forwarding: bool,
    agent_forwarding: bool,
}

impl AccessGrant {
    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The account on the target.
    pub fn login(&self) -> &str {
        &self.login
    }
    /// The target.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// Roles that permit this access, sorted.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// Human-readable explanation.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// A per-session code is needed before the bastion connects onward: true if
    /// ANY permitting role says `session_mfa` (the strictest role wins, so adding
    /// a role to a user never weakens a requirement another role sets).
    pub fn session_mfa(&self) -> bool {
        self.session_mfa
    }
    /// Whether a security-key approval given on the CA's page (the only way a
    /// per-session approval is given) can satisfy this access: true if any
    /// permitting role keeps `webauthn_link` on. When it is false the CA asks
    /// for a per-session TOTP code instead, or refuses.
    pub fn webauthn_link(&self) -> bool {
        self.webauthn_link
    }
    /// Record keystrokes too: true if any permitting role says `record_input`.
    pub fn record_input(&self) -> bool {
        self.record_input
    }
    /// `Some(n)`: bulk data (exec and subsystem channels without a pty) may be
    /// metered: the first `n` MiB of each direction stored, the rest counted
    /// and hashed. Only when every permitting role says `record = "metered"`
    /// (a role that records in full wins, so adding a role never loses
    /// recorded data), with the largest of their `record_metered_mib`.
    pub fn record_metered_mib(&self) -> Option<u64> {
        self.record_metered_mib
    }
    /// Port forwarding allowed: true if any permitting role allows it (roles add
    /// permissions, as they add principals).
    pub fn port_forwarding(&self) -> bool {
        self.port_forwarding
    }
    /// Agent forwarding allowed: true if any permitting role allows it.
    pub fn agent_forwarding(&self) -> bool {
        self.agent_forwarding
    }
}

impl serde::Serialize for AccessGrant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AccessGrant", 11)?;
        st.serialize_field("user", &self.user)?;
        st.serialize_field("login", &self.login)?;
        st.serialize_field("target", &self.target)?;
        st.serialize_field("roles", &self.roles)?;
        st.serialize_field("reasons", &self.reasons)?;
        st.serialize_field("session_mfa", &self.session_mfa)?;
        st.serialize_field("webauthn_link", &self.webauthn_link)?;
        st.serialize_field("record_input", &self.record_input)?;
        st.serialize_field("record_metered_mib", &self.record_metered_mib)?;
        st.serialize_field("port_forwarding", &self.port_forwarding)?;
        st.serialize_field("agent_forwarding", &self.agent_forwarding)?;
        st.end()
    }
}

/// Decide whether `user` may open `login@target` through the bastion.
///
/// The same role selection as [`evaluate`] (deny rules, factor, freshness), then a
/// role permits the access if one of its `targets.allow` globs matches the target,
/// none of its `targets.deny` globs does, the target carries every one of its
/// `target_labels`, and its logins (default: its principals, `{user}` expanded,
/// deny-rule principals removed) include `login`. A role without `targets`
/// reaches nothing (fail closed). The bastion switches of the grant combine the
/// permitting roles: see [`AccessGrant::session_mfa`] and the others.
pub fn evaluate_access(
    req: &AccessRequest<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<AccessGrant, Denial> {
    evaluate_access_with_key(req, KeyAssurance::Unattested, policy, now)
}

/// [`evaluate_access`] for a user whose outer certificate's key was attested
/// (the CA marked it `mfa-key@rampart=piv-attested` at issuance): roles with
/// `min_factor = "hardware-bound"` can then permit the access, as they could
/// contribute to that certificate ([`evaluate_with_key`]).
pub fn evaluate_access_with_key(
    req: &AccessRequest<'_>,
    key: KeyAssurance,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<AccessGrant, Denial> {
    check_name("login", req.login).map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;
    check_target_pattern(req.target)
        .and_then(|()| {
            if req.target.contains(['*', '?']) {
                Err(format!(
                    "target {:?} must not contain wildcards",
                    req.target
                ))
            } else {
                Ok(())
            }
        })
        .map_err(|m| Denial::new(DenyCode::InvalidRequest, m))?;
    let subject = Subject {
        user: req.user,
        groups: req.groups,
        factor: &req.factor,
        mfa_time: req.mfa_time,
        key,
    };
    let sel = select(&subject, policy, now)?;

    let mut reaching = Vec::new();
    let mut permitting = Vec::new();
    let mut label_misses = Vec::new();
    let (mut session_mfa, mut record_input, mut port_forwarding, mut agent_forwarding) =
        (false, false, false, false);
    let mut webauthn_link = false;
    // Metered only while every permitting role meters (`Some(0)` = none yet).
    let mut record_metered_mib = Some(0);
    for role in &sel.roles {
        let allowed = role.targets_allow.iter().any(|p| glob_match(p, req.target))
            && !role.targets_deny.iter().any(|p| glob_match(p, req.target));
        if !allowed {
            continue;
        }
        if let Some((k, v)) = role
            .target_labels
            .iter()
            .find(|(k, v)| req.labels.get(*k) != Some(*v))
        {
            label_misses.push(format!("{} needs label {k}={v}", role.name));
            continue;
        }
        reaching.push(role.name.clone());
        let login_ok = role.login_templates().iter().any(|t| {
            let l = expand(t, req.user);
            l == req.login && !sel.denied_principals.contains_key(&l)
        });
        if login_ok {
            permitting.push(role.name.clone());
            session_mfa |= role.session_mfa;
            webauthn_link |= role.webauthn_link;
            record_input |= role.record_input;
            record_metered_mib = match (record_metered_mib, role.record_metered_mib) {
                (Some(have), Some(mib)) => Some(have.max(mib)),
                _ => None,
            };
            port_forwarding |= role.port_forwarding;
            agent_forwarding |= role.agent_forwarding;
        }
    }
    if permitting.is_empty() {
        // A role the key's use through a link left out would have permitted
        // this: say that, rather than that no role reaches the target.
        let would = sel.link_refused.iter().find(|role| {
            role.targets_allow.iter().any(|p| glob_match(p, req.target))
                && !role.targets_deny.iter().any(|p| glob_match(p, req.target))
                && role
                    .target_labels
                    .iter()
                    .all(|(k, v)| req.labels.get(k) == Some(v))
                && role.login_templates().iter().any(|t| {
                    let l = expand(t, req.user);
                    l == req.login && !sel.denied_principals.contains_key(&l)
                })
        });
        if let Some(role) = would {
            return Err(Denial::new(
                DenyCode::WebauthnLinkRefused,
                format!(
                    "role {} would permit {}@{}, but it accepts a security key only from your \
                     own machine, not approved through a link (rampart login --mfa fido2)",
                    role.name, req.login, req.target
                ),
            ));
        }
    }
    let all: Vec<&str> = sel.roles.iter().map(|r| r.name.as_str()).collect();
    if reaching.is_empty() {
        let labels = if label_misses.is_empty() {
            String::new()
        } else {
            format!(" (target labels: {})", label_misses.join("; "))
        };
        return Err(Denial::new(
            DenyCode::TargetNotAllowed,
            format!(
                "none of your roles ({}) may reach target {}{labels}",
                all.join(", "),
                req.target
            ),
        ));
    }
    if permitting.is_empty() {
        return Err(Denial::new(
            DenyCode::LoginNotGranted,
            format!(
                "roles that may reach {} ({}) do not grant login {}",
                req.target,
                reaching.join(", "),
                req.login
            ),
        ));
    }
    let mut reasons = vec![format!(
        "{}@{} permitted by role(s) {}",
        req.login,
        req.target,
        permitting.join(", ")
    )];
    reasons.extend(sel.reasons);
    Ok(AccessGrant {
        user: req.user.to_owned(),
        login: req.login.to_owned(),
        target: req.target.to_owned(),
        roles: permitting,
        reasons,
        session_mfa,
        webauthn_link,
        record_input,
        record_metered_mib: record_metered_mib.filter(|mib| *mib > 0),
        port_forwarding,
        agent_forwarding,
    })
}

/// An approved host certificate specification. Only [`approve_host`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    name: String,
    principals: Vec<String>,
    ttl: Duration,
}

impl HostGrant {
    /// The host's primary name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Principals: the name first, then the extra names, deduplicated.
    pub fn principals(&self) -> &[String] {
        &self.principals
    }
    /// Lifetime, whole seconds, at most `hosts.max_ttl` (default 30d).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl serde::Serialize for HostGrant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("HostGrant", 3)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("principals", &self.principals)?;
        st.serialize_field("ttl_seconds", &self.ttl.as_secs())?;
        st.end()
    }
}

/// Approve a host certificate for `name` (plus `extra_principals`, e.g. aliases or
/// addresses). Every name must be an IP address or an RFC 1123 host name; the
/// lifetime is the requested one (default: the maximum) clamped to `hosts.max_ttl`.
pub fn approve_host(
    policy: &Policy,
    name: &str,
    extra_principals: &[String],
    requested_ttl: Option<Duration>,
) -> Result<HostGrant, Denial> {
    let mut principals: Vec<String> = Vec::new();
    for n in std::iter::once(name).chain(extra_principals.iter().map(String::as_str)) {
        check_host_name(n).map_err(|m| Denial::new(DenyCode::InvalidHostName, m))?;
        if !principals.iter().any(|p| p == n) {
            principals.push(n.to_owned());
        }
    }
    let max = policy.host_max_ttl;
    let ttl = match requested_ttl {
        Some(t) if t.as_secs() == 0 => {
            return Err(Denial::new(
                DenyCode::InvalidRequest,
                "requested lifetime must be at least 1s",
            ))
        }
        Some(t) => t.min(max),
        None => max,
    };
    Ok(HostGrant {
        name: name.to_owned(),
        principals,
        ttl: Duration::from_secs(ttl.as_secs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const P: &str = r#"
version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "otp"

[roles.dev]
principals = ["{user}", "dev"]
extensions = ["permit-pty", "permit-port-forwarding"]
targets = { allow = ["*"], deny = ["prod-*"] }

[roles.ops]
principals = ["{user}", "ops"]
max_ttl = "2h"
source_address = ["10.0.0.0/8"]
targets = { allow = ["prod-*"] }
logins = ["ops"]

[roles.vpn]
principals = ["vpn"]
source_address = ["192.168.0.0/16", "10.0.0.0/8"]

[roles.prod-root]
principals = ["root"]
max_ttl = "1h"
min_factor = "phishing-resistant"
mfa_max_age = "15m"
targets = { allow = ["prod-*"] }

[roles.noprin]
extensions = ["permit-X11-forwarding"]

[roles.fresh]
principals = ["fresh"]
mfa_max_age = "1h"

[roles.long]
principals = ["{user}-with-a-rather-long-suffix-that-pushes-past-the-limit"]

[groups]
eng = ["dev"]
ops = ["ops"]
vpnusers = ["vpn"]
sre = ["dev", "prod-root"]
contractors = ["dev", "prod-root"]
noprin = ["noprin"]
fresh = ["fresh"]
long = ["long", "dev"]

[users]
alice = ["prod-root"]

[[deny]]
groups = ["contractors"]
roles = ["prod-root"]
principals = ["dev"]
reason = "contractors never get prod-root"

[[deny]]
users = ["mallory"]
roles = ["*"]
reason = "offboarded"
"#;

    const R: &str = r#"
version = 1
[defaults]
min_factor = "recovery"
[roles.normal]
principals = ["{user}"]
[roles.glass]
principals = ["root"]
allow_recovery = true
[groups]
normal = ["normal"]
both = ["normal", "glass"]
"#;

    /// (user, groups, factor, login, target, want roles or code)
    type AccessCase = (
        &'static str,
        &'static [&'static str],
        Factor,
        &'static str,
        &'static str,
        Result<&'static [&'static str], DenyCode>,
    );
    /// (name, extra principals, requested ttl seconds, want ttl seconds or code)
    type HostCase = (
        &'static str,
        &'static [&'static str],
        Option<u64>,
        Result<u64, DenyCode>,
    );

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn uv() -> Factor {
        Factor::Webauthn {
            user_verified: true,
            attested: true,
            via_link: false,
        }
    }

    struct Case {
        name: &'static str,
        policy: &'static str,
        user: &'static str,
        groups: &'static [&'static str],
        factor: Factor,
        /// Seconds since MFA; negative = in the future.
        mfa_age: i64,
        ttl: Option<u64>,
        login: Option<&'static str>,
        want: Result<(&'static [&'static str], u64), DenyCode>,
    }

    fn case(name: &'static str, user: &'static str, groups: &'static [&'static str]) -> Case {
        Case {
            name,
            policy: P,
            user,
            groups,
            factor: Factor::Totp,
            mfa_age: 0,
            ttl: None,
            login: None,
            want: Err(DenyCode::InvalidRequest),
        }
    }

    fn run(c: &Case) -> Decision {
        let policy = Policy::from_toml(c.policy).unwrap();
        let groups: Vec<String> = c.groups.iter().map(|s| (*s).to_owned()).collect();
        let req = CertRequest {
            user: c.user,
            groups: &groups,
            factor: c.factor.clone(),
            mfa_time: now() - chrono::TimeDelta::seconds(c.mfa_age),
            requested_ttl: c.ttl.map(Duration::from_secs),
            login: c.login,
        };
        evaluate(&req, &policy, now())
    }

    #[test]
    fn decision_table() {
        use DenyCode::*;
        let h = 3600;
        let cases = vec![
            Case {
                want: Ok((&["bob", "dev"], h)),
                ..case("plain dev, {user} expanded", "bob", &["eng"])
            },
            Case {
                want: Err(NoRole),
                ..case("no matching group", "bob", &["nobody"])
            },
            Case {
                want: Err(NoRole),
                ..case("no groups at all", "bob", &[])
            },
            Case {
                want: Err(DeniedByRule),
                ..case("wildcard deny rule", "mallory", &["eng", "sre"])
            },
            Case {
                factor: uv(),
                want: Ok((&["carol"], h)),
                ..case(
                    "deny beats allow: role and principal removed",
                    "carol",
                    &["contractors"],
                )
            },
            Case {
                want: Err(FactorTooWeak),
                ..case("totp for prod-root", "alice", &[])
            },
            Case {
                factor: Factor::Webauthn {
                    user_verified: false,
                    attested: true,
                    via_link: false,
                },
                want: Err(FactorTooWeak),
                ..case("webauthn without UV for prod-root", "alice", &[])
            },
            Case {
                // A key that claims UV but whose model the CA does not vouch for.
                factor: Factor::Webauthn {
                    user_verified: true,
                    attested: false,
                    via_link: false,
                },
                want: Err(FactorTooWeak),
                ..case("unattested key with UV for prod-root", "alice", &[])
            },
            Case {
                factor: Factor::Oidc,
                want: Err(FactorTooWeak),
                ..case("oidc for prod-root", "alice", &[])
            },
            Case {
                factor: uv(),
                want: Ok((&["root"], h)),
                ..case("uv for prod-root", "alice", &[])
            },
            Case {
                factor: uv(),
                mfa_age: 20 * 60,
                want: Err(MfaTooOld),
                ..case("stale mfa", "alice", &[])
            },
            Case {
                factor: uv(),
                mfa_age: 15 * 60,
                want: Ok((&["root"], h)),
                ..case("mfa exactly at the limit", "alice", &[])
            },
            Case {
                mfa_age: -10 * 60,
                want: Err(MfaInFuture),
                ..case("mfa in the future", "bob", &["eng"])
            },
            Case {
                mfa_age: -2 * 60,
                want: Ok((&["bob", "dev"], h)),
                ..case("small clock skew tolerated", "bob", &["eng"])
            },
            Case {
                factor: Factor::Recovery,
                want: Err(RecoveryRefused),
                ..case("recovery refused", "bob", &["eng"])
            },
            Case {
                policy: R,
                factor: Factor::Recovery,
                want: Err(RecoveryRefused),
                ..case("recovery, role without allow_recovery", "bob", &["normal"])
            },
            Case {
                policy: R,
                factor: Factor::Recovery,
                want: Ok((&["root"], h)),
                ..case("recovery, break-glass role only", "bob", &["both"])
            },
            Case {
                policy: R,
                want: Ok((&["root", "bob"], h)),
                ..case("totp gets both roles (role-name order)", "bob", &["both"])
            },
            Case {
                want: Err(NoPrincipals),
                ..case("role without principals", "bob", &["noprin"])
            },
            Case {
                want: Ok((&["bob", "dev"], h)),
                ..case(
                    "extension-only role adds nothing but extensions",
                    "bob",
                    &["eng", "noprin"],
                )
            },
            Case {
                login: Some("root"),
                want: Err(LoginNotGranted),
                ..case("login not granted", "bob", &["eng"])
            },
            Case {
                login: Some("dev"),
                want: Ok((&["bob", "dev"], h)),
                ..case("login granted", "bob", &["eng"])
            },
            Case {
                want: Err(InvalidRequest),
                ..case("bad user name", "bob smith", &["eng"])
            },
            Case {
                want: Err(InvalidRequest),
                ..case("empty user name", "", &["eng"])
            },
            Case {
                ttl: Some(0),
                want: Err(InvalidRequest),
                ..case("zero ttl", "bob", &["eng"])
            },
            Case {
                login: Some("a,b"),
                want: Err(InvalidRequest),
                ..case("bad login", "bob", &["eng"])
            },
            Case {
                ttl: Some(24 * h),
                want: Ok((&["bob", "dev"], 8 * h)),
                ..case("ttl above defaults.max_ttl", "bob", &["eng"])
            },
            Case {
                ttl: Some(90),
                want: Ok((&["bob", "dev"], 90)),
                ..case("ttl below ceilings", "bob", &["eng"])
            },
            Case {
                ttl: Some(4 * h),
                want: Ok((&["carl", "ops"], 2 * h)),
                ..case("role max_ttl below defaults", "carl", &["ops"])
            },
            Case {
                want: Ok((&["carl", "ops"], h)),
                ..case("no ttl requested: default", "carl", &["ops"])
            },
            Case {
                factor: uv(),
                ttl: Some(8 * h),
                want: Ok((&["dana", "dev", "root"], h)),
                ..case("strictest contributing role caps ttl", "dana", &["sre"])
            },
            Case {
                want: Ok((&["fresh"], h)),
                mfa_age: 59 * 60,
                ..case("freshness met", "erin", &["fresh"])
            },
            Case {
                mfa_age: 2 * h as i64,
                want: Err(FactorTooWeak),
                ..case("most specific failure wins", "alice", &["fresh"])
            },
            Case {
                want: Ok((&["averyveryveryveryverylongname", "dev"], h)),
                ..case(
                    "over-long expanded principal skipped",
                    "averyveryveryveryverylongname",
                    &["long"],
                )
            },
        ];
        for c in &cases {
            let d = run(c);
            match (&c.want, &d) {
                (Ok((principals, ttl)), Decision::Allow(g)) => {
                    assert_eq!(g.principals(), *principals, "{}", c.name);
                    assert_eq!(g.ttl(), Duration::from_secs(*ttl), "{}", c.name);
                    assert_eq!(g.user(), c.user, "{}", c.name);
                    assert_eq!(g.factor(), &c.factor, "{}", c.name);
                }
                (Err(code), Decision::Deny(den)) => {
                    assert_eq!(den.code, *code, "{}: {}", c.name, den.reason);
                    assert!(!den.reason.is_empty(), "{}", c.name);
                }
                _ => panic!("{}: want {:?}, got {d:?}", c.name, c.want),
            }
        }
    }

    #[test]
    fn denial_reasons_are_specific() {
        let c = case("x", "alice", &[]);
        let reason = run(&c).denial().unwrap().reason.clone();
        assert_eq!(
            reason,
            "role prod-root needs a phishing-resistant factor; you used totp (otp)"
        );

        let c = Case {
            mfa_age: 2 * 3600,
            ..case("x", "alice", &["fresh"])
        };
        let reason = run(&c).denial().unwrap().reason.clone();
        assert!(
            reason.contains("role prod-root needs a phishing-resistant"),
            "{reason}"
        );
        assert!(
            reason.contains("role fresh needs MFA within the last 1h; yours is 2h old"),
            "{reason}"
        );

        let c = case("x", "mallory", &["eng"]);
        assert_eq!(
            run(&c).denial().unwrap().reason,
            "role dev removed by a deny rule: offboarded"
        );

        let c = Case {
            factor: uv(),
            ..case("x", "carol", &["contractors"])
        };
        let g = run(&c).into_result().unwrap();
        let all = g.reasons().join("\n");
        assert!(
            all.contains("role prod-root removed by a deny rule: contractors never get prod-root"),
            "{all}"
        );
        assert!(
            all.contains("principal dev removed by a deny rule"),
            "{all}"
        );
        assert_eq!(g.roles(), ["dev"]);
    }

    #[test]
    fn grant_reasons_name_unused_roles() {
        let c = case("x", "dana", &["sre"]);
        let g = run(&c).into_result().unwrap();
        assert_eq!(g.roles(), ["dev"]);
        let all = g.reasons().join("\n");
        assert!(all.contains("role dev grants dana, dev"), "{all}");
        assert!(
            all.contains("not used: role prod-root needs a phishing-resistant factor"),
            "{all}"
        );
    }

    #[test]
    fn source_address_union_fails_closed() {
        let nets = |groups: &'static [&'static str]| -> Vec<String> {
            let g = run(&case("x", "bob", groups)).into_result().unwrap();
            g.source_address().iter().map(ToString::to_string).collect()
        };
        assert!(nets(&["eng"]).is_empty(), "unrestricted role");
        // An unrestricted role does not lift another role's restriction.
        assert_eq!(nets(&["eng", "ops"]), ["10.0.0.0/8"]);
        // Two restricting roles: the union, deduplicated.
        assert_eq!(nets(&["ops", "vpnusers"]), ["10.0.0.0/8", "192.168.0.0/16"]);
    }

    #[test]
    fn bastion_only_roles_stay_out_of_the_users_own_certificate() {
        let policy = Policy::from_toml(
            r#"version = 1
[roles.dev]
principals = ["{user}"]
targets = { allow = ["dev-*"] }
[roles.dba]
principals = ["postgres"]
access = "bastion"
targets = { allow = ["db-*"] }
[groups]
eng = ["dev", "dba"]
dbas = ["dba"]
"#,
        )
        .unwrap();
        let now = Utc::now();
        let req = |groups: &'static [String]| CertRequest {
            user: "alice",
            groups,
            factor: Factor::Totp,
            mfa_time: now,
            requested_ttl: None,
            login: None,
        };
        let own = |groups| match evaluate(&req(groups), &policy, now) {
            Decision::Allow(g) => g.principals().to_vec(),
            Decision::Deny(d) => panic!("{d:?}"),
        };
        let session = |groups| match evaluate_session_with_key(
            &req(groups),
            KeyAssurance::Unattested,
            &policy,
            now,
        ) {
            Decision::Allow(g) => g.principals().to_vec(),
            Decision::Deny(d) => panic!("{d:?}"),
        };
        static ENG: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["eng".to_owned()]);
        static DBAS: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["dbas".to_owned()]);
        assert_eq!(own(&ENG), ["alice"]);
        assert_eq!(session(&ENG), ["postgres", "alice"]);
        // Only bastion-only roles: the own certificate gets the one principal
        // no account can have (an empty list would be valid for every account).
        assert_eq!(own(&DBAS), [BASTION_ONLY_PRINCIPAL]);
        assert_eq!(session(&DBAS), ["postgres"]);
        // And asking for the bastion-only account directly is refused.
        let direct = CertRequest {
            login: Some("postgres"),
            ..req(&ENG)
        };
        assert!(matches!(
            evaluate(&direct, &policy, now),
            Decision::Deny(Denial {
                code: DenyCode::LoginNotGranted,
                ..
            })
        ));
        // A typo in the mode is an error, not a silent direct role.
        let err = Policy::from_toml(
            "version = 1\n[roles.x]\nprincipals = [\"a\"]\naccess = \"bastian\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("access"), "{err}");
    }

    #[test]
    fn extensions_are_unioned() {
        let g = run(&case("x", "bob", &["eng", "noprin"]))
            .into_result()
            .unwrap();
        let names: Vec<&str> = g.extensions().keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "permit-X11-forwarding",
                "permit-port-forwarding",
                "permit-pty"
            ]
        );
        assert!(g.extensions().values().all(String::is_empty));
        // Default extensions: permit-pty only.
        let g = run(&case("x", "carl", &["ops"])).into_result().unwrap();
        assert_eq!(g.extensions().keys().collect::<Vec<_>>(), ["permit-pty"]);
    }

    #[test]
    fn hardware_bound_roles_need_an_attested_key() {
        const HB: &str = r#"
version = 1
[roles.dev]
principals = ["{user}"]
[roles.prod]
principals = ["root"]
min_factor = "hardware-bound"
[groups]
eng = ["dev"]
sre = ["dev", "prod"]
only-prod = ["prod"]
"#;
        let policy = Policy::from_toml(HB).unwrap();
        let groups = vec!["only-prod".to_owned()];
        let req = |factor| CertRequest {
            user: "bob",
            groups: &groups,
            factor,
            mfa_time: now(),
            requested_ttl: None,
            login: None,
        };
        // Without attestation: refused, and told how to get there.
        for f in [Factor::Totp, uv()] {
            let d = evaluate(&req(f), &policy, now());
            let denial = d.denial().unwrap();
            assert_eq!(denial.code, DenyCode::FactorTooWeak);
            assert!(denial.reason.contains("--key piv"), "{}", denial.reason);
        }
        // With an attested key (any factor that passes the other checks): allowed.
        let g = evaluate_with_key(
            &req(Factor::Totp),
            KeyAssurance::HardwareAttested,
            &policy,
            now(),
        )
        .into_result()
        .unwrap();
        assert_eq!(g.principals(), ["root"]);
        assert_eq!(g.key_assurance(), KeyAssurance::HardwareAttested);
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["factor_strength"], "hardware-bound");
        assert_eq!(v["key"], "hardware-attested");
        // Recovery codes stay refused where the role does not accept them.
        let d = evaluate_with_key(
            &req(Factor::Recovery),
            KeyAssurance::HardwareAttested,
            &policy,
            now(),
        );
        assert_eq!(d.denial().unwrap().code, DenyCode::RecoveryRefused);
        // A user with both roles gets only the unattested one's principals without a key.
        let both = vec!["sre".to_owned()];
        let r = CertRequest {
            groups: &both,
            ..req(Factor::Totp)
        };
        let g = evaluate(&r, &policy, now()).into_result().unwrap();
        assert_eq!(g.principals(), ["bob"]);
        assert_eq!(g.key_assurance(), KeyAssurance::Unattested);
        let g = evaluate_with_key(&r, KeyAssurance::HardwareAttested, &policy, now())
            .into_result()
            .unwrap();
        assert_eq!(g.principals(), ["bob", "root"]);
    }

    #[test]
    fn bastion_access_to_a_hardware_bound_role_needs_the_attested_key() {
        const HB: &str = r#"
version = 1
[roles.prod]
principals = ["root"]
min_factor = "hardware-bound"
targets = { allow = ["prod-*"] }
[groups]
sre = ["prod"]
"#;
        let policy = Policy::from_toml(HB).unwrap();
        let groups = vec!["sre".to_owned()];
        let labels = BTreeMap::new();
        let req = AccessRequest {
            user: "bob",
            groups: &groups,
            factor: Factor::Totp,
            mfa_time: now(),
            login: "root",
            target: "prod-db",
            labels: &labels,
        };
        let err = evaluate_access(&req, &policy, now()).unwrap_err();
        assert_eq!(err.code, DenyCode::FactorTooWeak);
        let g =
            evaluate_access_with_key(&req, KeyAssurance::HardwareAttested, &policy, now()).unwrap();
        assert_eq!(g.roles(), ["prod"]);
    }

    #[test]
    fn sub_second_ttl_rounds_down_not_up() {
        let policy = Policy::from_toml(P).unwrap();
        let groups = vec!["eng".to_owned()];
        let req = CertRequest {
            user: "bob",
            groups: &groups,
            factor: Factor::Totp,
            mfa_time: now(),
            requested_ttl: Some(Duration::from_millis(1700)),
            login: None,
        };
        let g = evaluate(&req, &policy, now()).into_result().unwrap();
        assert_eq!(g.ttl(), Duration::from_secs(1));
        assert_eq!(g.mfa_time(), now());
        let req = CertRequest {
            requested_ttl: Some(Duration::from_millis(999)),
            ..req
        };
        assert_eq!(
            evaluate(&req, &policy, now()).denial().unwrap().code,
            DenyCode::InvalidRequest
        );
    }

    #[test]
    fn decision_serialises_to_json() {
        let allow = run(&case("x", "bob", &["eng"]));
        let v = serde_json::to_value(&allow).unwrap();
        assert_eq!(v["decision"], "allow");
        assert_eq!(v["user"], "bob");
        assert_eq!(v["ttl_seconds"], 3600);
        assert_eq!(v["principals"], serde_json::json!(["bob", "dev"]));
        assert_eq!(v["roles"], serde_json::json!(["dev"]));
        assert_eq!(v["factor"], "totp");
        assert_eq!(v["factor_strength"], "otp");
        assert_eq!(v["extensions"]["permit-pty"], "");
        assert_eq!(v["source_address"], serde_json::json!([]));
        assert_eq!(v["mfa_time"], "2025-03-01T12:00:00Z");
        assert!(v["reasons"].is_array());

        let deny = run(&case("x", "bob", &["nobody"]));
        let v = serde_json::to_value(&deny).unwrap();
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["code"], "no_role");
        assert_eq!(v["reason"], "no role is granted to bob (groups: nobody)");
    }

    #[test]
    fn deny_codes_are_stable_snake_case() {
        let all = [
            (DenyCode::InvalidRequest, "invalid_request"),
            (DenyCode::NoRole, "no_role"),
            (DenyCode::DeniedByRule, "denied_by_rule"),
            (DenyCode::RecoveryRefused, "recovery_refused"),
            (DenyCode::FactorTooWeak, "factor_too_weak"),
            (DenyCode::MfaTooOld, "mfa_too_old"),
            (DenyCode::MfaInFuture, "mfa_in_future"),
            (DenyCode::NoPrincipals, "no_principals"),
            (DenyCode::LoginNotGranted, "login_not_granted"),
            (DenyCode::TargetNotAllowed, "target_not_allowed"),
            (DenyCode::InvalidHostName, "invalid_host_name"),
        ];
        for (code, s) in all {
            assert_eq!(code.as_str(), s);
            assert_eq!(code.to_string(), s);
            assert_eq!(serde_json::to_value(code).unwrap(), s);
        }
        let d = Denial::new(DenyCode::NoRole, "nope");
        assert_eq!(d.to_string(), "denied (no_role): nope");
    }

    #[test]
    fn access_table() {
        use DenyCode::*;
        let policy = Policy::from_toml(P).unwrap();
        let cases: &[AccessCase] = &[
            ("bob", &["eng"], Factor::Totp, "bob", "web-1", Ok(&["dev"])),
            ("bob", &["eng"], Factor::Totp, "dev", "web-1", Ok(&["dev"])),
            (
                "bob",
                &["eng"],
                Factor::Totp,
                "bob",
                "prod-db",
                Err(TargetNotAllowed),
            ),
            (
                "bob",
                &["eng"],
                Factor::Totp,
                "bob",
                "PROD-db",
                Err(TargetNotAllowed),
            ),
            (
                "bob",
                &["eng"],
                Factor::Totp,
                "root",
                "web-1",
                Err(LoginNotGranted),
            ),
            (
                "carl",
                &["ops"],
                Factor::Totp,
                "ops",
                "prod-db",
                Ok(&["ops"]),
            ),
            (
                "carl",
                &["ops"],
                Factor::Totp,
                "carl",
                "prod-db",
                Err(LoginNotGranted),
            ),
            (
                "carl",
                &["ops"],
                Factor::Totp,
                "ops",
                "web-1",
                Err(TargetNotAllowed),
            ),
            (
                "dana",
                &["sre"],
                uv(),
                "root",
                "prod-db",
                Ok(&["prod-root"]),
            ),
            (
                "dana",
                &["sre"],
                Factor::Totp,
                "root",
                "prod-db",
                Err(TargetNotAllowed),
            ),
            (
                "carol",
                &["contractors"],
                uv(),
                "root",
                "prod-db",
                Err(TargetNotAllowed),
            ),
            (
                "carol",
                &["contractors"],
                uv(),
                "dev",
                "web-1",
                Err(LoginNotGranted),
            ),
            (
                "bob",
                &["vpnusers"],
                Factor::Totp,
                "vpn",
                "web-1",
                Err(TargetNotAllowed),
            ),
            (
                "bob",
                &["eng"],
                Factor::Totp,
                "bob",
                "*",
                Err(InvalidRequest),
            ),
            (
                "bob",
                &["eng"],
                Factor::Totp,
                "b b",
                "web-1",
                Err(InvalidRequest),
            ),
            (
                "mallory",
                &["eng"],
                Factor::Totp,
                "mallory",
                "web-1",
                Err(DeniedByRule),
            ),
            (
                "bob",
                &["eng"],
                Factor::Recovery,
                "bob",
                "web-1",
                Err(RecoveryRefused),
            ),
        ];
        for (user, groups, factor, login, target, want) in cases {
            let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
            let no_labels = BTreeMap::new();
            let req = AccessRequest {
                user,
                groups: &groups,
                factor: factor.clone(),
                mfa_time: now(),
                login,
                target,
                labels: &no_labels,
            };
            let got = evaluate_access(&req, &policy, now());
            let label = format!("{user} {login}@{target}");
            match (want, &got) {
                (Ok(roles), Ok(g)) => {
                    assert_eq!(g.roles(), *roles, "{label}");
                    assert_eq!((g.user(), g.login(), g.target()), (*user, *login, *target));
                    assert!(!g.reasons().is_empty());
                }
                (Err(code), Err(d)) => assert_eq!(d.code, *code, "{label}: {}", d.reason),
                _ => panic!("{label}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn host_approval() {
        let policy = Policy::from_toml(P).unwrap();
        let day = 86_400;
        let extras = vec![
            "db-1.example.com".to_owned(),
            "10.0.0.5".to_owned(),
            "db-1".to_owned(),
        ];
        let g = approve_host(&policy, "db-1", &extras, None).unwrap();
        assert_eq!(g.name(), "db-1");
        assert_eq!(g.principals(), ["db-1", "db-1.example.com", "10.0.0.5"]);
        assert_eq!(g.ttl(), Duration::from_secs(30 * day));
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["ttl_seconds"], 30 * day);

        let cases: &[HostCase] = &[
            ("db-1", &[], Some(90 * day), Ok(30 * day)),
            ("db-1", &[], Some(3600), Ok(3600)),
            ("db-1", &[], Some(0), Err(DenyCode::InvalidRequest)),
            ("-db", &[], None, Err(DenyCode::InvalidHostName)),
            ("", &[], None, Err(DenyCode::InvalidHostName)),
            ("db-1", &["a b"], None, Err(DenyCode::InvalidHostName)),
            (
                "db-1",
                &["*.example.com"],
                None,
                Err(DenyCode::InvalidHostName),
            ),
            ("::1", &[], None, Ok(30 * day)),
        ];
        for (name, extra, ttl, want) in cases {
            let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
            let got = approve_host(&policy, name, &extra, ttl.map(Duration::from_secs));
            match (want, &got) {
                (Ok(secs), Ok(g)) => assert_eq!(g.ttl().as_secs(), *secs, "{name}"),
                (Err(code), Err(d)) => assert_eq!(d.code, *code, "{name}: {}", d.reason),
                _ => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }

        let short = Policy::from_toml("version = 1\n[hosts]\nmax_ttl = \"7d\"\n").unwrap();
        let g = approve_host(&short, "db-1", &[], None).unwrap();
        assert_eq!(g.ttl(), Duration::from_secs(7 * day));
    }

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
}
