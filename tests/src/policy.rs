//! The policy the e2e tests run the CA with, so that what a certificate must carry
//! does not depend on the default policy `rampart-ca init` happens to write.
//! Format: policy format version 1 (see `policy/tests/fixtures/policy.toml`).

/// Group whose members get role `dev` (principal = their own user name) and may
/// log in with a recovery code (role `recovery`, same principal).
pub const ENGINEERS: &str = "engineers";

/// `engineers` → `dev` (TOTP, principal `{user}`, `permit-pty`) and `recovery`
/// (recovery codes accepted, same principal). The admin gets `dev` too, so that
/// their own `rampart login` yields a certificate.
///
/// `defaults.min_factor` is `recovery` because a role can only ask for more than the
/// default, never less; `dev` raises it back to `otp`.
pub fn standard_policy(admin_user: &str) -> String {
    format!(
        r#"# Policy written by the Rampart e2e harness.
version = 1

[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
min_factor = "otp"
extensions = ["permit-pty"]

[roles.recovery]
principals = ["{{user}}"]
min_factor = "recovery"
allow_recovery = true
extensions = ["permit-pty"]

[groups]
{ENGINEERS} = ["dev", "recovery"]

[users]
"{admin_user}" = ["dev"]
"#
    )
}

/// Role `dev` for group `engineers` (and the admin): principal `{user}`,
/// logins `{user}` and [`crate::TEST_ACCOUNT`] on every `db-*` target, and
/// bastion `bastion` registered for `db-*`. The policy of the tests that need
/// a bastion and nothing special from policy.
pub fn bastion_policy(admin_user: &str, bastion: &str) -> String {
    let account = crate::TEST_ACCOUNT;
    format!(
        r#"version = 1
[defaults]
ttl = "1h"
max_ttl = "8h"
min_factor = "recovery"

[roles.dev]
principals = ["{{user}}"]
logins = ["{{user}}", "{account}"]
min_factor = "otp"
extensions = ["permit-pty"]
targets = {{ allow = ["db-*"] }}

[groups]
{ENGINEERS} = ["dev"]

[users]
"{admin_user}" = ["dev"]

[bastions."{bastion}"]
targets = ["db-*"]
"#
    )
}
