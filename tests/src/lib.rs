//! The local stack Ferry runs against, and helpers for the integration tests.
//!
//! Everything is a real peer on loopback, started here and stopped (by PID) when its
//! handle drops: a moto server for the AWS APIs, OpenSSH `sshd` instances as source and
//! target hosts (each with its own address in 127.0.0.0/8, host key, authorized key and
//! disk image), and the real `ferry` binary driven as a user would.
//!
//! # Layout
//! - [`procs`]: child processes that die with their handle; free ports; waiting for a port.
//! - [`moto`]: the moto server, plus the `aws` CLI pointed at it.
//! - [`sshd`]: an sshd test host with its keys and disk.
//! - [`ferry`]: running the `ferry` binary with a config and reading its JSON.
//! - [`disk`]: test disk images and hashing.
//! - [`stack`]: one whole stack (temp dir, moto, hosts) that stops when dropped.

pub mod disk;
pub mod ferry;
pub mod moto;
pub mod procs;
pub mod router;
pub mod sshd;
pub mod stack;
