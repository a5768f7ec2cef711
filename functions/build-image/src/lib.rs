//! The `build-image` function: a recovery point into an EBS snapshot (EBS direct APIs)
//! and an AMI, ahead of any failover or migration, so that recovery time is boot time.
//!
//! # Layout
//! - [`handler`]: the build, over EBS, EC2 and the store (every step looks before it
//!   creates, so a retry is harmless).

pub mod handler;
