//! The kernel command line on new hardware, wherever the guest keeps it: GRUB's
//! generated config (`linux` lines), `/etc/default/grub` (so that the guest's next
//! `update-grub` keeps the change) and BLS entries (`options` lines).
//!
//! Edits: `root=` naming a hardware-bound device becomes `root=UUID=`; the console goes
//! to the screen and the serial port (`console=tty0 console=ttyS0,115200n8`: EC2's
//! serial console and its console output read ttyS0); NVMe's I/O timeout is raised as
//! EC2 asks for EBS volumes; with `ifnames_off`, interfaces get kernel names (`eth0`)
//! for guests whose network configuration can only name one interface.

use super::devices::hardware_bound;

pub const SERIAL_CONSOLE: [&str; 2] = ["console=tty0", "console=ttyS0,115200n8"];
pub const NVME_TIMEOUT: &str = "nvme_core.io_timeout=4294967295";
pub const IFNAMES_OFF: &str = "net.ifnames=0";

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub ifnames_off: bool,
}

/// `args` edited; the changes made, as words (`root=/dev/vda2 -> root=UUID=...`,
/// `+console=ttyS0,115200n8`).
pub fn edit_args(
    args: &str,
    opts: Options,
    uuid_of: &dyn Fn(u32) -> Option<String>,
) -> (String, Vec<String>) {
    let mut changes = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for w in args.split_whitespace() {
        match w.strip_prefix("root=").and_then(|dev| {
            hardware_bound(dev)
                .and_then(uuid_of)
                .map(|u| (dev, format!("root=UUID={u}")))
        }) {
            Some((dev, new)) => {
                changes.push(format!("root={dev} -> {new}"));
                words.push(new);
            }
            None => words.push(w.to_string()),
        }
    }
    let has_serial = words.iter().any(|w| w.starts_with("console=ttyS0"));
    let mut add: Vec<&str> = Vec::new();
    if !has_serial {
        if !words.iter().any(|w| w == SERIAL_CONSOLE[0]) {
            add.push(SERIAL_CONSOLE[0]);
        }
        add.push(SERIAL_CONSOLE[1]);
    }
    if !words.iter().any(|w| w.starts_with("nvme_core.io_timeout=")) {
        add.push(NVME_TIMEOUT);
    }
    if opts.ifnames_off && !words.iter().any(|w| w.starts_with("net.ifnames=")) {
        add.push(IFNAMES_OFF);
    }
    for a in add {
        changes.push(format!("+{a}"));
        words.push(a.to_string());
    }
    (words.join(" "), changes)
}

/// The result of editing one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// Lines (kernel entries) changed.
    pub entries: usize,
    /// The distinct changes made, as [`edit_args`] words them.
    pub changes: Vec<String>,
}

fn merge(into: &mut Vec<String>, from: Vec<String>) {
    for c in from {
        if !into.contains(&c) {
            into.push(c);
        }
    }
}

/// Applies `edit` to every line `pick` accepts, keeping each line's indentation.
fn edit_lines(text: &str, mut edit: impl FnMut(&str) -> Option<(String, Vec<String>)>) -> Edited {
    let mut out = String::with_capacity(text.len() + 128);
    let mut entries = 0;
    let mut changes = Vec::new();
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        match edit(body) {
            Some((new, c)) if !c.is_empty() => {
                entries += 1;
                merge(&mut changes, c);
                out.push_str(&new);
                out.push_str(nl);
            }
            _ => out.push_str(line),
        }
    }
    Edited {
        text: out,
        entries,
        changes,
    }
}

/// GRUB's config (`grub.cfg`): every `linux`, `linux16` and `linuxefi` line.
pub fn grub_cfg(text: &str, opts: Options, uuid_of: &dyn Fn(u32) -> Option<String>) -> Edited {
    edit_lines(text, |body| {
        let trimmed = body.trim_start();
        let indent = &body[..body.len() - trimmed.len()];
        let mut parts = trimmed.splitn(3, char::is_whitespace);
        let cmd = parts.next()?;
        if !["linux", "linux16", "linuxefi"].contains(&cmd) {
            return None;
        }
        let kernel = parts.next()?;
        let (args, c) = edit_args(parts.next().unwrap_or(""), opts, uuid_of);
        Some((format!("{indent}{cmd} {kernel} {args}"), c))
    })
}

/// A BLS entry (`/boot/loader/entries/*.conf`): its `options` line.
pub fn bls_entry(text: &str, opts: Options, uuid_of: &dyn Fn(u32) -> Option<String>) -> Edited {
    edit_lines(text, |body| {
        let args = body.strip_prefix("options")?;
        if !args.starts_with(char::is_whitespace) {
            return None;
        }
        let (args, c) = edit_args(args, opts, uuid_of);
        Some((format!("options {args}"), c))
    })
}

