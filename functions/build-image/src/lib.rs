//! The `build-image` function: a recovery point into an EBS snapshot (EBS direct APIs)
//! and an AMI, ahead of any failover or migration, so that recovery time is boot time.
//!
//! # Layout
//! - What each step takes and returns is `ferry_core::steps::build_image`.
//! - [`steps`]: plan, write (one range), finish, abandon; each looks before it creates.
//! - [`spans`]: the point's (and its parent's) locations object read one 64 MiB segment
//!   at a time, with the blocks of each that may need writing.
//! - [`blocks`]: EBS blocks assembled from the store, and handed to the writers.
//! - [`cloud`]: the clients and every AWS call the steps make (start, put, complete,
//!   register, look-ups by tag and name, the point's record, the build lock), shaped as the steps
//!   speak: no SDK type reaches [`steps`] or [`blocks`].
//! - [`store`]: the store, opened on first use, and its errors as step errors.
//! - [`handler`]: the Lambda entry point.

pub mod blocks;
pub mod cloud;
pub mod handler;
pub mod spans;
pub mod steps;
pub mod store;
