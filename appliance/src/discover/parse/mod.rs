//! Parsers for what stock tools print on a Linux host: `/etc/os-release`, `/proc` files,
//! `ss`, `ip -j`, `lsblk -J`, `df`. Pure functions from text to values, each tested on
//! real output checked in under `appliance/tests/fixtures/discover/`. Garbage in gives a
//! [`ParseError`] naming what could not be read, never a panic.

pub mod disks;
pub mod ip;
pub mod os;
pub mod procfs;
pub mod ss;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct ParseError {
    /// The file or command whose output it was.
    pub what: &'static str,
    pub reason: String,
}

pub fn err(what: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError {
        what,
        reason: reason.into(),
    }
}

/// Field `i` of a line split on whitespace, as a number; else an error quoting the line.
pub fn number(
    fields: &[&str],
    i: usize,
    what: &'static str,
    line: &str,
) -> Result<u64, ParseError> {
    fields
        .get(i)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(what, format!("bad line {line:?}")))
}

#[cfg(test)]
pub(crate) fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/discover")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
