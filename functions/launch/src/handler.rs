//! The instance actions. Errors are [`StepError`]s: retryable (throttling, capacity,
//! timeouts) or not (bad input, missing image or subnet).

use aws_sdk_ec2::types::{Filter, Instance, InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use ferry_core::steps::{InstanceRequest, InstanceState, LaunchSpec};
use ferry_fn::{sdk_error, StepError};

pub use ferry_core::tags::HOST as HOST_TAG;
/// Tag that ties an instance to the run that launched it.
pub use ferry_core::tags::RUN_ID as RUN_TAG;

pub async fn handle(ec2: &Client, req: InstanceRequest) -> Result<InstanceState, StepError> {
    match req {
        InstanceRequest::Launch(spec) => launch(ec2, &spec).await,
        InstanceRequest::Describe { instance_id } => describe(ec2, &instance_id).await,
        InstanceRequest::Terminate { instance_id } => terminate(ec2, &instance_id).await,
        InstanceRequest::TerminateRun { run_id } => terminate_run(ec2, &run_id).await,
    }
}

/// The run's instance if an earlier try launched it (anything not terminated).
async fn find_launched(ec2: &Client, run_id: &str) -> Result<Option<Instance>, StepError> {
    let out = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{RUN_TAG}"))
                .values(run_id)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("DescribeInstances", &format!("run {run_id}"), e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

async fn launch(ec2: &Client, spec: &LaunchSpec) -> Result<InstanceState, StepError> {
    if spec.run_id.is_empty() || spec.image_id.is_empty() || spec.subnet_id.is_empty() {
        return Err(StepError::NonRetryable(
            "launch needs run_id, image_id and subnet_id".into(),
        ));
    }
    if let Some(found) = find_launched(ec2, &spec.run_id).await? {
        tracing::info!(run = %spec.run_id, "instance already launched by an earlier try");
        return Ok(state_of(&found, None, false));
    }
    // EC2 itself judges the type (new types appear before SDKs know them).
    let itype = InstanceType::from(spec.instance_type.as_str());
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value(&spec.host).build())
        .tags(Tag::builder().key(RUN_TAG).value(&spec.run_id).build())
        .tags(Tag::builder().key(HOST_TAG).value(&spec.host).build())
        .build();
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
        .client_token(&spec.run_id)
        .tag_specifications(tags)
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
    tracing::info!(run = %spec.run_id, instance = ?inst.instance_id(), "launched");
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

/// Terminates whatever instance the run launched, if any: the clean-up of a launch step
/// that failed after RunInstances may have succeeded (a timeout, a lost reply).
async fn terminate_run(ec2: &Client, run_id: &str) -> Result<InstanceState, StepError> {
    match find_launched(ec2, run_id).await? {
        Some(i) => terminate(ec2, i.instance_id().unwrap_or_default()).await,
        None => Ok(just_state("", "none".into())),
    }
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
