//! What is asked: a certificate request after the CA verified the factor.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Factor;

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
