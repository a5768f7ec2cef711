//! `ferry report`: a self-contained HTML page (no scripts, no external files) with the
//! dependency map, the inventory, sizing and findings per host, and the waves.

use super::discovery::Discovery;
use super::model::{HostReport, Severity};
use super::svg::{esc, map};

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.map rect{fill:#eef4fb;stroke:#3b6ea8}.map .down rect{fill:#fbeaea;stroke:#a83b3b}\
.map .outside rect{fill:#f5f5f5;stroke:#999;stroke-dasharray:4 3}.map .name{font-weight:600;font-size:13px}\
.map .sub,.map .label{font-size:11px;fill:#444}.map .label{paint-order:stroke;stroke:#fff;stroke-width:3px}.map .column{font-weight:600;font-size:13px;text-transform:uppercase;fill:#666}\
.blocker{color:#a00;font-weight:600}.warning{color:#a60}.info{color:#555}";

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

fn inventory_row(h: &HostReport) -> String {
    let Some(i) = &h.inventory else {
        return format!(
            "<tr><td>{}</td><td>{}</td><td colspan=\"8\">not reached</td></tr>",
            esc(&h.host),
            esc(h.address.as_deref().unwrap_or(""))
        );
    };
    let disks: Vec<String> = i
        .block_devices
        .iter()
        .filter(|d| d.kind == "disk")
        .map(|d| format!("{} {}", esc(&d.name), gib(d.size_bytes)))
        .collect();
    let fss: Vec<String> = i
        .filesystems
        .iter()
        .filter(|f| !f.is_pseudo())
        .map(|f| {
            format!(
                "{} {} {}/{}",
                esc(&f.mountpoint),
                esc(&f.fstype),
                gib(f.used_bytes),
                gib(f.size_bytes)
            )
        })
        .collect();
    let ips: Vec<String> = i
        .interfaces
        .iter()
        .filter(|n| n.name != "lo")
        .flat_map(|n| {
            n.addresses
                .iter()
                .map(move |a| format!("{} {}", esc(&n.name), esc(a)))
        })
        .collect();
    let listening: Vec<String> = h
        .listeners
        .iter()
        .filter(|l| !l.ip.is_loopback())
        .map(|l| format!("{} {}", l.port, esc(l.process.as_deref().unwrap_or("?"))))
        .collect();
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}<br>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&h.host),
        esc(h.tier.as_deref().unwrap_or("-")),
        esc(i.os.as_ref().map(|o| o.pretty_name.as_str()).unwrap_or("?")),
        esc(i.kernel.as_deref().unwrap_or("?")),
        esc(i.arch.as_deref().unwrap_or("?")),
        esc(i.boot_mode.as_deref().unwrap_or("?")),
        i.cpus.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
        i.memory_bytes.map(gib).unwrap_or_else(|| "?".into()),
        disks.join("<br>"),
        fss.join("<br>"),
        ips.join("<br>"),
        listening.join("<br>"),
    )
}

fn sizing_row(h: &HostReport) -> String {
    let perf = h.performance.as_ref().map_or("no samples".to_string(), |p| {
        format!(
            "CPU p50/p95/max {:.0}/{:.0}/{:.0}%<br>memory max {}<br>disk r/w p95 {:.1}/{:.1} MiB/s<br>net rx/tx p95 {:.1}/{:.1} MiB/s",
            p.cpu_percent.p50,
            p.cpu_percent.p95,
            p.cpu_percent.max,
            gib(p.memory_used_bytes.max as u64),
            p.disk_read_bps.p95 / 1048576.0,
            p.disk_write_bps.p95 / 1048576.0,
            p.net_rx_bps.p95 / 1048576.0,
            p.net_tx_bps.p95 / 1048576.0
        )
    });
    let sizing = h.sizing.as_ref().map_or("-".to_string(), |z| {
        format!(
            "<b>{}</b> ({} vCPU, {}) ${:.4}/h<br>{}",
            esc(&z.instance_type),
            z.vcpus,
            gib(z.memory_bytes),
            z.hourly_usd,
            esc(&z.basis)
        )
    });
    let findings: Vec<String> = h
        .findings
        .iter()
        .map(|f| {
            let class = match f.severity {
                Severity::Blocker => "blocker",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            format!(
                "<span class=\"{class}\">{class}</span> {}: {}",
                esc(&f.code),
                esc(&f.message)
            )
        })
        .collect();
    format!(
        "<tr><td>{}</td><td>{perf}</td><td>{sizing}</td><td>{}</td></tr>",
        esc(&h.host),
        if findings.is_empty() {
            "none".to_string()
        } else {
            findings.join("<br>")
        }
    )
}

pub fn render(d: &Discovery) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ferry discovery {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Ferry discovery</h1><p>{} hosts, {} dependencies, {} waves; generated {}; sampled {:.0} s every {:.0} s.</p>\n\
         <h2>Dependency map</h2>\n{}",
        esc(&d.generated),
        d.hosts.len(),
        d.edges.len(),
        d.waves.len(),
        esc(&d.generated),
        d.window_s,
        d.interval_s,
        map(d)
    );
    s += "<h2>Dependencies</h2><table id=\"edges\"><tr><th>client</th><th>process</th><th>server</th><th>port</th><th>process</th><th>connections</th></tr>\n";
    for e in &d.edges {
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&e.client.label()),
            esc(e.client_process.as_deref().unwrap_or("?")),
            esc(&e.server.label()),
            e.port,
            esc(e.server_process.as_deref().unwrap_or("?")),
            e.connections
        );
    }
    s += "</table>\n<h2>Inventory</h2><table id=\"inventory\"><tr><th>host</th><th>tier</th><th>OS, kernel</th><th>arch, boot</th><th>CPUs</th><th>memory</th><th>disks</th><th>filesystems (used/size)</th><th>addresses</th><th>listening</th></tr>\n";
    for h in &d.hosts {
        s += &inventory_row(h);
        s += "\n";
    }
    s += "</table>\n<h2>Sizing and findings</h2><table id=\"sizing\"><tr><th>host</th><th>performance</th><th>recommended EC2 type</th><th>findings</th></tr>\n";
    for h in &d.hosts {
        s += &sizing_row(h);
        s += "\n";
    }
    s += "</table>\n<h2>Waves</h2><table id=\"waves\"><tr><th>wave</th><th>hosts</th><th>why</th></tr>\n";
    for w in &d.waves {
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            w.number,
            esc(&w.hosts.join(", ")),
            esc(&w.reason)
        );
    }
    s += &format!(
        "</table>\n<p>Prices: {}.</p>\n<p>Instance types: {}.</p>\n</body></html>\n",
        esc(&d.prices),
        esc(&d.instance_types)
    );
    s
}
