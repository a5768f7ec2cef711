//! A host's inventory from the sections of the inventory script; every section that is
//! missing, failed or unreadable becomes a finding, and the rest is still used.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::model::{Drivers, Finding, Inventory, Severity};
use super::parse::{disks, ip, os, procfs, ParseError};
use super::script::Section;

/// What the inventory script told: the inventory, findings, and the SSH connection the
/// script ran over (client, server), which is discovery's own and not a dependency.
pub struct Learned {
    pub inventory: Inventory,
    pub findings: Vec<Finding>,
    pub own_connection: Option<(SocketAddr, SocketAddr)>,
}

/// The text of a section that ran, or a finding saying why it is not there.
pub fn section<'a>(
    sections: &'a BTreeMap<String, Section>,
    name: &str,
    findings: &mut Vec<Finding>,
) -> Option<&'a str> {
    match sections.get(name) {
        None => {
            findings.push(Finding::new(
                Severity::Warning,
                "unreadable",
                format!("{name}: no output (the session ended early?)"),
            ));
            None
        }
        Some(s) if s.missing_tool() => {
            findings.push(Finding::new(
                Severity::Warning,
                "tool-missing",
                format!("{name}: the command is not installed ({})", s.text.trim()),
            ));
            None
        }
        Some(s) if s.status != 0 => {
            findings.push(Finding::new(
                Severity::Warning,
                "unreadable",
                format!("{name}: exit {}: {}", s.status, first_line(&s.text)),
            ));
            None
        }
        Some(s) => Some(&s.text),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// A parse result, or a finding naming what could not be read.
pub fn parsed<T>(r: Result<T, ParseError>, findings: &mut Vec<Finding>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            findings.push(Finding::new(
                Severity::Warning,
                "unreadable",
                format!("{e}; that part of the inventory is missing"),
            ));
            None
        }
    }
}

/// `SSH_CONNECTION`: `client_ip client_port server_ip server_port`.
fn own_connection(text: &str) -> Option<(SocketAddr, SocketAddr)> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let [cip, cport, sip, sport] = f.as_slice() else {
        return None;
    };
    let addr = |ip: &str, port: &str| -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
    };
    Some((addr(cip, cport)?, addr(sip, sport)?))
}

pub fn learn(sections: &BTreeMap<String, Section>) -> Learned {
    let mut f = Vec::new();
    let mut inv = Inventory::default();
    let own = sections.get("self").and_then(|s| own_connection(&s.text));
    inv.hostname = section(sections, "hostname", &mut f).map(|t| t.trim().to_string());
    inv.os =
        section(sections, "os-release", &mut f).and_then(|t| parsed(os::os_release(t), &mut f));
    if let Some(u) = section(sections, "uname", &mut f).and_then(|t| parsed(os::uname(t), &mut f)) {
        inv.kernel = Some(u.kernel);
        inv.arch = Some(u.arch);
    }
    inv.boot_mode = section(sections, "boot", &mut f).map(|t| t.trim().to_string());
    if let Some((n, model)) =
        section(sections, "cpuinfo", &mut f).and_then(|t| parsed(procfs::cpuinfo(t), &mut f))
    {
        inv.cpus = Some(n);
        inv.cpu_model = model;
    }
    inv.block_devices = section(sections, "lsblk", &mut f)
        .and_then(|t| parsed(disks::lsblk(t), &mut f))
        .unwrap_or_default();
    inv.filesystems = section(sections, "df", &mut f)
        .and_then(|t| parsed(disks::df(t), &mut f))
        .unwrap_or_default();
    inv.interfaces = section(sections, "ip-addr", &mut f)
        .and_then(|t| parsed(ip::addresses(t), &mut f))
        .unwrap_or_default();
    inv.default_route = section(sections, "ip-route", &mut f)
        .and_then(|t| parsed(ip::default_route(t), &mut f))
        .flatten();
    let driver = |name: &str| {
        sections
            .get(name)
            .map(|s| s.status == 0 && !s.text.trim().is_empty())
    };
    inv.drivers = Drivers {
        nvme: driver("driver-nvme"),
        ena: driver("driver-ena"),
    };
    Learned {
        inventory: inv,
        findings: f,
        own_connection: own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::parse::fixture;

    fn sec(text: &str, status: i32) -> Section {
        Section {
            text: text.into(),
            status,
        }
    }

    #[test]
    fn a_full_inventory_and_a_broken_one() {
        let mut s = BTreeMap::new();
        s.insert("self".into(), sec("10.0.0.1 50000 10.0.0.5 22\n", 0));
        s.insert("hostname".into(), sec("db1\n", 0));
        s.insert("os-release".into(), sec(&fixture("os-release.debian12"), 0));
        s.insert("uname".into(), sec(&fixture("uname.txt"), 0));
        s.insert("boot".into(), sec("bios\n", 0));
        s.insert("cpuinfo".into(), sec(&fixture("cpuinfo.x86"), 0));
        s.insert("lsblk".into(), sec(&fixture("lsblk-lvm-server.json"), 0));
        s.insert("df".into(), sec(&fixture("df.txt"), 0));
        s.insert("ip-addr".into(), sec(&fixture("ip-addr.json"), 0));
        s.insert("ip-route".into(), sec(&fixture("ip-route-default.json"), 0));
        s.insert("driver-nvme".into(), sec("(builtin)\n", 0));
        s.insert("driver-ena".into(), sec("", 1));
        let l = learn(&s);
        assert!(l.findings.is_empty(), "{:?}", l.findings);
        assert_eq!(l.inventory.hostname.as_deref(), Some("db1"));
        assert_eq!(l.inventory.cpus, Some(2));
        assert_eq!(l.inventory.drivers.nvme, Some(true));
        assert_eq!(l.inventory.drivers.ena, Some(false));
        assert_eq!(
            l.own_connection,
            Some((
                "10.0.0.1:50000".parse().unwrap(),
                "10.0.0.5:22".parse().unwrap()
            ))
        );

        // A host without lsblk and with garbage in /proc/cpuinfo still gives the rest.
        s.insert("lsblk".into(), sec("sh: 1: lsblk: not found\n", 127));
        s.insert("cpuinfo".into(), sec("\u{1}\u{2} garbage\n", 0));
        let l = learn(&s);
        let codes: Vec<&str> = l.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            vec!["unreadable", "tool-missing"],
            "{:?}",
            l.findings
        );
        assert!(l.findings[0].message.contains("/proc/cpuinfo"));
        assert_eq!(l.inventory.cpus, None);
        assert!(l.inventory.block_devices.is_empty());
        assert!(l.inventory.os.is_some());
    }
}
