//! `ip -j addr` and `ip -j route show default`.

use serde::{Deserialize, Serialize};

use super::{err, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub state: String,
    pub mac: Option<String>,
    /// `address/prefix`.
    pub addresses: Vec<String>,
}

#[derive(Deserialize)]
struct RawIf {
    ifname: String,
    #[serde(default)]
    operstate: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    link_type: Option<String>,
    #[serde(default)]
    addr_info: Vec<RawAddr>,
}

#[derive(Deserialize)]
struct RawAddr {
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    prefixlen: Option<u8>,
}

pub fn addresses(text: &str) -> Result<Vec<Interface>, ParseError> {
    let raw: Vec<RawIf> =
        serde_json::from_str(text).map_err(|e| err("ip -j addr", e.to_string()))?;
    Ok(raw
        .into_iter()
        .map(|i| Interface {
            state: i.operstate.unwrap_or_else(|| "UNKNOWN".into()),
            mac: i
                .address
                .filter(|_| i.link_type.as_deref() == Some("ether")),
            addresses: i
                .addr_info
                .into_iter()
                .filter_map(|a| Some(format!("{}/{}", a.local?, a.prefixlen?)))
                .collect(),
            name: i.ifname,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub gateway: Option<String>,
    pub dev: Option<String>,
}

#[derive(Deserialize)]
struct RawRoute {
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dev: Option<String>,
}

/// The default route, if there is one.
pub fn default_route(text: &str) -> Result<Option<Route>, ParseError> {
    let raw: Vec<RawRoute> =
        serde_json::from_str(text).map_err(|e| err("ip -j route", e.to_string()))?;
    Ok(raw.into_iter().next().map(|r| Route {
        gateway: r.gateway,
        dev: r.dev,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn interfaces_and_routes() {
        let i = addresses(&fixture("ip-addr.json")).unwrap();
        let eth0 = i.iter().find(|i| i.name == "eth0").unwrap();
        assert_eq!(eth0.state, "UP");
        assert!(eth0.mac.is_some());
        assert!(eth0.addresses.contains(&"192.0.2.2/24".to_string()));
        let lo = i.iter().find(|i| i.name == "lo").unwrap();
        assert_eq!(lo.mac, None);
        let ns = addresses(&fixture("ip-addr-netns.json")).unwrap();
        assert!(ns
            .iter()
            .any(|i| i.addresses.contains(&"10.99.0.11/24".to_string())));
        let r = default_route(&fixture("ip-route-default.json"))
            .unwrap()
            .unwrap();
        assert_eq!(r.gateway.as_deref(), Some("192.0.2.1"));
        assert_eq!(default_route(&fixture("ip-route-none.json")).unwrap(), None);
        assert!(addresses("Object \"addr\" is unknown").is_err());
    }
}
