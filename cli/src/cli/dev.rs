//! `rampart dev`: the local CA (and bastion) for trying Rampart on one machine.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// `rampart dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory for the demo CA's keys, database and secrets.
    #[arg(long, default_value = "./.rampart-dev", value_name = "DIR")]
    pub dir: PathBuf,
    /// Address the CA listens on.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The `rampart-ca` binary (default: beside `rampart`, else on PATH).
    #[arg(long, value_name = "FILE")]
    pub ca_bin: Option<PathBuf>,
    /// Run only the CA, no bastion.
    #[arg(long)]
    pub no_bastion: bool,
    /// Address the bastion listens on.
    #[arg(long, default_value = "127.0.0.1:2222", value_name = "ADDR")]
    pub bastion_listen: String,
    /// The `rampart-bastion` binary (default: beside `rampart`, else on PATH).
    #[arg(long, value_name = "FILE")]
    pub bastion_bin: Option<PathBuf>,
    /// The demo target, `NAME=HOST[:PORT]` (default: the local sshd on
    /// 127.0.0.1:22 when one listens). Used when the bastion is first joined.
    #[arg(long, value_name = "NAME=HOST[:PORT]")]
    pub target: Option<String>,
    /// Pin the target's host key from this public key file (default for the
    /// local sshd: /etc/ssh/ssh_host_ed25519_key.pub; for --target: expect a
    /// host certificate from the Rampart host CA).
    #[arg(long, value_name = "FILE")]
    pub target_host_key: Option<PathBuf>,
}
