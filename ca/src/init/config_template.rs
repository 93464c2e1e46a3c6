//! The `config.toml` that `rampart-ca init` writes: every key with its default
//! and a comment saying what it does, commented out where the default stands,
//! so that a new operator reads the whole configuration in one file. The
//! config reference tests check this text against what the CA accepts.

pub(super) fn config_text(listen: &str, passphrase_line: &str, ca_key_lines: &str) -> String {
    config_text_with(
        listen,
        passphrase_line,
        ca_key_lines,
        DEFAULT_DATABASE_LINES,
        DEFAULT_AUDIT_LINES,
    )
}

/// `config_text`'s database lines for the default SQLite file.
const DEFAULT_DATABASE_LINES: &str =
    "# Identities, factors, sessions, issued certificates, revocations (SQLite).\n\
     database = \"ca.db\"";

/// `config_text`'s `[audit] database` lines for the default SQLite file.
const DEFAULT_AUDIT_LINES: &str = "# Hash-chained, append-only audit log (SQLite).\n\
     database = \"audit.db\"";

/// The `[audit] database` lines for a log in the CA's PostgreSQL database.
pub(super) fn postgres_audit_lines(url: &str) -> String {
    format!(
        "# Hash-chained, append-only audit log: tables in the CA's PostgreSQL database,\n\
         # one chain every CA on it appends to (password: database_password_file).\n\
         database = {}",
        toml::Value::String(url.to_owned())
    )
}

pub(super) fn config_text_with(
    listen: &str,
    passphrase_line: &str,
    ca_key_lines: &str,
    database_lines: &str,
    audit_lines: &str,
) -> String {
    format!(
        r#"# rampart-ca configuration (written by `rampart-ca init`).
# Relative paths are relative to this file's directory. Every option below shows
# its default unless noted; `rampart-ca check --config FILE` validates the file.
version = 1

# Address of the HTTPS API.
listen = "{listen}"
{database_lines}
# Who gets which certificates: see the comments in the policy file.
policy = "policy.toml"

[keys]
# Encrypted OpenSSH private keys (mode 0600). The daemon refuses looser modes.
{ca_key_lines}
audit = "keys/audit"
# Where the keys' passphrase comes from: exactly one of
#   passphrase_credential: a systemd credential, read from $CREDENTIALS_DIRECTORY
#     (the packaged unit loads "ca-passphrase" from /etc/rampart/ca-passphrase.cred);
#   passphrase_file: a file (mode 0600);
#   passphrase_env: an environment variable.
# Keep it out of this directory: a copy of the directory must not hold both the
# keys and their passphrase (`rampart-ca check` warns).
{passphrase_line}

[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"

[audit]
{audit_lines}
# Sign a checkpoint every N events or every interval, whichever comes first.
checkpoint_every_events = 1000
checkpoint_every = "60s"
# Every checkpoint and retention anchor is also appended here (fsynced); the CA
# refuses to start when the database is behind it. Ship a copy off this host.
# Default: audit.witness beside an SQLite database, or in this directory.
# witness_file = "audit.witness"
# Prune events older than this, up to a signed checkpoint kept as the anchor that
# `rampart audit verify` starts from. Default: keep forever.
# retention = "365d"

# SIEM forwarders (several allowed); each keeps a durable cursor in the audit
# database and delivers at least once, in order. Kinds: syslog-tcp, syslog-tls,
# webhook, splunk-hec.
# [[audit.forwarders]]
# name = "siem"
# kind = "syslog-tls"
# address = "siem.example.com:6514"
# ca_file = "siem-ca.pem"

[totp]
# Failed factor checks (TOTP or recovery code) before the user is locked out.
max_failures = 5
lockout = "5m"
# Failed checks from one source address within ip_window before it is refused.
ip_max_failures = 20
ip_window = "5m"
# Issuer label shown in authenticator apps.
issuer = "Rampart"

[sessions]
# Lifetime of a login session (the bearer token the CLI keeps).
ttl = "8h"

[invites]
default_ttl = "24h"
max_ttl = "7d"

[admin]
# Admin operations need an MFA check younger than this.
max_mfa_age = "1h"
# Allow admin operations from a session opened with a recovery code.
allow_recovery = false

# OpenID Connect step-up (`rampart login --mfa oidc --provider corp`); several
# providers allowed. Register a client at the provider with the redirect URI
# http://127.0.0.1/callback (native/loopback: any port) and, for --device, the
# device-code grant. Defaults shown for the optional keys.
# [[oidc.providers]]
# name = "corp"
# issuer = "https://idp.example.com"
# client_id = "rampart"
# client_secret_file = "oidc-corp.secret"   # mode 0600; omit for a public client
# scopes = ["profile", "email", "groups"]
# username_claim = "preferred_username"
# groups_claim = "groups"
# jit_users = false
# clock_skew = "60s"

# Security keys (WebAuthn in a browser, FIDO2/CTAP2 from the CLI). On with these
# defaults; browsers need a domain, not an IP address, so open the CA's pages as
# https://localhost:PORT on one machine, or set rp_id/origin to the CA's name.
# [webauthn]
# rp_id = "localhost"                    # keys are bound to it: never change it later
# origin = "https://localhost:8443"      # default: https://localhost:<listen port>
# rp_name = "Rampart"
# user_verification = "preferred"        # or "required": PIN/biometric on the key
# Without allowed_aaguids or attestation_roots every key is "unattested-key" at
# best, never "phishing-resistant" (a software authenticator can claim a PIN).
# allowed_aaguids = []                   # key models allowed to enrol (and trusted); empty = any
# attestation_roots = []                 # PEM files: enrol only keys attested by these
# challenge_ttl = "2m"                   # login and enrolment requests
# approval_ttl = "5m"                    # the bastion's per-session approvals

# YubiKey PIV attestation (`rampart login --key piv`): the roots a key's attestation
# must chain to (Yubico's PIV root CA, developers.yubico.com/PIV). Off (attested
# requests refused) until roots are set; roles with min_factor = "hardware-bound"
# need an attested key.
# [piv]
# attestation_roots = []                 # PEM files, e.g. ["yubico-piv-ca.pem"]
# touch_policies = ["always"]            # also "cached", "never"
# pin_policies = ["once", "always", "match-once", "match-always"]   # not "never"
"#
    )
}
