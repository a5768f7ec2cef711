//! The instance actions. Errors are [`StepError`]s: retryable (throttling, capacity,
//! timeouts) or not (bad input, missing image or subnet).
//!
//! A run (a migration, a failover, a drill) may launch one instance per host: each is
//! tagged with the run and the host, and found again by both, so a retried launch
//! never launches a second one.

use aws_sdk_ec2::types::{Filter, Instance, InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use ferry_core::steps::instance::RunRemoval;
use ferry_core::steps::{InstanceRequest, InstanceState, LaunchSpec};
use ferry_fn::{sdk_error, StepError};
use serde::Serialize;

pub use ferry_core::tags::GROUP as GROUP_TAG;
pub use ferry_core::tags::HOST as HOST_TAG;
/// Tag that ties an instance to the run that launched it.
pub use ferry_core::tags::RUN_ID as RUN_TAG;

/// What an action answers: an instance's state, or for `terminate_run` what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    State(InstanceState),
    Removal(RunRemoval),
}

impl Reply {
    /// The instance state of `launch`, `describe` and `terminate`.
    pub fn state(self) -> Option<InstanceState> {
        match self {
            Reply::State(s) => Some(s),
            Reply::Removal(_) => None,
        }
    }

    /// What `terminate_run` removed.
    pub fn removal(self) -> Option<RunRemoval> {
        match self {
            Reply::Removal(r) => Some(r),
            Reply::State(_) => None,
        }
    }
}

pub async fn handle(ec2: &Client, req: InstanceRequest) -> Result<Reply, StepError> {
    Ok(match req {
        InstanceRequest::Launch(spec) => Reply::State(launch(ec2, &spec).await?),
        InstanceRequest::Describe { instance_id } => {
            Reply::State(describe(ec2, &instance_id).await?)
        }
        InstanceRequest::Terminate { instance_id } => {
            Reply::State(terminate(ec2, &instance_id).await?)
        }
        InstanceRequest::TerminateRun { run_id } => {
            Reply::Removal(terminate_run(ec2, &run_id).await?)
        }
    })
}

/// Instance states that still count as launched (not terminated, not on the way).
const LIVE: [&str; 4] = ["pending", "running", "stopping", "stopped"];
/// ... and those on their way out.
const NOT_GONE: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];
/// Every instance state.
pub const ANY_STATE: [&str; 6] = [
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
];

fn filter(name: impl Into<String>, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// Instances of the run (of one host of it, when `host` is given) in `states`.
pub async fn run_instances(
    ec2: &Client,
    run_id: &str,
    host: Option<&str>,
    states: &[&str],
) -> Result<Vec<Instance>, StepError> {
    let mut req = ec2
        .describe_instances()
        .filters(filter(format!("tag:{RUN_TAG}"), &[run_id]))
        .filters(filter("instance-state-name", states));
    if let Some(h) = host {
        req = req.filters(filter(format!("tag:{HOST_TAG}"), &[h]));
    }
    let mut pages = req.into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("DescribeInstances", &format!("run {run_id}"), e))?;
        out.extend(
            page.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned(),
        );
    }
    Ok(out)
}

/// The value of an instance's tag `key`.
pub fn tag<'a>(i: &'a Instance, key: &str) -> Option<&'a str> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The host's instance if an earlier try of the run launched it.
async fn find_launched(ec2: &Client, spec: &LaunchSpec) -> Result<Option<Instance>, StepError> {
    Ok(run_instances(ec2, &spec.run_id, Some(&spec.host), &LIVE)
        .await?
        .into_iter()
        .next())
}

/// RunInstances' idempotency token (at most 64 characters): one per run and host.
fn client_token(spec: &LaunchSpec) -> String {
    let id = ferry_core::ChunkId::of(format!("{}\n{}", spec.run_id, spec.host).as_bytes());
    id.to_hex()[..48].to_string()
}

async fn launch(ec2: &Client, spec: &LaunchSpec) -> Result<InstanceState, StepError> {
    if spec.run_id.is_empty() || spec.image_id.is_empty() || spec.subnet_id.is_empty() {
        return Err(StepError::NonRetryable(
            "launch needs run_id, image_id and subnet_id".into(),
        ));
    }
    if let Some(found) = find_launched(ec2, spec).await? {
        tracing::info!(run = %spec.run_id, host = %spec.host, "instance already launched by an earlier try");
        return Ok(state_of(&found, None, false));
    }
    // EC2 itself judges the type (new types appear before SDKs know them).
    let itype = InstanceType::from(spec.instance_type.as_str());
    let mut tags = vec![
        Tag::builder().key("Name").value(&spec.host).build(),
        Tag::builder().key(RUN_TAG).value(&spec.run_id).build(),
        Tag::builder().key(HOST_TAG).value(&spec.host).build(),
    ];
    if let Some(g) = &spec.group {
        tags.push(Tag::builder().key(GROUP_TAG).value(g).build());
    }
    // The network interface carries the run too, so that a clean-up finds one left.
    let tag_specs = [ResourceType::Instance, ResourceType::NetworkInterface].map(|r| {
        TagSpecification::builder()
            .resource_type(r)
            .set_tags(Some(tags.clone()))
            .build()
    });
    let out = ec2
        .run_instances()
        .image_id(&spec.image_id)
        .instance_type(itype)
        .min_count(1)
        .max_count(1)
        .subnet_id(&spec.subnet_id)
        .set_private_ip_address(spec.private_ip.clone())
        .set_security_group_ids(Some(spec.security_group_ids.clone()).filter(|v| !v.is_empty()))
        // EC2 returns the same instance for the same token: a retried call that did
        // reach EC2 cannot launch twice.
        .client_token(client_token(spec))
        .set_tag_specifications(Some(tag_specs.to_vec()))
        .send()
        .await
        .map_err(|e| {
            sdk_error(
                "RunInstances",
                &format!("host {} image {}", spec.host, spec.image_id),
                e,
            )
        })?;
    let inst = out
        .instances()
        .first()
        .ok_or_else(|| StepError::Retryable("RunInstances returned no instance".into()))?;
    tracing::info!(run = %spec.run_id, host = %spec.host, instance = ?inst.instance_id(), "launched");
    Ok(state_of(inst, None, true))
}

