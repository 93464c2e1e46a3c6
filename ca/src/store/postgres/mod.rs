//! The PostgreSQL store: several CAs may share one database.
//!
//! Driver: the blocking `postgres` client (tokio-postgres with its own small
//! runtime per connection). The store traits are synchronous, and the CA calls
//! them from blocking threads (`http::blocking`, `spawn_blocking`,
//! `block_in_place`), never from an async worker, where the blocking client
//! would panic. The one place the store meets a worker is its end: the last
//! handle goes with the last task holding the authority as the runtime shuts
//! down, so [`Pool`]'s drop closes connections from a thread of its own there.
//!
//! Connections come from a small bounded pool of our own ([`Pool`]) rather
//! than `r2d2_postgres`: it needs a mutex, a condvar and a closed-connection
//! check, and nothing else r2d2 brings (its thread pool, its own config
//! surface) earns its keep here. A connection the server closed is dropped on
//! return and replaced on the next checkout.
//!
//! Consistency across processes: every compare-and-set is one
//! `UPDATE … WHERE … RETURNING`/`INSERT … ON CONFLICT` statement or runs under
//! a row lock (`SELECT … FOR UPDATE`) or a per-user advisory lock, so two CAs
//! racing for one invite, TOTP step, recovery code, counter or proof cannot
//! both win. Serials and the KRL version are counters in one locked row each.
//! Commits are durable under PostgreSQL's defaults (`synchronous_commit = on`);
//! the SQLite store's `durably` has no counterpart here.
//!
//! TLS to the server is not supported yet: connections are plain TCP or a
//! Unix socket, and a URL asking for `sslmode=require` is refused.
//!
//! This module owns the pool, the error mapping and the meta table; [`schema`]
//! and [`migrate`] own the tables and their version; one module per area
//! implements that area's trait.

mod attempts;
mod bastions;
mod budgets;
mod certs;
mod factors;
mod migrate;
mod pending;
mod schema;
mod sessions;
/// The throwaway cluster the tests run against.
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use rampart_test_postgres::TestPostgres;
}
mod users;

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::Client;

pub use migrate::{inspect, SCHEMA_VERSION};

use super::{MetaStore, StoreError};

/// How many connections one CA keeps at most.
const POOL_SIZE: usize = 8;
/// How long a checkout waits for a free connection.
const CHECKOUT_WAIT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a PostgreSQL database is and how to reach it (TLS included), with
/// the password kept out of `Debug`.
#[derive(Clone)]
pub struct PgTarget {
    url: String,
    config: rampart_audit::PgConfig,
}

impl PgTarget {
    /// A `postgres://` or `postgresql://` URL, and a password to use when the
    /// URL has none. Plain TCP or a Unix socket; see [`PgTarget::with_tls_roots`].
    pub fn new(url: &str, password: Option<secrecy::SecretString>) -> Result<Self, StoreError> {
        use secrecy::ExposeSecret;
        if !is_postgres_url(url) {
            return Err(StoreError::Settings(format!(
                "{} is not a postgres:// URL",
                redact_url(url)
            )));
        }
        let config = rampart_audit::pg_config(url, password.as_ref().map(|p| p.expose_secret()))
            .map_err(settings_error)?
            .for_application("rampart-ca");
        Ok(PgTarget {
            url: url.to_owned(),
            config,
        })
    }

    /// Require TLS to the server, verified against the CA certificates in `pem`
    /// (the server's certificate must also name the URL's host).
    pub fn with_tls_roots(mut self, pem: &[u8]) -> Result<Self, StoreError> {
        self.config = self.config.with_tls_roots(pem).map_err(settings_error)?;
        Ok(self)
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }

    /// How to connect (password, timeouts and TLS filled in).
    pub(crate) fn config(&self) -> rampart_audit::PgConfig {
        self.config.clone()
    }
}

/// A refusal of the connection settings, in words (no audit prefix).
fn settings_error(e: rampart_audit::AuditError) -> StoreError {
    match e {
        rampart_audit::AuditError::Config(m) => StoreError::Settings(m),
        other => StoreError::database("PostgreSQL connection settings", other),
    }
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.redacted())
            .field("tls", &self.config.uses_tls())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A `database` value naming PostgreSQL rather than an SQLite file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a URL
