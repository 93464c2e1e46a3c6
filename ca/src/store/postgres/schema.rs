//! The tables of the PostgreSQL store as schema version 1 has them. They hold
//! what the SQLite store's tables hold, in PostgreSQL's own types (`BYTEA`,
//! `BOOLEAN`, `TIMESTAMPTZ`, `TEXT[]`); `user` is a reserved word here, so
//! the column is `user_name`. Serials and the KRL version are rows of
//! `counters`, bumped under the row's lock. [`super::migrate`] applies this;
//! later versions append migrations there rather than edit it.

use postgres::Transaction;

use super::db;
use crate::store::StoreError;

const V1_TABLES: &str = r#"
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    groups     TEXT[] NOT NULL,
    admin      BOOLEAN NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE invites (
    code_hash  BYTEA PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users(name),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE TABLE enrollments (
    token_hash  BYTEA PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users(name),
    sealed_seed BYTEA NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE totp (
    user_name   TEXT PRIMARY KEY REFERENCES users(name),
    sealed_seed BYTEA NOT NULL,
    last_step   BIGINT NOT NULL
);
CREATE TABLE recovery_codes (
    user_name TEXT NOT NULL REFERENCES users(name),
    id        TEXT NOT NULL,
    hash      TEXT NOT NULL,
    used_at   TIMESTAMPTZ,
    PRIMARY KEY (user_name, id)
);
-- Failed factor checks per (user, source network); network '*' is the
-- user-wide row (see crate::store::attempts).
CREATE TABLE attempts (
    user_name    TEXT NOT NULL,
    network      TEXT NOT NULL,
    count        INTEGER NOT NULL,
    since        TIMESTAMPTZ NOT NULL,
    lock_level   INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    PRIMARY KEY (user_name, network)
);
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    id         TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    mfa_method TEXT NOT NULL,
    mfa_time   TIMESTAMPTZ NOT NULL,
    mfa_event  TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_name);
CREATE TABLE certs (
    serial          BIGINT PRIMARY KEY,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    principals      TEXT[] NOT NULL,
    valid_after     BIGINT NOT NULL,
    valid_before    BIGINT NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX certs_subject ON certs(kind, subject);
CREATE INDEX certs_key ON certs(key_fingerprint);
CREATE TABLE revoked_serials (
    serial     BIGINT PRIMARY KEY,
    reason     TEXT NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE revoked_keys (
    fingerprint TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    revoked_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE host_keys (
    fingerprint TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL
);
CREATE TABLE bastion_tokens (
    token_hash BYTEA PRIMARY KEY,
    name       TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE TABLE bastions (
    name                 TEXT PRIMARY KEY,
    credential_hash      BYTEA NOT NULL UNIQUE,
    host_key_fingerprint TEXT NOT NULL,
    joined_at            TIMESTAMPTZ NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
-- Monotonic counters: the highest serial reserved, the KRL version.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO counters(name, value) VALUES ('serial_reserved_upto', 0), ('krl_version', 0);
CREATE TABLE idp_subjects (
    provider  TEXT NOT NULL,
    subject   TEXT NOT NULL,
    user_name TEXT NOT NULL,
    bound_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, subject),
    UNIQUE (provider, user_name)
);
CREATE TABLE idp_evidence (
    session_id TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    acr        TEXT,
    amr        TEXT[] NOT NULL,
    auth_time  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE webauthn_keys (
    id                   TEXT PRIMARY KEY,
    user_name            TEXT NOT NULL REFERENCES users(name),
    credential_id        TEXT NOT NULL UNIQUE,
    credential_json      TEXT NOT NULL,
    aaguid               TEXT NOT NULL,
    attestation_format   TEXT NOT NULL,
    user_verified        BOOLEAN NOT NULL,
    backup_eligible      BOOLEAN NOT NULL,
    backup_state         BOOLEAN NOT NULL,
    sign_count           BIGINT NOT NULL,
    name                 TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    last_used_at         TIMESTAMPTZ,
    disabled_reason      TEXT,
    attestation_verified BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (user_name, name)
);
CREATE TABLE webauthn_evidence (
    session_id    TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    aaguid        TEXT NOT NULL,
    user_verified BOOLEAN NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    attested      BOOLEAN NOT NULL DEFAULT FALSE,
    via_link      BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE user_proofs (
    session_hash BYTEA PRIMARY KEY,
    bastion      TEXT NOT NULL,
    first_used   TIMESTAMPTZ NOT NULL,
    accept_until TIMESTAMPTZ NOT NULL,
    keep_until   TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_proofs_keep_until ON user_proofs(keep_until);
"#;

/// Schema version 1: every table, on an empty database.
pub(super) fn version_1(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.batch_execute(V1_TABLES).map_err(db)
}

const V2_TABLES: &str = r#"
CREATE TABLE pending (
    kind       TEXT NOT NULL,
    key        BYTEA NOT NULL,
    owner      TEXT NOT NULL,
    counts_until TIMESTAMPTZ NOT NULL,
    payload    BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    forget_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX pending_forget ON pending(forget_at);
CREATE INDEX pending_owner ON pending(kind, owner);
CREATE TABLE budget_events (
    budget TEXT NOT NULL,
    key    TEXT NOT NULL,
    at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX budget_events_key ON budget_events(budget, key, at);
CREATE INDEX budget_events_at ON budget_events(budget, at);
"#;

/// Schema version 2: flows in progress between requests and per-network
/// budgets, shared by every CA on the database.
pub(super) fn version_2(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.batch_execute(V2_TABLES).map_err(db)
}
