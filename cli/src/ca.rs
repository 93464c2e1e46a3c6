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
