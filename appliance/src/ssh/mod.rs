//! Agentless access to a host: one russh session per host, key auth, pinned host keys,
//! and stock commands whose output is streamed (for disk reads) or whose input is
//! streamed (for writes back to the disk).

pub mod known_hosts;
mod remote_io;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use russh::client;
use russh::client::Msg;
use russh::keys::{load_secret_key, PrivateKeyWithHashAlg};
use russh::{cipher, Channel, Preferred};

pub use known_hosts::fingerprint;
pub use remote_io::{RemoteReader, RemoteWriter};

/// `user@addr:port`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAddr {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for SshAddr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (user, rest) = s
            .split_once('@')
            .ok_or_else(|| anyhow!("ssh address {s:?} must look like user@host[:port]"))?;
        let port = |p: &str| {
            p.parse::<u16>()
                .with_context(|| format!("ssh address {s:?}: bad port {p:?}"))
        };
        let (host, port) = if let Some(b) = rest.strip_prefix('[') {
            // `[v6 address]` or `[v6 address]:port`.
            let (h, after) = b
                .split_once(']')
                .with_context(|| format!("ssh address {s:?}: no closing ]"))?;
            match after {
                "" => (h, 22),
                p => (
                    h,
                    port(p.strip_prefix(':').with_context(|| {
                        format!("ssh address {s:?}: a port follows ] after a colon")
                    })?)?,
                ),
            }
        } else if rest.matches(':').count() > 1 {
            // A bare IPv6 address has no port.
            (rest, 22)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, port(p)?),
                None => (rest, 22),
            }
        };
        if user.is_empty() || host.is_empty() {
            bail!("ssh address {s:?} must look like user@host[:port]");
        }
        Ok(SshAddr {
            user: user.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

/// Everything needed to open a session to one host.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The host's name in `ferry.toml`, for messages.
    pub name: String,
    pub addr: SshAddr,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// Pin the key of a host seen for the first time instead of refusing it.
    pub accept_new_host_key: bool,
}

#[derive(Debug, Clone)]
enum KeyProblem {
    Unknown(String),
    Changed { fingerprint: String, line: usize },
    Revoked { fingerprint: String, line: usize },
    File(String),
}

struct Verifier {
    target: SshTarget,
    problem: Arc<Mutex<Option<KeyProblem>>>,
    seen: Arc<Mutex<Option<String>>>,
}

impl Verifier {
    fn set(&self, p: KeyProblem) {
        if let Ok(mut g) = self.problem.lock() {
            *g = Some(p);
        }
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.set(KeyProblem::File(
                "the host presented a certificate; only plain host keys are supported".into(),
            ));
            return Ok(false);
        };
        let fp = fingerprint(key);
        if let Ok(mut g) = self.seen.lock() {
            *g = Some(fp.clone());
        }
        let (host, port, file) = (
            &self.target.addr.host,
            self.target.addr.port,
            &self.target.known_hosts,
        );
        match known_hosts::check(host, port, key, file) {
            Ok(known_hosts::Verdict::Known) => Ok(true),
            Ok(known_hosts::Verdict::Unknown) if self.target.accept_new_host_key => {
                match known_hosts::learn(host, port, key, file) {
                    Ok(()) => {
                        tracing::info!(host = %self.target.name, fingerprint = %fp, "pinned new host key");
                        Ok(true)
                    }
                    Err(e) => {
                        self.set(KeyProblem::File(format!(
                            "cannot record the key in {}: {e}",
                            file.display()
                        )));
                        Ok(false)
                    }
                }
            }
            Ok(known_hosts::Verdict::Unknown) => {
                self.set(KeyProblem::Unknown(fp));
                Ok(false)
            }
            Ok(known_hosts::Verdict::Changed { line }) => {
                self.set(KeyProblem::Changed {
                    fingerprint: fp,
                    line,
                });
                Ok(false)
            }
            Ok(known_hosts::Verdict::Revoked { line }) => {
                self.set(KeyProblem::Revoked {
                    fingerprint: fp,
                    line,
                });
                Ok(false)
            }
            Err(e) => {
                self.set(KeyProblem::File(format!(
                    "cannot read {}: {e}",
                    file.display()
                )));
                Ok(false)
            }
        }
    }
}

/// An authenticated session to one host.
pub struct SshSession {
    handle: client::Handle<Verifier>,
    pub name: String,
    /// SHA-256 fingerprint of the host key that was accepted.
    pub host_key: String,
}

fn client_config() -> client::Config {
    client::Config {
        inactivity_timeout: Some(Duration::from_secs(120)),
        keepalive_interval: Some(Duration::from_secs(15)),
        // Large windows keep a bulk read streaming over links with latency; AES-GCM is
        // the fastest cipher where the CPU has AES instructions (every x86-64 and arm64
        // server Ferry targets).
        window_size: 16 << 20,
        maximum_packet_size: 65535,
        channel_buffer_size: 256,
        preferred: Preferred {
            cipher: std::borrow::Cow::Borrowed(&[
                cipher::AES_128_GCM,
                cipher::AES_256_GCM,
                cipher::CHACHA20_POLY1305,
                cipher::AES_256_CTR,
            ]),
            ..Preferred::default()
        },
        nodelay: true,
        ..Default::default()
    }
}

