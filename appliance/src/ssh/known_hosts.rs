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

pub fn learn(
    host: &str,
    port: u16,
    key: &PublicKey,
    file: &Path,
) -> Result<(), russh::keys::Error> {
    known_hosts::learn_known_hosts_path(host, port, key, file)
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
