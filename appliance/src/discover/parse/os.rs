//! `/etc/os-release` and `uname -srm`.

use serde::{Deserialize, Serialize};

use super::{err, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    pub id: String,
    pub version_id: Option<String>,
    pub pretty_name: String,
}

/// `KEY=value` lines, values optionally quoted.
pub fn os_release(text: &str) -> Result<OsRelease, ParseError> {
    let mut id = None;
    let mut version = None;
    let mut pretty = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(err("/etc/os-release", format!("not KEY=value: {line:?}")));
        };
        let v = v.trim_matches(|c| c == '"' || c == '\'').to_string();
        match k {
            "ID" => id = Some(v),
            "VERSION_ID" => version = Some(v),
            "PRETTY_NAME" => pretty = Some(v),
            _ => {}
        }
    }
    let id = id.ok_or_else(|| err("/etc/os-release", "no ID"))?;
    Ok(OsRelease {
        pretty_name: pretty.unwrap_or_else(|| id.clone()),
        id,
        version_id: version,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uname {
    pub kernel: String,
    pub arch: String,
}

/// `uname -srm`: `Linux 6.1.0-18-amd64 x86_64`.
pub fn uname(text: &str) -> Result<Uname, ParseError> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    match parts.as_slice() {
        [_, kernel, arch] => Ok(Uname {
            kernel: kernel.to_string(),
            arch: arch.to_string(),
        }),
        _ => Err(err("uname -srm", format!("expected 3 fields: {text:?}"))),
    }
}

/// The major.minor of a kernel release (`6.18.44-fc` -> (6, 18)).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn debian_and_centos() {
        let d = os_release(&fixture("os-release.debian12")).unwrap();
        assert_eq!(
            (d.id.as_str(), d.version_id.as_deref()),
            ("debian", Some("12"))
        );
        assert_eq!(d.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let c = os_release(&fixture("os-release.centos7")).unwrap();
        assert_eq!(
            (c.id.as_str(), c.version_id.as_deref()),
            ("centos", Some("7"))
        );
        assert!(os_release("garbage without equals").is_err());
        assert!(os_release("NAME=x\n").is_err());
    }

    #[test]
    fn uname_and_kernel_version() {
        let u = uname(&fixture("uname.txt")).unwrap();
        assert_eq!(u.arch, "x86_64");
        assert_eq!(kernel_version(&u.kernel).map(|v| v.0 >= 3), Some(true));
        assert_eq!(kernel_version("3.10.0-1160.el7.x86_64"), Some((3, 10)));
        assert!(uname("Linux").is_err());
    }
}
