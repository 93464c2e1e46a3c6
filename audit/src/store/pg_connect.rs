//! [`PgConfig`]: how to reach a PostgreSQL database — the `postgres` crate's
//! settings and, when the server is across a network, TLS with the server's
//! certificate checked against the operator's CA and its name against the
//! host in the URL (what libpq calls `verify-full`). Used by the audit log's
//! PostgreSQL store and forwarders, and by the CA's own PostgreSQL store, so
//! that there is one way to connect.

use std::str::FromStr;
use std::sync::Arc;

use ::postgres::config::SslMode;
use ::postgres::{Client, NoTls};

use crate::AuditError;

/// How to reach a PostgreSQL database. `Debug` never shows the password.
#[derive(Clone)]
pub struct PgConfig {
    settings: ::postgres::Config,
    /// TLS, required and verified, when set.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("database", &describe(self))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Whether `s` names a PostgreSQL database rather than an SQLite file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The URL without its user information or query, for messages.
fn redact(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match url.split_once('@') {
        Some((_, rest)) => format!("postgres://…@{rest}"),
        None => url.to_owned(),
    }
}

/// Connection settings from a `postgres://` URL and a password used when the
/// URL carries none. The error never shows the password. A URL asking for TLS
/// (`sslmode=require`) is refused here: TLS comes with the CA certificates
/// that verify the server ([`PgConfig::with_tls_roots`]), never unverified.
pub fn pg_config(url: &str, password: Option<&str>) -> Result<PgConfig, AuditError> {
    let mut settings = ::postgres::Config::from_str(url)
        .map_err(|e| AuditError::Config(format!("not a PostgreSQL URL ({e}): {}", redact(url))))?;
    if settings.get_ssl_mode() == SslMode::Require {
        return Err(AuditError::Config(format!(
            "{}: sslmode=require would take any certificate the server shows; give the CA \
             certificate that signed the server's instead (database_tls_ca_file), and TLS is \
             required and verified",
            redact(url)
        )));
    }
    if settings.get_password().is_none() {
        if let Some(p) = password {
            settings.password(p);
        }
    }
    if settings.get_connect_timeout().is_none() {
        settings.connect_timeout(std::time::Duration::from_secs(10));
    }
    // No TLS unless roots are given: a plain connection, never a silent
    // fallback from TLS.
    settings.ssl_mode(SslMode::Disable);
    Ok(PgConfig {
        settings,
        tls: None,
    })
}

impl PgConfig {
    /// Require TLS, and accept only a server whose certificate chains to one of
    /// the CA certificates in `pem` and names the host the URL connects to.
    pub fn with_tls_roots(mut self, pem: &[u8]) -> Result<PgConfig, AuditError> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                AuditError::Config(format!("database TLS CA file: not PEM certificates: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                AuditError::Config(format!("database TLS CA file: unusable certificate: {e}"))
            })?;
        }
        if roots.is_empty() {
            return Err(AuditError::Config(
                "database TLS CA file: no certificate in it".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AuditError::Config(format!("database TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.settings.ssl_mode(SslMode::Require);
        self.tls = Some(Arc::new(tls));
        Ok(self)
    }

    /// `postgres://host:port/db`, for messages (no user, no password).
    pub fn location(&self) -> String {
        describe(self)
    }

    /// Whether connections use TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same settings with `name` as the connection's application name
    /// (what `pg_stat_activity` shows), unless one is set already.
    pub fn for_application(mut self, name: &str) -> PgConfig {
        if self.settings.get_application_name().is_none() {
            self.settings.application_name(name);
        }
        self
    }

    /// The connect timeout, if any.
    pub fn connect_timeout(&self) -> Option<std::time::Duration> {
        self.settings.get_connect_timeout().copied()
    }

    /// Open a connection (blocking; never from an async worker).
    pub fn connect(&self) -> Result<Client, ::postgres::Error> {
        match &self.tls {
            None => self.settings.connect(NoTls),
            Some(tls) => self
                .settings
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(
                    (**tls).clone(),
                )),
        }
    }
}

/// Where a configuration points, for messages: `postgres://host:port/db`.
pub fn describe(cfg: &PgConfig) -> String {
    let s = &cfg.settings;
    let host = s
        .get_hosts()
        .first()
        .map(|h| match h {
            ::postgres::config::Host::Tcp(h) => h.clone(),
            ::postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = s.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{host}:{port}/{}", s.get_dbname().unwrap_or(""))
}
