//! `ss -Htanp`: every TCP socket with its state and owning process.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{err, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    pub state: String,
    pub local: SocketAddr,
    /// `None` for a listener's `*:*`.
    pub peer: Option<SocketAddr>,
    pub process: Option<String>,
}

impl Socket {
    pub fn listening(&self) -> bool {
        self.state == "LISTEN"
    }
    pub fn established(&self) -> bool {
        self.state == "ESTAB"
    }
}

/// `10.0.0.1:80`, `[::1]:22`, `*:80`, `0.0.0.0:*`, `[::ffff:10.0.0.1]:3306`.
fn addr(s: &str) -> Option<Option<SocketAddr>> {
    let (host, port) = s.rsplit_once(':')?;
    if port == "*" {
        return Some(None);
    }
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next()?;
    let ip: IpAddr = match host {
        "*" => "0.0.0.0".parse().ok()?,
        h => h.parse().ok()?,
    };
    // An IPv4 peer on a dual-stack socket reads as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    Some(Some(SocketAddr::new(ip, port)))
}

/// `users:(("nginx",pid=1,fd=3),...)` -> `nginx`.
fn process(field: &str) -> Option<String> {
    let start = field.find("((\"")? + 3;
    let end = field[start..].find('"')? + start;
    Some(field[start..end].to_string())
}

pub fn sockets(text: &str) -> Result<Vec<Socket>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            return Err(err("ss -tanp", format!("short line {line:?}")));
        }
        let bad = || err("ss -tanp", format!("bad address in {line:?}"));
        let local = addr(f[3]).ok_or_else(bad)?.ok_or_else(bad)?;
        let peer = addr(f[4]).ok_or_else(bad)?;
        out.push(Socket {
            state: f[0].to_string(),
            local,
            peer,
            process: f.get(5).and_then(|p| process(p)),
        });
    }
    Ok(out)
}

/// `/proc/net/tcp` and `/proc/net/tcp6` (concatenated), for hosts without `ss`: the
/// same sockets, without process names.
pub fn proc_net_tcp(text: &str) -> Result<Vec<Socket>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first().is_some_and(|s| *s == "sl") || f.is_empty() {
            continue;
        }
        if f.len() < 4 {
            return Err(err("/proc/net/tcp", format!("short line {line:?}")));
        }
        let bad = || err("/proc/net/tcp", format!("bad line {line:?}"));
        let state = match f[3] {
            "0A" => "LISTEN",
            "01" => "ESTAB",
            _ => continue,
        };
        let local = hex_addr(f[1]).ok_or_else(bad)?;
        let peer = hex_addr(f[2]).ok_or_else(bad)?;
        out.push(Socket {
            state: state.to_string(),
            local,
            peer: (state == "ESTAB").then_some(peer),
            process: None,
        });
    }
    Ok(out)
}

/// `0100007F:46A1` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host order.
fn hex_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // Byte slicing below needs ASCII (a damaged or hostile field may hold anything).
    if !ip.is_ascii() || ip.len() % 8 != 0 {
        return None;
    }
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(std::net::Ipv4Addr::from(w.to_le_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            let v6 = std::net::Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn listeners_and_connections_with_processes() {
        let s = sockets(&fixture("ss-db-netns.txt")).unwrap();
        let l: Vec<&Socket> = s.iter().filter(|s| s.listening()).collect();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].local.port(), 3306);
        assert_eq!(l[0].process.as_deref(), Some("mysqld"));
        assert_eq!(l[0].peer, None);
        let e: Vec<&Socket> = s.iter().filter(|s| s.established()).collect();
        assert_eq!(e.len(), 3);
        assert!(e
            .iter()
            .all(|s| s.peer.map(|p| p.ip().to_string()) == Some("10.99.0.1".into())));

        let c = sockets(&fixture("ss-app-root.txt")).unwrap();
        let java: Vec<&Socket> = c
            .iter()
            .filter(|s| s.process.as_deref() == Some("java"))
            .collect();
        assert_eq!(java.len(), 3);
        assert!(java.iter().all(|s| s.peer.map(|p| p.port()) == Some(3306)));
        // A listener whose process ss cannot see.
        assert!(c.iter().any(|s| s.listening() && s.process.is_none()));
    }

    #[test]
    fn kernel_tables_without_ss() {
        let s = proc_net_tcp(&fixture("proc-net-tcp")).unwrap();
        let has = |state: &str, local: &str, peer: Option<&str>| {
            s.iter().any(|x| {
                x.state == state
                    && x.local == local.parse().unwrap()
                    && x.peer == peer.map(|p| p.parse().unwrap())
            })
        };
        assert!(has("LISTEN", "127.0.0.1:18081", None));
        assert!(has("ESTAB", "127.0.0.1:40424", Some("127.0.0.1:18081")));
        assert!(has("LISTEN", "[::1]:18082", None));
        assert!(has("ESTAB", "[::1]:41070", Some("[::1]:18082")));
        assert!(s.iter().all(|x| x.process.is_none()));
        assert!(proc_net_tcp("0: zz:zz 00000000:0000 01").is_err());
        // A non-ASCII field is a bad line, not a panic (it used to slice mid-character).
        assert!(proc_net_tcp("0: 0100007\u{e9}0:0050 00000000:0000 0A").is_err());
        assert!(proc_net_tcp("0: 0100007F0:0050 00000000:0000 0A").is_err());
    }

    #[test]
    fn ipv6_and_wildcards() {
        let s = sockets(&fixture("ss-ipv6.txt")).unwrap();
        assert_eq!(s[0].local, "0.0.0.0:18080".parse().unwrap());
        assert_eq!(s[1].local, "[::1]:18080".parse().unwrap());
        assert_eq!(
            addr("[::ffff:10.0.0.5]:3306"),
            Some(Some("10.0.0.5:3306".parse().unwrap()))
        );
        assert!(sockets("ESTAB 0 0 nonsense peer").is_err());
        assert!(sockets("LISTEN 0").is_err());
    }
}
