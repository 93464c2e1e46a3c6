//! The `source-address` critical option of OpenSSH certificates
//! (PROTOCOL.certkeys): where a certificate may be used from. The bastion
//! enforces it on the certificate a user presents; the CA checks the address
//! the bastion reports before it issues a per-session certificate. One reader,
//! so the two cannot disagree.

use std::net::IpAddr;

use ipnet::IpNet;

/// Name of the critical option.
pub const SOURCE_ADDRESS: &str = "source-address";

/// Whether `client` is allowed by a `source-address` value: a comma-separated
/// list of addresses or CIDR networks. An entry that does not parse is an
/// error, which refuses the certificate (fail closed), as sshd does. An IPv4
/// client seen as `::ffff:a.b.c.d` (a dual-stack socket) is compared as IPv4.
pub fn source_address_allows(value: &str, client: IpAddr) -> Result<bool, String> {
    let client = client.to_canonical();
    let mut allowed = false;
    for entry in value.split(',') {
        let entry = entry.trim();
        let net = match entry.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match entry.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "certificate source-address entry {:?} is not an address or network",
                        entry.chars().take(64).collect::<String>()
                    ))
                }
            },
        };
        allowed |= net.contains(&client);
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_networks_and_mapped_clients() {
        let allows = |v: &str, c: &str| source_address_allows(v, c.parse().unwrap());
        assert_eq!(allows("10.0.0.0/8,192.0.2.7", "10.200.0.1"), Ok(true));
        assert_eq!(allows("10.0.0.0/8,192.0.2.7", "192.0.2.7"), Ok(true));
        assert_eq!(allows("10.0.0.0/8,192.0.2.7", "192.0.2.8"), Ok(false));
        assert_eq!(allows("10.0.0.0/8", "::ffff:10.1.1.1"), Ok(true));
        assert_eq!(allows("2001:db8::/32", "2001:db8:5::1"), Ok(true));
        assert_eq!(allows("2001:db8::/32", "2001:db9::1"), Ok(false));
        assert!(allows("10.0.0.0/8, nonsense", "10.0.0.1").is_err());
        assert!(
            allows("", "10.0.0.1").is_err(),
            "an empty value allows nothing"
        );
    }
}
