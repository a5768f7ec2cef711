//! The local stack Ferry runs against, and helpers for the integration tests.
//!
//! Everything is a real peer on loopback, started here and stopped (by PID) when its
//! handle drops: a moto server for the AWS APIs, OpenSSH `sshd` instances as source and
//! target hosts (each with its own address in 127.0.0.0/8, host key, authorized key and
//! disk image), and the real `ferry` binary driven as a user would.
//!
//! # Layout
//! - [`procs`]: child processes that die with their handle; free ports; waiting for a port.
//! - [`moto`]: the moto server and cargo-lambda, plus the `aws` CLI pointed at them.
//! - [`router`]: the front router that lets moto's Step Functions reach cargo-lambda.
//! - [`sshd`]: an sshd test host with its keys and disk.
//! - [`ferry`]: running the `ferry` binary with a config and reading its JSON.
//! - [`deploy`]: creates what `infra/template.yaml` declares (table, bucket) in moto.
//! - [`sample_disk`]: the project's sample disks (ext4 of realistic files, and a day
//!   of changes), deterministic; [`disk`]: test disk images and hashing.
//! - [`stack`]: one whole stack (temp dir, moto, hosts) that stops when dropped.
//! - [`dr`]: the disaster-recovery test bed (a protection group of sshd hosts with
//!   service stand-ins, a recovery network, a Route 53 zone) and what tests read back.

pub mod browser;
pub mod build;
pub mod burst;
pub mod deploy;
pub mod disk;
pub mod dr;
pub mod ebs;
pub mod failback;
pub mod ferry;
pub mod moto;
pub mod procs;
pub mod router;
pub mod sample_disk;
pub mod sshd;
pub mod stack;
pub mod stats;
pub mod synth;
pub mod testbed;
pub mod vm;
