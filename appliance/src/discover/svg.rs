//! The dependency map as an SVG: hosts in columns by tier (load balancers, web, app,
//! databases, others, outside addresses), an arrow from client to server for each
//! dependency, labelled with port and connection count.

use std::collections::BTreeMap;

use super::deps::Node;
use super::discovery::Discovery;

const COLUMNS: &[&str] = &["lb", "web", "app", "db", "other", "outside"];
const COL_W: f64 = 230.0;
const ROW_H: f64 = 78.0;
const NODE_W: f64 = 160.0;
const NODE_H: f64 = 46.0;
const TOP: f64 = 56.0;
const LEFT: f64 = 24.0;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn column(d: &Discovery, n: &Node) -> usize {
    let tier = match n {
        Node::Outside(_) => "outside",
        Node::Host(h) => d
            .hosts
            .iter()
            .find(|x| &x.host == h)
            .and_then(|x| x.tier.as_deref())
            .unwrap_or("other"),
    };
    COLUMNS.iter().position(|c| *c == tier).unwrap_or(4)
}

pub fn map(d: &Discovery) -> String {
    let mut nodes: Vec<Node> = d.hosts.iter().map(|h| Node::Host(h.host.clone())).collect();
    for e in &d.edges {
        for n in [&e.client, &e.server] {
            if !nodes.contains(n) {
                nodes.push(n.clone());
            }
        }
    }
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pos: BTreeMap<Node, (f64, f64)> = BTreeMap::new();
    for n in &nodes {
        let c = column(d, n);
        let r = rows.entry(c).or_default();
        pos.insert(
            n.clone(),
            (LEFT + c as f64 * COL_W, TOP + *r as f64 * ROW_H),
        );
        *r += 1;
    }
    let height = TOP + rows.values().copied().max().unwrap_or(1) as f64 * ROW_H + 20.0;
    let width = LEFT * 2.0 + COLUMNS.len() as f64 * COL_W;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n"
    );
    for (i, c) in COLUMNS.iter().enumerate() {
        if rows.contains_key(&i) {
            s += &format!(
                "<text class=\"column\" x=\"{}\" y=\"30\">{c}</text>\n",
                LEFT + i as f64 * COL_W
            );
        }
    }
    for e in &d.edges {
        let (Some(&(cx, cy)), Some(&(sx, sy))) = (pos.get(&e.client), pos.get(&e.server)) else {
            continue;
        };
        let (x1, y1) = (cx + NODE_W, cy + NODE_H / 2.0);
        let (x2, y2, path) = if sx > cx {
            let (x2, y2) = (sx, sy + NODE_H / 2.0);
            (x2, y2, format!("M{x1},{y1} L{x2},{y2}"))
        } else {
            // Same column or leftwards: bow out to the right.
            let (x2, y2) = (sx + NODE_W, sy + NODE_H / 2.0);
            let bow = x1.max(x2) + 60.0;
            (
                x2,
                y2,
                format!("M{x1},{y1} Q{bow},{} {x2},{y2}", (y1 + y2) / 2.0),
            )
        };
        // A third of the way from the client, where arrows into one server part.
        let (lx, ly) = if sx > cx {
            (x1 + (x2 - x1) * 0.3, y1 + (y2 - y1) * 0.3 - 4.0)
        } else {
            (x1.max(x2) + 34.0, (y1 + y2) / 2.0)
        };
        s += &format!(
            "<g class=\"edge\" data-client=\"{}\" data-server=\"{}\" data-port=\"{}\"><path d=\"{path}\" fill=\"none\" stroke=\"#555\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/><text x=\"{lx}\" y=\"{ly}\" class=\"label\">{} ×{}</text></g>\n",
            esc(&e.client.label()),
            esc(&e.server.label()),
            e.port,
            e.port,
            e.connections
        );
    }
    for n in &nodes {
        let (x, y) = pos[n];
        let (title, sub, class) = match n {
            Node::Host(h) => {
                let r = d.hosts.iter().find(|x| &x.host == h);
                let addr = r.and_then(|r| r.address.clone()).unwrap_or_default();
                let reachable = r.is_some_and(|r| r.reachable);
                (
                    h.clone(),
                    addr,
                    if reachable { "host" } else { "host down" },
                )
            }
            Node::Outside(ip) => (ip.to_string(), "outside".to_string(), "outside"),
        };
        s += &format!(
            "<g class=\"node {class}\" data-host=\"{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\"/><text x=\"{}\" y=\"{}\" class=\"name\">{}</text><text x=\"{}\" y=\"{}\" class=\"sub\">{}</text></g>\n",
            esc(&n.label()),
            x + 10.0,
            y + 20.0,
            esc(&title),
            x + 10.0,
            y + 37.0,
            esc(&sub)
        );
    }
    s += "</svg>\n";
    s
}