/// without a password is returned as is. A `password=` query parameter is
/// masked too.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(p) => p,
        None => return url.to_owned(),
    };
    // The authority ends at the first '/' or '?' after the last '@' before it.
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A bounded set of connections to one database.
struct Pool {
    config: rampart_audit::PgConfig,
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    /// Idle connections and since when they are idle.
    idle: Vec<(Client, Instant)>,
    open: usize,
}

/// A connection idle longer than this is checked (one round trip) before it
/// is handed out: a server restart closes every connection, and a client only
/// notices on its next statement, which would fail one request per pooled
/// connection after every restart. Busy connections are never idle this long.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(5);

/// A checked-out connection; goes back to the pool on drop.
struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Present until drop.
        #[allow(clippy::unwrap_used)]
        self.client.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        #[allow(clippy::unwrap_used)]
        self.client.as_mut().unwrap()
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let mut state = self.pool.lock();
        if client.is_closed() {
            state.open = state.open.saturating_sub(1);
        } else {
            state.idle.push((client, Instant::now()));
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

impl Drop for Pool {
    /// Closing a connection blocks (it says goodbye to the server through the
    /// connection's own runtime), which panics on an async worker: and the
    /// last handle on the store may well go there, with the last task holding
    /// the authority when the daemon's runtime shuts down. On such a thread
    /// the connections are closed from a thread of their own.
    fn drop(&mut self) {
        let idle: Vec<Client> = std::mem::take(&mut self.lock().idle)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            let closer = std::thread::Builder::new()
                .name("rampart-pg-close".into())
                .spawn(move || drop(idle));
            if let Err(e) = closer {
                tracing::warn!(error = %e, "could not close the database connections");
            }
        } else {
            drop(idle);
        }
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves a consistent Vec and count.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self) -> Result<Conn<'_>, StoreError> {
        let deadline = Instant::now() + CHECKOUT_WAIT;
        let mut state = self.lock();
        loop {
            if let Some((mut client, since)) = state.idle.pop() {
                if client.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                if since.elapsed() >= IDLE_CHECK_AFTER {
                    drop(state);
                    if client.is_valid(CONNECT_TIMEOUT).is_err() {
                        drop(client);
                        state = self.lock();
                        state.open = state.open.saturating_sub(1);
                        continue;
                    }
                }
                return Ok(Conn {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect() {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(StoreError::Unavailable {
                            database: self.config.location(),
                            source: Box::new(e),
                        })
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Db(format!(
                    "all {} database connections stayed busy for {}s",
                    self.max,
                    CHECKOUT_WAIT.as_secs()
                )));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// PostgreSQL implementation of [`Store`](crate::store::Store).
pub struct PostgresStore {
    pool: Pool,
    target: PgTarget,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn db(e: postgres::Error) -> StoreError {
    if lost_server(&e) {
        return StoreError::Unavailable {
            database: "PostgreSQL".into(),
            source: Box::new(e),
        };
    }
    StoreError::database("PostgreSQL", e)
}

/// The PostgreSQL error under `e`, when `e` is one.
fn pg_error(e: &StoreError) -> Option<&postgres::Error> {
    match e {
        StoreError::Database { source, .. } | StoreError::Unavailable { source, .. } => {
            source.downcast_ref()
        }
        _ => None,
    }
}

/// Whether `e` says the server went away (the connection closed, an
/// administrator shut it down, it is starting) rather than that a statement
/// failed: the request may succeed once the server is back.
fn lost_server(e: &postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        )
}

/// A unique violation is [`StoreError::Duplicate`] of `what`; anything else
/// is a database error.
fn duplicate_or_db(e: postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Duplicate(what())
    } else {
        db(e)
    }
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit the database")))
}

fn u64_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

impl PostgresStore {
    /// Connect to the database and bring its schema to [`SCHEMA_VERSION`].
    pub fn open(target: &PgTarget) -> Result<Self, StoreError> {
        let store = PostgresStore {
            pool: Pool {
                config: target.config(),
                state: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
                max: POOL_SIZE,
            },
            target: target.clone(),
        };
        migrate::migrate(&mut *store.conn()?)?;
        Ok(store)
    }

    fn conn(&self) -> Result<Conn<'_>, StoreError> {
        self.pool.get()
    }

    /// Store `value` under `key` unless a value is there already; the value
    /// that holds afterwards. Two CAs starting on one new database agree on
    /// one value (the seal salt).
    pub fn meta_or_insert(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut c = self.conn()?;
        c.execute(
            "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )
        .map_err(db)?;
        let row = c
            .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
            .map_err(db)?;
        Ok(row.get(0))
    }
}

impl MetaStore for PostgresStore {
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .conn()?
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO meta(key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map_err(db)?;
        Ok(())
    }

    fn replace_meta(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let mut c = self.conn()?;
        let changed = match expected {
            None => c.execute(
                "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            ),
            Some(old) => c.execute(
                "UPDATE meta SET value = $2 WHERE key = $1 AND value = $3",
                &[&key, &value, &old],
            ),
        }
        .map_err(db)?;
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_passwords_redacted() {
        assert!(is_postgres_url("postgres://ca@db:5432/rampart"));
        assert!(is_postgres_url("postgresql://ca@db/rampart"));
        assert!(!is_postgres_url("ca.db"));
        assert!(!is_postgres_url("/var/lib/rampart-ca/postgres.db"));
        assert_eq!(
            redact_url("postgres://ca:hunter2@db:5432/rampart"),
            "postgres://ca:***@db:5432/rampart"
        );
        assert_eq!(
            redact_url("postgres://ca@db:5432/rampart?password=hunter2&connect_timeout=3"),
            "postgres://ca@db:5432/rampart?password=***&connect_timeout=3"
        );
        assert_eq!(
            redact_url("postgres://ca@db/rampart"),
            "postgres://ca@db/rampart"
        );
        let t = PgTarget::new(
            "postgres://ca:hunter2@db/rampart",
            Some("also-secret".to_owned().into()),
        )
        .unwrap();
        let shown = format!("{t:?} {t}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("also-secret"),
            "{shown}"
        );
    }

    /// The daemon's last handle on the store goes when its runtime shuts
    /// down, on an async worker, where the blocking client cannot close a
    /// connection itself.
    #[test]
    fn the_last_handle_may_be_dropped_on_an_async_worker() {
        let pg = testing::TestPostgres::start();
        let t = PgTarget::new(&pg.create_database("ca"), None).unwrap();
        let store = std::sync::Arc::new(PostgresStore::open(&t).unwrap());
        assert_eq!(store.meta("x").unwrap(), None);
        assert_eq!(store.pool.lock().idle.len(), 1, "a connection is pooled");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move { tokio::spawn(async move { drop(store) }).await })
            .expect("dropping the store on a worker must not panic");
    }

    #[test]
    fn unverified_tls_in_the_url_is_refused() {
        let e = PgTarget::new("postgres://ca@db/rampart?sslmode=require", None).unwrap_err();
        assert!(e.to_string().contains("database_tls_ca_file"), "{e}");
        assert!(!e.to_string().contains("audit"), "{e}");
        assert!(PgTarget::new("ca.db", None).is_err());
    }

    #[test]
    fn an_unreachable_server_is_unavailable_naming_no_password() {
        // Port 1 on loopback: nothing listens there.
        let t = PgTarget::new("postgres://ca:hunter2@127.0.0.1:1/rampart", None).unwrap();
        let e = PostgresStore::open(&t).unwrap_err();
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
        let told = rampart_api::report::one_line(&e);
        assert!(told.contains("127.0.0.1:1/rampart"), "{told}");
        assert!(!told.contains("hunter2"), "{told}");
        assert!(
            pg_error(&e).is_some(),
            "the driver's error is kept as the source: {e:?}"
        );
        // What a client is told: retry later, not an internal error.
        let ca = crate::error::CaError::Store(e);
        assert_eq!(ca.status(), 503);
        assert_eq!(ca.code(), rampart_api::ErrorCode::DatabaseUnavailable);
    }
}
