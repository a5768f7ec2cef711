//! The network on new hardware: whatever interface appears gets DHCP, and nothing names
//! interfaces after the old NIC's MAC address.
//!
//! Where the guest has systemd-networkd, Ferry adds one `.network` file matching every
//! Ethernet name (`en*`, `eth*`) with DHCP and takes the old interfaces' stanzas out of
//! `/etc/network/interfaces`; without it, `/etc/network/interfaces` gets one DHCP
//! stanza for `eth0` and the kernel command line `net.ifnames=0`.

/// Where Ferry's `.network` file goes, and what it holds.
pub const NETWORKD_FILE: &str = "/etc/systemd/network/80-ferry-ec2-dhcp.network";
pub const NETWORKD_DHCP: &str = "# Written by ferry convert: DHCP on whatever Ethernet interface the instance has.\n[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n";

const MARK: &str = "# ferry convert: ";

/// `/etc/network/interfaces` with every interface but `lo` taken out (commented, so that
/// a person sees what was there), and with `eth0_dhcp` a DHCP stanza for `eth0` (kept
/// when there is one, added when not).
/// Returns the new text and the interfaces taken out (none: unchanged text).
pub fn interfaces(text: &str, eth0_dhcp: bool) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len() + 128);
    let mut removed: Vec<String> = Vec::new();
    let mut in_removed_stanza = false;
    let kept = |n: &str| n == "lo" || (eth0_dhcp && n == "eth0");
    let note = |name: &str, removed: &mut Vec<String>| {
        if !removed.iter().any(|r| r == name) {
            removed.push(name.to_string());
        }
    };
    for line in text.split_inclusive('\n') {
        let body = line.trim();
        let words: Vec<&str> = body.split_whitespace().collect();
        let keyword = words.first().copied().unwrap_or("");
        let stanza = matches!(
            keyword,
            "iface" | "mapping" | "auto" | "source" | "source-directory"
        ) || keyword.starts_with("allow-");
        if stanza {
            in_removed_stanza = false;
        }
        match keyword {
            "iface" | "mapping" if words.get(1).is_some_and(|n| !kept(n)) => {
                note(words[1], &mut removed);
                in_removed_stanza = true;
                out.push_str(MARK);
                out.push_str(line);
            }
            k if (k == "auto" || k.starts_with("allow-")) && words.len() > 1 => {
                let keep: Vec<&str> = words[1..].iter().copied().filter(|n| kept(n)).collect();
                if keep.len() == words.len() - 1 {
                    out.push_str(line);
                    continue;
                }
                for n in words[1..].iter().filter(|n| !kept(n)) {
                    note(n, &mut removed);
                }
                out.push_str(MARK);
                out.push_str(line);
                if !keep.is_empty() {
                    out.push_str(&format!("{k} {}\n", keep.join(" ")));
                }
            }
            _ if in_removed_stanza && !stanza && !body.is_empty() && !body.starts_with('#') => {
                out.push_str(MARK);
                out.push_str(line);
            }
            _ => out.push_str(line),
        }
    }
    let has_eth0_dhcp = out
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["iface", "eth0", "inet", "dhcp"]);
    if eth0_dhcp && !has_eth0_dhcp {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("\n# Added by ferry convert: DHCP on the instance's interface.\nallow-hotplug eth0\niface eth0 inet dhcp\n");
    }
    (out, removed)
}

/// Lines of a udev rules file that name a network interface after a MAC address,
/// commented out; how many.
pub fn udev_mac_rules(text: &str) -> (String, usize) {
    let mut n = 0;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        if !body.starts_with('#') && body.contains("ATTR{address}") && body.contains("NAME") {
            n += 1;
            out.push_str(MARK);
        }
        out.push_str(line);
    }
    (out, n)
}

/// A systemd `.link` or `.network` file whose `[Match]` section names a MAC address.
pub fn matches_mac(text: &str) -> bool {
    let mut in_match = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_match = line == "[Match]";
        } else if in_match
            && (line.starts_with("MACAddress=") || line.starts_with("PermanentMACAddress="))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "# interfaces(5)\nsource /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nallow-hotplug ens3\niface ens3 inet static\n    address 10.0.0.5/24\n    gateway 10.0.0.1\n\nauto lo ens4\niface ens4 inet dhcp\n";

    #[test]
    fn old_interfaces_are_taken_out_and_lo_kept() {
        let (text, removed) = interfaces(DEBIAN, false);
        assert_eq!(removed, ["ens3", "ens4"]);
        assert!(text.contains("\nauto lo\niface lo inet loopback\n"));
        assert!(text.contains("# ferry convert: allow-hotplug ens3\n# ferry convert: iface ens3 inet static\n# ferry convert:     address 10.0.0.5/24\n"));
        assert!(text.contains(
            "# ferry convert: auto lo ens4\nauto lo\n# ferry convert: iface ens4 inet dhcp\n"
        ));
        assert!(!text.contains("eth0"));
        // Nothing left to take out the second time.
        let (again, removed) = interfaces(&text, false);
        assert_eq!(again, text);
        assert!(removed.is_empty());
    }

    #[test]
    fn without_networkd_eth0_gets_dhcp_once() {
        let (text, _) = interfaces(DEBIAN, true);
        assert!(text.ends_with("allow-hotplug eth0\niface eth0 inet dhcp\n"));
        let (again, removed) = interfaces(&text, true);
        assert!(removed.is_empty());
        assert_eq!(again, text);
    }

    #[test]
    fn mac_bound_names_are_found() {
        let rules = "# generated\nSUBSYSTEM==\"net\", ACTION==\"add\", ATTR{address}==\"52:54:00:12:34:56\", NAME=\"ens3\"\nSUBSYSTEM==\"block\", RUN+=\"x\"\n";
        let (text, n) = udev_mac_rules(rules);
        assert_eq!(n, 1);
        assert!(text.contains("# ferry convert: SUBSYSTEM==\"net\""));
        assert_eq!(udev_mac_rules(&text).1, 0);
        assert!(matches_mac(
            "[Match]\nMACAddress=52:54:00:12:34:56\n[Link]\nName=lan0\n"
        ));
        assert!(!matches_mac("[Match]\nName=en*\n[Network]\nMACAddress=1\n"));
    }
}
