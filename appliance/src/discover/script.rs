//! The one shell script each collection runs on a host (stock tools only, nothing
//! installed) and the splitting of its output into sections.
//!
//! Every section prints `@@ <name>`, then the command's output (stderr folded in), a
//! newline, then `@@rc <exit status>`, so a missing tool or a failing command is seen per section and
//! the rest still arrives.

use std::collections::BTreeMap;

/// Sections read once per discovery.
pub const INVENTORY: &[(&str, &str)] = &[
    ("self", "echo \"$SSH_CONNECTION\""),
    ("hostname", "hostname"),
    ("os-release", "cat /etc/os-release"),
    ("uname", "uname -srm"),
    (
        "boot",
        "if [ -d /sys/firmware/efi ]; then echo uefi; else echo bios; fi",
    ),
    ("cpuinfo", "cat /proc/cpuinfo"),
    ("lsblk", "lsblk -J -b -o NAME,TYPE,SIZE,FSTYPE,MOUNTPOINT"),
    ("df", "df -P -B1 -T"),
    ("ip-addr", "ip -j addr"),
    ("ip-route", "ip -j route show default"),
    ("driver-nvme", DRIVER_NVME),
    ("driver-ena", DRIVER_ENA),
];

/// A kernel driver is there when `modinfo` finds its module, it is loaded, or it is
/// built in; exit 0 and the module's file (or `(loaded)`, `(builtin)`) if so.
macro_rules! driver_probe {
    ($m:literal) => {
        concat!(
            "modinfo -F filename ",
            $m,
            " 2>/dev/null || { [ -d /sys/module/",
            $m,
            " ] && echo '(loaded)'; } || { grep -qs '/",
            $m,
            ".ko' \"/lib/modules/$(uname -r)/modules.builtin\" && echo '(builtin)'; }"
        )
    };
}
const DRIVER_NVME: &str = driver_probe!("nvme");
const DRIVER_ENA: &str = driver_probe!("ena");

/// Sections read at every sample.
pub const SAMPLE: &[(&str, &str)] = &[
    ("stat", "cat /proc/stat"),
    ("meminfo", "cat /proc/meminfo"),
    ("diskstats", "cat /proc/diskstats"),
    ("net-dev", "cat /proc/net/dev"),
    ("ss", "ss -Htanp"),
    // Without ss, the kernel's socket tables (no process names); with it, nothing.
    (
        "net-tcp",
        "command -v ss >/dev/null 2>&1 || cat /proc/net/tcp /proc/net/tcp6",
    ),
];

pub fn script(sections: &[(&str, &str)]) -> String {
    sections
        .iter()
        .map(|(name, cmd)| {
            format!("echo '@@ {name}'; {{ {cmd}; }} 2>&1; rc=$?; echo; echo \"@@rc $rc\"")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One section's output and the exit status of its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub text: String,
    pub status: i32,
}

impl Section {
    /// The command was not found (the shell's 127) or not executable (126).
    pub fn missing_tool(&self) -> bool {
        self.status == 127 || self.status == 126
    }
}

pub fn split(output: &str) -> BTreeMap<String, Section> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in output.split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        if let Some(name) = l.strip_prefix("@@ ") {
            current = Some((name.to_string(), String::new()));
        } else if let Some(rc) = l.strip_prefix("@@rc ") {
            if let Some((name, mut text)) = current.take() {
                // The newline the script adds before the marker.
                if text.ends_with('\n') {
                    text.pop();
                }
                let status = rc.trim().parse().unwrap_or(-1);
                out.insert(name, Section { text, status });
            }
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_through_a_real_shell() {
        let s = script(&[
            ("a", "echo one; echo two"),
            ("missing", "no-such-tool-here --x"),
            ("b", "printf 'x'"),
        ]);
        let out = std::process::Command::new("sh")
            .args(["-c", &s])
            .output()
            .unwrap();
        let parts = split(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(parts["a"].text, "one\ntwo\n");
        assert_eq!(parts["a"].status, 0);
        assert!(parts["missing"].missing_tool(), "{:?}", parts["missing"]);
        // Output without a final newline still ends before the marker line.
        assert_eq!(parts["b"].text, "x");
        assert_eq!(parts["b"].status, 0);
    }
}
