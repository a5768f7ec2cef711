//! Auto Scaling as a burst uses it: the tier's group (created and kept in step with the
//! config), its capacity and instances, the processes a scale-in suspends, and the
//! target-tracking policy, as plain data.

use aws_sdk_autoscaling::types::{
    LaunchTemplateSpecification, PredefinedMetricSpecification, Tag, TargetTrackingConfiguration,
};
use aws_sdk_autoscaling::Client;
use ferry_core::burst::GroupInstance;

use crate::CallError;

/// An Auto Scaling group as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// Instance ids, lifecycle and health (no addresses or images: see `ec2`).
    pub instances: Vec<GroupInstance>,
    pub target_groups: Vec<String>,
    pub subnets: Vec<String>,
    pub launch_template: Option<(String, String)>,
    pub suspended: Vec<String>,
    pub cooldown_s: u32,
}

/// What a tier wants its group to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub launch_template: String,
    pub min: u32,
    pub max: u32,
    pub subnets: Vec<String>,
    /// Attached only for `instance` target groups (the group registers its instances);
    /// IP target groups are Ferry's to register.
    pub target_groups: Vec<String>,
    pub cooldown_s: u32,
    pub tags: Vec<(String, String)>,
}

fn n(v: Option<i32>) -> u32 {
    v.unwrap_or(0).max(0) as u32
}

pub async fn group(client: &Client, name: &str) -> Result<Option<Group>, CallError> {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| CallError::new("DescribeAutoScalingGroups", name, &e))?;
    Ok(out.auto_scaling_groups().first().map(|g| Group {
        name: g.auto_scaling_group_name().unwrap_or(name).to_string(),
        min: n(g.min_size()),
        max: n(g.max_size()),
        desired: n(g.desired_capacity()),
        instances: g
            .instances()
            .iter()
            .map(|i| GroupInstance {
                instance_id: i.instance_id().unwrap_or_default().to_string(),
                lifecycle: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                health: i.health_status().unwrap_or_default().to_string(),
                private_ip: None,
                image_id: None,
            })
            .collect(),
        target_groups: g.target_group_arns().to_vec(),
        subnets: g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        launch_template: g.launch_template().map(|t| {
            (
                t.launch_template_name().unwrap_or_default().to_string(),
                t.version().unwrap_or_default().to_string(),
            )
        }),
        suspended: g
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name().map(str::to_string))
            .collect(),
        cooldown_s: n(g.default_cooldown()),
    }))
}

fn template(name: &str) -> LaunchTemplateSpecification {
    // `$Latest`: a new version (a newer image) is what the next launch uses.
    LaunchTemplateSpecification::builder()
        .launch_template_name(name)
        .version("$Latest")
        .build()
}

pub async fn create_group(client: &Client, spec: &GroupSpec) -> Result<(), CallError> {
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name(&spec.name)
        .launch_template(template(&spec.launch_template))
        .min_size(spec.min as i32)
        .max_size(spec.max as i32)
        .desired_capacity(spec.min as i32)
        .vpc_zone_identifier(spec.subnets.join(","))
        .set_target_group_arns(Some(spec.target_groups.clone()))
        .default_cooldown(spec.cooldown_s as i32)
        .set_tags(Some(
            spec.tags
                .iter()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .resource_id(&spec.name)
                        .resource_type("auto-scaling-group")
                        .propagate_at_launch(true)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| CallError::new("CreateAutoScalingGroup", &spec.name, &e))?;
    Ok(())
}

/// Sizes, subnets, template and cooldown as the spec says (capacity untouched unless
/// it is outside the new bounds, which Auto Scaling then moves it into).
pub async fn update_group(client: &Client, spec: &GroupSpec) -> Result<(), CallError> {
    client
        .update_auto_scaling_group()
        .auto_scaling_group_name(&spec.name)
        .launch_template(template(&spec.launch_template))
        .min_size(spec.min as i32)
        .max_size(spec.max as i32)
        .vpc_zone_identifier(spec.subnets.join(","))
        .default_cooldown(spec.cooldown_s as i32)
        .send()
        .await
        .map_err(|e| CallError::new("UpdateAutoScalingGroup", &spec.name, &e))?;
    Ok(())
}

pub async fn attach_target_groups(
    client: &Client,
    name: &str,
    arns: &[String],
) -> Result<(), CallError> {
    if arns.is_empty() {
        return Ok(());
    }
    client
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name(name)
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| CallError::new("AttachLoadBalancerTargetGroups", name, &e))?;
    Ok(())
}

