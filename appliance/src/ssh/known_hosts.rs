//! Host-key pinning against an OpenSSH `known_hosts` file, read as OpenSSH reads it:
//! entries parsed by `ssh-key` (markers, host pattern lists, hashed `|1|` names, any
//! key type), fields separated by any run of blanks, comments and bad lines skipped,
//! host patterns with `*`, `?` and `!` negation, `[host]:port` for other ports.
//!
//! Stricter than "any key of the same type": once a host has any key recorded, a key
//! that matches none of them is a changed key and is refused, whatever its algorithm.
//! A key marked `@revoked` is refused for every host, and is never pinned.
//! `@cert-authority` lines name CAs, not host keys: they pin nothing.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::{ssh_key::PublicKey, HashAlg};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Unknown,
    /// The host has keys recorded, none of them this one: `line` is the first.
    Changed {
        line: usize,
    },
    /// The key is marked `@revoked` at `line`.
    Revoked {
        line: usize,
    },
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name OpenSSH looks up: the bare host on port 22, else `[host]:port`.
fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `*` and `?` globbing, case-insensitive, as OpenSSH matches host patterns.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p.eq_ignore_ascii_case(n) => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::Patterns(list) => {
            let mut hit = false;
            for p in list {
                match p.strip_prefix('!') {
                    Some(neg) if glob(neg.as_bytes(), name.as_bytes()) => return false,
                    Some(_) => {}
                    None => hit |= glob(p.as_bytes(), name.as_bytes()),
                }
            }
            hit
        }
        HostPatterns::HashedName { salt, hash } => {
            let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                return false;
            };
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
    }
}

/// The entries of a known_hosts text with their line numbers; comments, blank and
/// malformed lines are skipped (OpenSSH skips them too).
fn entries(text: &str) -> Vec<(usize, Entry)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.split('#').next().unwrap_or("");
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.is_empty() {
                return None;
            }
            match fields.join(" ").parse::<Entry>() {
                Ok(e) => Some((i + 1, e)),
                Err(_) => {
                    tracing::debug!(
                        line = i + 1,
                        "skipping a known_hosts line that does not parse"
                    );
                    None
                }
            }
        })
        .collect()
}

/// What the file says of `key` for `host` on `port`.
pub fn verdict(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = lookup_name(host, port);
    let all = entries(text);
    let same = |e: &Entry| e.public_key().key_data() == key.key_data();
    if let Some((line, _)) = all
        .iter()
        .find(|(_, e)| e.marker() == Some(&Marker::Revoked) && same(e))
    {
        return Verdict::Revoked { line: *line };
    }
    let mut first = None;
    for (line, e) in all
        .iter()
        .filter(|(_, e)| e.marker().is_none() && host_matches(e.host_patterns(), &name))
    {
        if same(e) {
            return Verdict::Known;
        }
        first.get_or_insert(*line);
    }
    match first {
        Some(line) => Verdict::Changed { line },
        None => Verdict::Unknown,
    }
}

/// The keys the file pins for `host` on `port` (revoked ones left out).
pub fn keys_for(text: &str, host: &str, port: u16) -> Vec<PublicKey> {
    let name = lookup_name(host, port);
    let all = entries(text);
    let revoked: Vec<&Entry> = all
        .iter()
        .filter(|(_, e)| e.marker() == Some(&Marker::Revoked))
        .map(|(_, e)| e)
        .collect();
    all.iter()
        .filter(|(_, e)| e.marker().is_none() && host_matches(e.host_patterns(), &name))
        .filter(|(_, e)| {
            !revoked
                .iter()
                .any(|r| r.public_key().key_data() == e.public_key().key_data())
        })
        .map(|(_, e)| e.public_key().clone())
        .collect()
}

/// Pins the keys pinned for `from` (host, port) for `to` as well: a machine started
/// from `from`'s disk (a recovery instance) presents `from`'s host keys at its own
/// address. Nothing pinned for `from`: an error (the copy would be unverifiable). A
/// key `to` has pinned already that is not one of them stays, and makes the
/// connection's check refuse a mismatch as usual.
pub fn pin_as(from: (&str, u16), to: (&str, u16), file: &Path) -> std::io::Result<usize> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let keys = keys_for(&text, from.0, from.1);
    if keys.is_empty() {
        return Err(std::io::Error::other(format!(
            "no host key of {} is pinned in {}: capture it once first",
            lookup_name(from.0, from.1),
            file.display()
        )));
    }
    let mut pinned = 0;
    for k in &keys {
        match verdict(&text, to.0, to.1, k) {
            Verdict::Known => {}
            Verdict::Unknown => {
                learn(to.0, to.1, k, file)?;
                pinned += 1;
            }
            // Another key is pinned for the address: leave it; the connection refuses.
            Verdict::Changed { .. } | Verdict::Revoked { .. } => {}
        }
    }
    Ok(pinned)
}

