//! Host-key pinning against an OpenSSH `known_hosts` file.
//!
//! Stricter than "any key of the same type": once a host has any key recorded, a key
//! that matches none of them is a changed key and is refused, whatever its algorithm.

use std::path::Path;

use russh::keys::{known_hosts, ssh_key::PublicKey, HashAlg};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Unknown,
    Changed { line: usize },
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub fn check(
    host: &str,
    port: u16,
    key: &PublicKey,
    file: &Path,
) -> Result<Verdict, russh::keys::Error> {
    let recorded = known_hosts::known_host_keys_path(host, port, file)?;
    if recorded.iter().any(|(_, k)| k == key) {
        return Ok(Verdict::Known);
    }
    Ok(match recorded.first() {
        Some((line, _)) => Verdict::Changed { line: *line },
        None => Verdict::Unknown,
    })
}

/// Appends the key in OpenSSH's format (`[host]:port alg key`, bare host on port 22).
pub fn learn(host: &str, port: u16, key: &PublicKey, file: &Path) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let existing = std::fs::read(file).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    if existing.last().is_some_and(|b| *b != b'\n') {
        f.write_all(b"\n")?;
    }
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key.to_openssh().map_err(std::io::Error::other)?;
    writeln!(f, "{name} {}", encoded.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{ssh_key::private::Ed25519Keypair, ssh_key::PrivateKey};

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    #[test]
    fn unknown_then_learned_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        assert_eq!(
            check("10.0.0.5", 2222, &key(1), &f).unwrap(),
            Verdict::Unknown
        );
        learn("10.0.0.5", 2222, &key(1), &f).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("[10.0.0.5]:2222 ssh-ed25519 "), "{text}");
        assert_eq!(
            check("10.0.0.5", 2222, &key(1), &f).unwrap(),
            Verdict::Known
        );
        assert_eq!(
            check("10.0.0.5", 2222, &key(2), &f).unwrap(),
            Verdict::Changed { line: 1 }
        );
        // Another port is another host.
        assert_eq!(
            check("10.0.0.5", 22, &key(2), &f).unwrap(),
            Verdict::Unknown
        );
        assert!(fingerprint(&key(1)).starts_with("SHA256:"));
    }
}
