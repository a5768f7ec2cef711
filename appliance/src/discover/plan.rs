//! Tiers guessed from what a host serves, and the migration waves: databases before the
//! application tier before the web tier before load balancers, hosts that depend on each
//! other in a cycle moving together, and within a tier a host after what it depends on.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::deps::Edge;
use super::model::HostReport;

const DB_PORTS: &[u16] = &[
    1433, 1521, 3306, 5432, 5984, 6379, 9042, 11211, 27017, 50000,
];
const WEB_PORTS: &[u16] = &[80, 443];
const APP_PORTS: &[u16] = &[3000, 5000, 8000, 8009, 8080, 8081, 8443, 8888, 9000, 9080];

/// The tier order of the waves.
pub const TIERS: &[&str] = &["db", "app", "web", "lb"];

fn serves(h: &HostReport, ports: &[u16]) -> bool {
    h.listeners
        .iter()
        .any(|l| ports.contains(&l.port) && !l.ip.is_loopback())
}

/// `db`, `app`, `web` or `lb` from the listening ports; a web server whose own clients
/// connections go to web servers is a load balancer.
pub fn guess_tier(h: &HostReport, hosts: &[HostReport], edges: &[Edge]) -> Option<&'static str> {
    if serves(h, DB_PORTS) {
        return Some("db");
    }
    if serves(h, WEB_PORTS) {
        let fronts_web = edges.iter().any(|e| {
            e.client.host() == Some(h.host.as_str())
                && WEB_PORTS.contains(&e.port)
                && hosts
                    .iter()
                    .any(|s| Some(s.host.as_str()) == e.server.host() && serves(s, WEB_PORTS))
        });
        return Some(if fronts_web { "lb" } else { "web" });
    }
    if serves(h, APP_PORTS) {
        return Some("app");
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub number: u32,
    pub hosts: Vec<String>,
    pub tier: Option<String>,
    pub reason: String,
}

/// Strongly connected groups of `nodes` under `deps` (Kosaraju), each sorted.
fn groups(nodes: &[String], deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(n.to_string()) {
            return;
        }
        if let Some(next) = g.get(n) {
            for m in next {
                visit(m, g, seen, out);
            }
        }
        out.push(n.to_string());
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for n in nodes {
        visit(n, deps, &mut seen, &mut order);
    }
    let mut rev: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in deps {
        for b in bs {
            rev.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        let mut g = Vec::new();
        visit(n, &rev, &mut seen, &mut g);
        if !g.is_empty() {
            g.sort();
            out.push(g);
        }
    }
    out
}

/// Waves over the discovered hosts; `tiers` maps host -> tier.
pub fn waves(hosts: &[String], tiers: &BTreeMap<String, String>, edges: &[Edge]) -> Vec<Wave> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in edges {
        if let (Some(c), Some(s)) = (e.client.host(), e.server.host()) {
            if hosts.iter().any(|h| h == c) && hosts.iter().any(|h| h == s) {
                deps.entry(c.to_string()).or_default().insert(s.to_string());
            }
        }
    }
    let gs = groups(hosts, &deps);
    let group_of: BTreeMap<&str, usize> = gs
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.iter().map(move |h| (h.as_str(), i)))
        .collect();
    // Depth in the dependency order of groups: 0 depends on nothing discovered.
    let mut level = vec![None::<u32>; gs.len()];
    fn depth(
        i: usize,
        gs: &[Vec<String>],
        deps: &BTreeMap<String, BTreeSet<String>>,
        group_of: &BTreeMap<&str, usize>,
        level: &mut Vec<Option<u32>>,
    ) -> u32 {
        if let Some(l) = level[i] {
            return l;
        }
        level[i] = Some(0);
        let mut l = 0;
        for h in &gs[i] {
            for d in deps.get(h).into_iter().flatten() {
                let j = group_of[d.as_str()];
                if j != i {
                    l = l.max(1 + depth(j, gs, deps, group_of, level));
                }
            }
        }
        level[i] = Some(l);
        l
    }
    let rank = |g: &[String]| -> usize {
        g.iter()
            .filter_map(|h| tiers.get(h))
            .filter_map(|t| TIERS.iter().position(|x| x == t))
            .min()
            .unwrap_or(TIERS.len())
    };
    let mut keyed: BTreeMap<(usize, u32), Vec<usize>> = BTreeMap::new();
    for i in 0..gs.len() {
        let l = depth(i, &gs, &deps, &group_of, &mut level);
        keyed.entry((rank(&gs[i]), l)).or_default().push(i);
    }
    keyed
        .into_iter()
        .enumerate()
        .map(|(n, ((r, l), idx))| {
            let mut hs: Vec<String> = idx.iter().flat_map(|&i| gs[i].clone()).collect();
            hs.sort();
            let together = idx.iter().any(|&i| gs[i].len() > 1);
            let tier = TIERS.get(r).map(|t| t.to_string());
            let mut reason = match &tier {
                Some(t) => format!("{t} tier"),
                None => "no tier recognised".to_string(),
            };
            if l > 0 {
                reason += &format!(", after {l} level(s) of what it depends on");
            }
            if together {
                reason += "; hosts that depend on each other move together";
            }
            Wave {
                number: n as u32 + 1,
                hosts: hs,
                tier,
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::deps::Node;

    fn edge(c: &str, s: &str, port: u16) -> Edge {
        Edge {
            client: Node::Host(c.into()),
            server: Node::Host(s.into()),
            port,
            client_process: None,
            server_process: None,
            connections: 1,
        }
    }

    #[test]
    fn the_web_shop_moves_database_first() {
        let hosts: Vec<String> = ["lb", "web1", "web2", "app1", "app2", "db1", "db2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tiers: BTreeMap<String, String> = [
            ("lb", "lb"),
            ("web1", "web"),
            ("web2", "web"),
            ("app1", "app"),
            ("app2", "app"),
            ("db1", "db"),
            ("db2", "db"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let e = vec![
            edge("lb", "web1", 80),
            edge("lb", "web2", 80),
            edge("web1", "app1", 8080),
            edge("web2", "app2", 8080),
            edge("app1", "db1", 3306),
            edge("app2", "db1", 3306),
            edge("db2", "db1", 3306),
        ];
        let w = waves(&hosts, &tiers, &e);
        let got: Vec<Vec<&str>> = w
            .iter()
            .map(|w| w.hosts.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            got,
            vec![
                vec!["db1"],
                vec!["db2"],
                vec!["app1", "app2"],
                vec!["web1", "web2"],
                vec!["lb"]
            ]
        );
        assert_eq!(w[0].number, 1);
    }

    #[test]
    fn a_cycle_moves_together() {
        let hosts: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let tiers = BTreeMap::new();
        let e = vec![edge("a", "b", 1), edge("b", "a", 2), edge("c", "a", 3)];
        let w = waves(&hosts, &tiers, &e);
        assert_eq!(w[0].hosts, vec!["a", "b"]);
        assert!(w[0].reason.contains("together"));
        assert_eq!(w[1].hosts, vec!["c"]);
    }
}
