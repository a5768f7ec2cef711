//! Hybrid burst, the appliance's side: a tier's `[[burst]]` config, `ferry burst
//! setup` (everything in AWS a burst needs), `ferry burst status`, and the daemon's
//! load sampling and publishing. The bursts and scale-ins themselves are the burst and
//! scale-in state machines, started by the tier's alarms.
//!
//! - [`config`]: `[[burst]]`, checked, and the record the burst function reads.
//! - [`load`]: one host's load, sampled over SSH with stock tools.
//! - [`publish`]: the daemon's task per tier.
//! - [`setup`], [`status`]: the commands.

pub mod config;
pub mod load;
pub mod publish;
pub mod setup;
pub mod status;
