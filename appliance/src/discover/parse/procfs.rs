//! `/proc/cpuinfo`, `/proc/meminfo`, `/proc/stat`, `/proc/diskstats`, `/proc/net/dev`.

use serde::{Deserialize, Serialize};

use super::{err, number, ParseError};

/// Logical CPUs (`processor` lines) and the model name.
pub fn cpuinfo(text: &str) -> Result<(u32, Option<String>), ParseError> {
    let mut n = 0;
    let mut model = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "processor" => n += 1,
            "model name" if model.is_none() => model = Some(v.trim().to_string()),
            _ => {}
        }
    }
    if n == 0 {
        return Err(err("/proc/cpuinfo", "no processor lines"));
    }
    Ok((n, model))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

pub fn meminfo(text: &str) -> Result<Memory, ParseError> {
    let kib = |key: &str| -> Result<u64, ParseError> {
        let line = text
            .lines()
            .find(|l| l.split(':').next() == Some(key))
            .ok_or_else(|| err("/proc/meminfo", format!("no {key}")))?;
        let v = line.split_whitespace().nth(1).unwrap_or("");
        v.parse::<u64>()
            .map(|k| k * 1024)
            .map_err(|_| err("/proc/meminfo", format!("{key} is not a number: {line:?}")))
    };
    let total_bytes = kib("MemTotal")?;
    let available_bytes = kib("MemAvailable").or_else(|_| kib("MemFree"))?;
    Ok(Memory {
        total_bytes,
        available_bytes,
    })
}

/// Jiffies of the aggregate `cpu` line: (busy, total). Busy is everything but idle and
/// iowait.
pub fn stat_cpu(text: &str) -> Result<(u64, u64), ParseError> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| err("/proc/stat", "no cpu line"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| err("/proc/stat", format!("cpu line is not numbers: {line:?}")))?;
    if v.len() < 4 {
        return Err(err("/proc/stat", "cpu line too short"));
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskCounters {
    pub name: String,
    pub read_bytes: u64,
    pub written_bytes: u64,
}

/// Per device: bytes read and written (sectors are 512 bytes in this file).
pub fn diskstats(text: &str) -> Result<Vec<DiskCounters>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| number(&f, i, "/proc/diskstats", line);
            Ok(DiskCounters {
                name: f.get(2).map(|s| s.to_string()).unwrap_or_default(),
                read_bytes: num(5)? * 512,
                written_bytes: num(9)? * 512,
            })
        })
        .collect()
}

/// Whole disks, not partitions or virtual devices (loop, ram, zram, dm).
pub fn is_whole_disk(name: &str) -> bool {
    let virt = ["loop", "ram", "zram", "dm-", "sr", "fd", "md"];
    if virt.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        return !name.contains('p');
    }
    !name.ends_with(|c: char| c.is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCounters {
    pub iface: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

pub fn net_dev(text: &str) -> Result<Vec<NetCounters>, ParseError> {
    text.lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (iface, rest) = line
                .split_once(':')
                .ok_or_else(|| err("/proc/net/dev", format!("bad line {line:?}")))?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| err("/proc/net/dev", format!("bad line {line:?}")))?;
            if f.len() < 9 {
                return Err(err("/proc/net/dev", format!("short line {line:?}")));
            }
            Ok(NetCounters {
                iface: iface.trim().to_string(),
                rx_bytes: f[0],
                tx_bytes: f[8],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn cpus_and_memory() {
        let (n, model) = cpuinfo(&fixture("cpuinfo.x86")).unwrap();
        assert_eq!(n, 2);
        assert_eq!(model.as_deref(), Some("AMD EPYC"));
        let m = meminfo(&fixture("meminfo")).unwrap();
        assert_eq!(m.total_bytes, 24_684_100 * 1024);
        assert_eq!(m.available_bytes, 23_504_148 * 1024);
        assert!(cpuinfo("").is_err());
        assert!(meminfo("MemTotal: lots kB\n").is_err());
        assert!(meminfo("\u{0}\u{1}garbage").is_err());
    }

    #[test]
    fn cpu_jiffies() {
        let (busy, total) = stat_cpu(&fixture("stat")).unwrap();
        assert_eq!(total, 1384783 + 440 + 290590 + 953281 + 9009 + 7894 + 1620);
        assert_eq!(busy, total - 953281 - 9009);
        assert!(stat_cpu("cpu  a b c d").is_err());
    }

    #[test]
    fn disks_and_network() {
        let d = diskstats(&fixture("diskstats")).unwrap();
        assert!(d.iter().any(|c| c.name == "vda" && c.read_bytes > 0));
        let whole: Vec<&str> = d
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| is_whole_disk(n))
            .collect();
        assert_eq!(whole, vec!["vda"]);
        assert!(is_whole_disk("nvme0n1") && !is_whole_disk("nvme0n1p1") && !is_whole_disk("sda1"));
        let n = net_dev(&fixture("net-dev")).unwrap();
        let eth0 = n.iter().find(|c| c.iface == "eth0").unwrap();
        assert_eq!((eth0.rx_bytes, eth0.tx_bytes), (810183050, 2162039));
        assert!(diskstats("8 0 sda x").is_err());
    }
}
