//! The dependency map: established TCP connections between discovered hosts (and to
//! outside addresses), with direction (client -> server:port), process names and
//! connection counts, from what each host saw.
//!
//! A socket whose local port the host listens on is inbound (the host is the server);
//! any other is outbound. Both ends of a connection between two discovered hosts see it;
//! it is counted once. Connections inside a host (loopback) are not dependencies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::model::HostReport;

/// One end of a dependency: a discovered host, or an address outside the discovery.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Node {
    Host(String),
    Outside(IpAddr),
}

impl Node {
    pub fn host(&self) -> Option<&str> {
        match self {
            Node::Host(h) => Some(h),
            Node::Outside(_) => None,
        }
    }
    pub fn label(&self) -> String {
        match self {
            Node::Host(h) => h.clone(),
            Node::Outside(ip) => ip.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub client: Node,
    pub server: Node,
    pub port: u16,
    pub client_process: Option<String>,
    pub server_process: Option<String>,
    /// Distinct connections seen over the sampling window.
    pub connections: u32,
}

#[derive(Default)]
struct Seen {
    conns: BTreeSet<(SocketAddr, SocketAddr)>,
    client_process: Option<String>,
    server_process: Option<String>,
}

pub fn edges(hosts: &[HostReport]) -> Vec<Edge> {
    let mut owner: HashMap<IpAddr, &str> = HashMap::new();
    for h in hosts {
        for ip in h.addresses() {
            owner.entry(ip).or_insert(&h.host);
        }
    }
    let node = |ip: IpAddr| match owner.get(&ip) {
        Some(h) => Node::Host(h.to_string()),
        None => Node::Outside(ip),
    };
    let mut seen: BTreeMap<(Node, Node, u16), Seen> = BTreeMap::new();
    for h in hosts {
        for c in &h.connections {
            if c.local.ip().is_loopback() || c.peer.ip().is_loopback() {
                continue;
            }
            let me = Node::Host(h.host.clone());
            let inbound = h.listens_on(c.local.ip(), c.local.port());
            let (client, server, port, key) = match inbound {
                Some(_) => (node(c.peer.ip()), me, c.local.port(), (c.peer, c.local)),
                None => (me, node(c.peer.ip()), c.peer.port(), (c.local, c.peer)),
            };
            if client == server {
                continue;
            }
            let s = seen.entry((client, server, port)).or_default();
            s.conns.insert(key);
            match inbound {
                Some(l) => {
                    if s.server_process.is_none() {
                        s.server_process = c.process.clone().or_else(|| l.process.clone());
                    }
                }
                None => {
                    if s.client_process.is_none() {
                        s.client_process = c.process.clone();
                    }
                }
            }
        }
    }
    // A server seen only from its clients' side: name its process from its listener.
    let listener_process = |n: &Node, port: u16| -> Option<String> {
        let h = hosts.iter().find(|h| Some(h.host.as_str()) == n.host())?;
        h.listeners
            .iter()
            .find(|l| l.port == port)
            .and_then(|l| l.process.clone())
    };
    seen.into_iter()
        .map(|((client, server, port), s)| Edge {
            server_process: s.server_process.or_else(|| listener_process(&server, port)),
            client_process: s.client_process,
            connections: s.conns.len() as u32,
            client,
            server,
            port,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::model::{Conn, Listener};

    fn host(
        name: &str,
        ip: &str,
        listen: &[(u16, &str)],
        conns: &[(&str, &str, &str)],
    ) -> HostReport {
        HostReport {
            host: name.into(),
            address: Some(ip.into()),
            reachable: true,
            listeners: listen
                .iter()
                .map(|(p, proc_)| Listener {
                    ip: "0.0.0.0".parse().unwrap(),
                    port: *p,
                    process: Some(proc_.to_string()),
                })
                .collect(),
            connections: conns
                .iter()
                .map(|(l, p, proc_)| Conn {
                    local: l.parse().unwrap(),
                    peer: p.parse().unwrap(),
                    process: Some(proc_.to_string()),
                    samples: 1,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn both_views_of_a_connection_count_once_with_both_processes() {
        let app = host(
            "app1",
            "10.0.0.21",
            &[(8080, "java")],
            &[
                ("10.0.0.21:40000", "10.0.0.31:3306", "java"),
                ("10.0.0.21:40001", "10.0.0.31:3306", "java"),
                ("10.0.0.21:8080", "203.0.113.9:51000", "java"),
                ("127.0.0.1:5000", "127.0.0.1:6000", "java"),
            ],
        );
        let db = host(
            "db1",
            "10.0.0.31",
            &[(3306, "mysqld"), (22, "sshd")],
            &[
                ("10.0.0.31:3306", "10.0.0.21:40000", "mysqld"),
                ("10.0.0.31:3306", "10.0.0.21:40001", "mysqld"),
                ("10.0.0.31:443", "198.51.100.7:443", "curl"),
            ],
        );
        let e = edges(&[app, db]);
        assert_eq!(e.len(), 3, "{e:#?}");
        let app_db = e
            .iter()
            .find(|e| e.server == Node::Host("db1".into()))
            .unwrap();
        assert_eq!(app_db.client, Node::Host("app1".into()));
        assert_eq!((app_db.port, app_db.connections), (3306, 2));
        assert_eq!(app_db.client_process.as_deref(), Some("java"));
        assert_eq!(app_db.server_process.as_deref(), Some("mysqld"));
        // Inbound from outside, and outbound to outside (a local port 443 that db1 does
        // not listen on is a client port).
        assert!(e.iter().any(
            |e| e.client == Node::Outside("203.0.113.9".parse().unwrap())
                && e.server == Node::Host("app1".into())
                && e.port == 8080
        ));
        assert!(e.iter().any(|e| e.client == Node::Host("db1".into())
            && e.server == Node::Outside("198.51.100.7".parse().unwrap())
            && e.port == 443));
    }
}
