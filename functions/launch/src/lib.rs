//! The `launch` function: launches a run's EC2 instance, reports its state and status
//! checks, and terminates it on clean-up. One function with typed actions
//! (`ferry_core::steps::InstanceRequest`), so that the migrate definition's
//! LaunchTarget, WaitUntilRunning, VerifyTarget and clean-up states share one
//! least-privilege role over EC2 instances.
//!
//! # Layout
//! - [`handler`]: the actions, over an EC2 client (every call is idempotent: a launch
//!   looks for the run's instance before it creates one).

pub mod handler;
