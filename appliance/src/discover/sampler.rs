//! Samples over the window: CPU, memory, disk and network counters turned into rates
//! and summarised (p50/p95/max), and the sockets seen in any sample accumulated into
//! listeners and connections.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::inventory::{parsed, section};
use super::model::{summarize, Conn, Finding, Listener, Performance, Severity};
use super::parse::{procfs, ss};
use super::script::Section;

#[derive(Debug, Clone, Copy, Default)]
struct Raw {
    t: f64,
    cpu: Option<(u64, u64)>,
    mem_used: Option<u64>,
    mem_total: Option<u64>,
    disk: Option<(u64, u64)>,
    net: Option<(u64, u64)>,
}

#[derive(Default)]
pub struct Sampler {
    raw: Vec<Raw>,
    listeners: BTreeMap<(IpAddr, u16), Option<String>>,
    conns: BTreeMap<(SocketAddr, SocketAddr), (Option<String>, u32)>,
    own: Option<(SocketAddr, SocketAddr)>,
    findings: Vec<Finding>,
}

pub struct Sampled {
    pub listeners: Vec<Listener>,
    pub connections: Vec<Conn>,
    pub performance: Option<Performance>,
    /// The host's memory, from the first sample that read it.
    pub memory_total: Option<u64>,
    pub findings: Vec<Finding>,
}

impl Sampler {
    /// `own`: discovery's SSH connection (client, server), left out of the connections.
    pub fn new(own: Option<(SocketAddr, SocketAddr)>) -> Self {
        Sampler {
            own,
            ..Default::default()
        }
    }

    fn note(&mut self, found: Vec<Finding>) {
        for f in found {
            if !self.findings.contains(&f) {
                self.findings.push(f);
            }
        }
    }

    /// One sample taken `t` seconds into the window.
    pub fn add(&mut self, t: f64, s: &BTreeMap<String, Section>) {
        let mut f = Vec::new();
        let mut raw = Raw {
            t,
            ..Default::default()
        };
        raw.cpu = section(s, "stat", &mut f).and_then(|x| parsed(procfs::stat_cpu(x), &mut f));
        let mem = section(s, "meminfo", &mut f).and_then(|x| parsed(procfs::meminfo(x), &mut f));
        raw.mem_used = mem.map(|m| m.total_bytes.saturating_sub(m.available_bytes));
        raw.mem_total = mem.map(|m| m.total_bytes);
        raw.disk = section(s, "diskstats", &mut f)
            .and_then(|x| parsed(procfs::diskstats(x), &mut f))
            .map(|d| {
                d.iter()
                    .filter(|c| procfs::is_whole_disk(&c.name))
                    .fold((0, 0), |a, c| (a.0 + c.read_bytes, a.1 + c.written_bytes))
            });
        raw.net = section(s, "net-dev", &mut f)
            .and_then(|x| parsed(procfs::net_dev(x), &mut f))
            .map(|n| {
                n.iter()
                    .filter(|c| c.iface != "lo")
                    .fold((0, 0), |a, c| (a.0 + c.rx_bytes, a.1 + c.tx_bytes))
            });
        let ss_missing = s.get("ss").is_some_and(Section::missing_tool);
        let sockets = if ss_missing {
            f.push(Finding::new(
                Severity::Warning,
                "tool-missing",
                "ss is not installed: connections are read from /proc/net/tcp, without process names",
            ));
            s.get("net-tcp")
                .filter(|x| x.status == 0)
                .and_then(|x| parsed(ss::proc_net_tcp(&x.text), &mut f))
        } else {
            section(s, "ss", &mut f).and_then(|x| parsed(ss::sockets(x), &mut f))
        };
        for so in sockets.unwrap_or_default() {
            if so.listening() {
                let p = self
                    .listeners
                    .entry((so.local.ip(), so.local.port()))
                    .or_default();
                if p.is_none() {
                    *p = so.process;
                }
            } else if let (true, Some(peer)) = (so.established(), so.peer) {
                if self.own == Some((peer, so.local)) {
                    continue;
                }
                let e = self.conns.entry((so.local, peer)).or_default();
                e.1 += 1;
                if e.0.is_none() {
                    e.0 = so.process;
                }
            }
        }
        self.raw.push(raw);
        self.note(f);
    }

    pub fn finish(self, cpus: Option<u32>, interval_s: f64) -> Sampled {
        let performance = performance(&self.raw, cpus, interval_s);
        Sampled {
            memory_total: self.raw.iter().find_map(|r| r.mem_total),
            listeners: self
                .listeners
                .into_iter()
                .map(|((ip, port), process)| Listener { ip, port, process })
                .collect(),
            connections: self
                .conns
                .into_iter()
                .map(|((local, peer), (process, samples))| Conn {
                    local,
                    peer,
                    process,
                    samples,
                })
                .collect(),
            performance,
            findings: self.findings,
        }
    }
}

