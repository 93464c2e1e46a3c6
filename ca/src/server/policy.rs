//! The policy file at start and on SIGHUP: read, validated as at start-up,
//! audited, and published to the other CAs on the database when it was
//! edited ([`crate::authority::policy_share`]).

use std::path::Path;

use rampart_audit::{EventKind, NewEvent, Outcome};
use rampart_policy::Policy;

use crate::authority::policy_share::{self, parse_policy, PolicyShare};
use crate::authority::Authority;
use crate::error::CaError;

/// Read and validate the policy file.
pub fn load_policy(path: &Path) -> Result<Policy, CaError> {
    load_policy_text(path).map(|(_, policy)| policy)
}

/// Read and validate the policy file; its text too (what the CAs share).
pub fn load_policy_text(path: &Path) -> Result<(String, Policy), CaError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
    let policy = parse_policy(&text, &path.display().to_string())?;
    Ok((text, policy))
}

/// Re-read the policy file into a running authority (SIGHUP). The new policy
/// is validated exactly as at start-up; one that does not validate is refused
/// and the previous policy stays in force, so a typo during an incident never
/// leaves the CA without a policy. Either way the attempt is audited first.
/// An edited file is published to every CA on the database
/// ([`crate::authority::policy_share`]); an unchanged one changes nothing.
/// Returns the shared version published, if any.
pub fn reload_policy(
    path: &Path,
    auth: &Authority,
    share: &PolicyShare,
) -> Result<Option<u64>, CaError> {
    let loaded = load_policy_text(path);
    let outcome = if loaded.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let digest = match &loaded {
        Ok((text, _)) => policy_share::digest(text.as_bytes()),
        Err(_) => std::fs::read(path)
            .map(|b| policy_share::digest(&b))
            .unwrap_or_default(),
    };
    let mut ev = NewEvent::new(EventKind::PolicyReloaded, outcome, auth.now())
        .actor("rampart-ca")
        .detail("path", path.display().to_string())
        .detail("sha256", digest);
    if let Err(e) = &loaded {
        // The whole chain: an unreadable file names its path and the cause.
        ev = ev.reason(&rampart_api::report::one_line(e));
    }
    auth.record(ev)?;
    let (text, policy) = loaded?;
    for lint in policy.lint() {
        tracing::warn!("policy warning: {lint}");
    }
    auth.publish_reloaded_policy(share, &text, policy)
}