impl SshSession {
    pub async fn connect(t: &SshTarget) -> Result<Self> {
        let name = &t.name;
        let key = load_secret_key(&t.identity, None).with_context(|| {
            format!(
                "host {name}: cannot load SSH identity {}",
                t.identity.display()
            )
        })?;
        let problem = Arc::new(Mutex::new(None));
        let seen = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            target: t.clone(),
            problem: problem.clone(),
            seen: seen.clone(),
        };
        let addr = (t.addr.host.as_str(), t.addr.port);
        let connecting = client::connect(Arc::new(client_config()), addr, verifier);
        let connected = tokio::time::timeout(Duration::from_secs(20), connecting).await;
        let mut handle = match connected {
            Err(_) => bail!(
                "host {name}: SSH connection to {}:{} timed out",
                t.addr.host,
                t.addr.port
            ),
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                let p = problem.lock().ok().and_then(|g| g.clone());
                return Err(match p {
                    Some(KeyProblem::Unknown(fp)) => anyhow!(
                        "host {name}: unknown host key {fp} for {}:{} (not in {}); check it and rerun with --accept-new-host-key to pin it",
                        t.addr.host, t.addr.port, t.known_hosts.display()
                    ),
                    Some(KeyProblem::Changed { fingerprint, line }) => anyhow!(
                        "host {name}: HOST KEY CHANGED for {}:{}: it now presents {fingerprint}, which differs from the key pinned at {}:{line}; refusing to connect (possible man-in-the-middle)",
                        t.addr.host, t.addr.port, t.known_hosts.display()
                    ),
                    Some(KeyProblem::Revoked { fingerprint, line }) => anyhow!(
                        "host {name}: the host key {fingerprint} of {}:{} is REVOKED ({}:{line}); refusing to connect",
                        t.addr.host, t.addr.port, t.known_hosts.display()
                    ),
                    Some(KeyProblem::File(msg)) => anyhow!("host {name}: {msg}"),
                    None => anyhow!("host {name}: cannot connect to {}:{}: {e}", t.addr.host, t.addr.port),
                });
            }
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let auth = handle
            .authenticate_publickey(
                &t.addr.user,
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .with_context(|| format!("host {name}: SSH authentication failed"))?;
        if !auth.success() {
            bail!(
                "host {name}: {}@{}:{} refused the key {} (publickey authentication failed)",
                t.addr.user,
                t.addr.host,
                t.addr.port,
                t.identity.display()
            );
        }
        let host_key = seen.lock().ok().and_then(|g| g.clone()).unwrap_or_default();
        Ok(SshSession {
            handle,
            name: name.clone(),
            host_key,
        })
    }

    /// Opens a channel and starts `cmd` on it.
    async fn exec(&self, cmd: &str) -> Result<Channel<Msg>> {
        let ch = self
            .handle
            .channel_open_session()
            .await
            .with_context(|| format!("host {}: cannot open a channel", self.name))?;
        ch.exec(true, cmd)
            .await
            .with_context(|| format!("host {}: cannot run {cmd:?}", self.name))?;
        Ok(ch)
    }

    /// Runs a command with a small output; returns exit status, stdout, stderr.
    pub async fn run(&self, cmd: &str) -> Result<(u32, Vec<u8>, Vec<u8>)> {
        let (status, out, err, over) = remote_io::collect(self.exec(cmd).await?).await;
        if over {
            bail!(
                "host {}: {cmd:?} printed more than {} MiB",
                self.name,
                remote_io::COLLECT_CAP >> 20
            );
        }
        let status = status
            .ok_or_else(|| anyhow!("host {}: {cmd:?} ended without an exit status", self.name))?;
        Ok((status, out, err))
    }

    /// Runs a command and fails with its stderr unless it exits 0.
    pub async fn check(&self, cmd: &str) -> Result<Vec<u8>> {
        let (status, out, err) = self.run(cmd).await?;
        if status != 0 {
            bail!(
                "host {}: `{cmd}` failed (exit {status}): {}",
                self.name,
                String::from_utf8_lossy(&err).trim()
            );
        }
        Ok(out)
    }

    /// Starts a command whose stdout is read as a stream (a disk read).
    pub async fn read_stream(&self, cmd: &str) -> Result<RemoteReader> {
        let ch = self.exec(cmd).await?;
        Ok(RemoteReader::spawn(self.name.clone(), cmd.to_string(), ch))
    }

    /// Starts a command, gives it `input` on stdin (then end of file), and reads its
    /// stdout as a stream (ranges of a disk, their list on stdin).
    pub async fn read_stream_with_input(&self, cmd: &str, input: Bytes) -> Result<RemoteReader> {
        let ch = self.exec(cmd).await?;
        ch.data_bytes(input)
            .await
            .with_context(|| format!("host {}: writing the input of `{cmd}`", self.name))?;
        ch.eof()
            .await
            .with_context(|| format!("host {}: closing the input of `{cmd}`", self.name))?;
        Ok(RemoteReader::spawn(self.name.clone(), cmd.to_string(), ch))
    }

    /// Starts a command whose stdin is written as a stream (a disk write).
    pub async fn write_stream(&self, cmd: &str) -> Result<RemoteWriter> {
        let ch = self.exec(cmd).await?;
        Ok(RemoteWriter::new(self.name.clone(), cmd.to_string(), ch))
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Quotes one argument for the remote POSIX shell.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let a: SshAddr = "root@10.0.0.5:2222".parse().unwrap();
        assert_eq!(
            (a.user.as_str(), a.host.as_str(), a.port),
            ("root", "10.0.0.5", 2222)
        );
        let a: SshAddr = "ops@db1".parse().unwrap();
        assert_eq!(a.port, 22);
        assert!("db1:22".parse::<SshAddr>().is_err());
        assert!("root@db1:x".parse::<SshAddr>().is_err());
        // IPv6: bare (port 22) or bracketed with a port.
        let a: SshAddr = "root@::1".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 22));
        let a: SshAddr = "root@[fd00::5]:2200".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("fd00::5", 2200));
        let a: SshAddr = "root@[fd00::5]".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("fd00::5", 22));
        assert!("root@[fd00::5".parse::<SshAddr>().is_err());
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quote("/dev/sda"), "/dev/sda");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
