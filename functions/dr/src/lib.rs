//! The `dr` function: the steps of the failover state machine (failovers and drills)
//! and of the failback state machine,
//! the trigger that starts it when a group's failover alarm fires, and the AWS-side
//! probe of every protected origin.
//!
//! # Layout
//! - [`handler`]: what arrives (a step, an alarm event, a scheduled event) and where it
//!   goes.
//! - [`begin`]: the group's lock, each host's recovery point, the plan.
//! - [`check`]: whether a launched tier is ready (instances, status checks, health).
//! - [`switch`]: the traffic switch (Route 53 records, ELBv2 target groups).
//! - [`finish`]: the run item with achieved RPO and RTO (and a drill's cost), the lock
//!   kept as FAILED_OVER or released; and the record of a failed run.
//! - [`failback`]: a failback's lock hand-over and plan, its cutover mark, its run item
//!   (the traffic switch home is in [`switch`]).
//! - [`trigger`]: an alarm state change -> a `failover-<group>-<UTC>` execution.
//! - [`probe`]: every minute, each protected origin's public endpoint from AWS.
//! - [`records`]: the table's items this function reads and writes.

pub mod begin;
pub mod check;
pub mod failback;
pub mod finish;
pub mod handler;
pub mod probe;
pub mod records;
pub mod switch;
pub mod trigger;

use ferry_aws::dynamodb::Table;
use ferry_aws::sfn::Sfn;

/// A failover or drill holds its group's lock this long past each step's refresh.
pub const LOCK_TTL_S: i64 = 15 * 60;

/// What the template sets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `FERRY_TABLE`.
    pub table: String,
    /// `FERRY_FAILOVER_STATE_MACHINE`: the ARN the trigger starts.
    pub failover_state_machine: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
        Ok(Settings {
            table: var("FERRY_TABLE")?,
            failover_state_machine: var("FERRY_FAILOVER_STATE_MACHINE")?,
        })
    }
}

/// The clients, built once per execution environment.
pub struct Dr {
    pub settings: Settings,
    pub table: Table,
    pub ddb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sfn: Sfn,
    pub route53: aws_sdk_route53::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Dr {
    pub fn new(cfg: &aws_config::SdkConfig, settings: Settings) -> Self {
        use ferry_aws::clients;
        let ddb = clients::dynamodb(cfg);
        Dr {
            table: Table::new(ddb.clone(), settings.table.clone()),
            ddb,
            ec2: clients::ec2(cfg),
            sfn: Sfn::new(clients::sfn(cfg)),
            route53: clients::route53(cfg),
            elbv2: clients::elbv2(cfg),
            cloudwatch: clients::cloudwatch(cfg),
            settings,
        }
    }

    /// The lock of kind `kind` on `group`, as `holder` asks for it.
    pub fn lock<'a>(
        &'a self,
        group: &str,
        kind: &str,
        holder: &'a str,
    ) -> ferry_aws::lock::Lock<'a> {
        ferry_aws::lock::Lock {
            client: &self.ddb,
            table: &self.settings.table,
            key: ferry_core::keys::group_lock(group, kind),
            holder,
            ttl_s: LOCK_TTL_S,
        }
    }
}
