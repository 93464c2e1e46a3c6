//! Unit tests of evaluation: one policy, many requests.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::{Factor, KeyAssurance, Policy};
use chrono::TimeZone;

pub(super) const P: &str = r#"
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

pub(super) const R: &str = r#"
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

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

pub(super) fn uv() -> Factor {
    Factor::Webauthn {
        user_verified: true,
        attested: true,
        via_link: false,
    }
}

pub(super) struct Case {
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

pub(super) fn case(
    name: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
) -> Case {
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

pub(super) fn run(c: &Case) -> Decision {
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

mod access;
mod certificates;
mod link_approval;
mod reach;