fn performance(raw: &[Raw], cpus: Option<u32>, interval_s: f64) -> Option<Performance> {
    let mut cpu = Vec::new();
    let (mut dr, mut dw, mut nr, mut nt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for w in raw.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let dt = b.t - a.t;
        if dt <= 0.0 {
            continue;
        }
        if let (Some((ab, at)), Some((bb, bt))) = (a.cpu, b.cpu) {
            if bt > at {
                cpu.push((bb.saturating_sub(ab)) as f64 / (bt - at) as f64 * 100.0);
            }
        }
        let rate = |x: Option<(u64, u64)>,
                    y: Option<(u64, u64)>,
                    out: &mut Vec<f64>,
                    out2: &mut Vec<f64>| {
            if let (Some(x), Some(y)) = (x, y) {
                out.push(y.0.saturating_sub(x.0) as f64 / dt);
                out2.push(y.1.saturating_sub(x.1) as f64 / dt);
            }
        };
        rate(a.disk, b.disk, &mut dr, &mut dw);
        rate(a.net, b.net, &mut nr, &mut nt);
    }
    if cpu.is_empty() {
        return None;
    }
    let mem: Vec<f64> = raw
        .iter()
        .filter_map(|r| r.mem_used)
        .map(|m| m as f64)
        .collect();
    let n = f64::from(cpus.unwrap_or(1));
    let cores: Vec<f64> = cpu.iter().map(|p| p / 100.0 * n).collect();
    Some(Performance {
        samples: raw.len() as u32,
        interval_s,
        cpu_percent: summarize(&cpu),
        cpu_cores: summarize(&cores),
        memory_used_bytes: summarize(&mem),
        disk_read_bps: summarize(&dr),
        disk_write_bps: summarize(&dw),
        net_rx_bps: summarize(&nr),
        net_tx_bps: summarize(&nt),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(text: &str) -> Section {
        Section {
            text: text.into(),
            status: 0,
        }
    }

    fn sample(busy: u64, total: u64, ss_text: &str) -> BTreeMap<String, Section> {
        let mut s = BTreeMap::new();
        s.insert(
            "stat".into(),
            sec(&format!("cpu  {busy} 0 0 {} 0 0 0 0 0 0\n", total - busy)),
        );
        s.insert(
            "meminfo".into(),
            sec("MemTotal: 1000 kB\nMemAvailable: 400 kB\n"),
        );
        s.insert(
            "diskstats".into(),
            sec(&format!("8 0 sda 1 0 {} 0 1 0 {} 0 0 0 0\n", total, busy)),
        );
        s.insert(
            "net-dev".into(),
            sec(&format!("h1\nh2\n eth0: {total} 0 0 0 0 0 0 0 {busy} 0 0 0 0 0 0 0\n    lo: 5 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n")),
        );
        s.insert("ss".into(), sec(ss_text));
        s.insert("net-tcp".into(), sec(""));
        s
    }

    #[test]
    fn rates_percentiles_and_connections_over_samples() {
        let own = (
            "10.0.0.1:50000".parse().unwrap(),
            "10.0.0.5:22".parse().unwrap(),
        );
        let ss1 = "LISTEN 0 128 0.0.0.0:3306 0.0.0.0:* users:((\"mysqld\",pid=1,fd=3))\n\
                   ESTAB 0 0 10.0.0.5:3306 10.0.0.7:40000 users:((\"mysqld\",pid=1,fd=4))\n\
                   ESTAB 0 0 10.0.0.5:22 10.0.0.1:50000 users:((\"sshd\",pid=2,fd=4))\n";
        let mut s = Sampler::new(Some(own));
        s.add(0.0, &sample(0, 0, ss1));
        s.add(1.0, &sample(50, 100, ss1));
        s.add(2.0, &sample(150, 200, ""));
        let out = s.finish(Some(2), 1.0);
        let p = out.performance.unwrap();
        assert_eq!(p.samples, 3);
        assert_eq!((p.cpu_percent.p50, p.cpu_percent.max), (50.0, 100.0));
        assert_eq!(p.cpu_cores.max, 2.0);
        assert_eq!(p.memory_used_bytes.max, 600.0 * 1024.0);
        assert_eq!(out.memory_total, Some(1000 * 1024));
        assert_eq!(p.disk_read_bps.max, 100.0 * 512.0);
        assert_eq!(p.net_rx_bps.max, 100.0);
        assert_eq!(out.listeners.len(), 1);
        // Discovery's own SSH connection is not a dependency.
        assert_eq!(out.connections.len(), 1);
        assert_eq!(out.connections[0].samples, 2);
        assert!(out.findings.is_empty(), "{:?}", out.findings);
    }

    #[test]
    fn without_ss_the_kernel_tables_are_read_and_that_is_a_finding() {
        let mut s = Sampler::new(None);
        let mut first = sample(0, 0, "");
        first.insert(
            "ss".into(),
            Section {
                text: "sh: ss: not found\n".into(),
                status: 127,
            },
        );
        first.insert(
            "net-tcp".into(),
            sec(&crate::discover::parse::fixture("proc-net-tcp")),
        );
        s.add(0.0, &first);
        s.add(1.0, &first);
        let out = s.finish(Some(1), 1.0);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].code, "tool-missing");
        assert!(out.listeners.iter().any(|l| l.port == 18081));
    }
}
