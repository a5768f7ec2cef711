//! The `build-image` function: a recovery point into an EBS snapshot (EBS direct APIs)
//! and an AMI, ahead of any failover or migration, so that recovery time is boot time.
//!
//! # Layout
//! - What each step takes and returns is `ferry_core::steps::build_image`.
//! - [`steps`]: plan, write (one range), finish, abandon; each looks before it creates.
//! - [`blocks`]: EBS blocks assembled from the store and written with their checksums.
//! - [`cloud`]: the clients and the look-ups by tag and name.
//! - [`store`]: the store, opened on first use, and its errors as step errors.
//! - [`handler`]: the Lambda entry point.

pub mod blocks;
pub mod cloud;
pub mod handler;
pub mod steps;
pub mod store;
