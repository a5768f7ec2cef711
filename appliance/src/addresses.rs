//! Addresses and IPv4 ranges as `[discovery] addresses` spells them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context, Result};

/// The largest range expanded (a /22).
const MAX_RANGE: u32 = 1024;

/// `10.0.0.0/30` -> its host addresses; `10.0.0.5` or `10.0.0.5:2222` -> itself.
/// Ports default to 22.
pub fn expand(spec: &str) -> Result<Vec<SocketAddr>> {
    let (addr, port) = match spec.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => (a, p.parse::<u16>().context("bad port")?),
        _ => (spec, 22),
    };
    let Some((net, bits)) = addr.split_once('/') else {
        let ip: IpAddr = addr.parse().context("not an IP address")?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    };
    let net: Ipv4Addr = net.parse().context("ranges are IPv4 CIDR")?;
    let bits: u32 = bits.parse().context("bad prefix length")?;
    if !(16..=32).contains(&bits) {
        bail!("prefix /{bits}: use /16 to /32");
    }
    let size = 1u32 << (32 - bits);
    if size > MAX_RANGE {
        bail!("/{bits} holds {size} addresses; at most {MAX_RANGE} at a time");
    }
    let base = u32::from(net) & !(size - 1);
    // Leave out the network and broadcast addresses of ranges that have them.
    let (first, last) = if size >= 4 { (1, size - 1) } else { (0, size) };
    Ok((first..last)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(base + i)), port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_single_addresses() {
        let r = expand("10.0.0.0/30").unwrap();
        assert_eq!(
            r,
            vec![
                "10.0.0.1:22".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:22".parse().unwrap()
            ]
        );
        assert_eq!(
            expand("10.0.1.5:2222").unwrap(),
            vec!["10.0.1.5:2222".parse().unwrap()]
        );
        assert_eq!(expand("10.0.0.7/32").unwrap().len(), 1);
        assert_eq!(expand("10.0.0.0/24").unwrap().len(), 254);
        assert!(expand("10.0.0.0/8").is_err());
        assert!(expand("db.example").is_err());
        assert!(expand("10.0.0.1:99999").is_err());
    }
}