pub async fn set_desired(client: &Client, name: &str, desired: u32) -> Result<(), CallError> {
    client
        .set_desired_capacity()
        .auto_scaling_group_name(name)
        .desired_capacity(desired as i32)
        .honor_cooldown(false)
        .send()
        .await
        .map_err(|e| CallError::new("SetDesiredCapacity", format!("{name} to {desired}"), &e))?;
    Ok(())
}

/// Terminates one instance of the group and lowers its desired capacity by one, so
/// that it is not replaced.
pub async fn terminate(client: &Client, instance_id: &str) -> Result<(), CallError> {
    client
        .terminate_instance_in_auto_scaling_group()
        .instance_id(instance_id)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .map_err(|e| CallError::new("TerminateInstanceInAutoScalingGroup", instance_id, &e))?;
    Ok(())
}

/// The process that carries out scaling policies' alarms: suspended while a scale-in
/// drains, so that target tracking does not launch into a tier being emptied.
pub const ALARM_NOTIFICATION: &str = "AlarmNotification";

pub async fn suspend(client: &Client, name: &str, process: &str) -> Result<(), CallError> {
    client
        .suspend_processes()
        .auto_scaling_group_name(name)
        .scaling_processes(process)
        .send()
        .await
        .map_err(|e| CallError::new("SuspendProcesses", format!("{process} of {name}"), &e))?;
    Ok(())
}

pub async fn resume(client: &Client, name: &str, process: &str) -> Result<(), CallError> {
    client
        .resume_processes()
        .auto_scaling_group_name(name)
        .scaling_processes(process)
        .send()
        .await
        .map_err(|e| CallError::new("ResumeProcesses", format!("{process} of {name}"), &e))?;
    Ok(())
}

/// A target-tracking policy as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub arn: Option<String>,
    pub target: Option<f64>,
    pub disable_scale_in: bool,
}

pub async fn policies(client: &Client, group: &str) -> Result<Vec<Policy>, CallError> {
    let out = client
        .describe_policies()
        .auto_scaling_group_name(group)
        .send()
        .await
        .map_err(|e| CallError::new("DescribePolicies", group, &e))?;
    Ok(out
        .scaling_policies()
        .iter()
        .map(|p| Policy {
            name: p.policy_name().unwrap_or_default().to_string(),
            arn: p.policy_arn().map(str::to_string),
            target: p
                .target_tracking_configuration()
                .and_then(|t| t.target_value()),
            disable_scale_in: p
                .target_tracking_configuration()
                .and_then(|t| t.disable_scale_in())
                .unwrap_or(false),
        })
        .collect())
}

/// Average CPU of the group's instances at `target` %, scaling out only: scaling in is
/// the scale-in run's (it drains first), so the two never pull the group apart.
pub async fn put_target_tracking(
    client: &Client,
    group: &str,
    name: &str,
    target: f64,
) -> Result<Option<String>, CallError> {
    let out = client
        .put_scaling_policy()
        .auto_scaling_group_name(group)
        .policy_name(name)
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(
            TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type("ASGAverageCPUUtilization".into())
                        .build(),
                )
                .target_value(target)
                .disable_scale_in(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| CallError::new("PutScalingPolicy", format!("{name} of {group}"), &e))?;
    Ok(out.policy_arn().map(str::to_string))
}
