//! Building an API client from flags and `config.toml`.

use rampart_api::{Client, Fingerprint};

use crate::error::CliError;
use crate::home::Config;

/// Where the CA is and how to recognise it.
#[derive(Debug, Clone)]
pub struct CaTarget {
    /// Base URL.
    pub url: String,
    /// TLS certificate pin.
    pub fingerprint: Fingerprint,
}

impl CaTarget {
    /// Flags win over the saved config; both missing is the "enroll first" hint.
    pub fn resolve(
        url_flag: Option<&str>,
        fp_flag: Option<&str>,
        config: &Config,
    ) -> Result<Self, CliError> {
        let url = url_flag
            .map(str::to_owned)
            .or_else(|| config.ca_url.clone())
            .ok_or_else(not_enrolled)?;
        let fp = fp_flag
            .map(str::to_owned)
            .or_else(|| config.ca_fingerprint.clone())
            .ok_or_else(missing_fingerprint)?;
        Ok(CaTarget {
            url,
            fingerprint: Fingerprint::parse(&fp)?,
        })
    }

    /// The CA for a command that has no `--ca` flag (it uses a session):
    /// `RAMPART_CA` and `RAMPART_CA_FINGERPRINT` when set, as for every
    /// command that has the flags, else what `enroll`/`login` saved. Several CAs
    /// on one database share sessions, so the session opened through one CA
    /// works through another.
    pub fn for_session(config: &Config) -> Result<Self, CliError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::resolve(
            env("RAMPART_CA").as_deref(),
            env("RAMPART_CA_FINGERPRINT").as_deref(),
            config,
        )
    }

    /// An unauthenticated client.
    pub fn client(&self) -> Result<Client, CliError> {
        Ok(Client::new(&self.url, self.fingerprint)?)
    }

    /// Remember this CA in `config`.
    pub fn remember(&self, config: &mut Config) {
        config.ca_url = Some(self.url.clone());
        config.ca_fingerprint = Some(self.fingerprint.to_string());
    }
}

/// No CA known at all.
pub fn not_enrolled() -> CliError {
    CliError::NotLoggedIn(
        "no CA configured: run `rampart enroll --ca URL --ca-fingerprint SHA256:… --invite CODE` first, or pass --ca"
            .to_owned(),
    )
}

/// A CA URL but no pin.
pub fn missing_fingerprint() -> CliError {
    CliError::Usage("pass --ca-fingerprint (printed by `rampart-ca init`)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

    #[test]
    fn flags_override_config() {
        let cfg = Config {
            ca_url: Some("https://saved:1".into()),
            ca_fingerprint: Some(FP.into()),
            user: None,
            ssh_hosts: Vec::new(),
        };
        let t = CaTarget::resolve(Some("https://flag:2"), None, &cfg).unwrap();
        assert_eq!(t.url, "https://flag:2");
        assert_eq!(t.fingerprint.to_string(), FP);
        let t = CaTarget::resolve(None, None, &cfg).unwrap();
        assert_eq!(t.url, "https://saved:1");
    }

    #[test]
    fn a_session_command_takes_the_ca_from_the_environment_first() {
        let cfg = Config {
            ca_url: Some("https://saved:1".into()),
            ca_fingerprint: Some(FP.into()),
            user: None,
            ssh_hosts: Vec::new(),
        };
        // Each test runs in its own process under nextest.
        std::env::remove_var("RAMPART_CA");
        assert_eq!(CaTarget::for_session(&cfg).unwrap().url, "https://saved:1");
        std::env::set_var("RAMPART_CA", "https://ca2:8443");
        assert_eq!(CaTarget::for_session(&cfg).unwrap().url, "https://ca2:8443");
        std::env::set_var("RAMPART_CA", " ");
        assert_eq!(
            CaTarget::for_session(&cfg).unwrap().url,
            "https://saved:1",
            "an empty variable is unset"
        );
        std::env::remove_var("RAMPART_CA");
    }

    #[test]
    fn missing_pieces_give_hints() {
        let e = CaTarget::resolve(None, None, &Config::default()).unwrap_err();
        assert!(e.to_string().starts_with("no CA configured"));
        let e = CaTarget::resolve(Some("https://x:1"), None, &Config::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pass --ca-fingerprint (printed by `rampart-ca init`)"
        );
        let e = CaTarget::resolve(Some("https://x:1"), Some("SHA256:zz"), &Config::default())
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
    }
}
