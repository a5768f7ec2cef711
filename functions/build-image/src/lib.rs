//! The `build-image` function: a recovery point into an EBS snapshot (EBS direct APIs)
//! and an AMI, ahead of any failover or migration, so that recovery time is boot time.
//!
//! # Layout
//! - [`request`]: what each step takes and returns, and how blocks are cut into ranges.
//! - [`steps`]: plan, write (one range), finish, abandon; each looks before it creates.
//! - [`blocks`]: EBS blocks assembled from the store and written with their checksums.
//! - [`cloud`]: the clients and the look-ups by tag and name.
//! - [`handler`]: the Lambda entry point.

pub mod blocks;
pub mod cloud;
pub mod handler;
pub mod request;
pub mod steps;
