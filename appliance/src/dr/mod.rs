//! Disaster recovery on the appliance's side: protection groups, the daemon that keeps
//! them recoverable, and the runs that fail them over, drill them or bring them home
//! (the runs themselves are state machines in AWS).
//!
//! - [`config`]: `[[group]]` of `ferry.toml`, checked and turned into the record a
//!   failover reads.
//! - [`schedule`]: sync policies (interval or cron, exclusion windows, backoff).
//! - [`protect`]: `ferry protect`: the group's record, its listing and its alarms.
//! - [`daemon`]: `ferry daemon`: syncs, origin probes, metrics.
//! - [`runs`]: `ferry failover` and `ferry drill`.
//! - [`failback`]: `ferry failback`: the appliance as the failback state machine's
//!   worker.
//! - [`status`]: `ferry dr status`.

pub mod config;
pub mod daemon;
pub mod failback;
pub mod protect;
pub mod runs;
pub mod schedule;
pub mod status;

pub use ferry_core::keys::locks::FAILED_OVER;