/// `/etc/default/grub`: `GRUB_CMDLINE_LINUX` edited (added when missing), and GRUB's
/// own menu on the serial port too.
pub fn default_grub(text: &str, opts: Options, uuid_of: &dyn Fn(u32) -> Option<String>) -> Edited {
    const KEY: &str = "GRUB_CMDLINE_LINUX=";
    let mut e = edit_lines(text, |body| {
        let value = body.strip_prefix(KEY)?;
        let inner = value.trim_matches(|c| c == '"' || c == '\'');
        let (args, c) = edit_args(inner, opts, uuid_of);
        Some((format!("{KEY}\"{args}\""), c))
    });
    let append = |line: String, change: &str, e: &mut Edited| {
        if !e.text.is_empty() && !e.text.ends_with('\n') {
            e.text.push('\n');
        }
        e.text.push_str(&line);
        e.text.push('\n');
        e.changes.push(change.to_string());
    };
    if !text.lines().any(|l| l.starts_with(KEY)) {
        let (args, c) = edit_args("", opts, uuid_of);
        append(format!("{KEY}\"{args}\""), &c.join(" "), &mut e);
        e.entries += 1;
    }
    if !text.lines().any(|l| l.starts_with("GRUB_TERMINAL")) {
        append(
            "GRUB_TERMINAL=\"console serial\"".into(),
            "+GRUB_TERMINAL=console serial",
            &mut e,
        );
    }
    if !text.lines().any(|l| l.starts_with("GRUB_SERIAL_COMMAND=")) {
        append(
            "GRUB_SERIAL_COMMAND=\"serial --speed=115200\"".into(),
            "+GRUB_SERIAL_COMMAND",
            &mut e,
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuids(part: u32) -> Option<String> {
        (part == 2).then(|| "2222".to_string())
    }

    #[test]
    fn root_by_uuid_serial_console_and_io_timeout_added_once() {
        let (args, c) = edit_args("root=/dev/sda2 ro quiet", Options::default(), &uuids);
        assert_eq!(
            args,
            "root=UUID=2222 ro quiet console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295"
        );
        assert_eq!(c[0], "root=/dev/sda2 -> root=UUID=2222");
        assert_eq!(c.len(), 4);
        let (again, c) = edit_args(&args, Options::default(), &uuids);
        assert_eq!(again, args);
        assert!(c.is_empty());
        // LVM roots are already independent of the hardware.
        let (args, c) = edit_args(
            "root=/dev/mapper/vg-root ro console=ttyS0",
            Options { ifnames_off: true },
            &uuids,
        );
        assert_eq!(
            args,
            "root=/dev/mapper/vg-root ro console=ttyS0 nvme_core.io_timeout=4294967295 net.ifnames=0"
        );
        assert_eq!(c, ["+nvme_core.io_timeout=4294967295", "+net.ifnames=0"]);
    }

    #[test]
    fn grub_cfg_edits_every_kernel_line_and_nothing_else() {
        let cfg = "set timeout=0\nmenuentry \"Debian\" {\n  linux /vmlinuz-6.1 root=/dev/vda2 ro quiet\n  initrd /initrd.img-6.1\n}\nmenuentry \"old\" {\n\tlinux16 /vmlinuz-5 root=/dev/vda2\n}\n";
        let e = grub_cfg(cfg, Options::default(), &uuids);
        assert_eq!(e.entries, 2);
        assert!(e.text.contains("  linux /vmlinuz-6.1 root=UUID=2222 ro quiet console=tty0 console=ttyS0,115200n8 nvme_core"));
        assert!(e
            .text
            .contains("\tlinux16 /vmlinuz-5 root=UUID=2222 console=tty0"));
        assert!(e.text.contains("  initrd /initrd.img-6.1\n"));
        assert!(e.text.starts_with("set timeout=0\nmenuentry"));
        assert_eq!(grub_cfg(&e.text, Options::default(), &uuids).entries, 0);
    }

    #[test]
    fn default_grub_and_bls_entries() {
        let d = "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"root=/dev/sda2\"\n";
        let e = default_grub(d, Options::default(), &uuids);
        assert!(e.text.contains("GRUB_CMDLINE_LINUX=\"root=UUID=2222 console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295\"\n"));
        assert!(e.text.contains("GRUB_TERMINAL=\"console serial\"\n"));
        assert!(e
            .text
            .ends_with("GRUB_SERIAL_COMMAND=\"serial --speed=115200\"\n"));
        let again = default_grub(&e.text, Options::default(), &uuids);
        assert_eq!(again.text, e.text);
        assert!(again.changes.is_empty());
        let missing = default_grub("GRUB_DEFAULT=0", Options::default(), &uuids);
        assert!(missing
            .text
            .starts_with("GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"console=tty0"));
        let bls = "title Linux\noptions root=/dev/sda2 ro\nlinux /vmlinuz\n";
        let e = bls_entry(bls, Options::default(), &uuids);
        assert!(e.text.contains("\noptions root=UUID=2222 ro console=tty0"));
        assert!(e.text.ends_with("linux /vmlinuz\n"));
    }
}
