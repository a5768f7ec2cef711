//! `ferry-aws`: everything that speaks to AWS, kept apart from the store, the format and
//! the logic that uses it.
//!
//! # Layout
//! - [`settings`]: the appliance's `[aws]` settings.
//! - [`clients`]: the one place SDK clients are built, one function per service, each
//!   behind a feature of the same name; endpoints come from `AWS_ENDPOINT_URL`.
//! - [`error`]: one reading of an SDK error (code, message, retryable) for every
//!   service, and [`CallError`], the error of one failed call naming its target.
//! - [`sfn`]: Step Functions as the appliance uses it: state machines, executions and
//!   their histories as plain data.
//! - [`ec2`]: the instance types EC2 offers, as plain data.
//! - [`dynamodb`]: records written as items, by key.
//! - [`lock`]: a lock item with an expiry (image builds of a point; failover groups),
//!   kept with a state, or preempted.
//! - [`cloudwatch`]: metrics published, and alarms written from specs and read back.
//! - [`route53`], [`elbv2`]: the traffic switch (record sets, target groups).
//! - [`sqs`]: a work queue read by long polling.
//! - [`autoscaling`], [`launch_template`]: a burst tier's Auto Scaling group and launch
//!   template.
//!
//! No SDK type leaves the domain-shaped modules: callers get the types defined here.

#[cfg(feature = "autoscaling")]
pub mod autoscaling;
pub mod clients;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
pub mod error;
pub mod settings;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "ec2")]
pub mod ec2;
#[cfg(feature = "elbv2")]
pub mod elbv2;
#[cfg(feature = "ec2")]
pub mod launch_template;
#[cfg(feature = "dynamodb")]
pub mod lock;
#[cfg(feature = "route53")]
pub mod route53;
#[cfg(feature = "sfn")]
pub mod sfn;
#[cfg(feature = "sqs")]
pub mod sqs;

pub use error::{sdk_failure, CallError, SdkFailure};
pub use settings::AwsSettings;
