//! The `burst` function: the steps of the burst and scale-in state machines, the
//! trigger that starts them when a tier's alarm fires, and the roll of a golden host's
//! new image into its tiers' launch templates.
//!
//! # Layout
//! - [`handler`]: what arrives (a step, an alarm event) and where it goes.
//! - [`trigger`]: an alarm state change -> a `burst-<tier>-<UTC>` or
//!   `scale-in-<tier>-<UTC>` execution.
//! - [`begin`]: the tier's lock, the checks a run needs before it changes anything, the
//!   plan.
//! - [`image`]: the golden host's newest image, written into the launch template.
//! - [`capacity`]: desired capacity up, the instances registered and checked.
//! - [`scale_in`]: drain, terminate, check that they are gone.
//! - [`traffic`]: the target group and the weighted records: instances admitted and
//!   withdrawn.
//! - [`sync`]: Auto Scaling's instance events (target tracking's own launches and
//!   terminations) -> the traffic in step with the instances.
//! - [`finish`]: the run item; the lock released.

pub mod begin;
pub mod capacity;
pub mod finish;
pub mod handler;
pub mod image;
pub mod scale_in;
pub mod sync;
pub mod traffic;
pub mod trigger;

use ferry_aws::dynamodb::{Table, TableError};
use ferry_aws::sfn::Sfn;
use ferry_core::burst::BurstTier;
use ferry_core::keys;
use ferry_fn::StepError;

/// A run holds its tier's lock this long (a burst's checks are capped well inside it).
pub const LOCK_TTL_S: i64 = 30 * 60;

/// What the template sets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `FERRY_TABLE`.
    pub table: String,
    /// `FERRY_BURST_STATE_MACHINE`, `FERRY_SCALE_IN_STATE_MACHINE`: what the trigger
    /// starts.
    pub burst_state_machine: String,
    pub scale_in_state_machine: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
        Ok(Settings {
            table: var("FERRY_TABLE")?,
            burst_state_machine: var("FERRY_BURST_STATE_MACHINE")?,
            scale_in_state_machine: var("FERRY_SCALE_IN_STATE_MACHINE")?,
        })
    }
}

/// The clients, built once per execution environment.
pub struct Burst {
    pub settings: Settings,
    pub table: Table,
    pub ddb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sfn: Sfn,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl Burst {
    pub fn new(cfg: &aws_config::SdkConfig, settings: Settings) -> Self {
        use ferry_aws::clients;
        let ddb = clients::dynamodb(cfg);
        Burst {
            table: Table::new(ddb.clone(), settings.table.clone()),
            ddb,
            ec2: clients::ec2(cfg),
            sfn: Sfn::new(clients::sfn(cfg)),
            elbv2: clients::elbv2(cfg),
            route53: clients::route53(cfg),
            autoscaling: clients::autoscaling(cfg),
            settings,
        }
    }

    /// The tier's lock, as `holder` asks for it.
    pub fn lock<'a>(&'a self, tier: &str, holder: &'a str) -> ferry_aws::lock::Lock<'a> {
        ferry_aws::lock::Lock {
            client: &self.ddb,
            table: &self.settings.table,
            key: keys::burst_lock(tier),
            holder,
            ttl_s: LOCK_TTL_S,
        }
    }

    /// The tier as `ferry burst setup` recorded it.
    pub async fn tier(&self, tier: &str) -> Result<BurstTier, StepError> {
        self.table
            .get::<BurstTier>(&keys::burst_tier(tier))
            .await
            .map_err(table_error)?
            .ok_or_else(|| {
                StepError::named(
                    ferry_core::steps::errors::NOT_FOUND,
                    format!("tier {tier} is not set up for burst: run `ferry burst setup {tier}`"),
                )
            })
    }
}

pub fn table_error(e: TableError) -> StepError {
    match e {
        TableError::Call(c) => c.into(),
        other => StepError::NonRetryable(other.to_string()),
    }
}
