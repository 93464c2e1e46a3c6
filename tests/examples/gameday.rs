//! `cargo run -p rampart-e2e --example gameday -- siem-outage|audit-disk-full|idp-outage`
//!
//! Rehearses an outage on a throwaway deployment (a real CA, Prometheus with the
//! shipped alert rules, and the peer that fails) and prints what the metrics and
//! alerts did. Needs the workspace's binaries built (`cargo build --workspace`)
//! and, for audit-disk-full, root (it mounts a tmpfs).
#![allow(clippy::panic)]

use rampart_e2e::gameday::{run, Scenario};

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let Some(scenario) = Scenario::parse(&arg) else {
        eprintln!("usage: gameday siem-outage|audit-disk-full|idp-outage");
        std::process::exit(2);
    };
    print!("{}", run(scenario));
}