pub fn check(host: &str, port: u16, key: &PublicKey, file: &Path) -> std::io::Result<Verdict> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    Ok(verdict(&text, host, port, key))
}

/// Appends the key in OpenSSH's format (`[host]:port alg key`, bare host on port 22):
/// one `write_all` of the whole line under an exclusive lock on the file, so that
/// concurrent pins (discover connects to many hosts at once) never interleave. A key
/// that the file marks revoked is never pinned.
pub fn learn(host: &str, port: u16, key: &PublicKey, file: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(file)?;
    f.lock()?;
    let mut text = String::new();
    f.seek(std::io::SeekFrom::Start(0))?;
    f.read_to_string(&mut text)?;
    match verdict(&text, host, port, key) {
        Verdict::Unknown => {}
        // Another process pinned it meanwhile.
        Verdict::Known => return Ok(()),
        v => {
            return Err(std::io::Error::other(format!(
                "not pinning the key of {host}: {v:?} in {}",
                file.display()
            )))
        }
    }
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key.to_openssh().map_err(std::io::Error::other)?;
    let mut line = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        line.push('\n');
    }
    line += &format!("{} {}\n", lookup_name(host, port), encoded.trim_end());
    f.write_all(line.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod pin_as_tests {
    use super::*;
    use russh::keys::{ssh_key::private::Ed25519Keypair, ssh_key::PrivateKey};

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    #[test]
    fn a_recovery_address_is_pinned_with_the_origins_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        learn("10.0.0.5", 2222, &key(1), &file).unwrap();
        learn("10.0.0.6", 22, &key(2), &file).unwrap();
        assert_eq!(
            pin_as(("10.0.0.5", 2222), ("10.9.0.5", 2222), &file).unwrap(),
            1
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(verdict(&text, "10.9.0.5", 2222, &key(1)), Verdict::Known);
        assert!(matches!(
            verdict(&text, "10.9.0.5", 2222, &key(2)),
            Verdict::Changed { .. }
        ));
        // Again: nothing new.
        assert_eq!(
            pin_as(("10.0.0.5", 2222), ("10.9.0.5", 2222), &file).unwrap(),
            0
        );
        // An origin with no key pinned cannot vouch for anything.
        let e = pin_as(("10.0.0.7", 22), ("10.9.0.7", 22), &file).unwrap_err();
        assert!(e.to_string().contains("10.0.0.7"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use russh::keys::{ssh_key::private::Ed25519Keypair, ssh_key::PrivateKey};

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    fn openssh(k: &PublicKey) -> String {
        let mut k = k.clone();
        k.set_comment("");
        k.to_openssh().unwrap().trim_end().to_string()
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

    #[test]
    fn the_formats_openssh_writes() {
        let (k1, k2, k3) = (key(1), key(2), key(3));
        // A hashed name for db1 (as `ssh-keygen -H` writes it).
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"db1");
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!(
            "|1|{}|{}",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        let text = format!(
            "# comment\n\n\
             @cert-authority *.shop {ca}\n\
             web*.shop,!web9.shop   \t{k1}   a comment\n\
             {hashed} {k2}\n\
             this line is not a key\n\
             @revoked * {k3}\n",
            ca = openssh(&key(9)),
            k1 = openssh(&k1),
            k2 = openssh(&k2),
            k3 = openssh(&k3),
        );
        // Several blanks between fields, patterns and negation.
        assert_eq!(verdict(&text, "web1.shop", 22, &k1), Verdict::Known);
        assert_eq!(verdict(&text, "WEB2.shop", 22, &k1), Verdict::Known);
        assert_eq!(verdict(&text, "web9.shop", 22, &k1), Verdict::Unknown);
        // The line number counts the comment lines before it.
        assert_eq!(
            verdict(&text, "web1.shop", 22, &k2),
            Verdict::Changed { line: 4 }
        );
        // Hashed host names.
        assert_eq!(verdict(&text, "db1", 22, &k2), Verdict::Known);
        assert_eq!(verdict(&text, "db2", 22, &k2), Verdict::Unknown);
        // A CA line pins nothing.
        assert_eq!(verdict(&text, "api.shop", 22, &key(9)), Verdict::Unknown);
        // Revoked: refused for every host, and never pinned.
        assert_eq!(
            verdict(&text, "anything", 22, &k3),
            Verdict::Revoked { line: 7 }
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        std::fs::write(&f, &text).unwrap();
        assert!(learn("new.shop", 22, &k3, &f).is_err());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
    }

    #[test]
    fn concurrent_pins_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        std::thread::scope(|s| {
            for i in 0..16u8 {
                let f = &f;
                s.spawn(move || learn(&format!("10.0.0.{i}"), 2222, &key(i + 1), f).unwrap());
            }
        });
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 16);
        for i in 0..16u8 {
            assert_eq!(
                verdict(&text, &format!("10.0.0.{i}"), 2222, &key(i + 1)),
                Verdict::Known,
                "{text}"
            );
        }
    }
}
