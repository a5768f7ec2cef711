//! Disaster recovery on the appliance's side: protection groups, the daemon that keeps
//! them recoverable, and the runs that fail them over or drill them (the runs
//! themselves are the failover state machine's, in AWS).
//!
//! - [`config`]: `[[group]]` of `ferry.toml`, checked and turned into the record a
//!   failover reads.
//! - [`schedule`]: sync policies (interval or cron, exclusion windows, backoff).
//! - [`protect`]: `ferry protect`: the group's record, its listing and its alarms.
//! - [`daemon`]: `ferry daemon`: syncs, origin probes, metrics.
//! - [`runs`]: `ferry failover` and `ferry drill`.
//! - [`status`]: `ferry dr status`.

pub mod config;
pub mod daemon;
pub mod protect;
pub mod runs;
pub mod schedule;
pub mod status;

pub use ferry_core::keys::locks::FAILED_OVER;