async fn describe(ec2: &Client, id: &str) -> Result<InstanceState, StepError> {
    // Right after RunInstances, EC2 may not know the instance yet (its API is eventually
    // consistent): not found is "ask again", and the definition's retries bound it.
    let not_yet = || StepError::Retryable(format!("instance {id} not found (yet)"));
    let out = match ec2.describe_instances().instance_ids(id).send().await {
        Ok(out) => out,
        Err(e) => {
            let err = ferry_aws::CallError::new("DescribeInstances", id, &e);
            if err.failure.is("InvalidInstanceID.NotFound") {
                return Err(not_yet());
            }
            return Err(err.into());
        }
    };
    let inst = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .ok_or_else(not_yet)?;
    let status = ec2
        .describe_instance_status()
        .instance_ids(id)
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeInstanceStatus", id, e))?;
    let checks = status.instance_statuses().first().map(|s| {
        let sys = s
            .system_status()
            .and_then(|x| x.status())
            .map(|x| x.as_str().to_string());
        let ins = s
            .instance_status()
            .and_then(|x| x.status())
            .map(|x| x.as_str().to_string());
        match (sys.as_deref(), ins.as_deref()) {
            (Some("ok"), Some("ok")) => "ok".to_string(),
            (Some("ok"), Some(other)) | (Some(other), _) => other.to_string(),
            _ => "unknown".to_string(),
        }
    });
    Ok(state_of(inst, checks, false))
}

async fn terminate(ec2: &Client, id: &str) -> Result<InstanceState, StepError> {
    match ec2.terminate_instances().instance_ids(id).send().await {
        Ok(out) => {
            let state = out
                .terminating_instances()
                .first()
                .and_then(|c| c.current_state())
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_else(|| "shutting-down".into());
            Ok(just_state(id, state))
        }
        Err(e) => {
            let err = ferry_aws::CallError::new("TerminateInstances", id, &e);
            // Already gone: clean-up is done.
            if err.failure.is("InvalidInstanceID.NotFound") {
                return Ok(just_state(id, "terminated".into()));
            }
            Err(err.into())
        }
    }
}

/// Terminates every instance the run launched that is not terminated yet, and deletes
/// the run's network interfaces left detached (EC2 deletes an instance's own interface
/// with it; one that outlived its instance would keep its address). Idempotent: a
/// second call finds what the first one left, so a definition calls it until done.
async fn terminate_run(ec2: &Client, run_id: &str) -> Result<RunRemoval, StepError> {
    let live = run_instances(ec2, run_id, None, &LIVE).await?;
    let ids: Vec<String> = live
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    if !ids.is_empty() {
        match ec2
            .terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
        {
            Ok(_) => tracing::info!(run = %run_id, instances = ?ids, "terminating"),
            Err(e) => {
                let err = ferry_aws::CallError::new("TerminateInstances", run_id, &e);
                if !err.failure.is("InvalidInstanceID.NotFound") {
                    return Err(err.into());
                }
            }
        }
    }
    let remaining = run_instances(ec2, run_id, None, &NOT_GONE).await?.len() as u32;
    let enis = ec2
        .describe_network_interfaces()
        .filters(filter(format!("tag:{RUN_TAG}"), &[run_id]))
        .send()
        .await
        .map_err(|e| sdk_error("DescribeNetworkInterfaces", &format!("run {run_id}"), e))?;
    let mut deleted = 0;
    let mut interfaces_remaining = 0;
    for eni in enis.network_interfaces() {
        let id = eni.network_interface_id().unwrap_or_default();
        let available = eni.status().map(|s| s.as_str()) == Some("available");
        if !available {
            interfaces_remaining += 1;
            continue;
        }
        match ec2
            .delete_network_interface()
            .network_interface_id(id)
            .send()
            .await
        {
            Ok(_) => deleted += 1,
            Err(e) => {
                let err = ferry_aws::CallError::new("DeleteNetworkInterface", id, &e);
                if !err.failure.is("InvalidNetworkInterfaceID.NotFound") {
                    return Err(err.into());
                }
            }
        }
    }
    Ok(RunRemoval {
        terminated: ids,
        remaining,
        interfaces_deleted: deleted,
        interfaces_remaining,
    })
}

/// An instance known only by id and state (what TerminateInstances reports).
fn just_state(id: &str, state: String) -> InstanceState {
    InstanceState {
        instance_id: id.to_string(),
        state,
        instance_type: None,
        subnet_id: None,
        private_ip: None,
        image_id: None,
        status_checks: None,
        launched_now: false,
    }
}

fn state_of(i: &Instance, status_checks: Option<String>, launched_now: bool) -> InstanceState {
    InstanceState {
        instance_id: i.instance_id().unwrap_or_default().to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| "pending".into()),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        subnet_id: i.subnet_id().map(str::to_string),
        private_ip: i.private_ip_address().map(str::to_string),
        image_id: i.image_id().map(str::to_string),
        status_checks,
        launched_now,
    }
}
