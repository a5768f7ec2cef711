//! ELBv2 target groups as a failover uses them: register the recovery instances
//! (by instance id or address, as the group's target type wants), deregister the
//! origin's address targets.

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use aws_sdk_elasticloadbalancingv2::Client;

use crate::CallError;

/// `instance`, `ip`, `lambda` or `alb`.
pub async fn target_type(client: &Client, arn: &str) -> Result<String, CallError> {
    let out = client
        .describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await
        .map_err(|e| CallError::new("DescribeTargetGroups", arn, &e))?;
    Ok(out
        .target_groups()
        .first()
        .and_then(|t| t.target_type())
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "instance".into()))
}

fn targets(ids: &[String], port: Option<u16>) -> Vec<TargetDescription> {
    ids.iter()
        .map(|id| {
            TargetDescription::builder()
                .id(id)
                .set_port(port.map(i32::from))
                .build()
        })
        .collect()
}

pub async fn register(
    client: &Client,
    arn: &str,
    ids: &[String],
    port: Option<u16>,
) -> Result<(), CallError> {
    if ids.is_empty() {
        return Ok(());
    }
    client
        .register_targets()
        .target_group_arn(arn)
        .set_targets(Some(targets(ids, port)))
        .send()
        .await
        .map_err(|e| {
            CallError::new(
                "RegisterTargets",
                format!("{} into {arn}", ids.join(", ")),
                &e,
            )
        })?;
    Ok(())
}

pub async fn deregister(
    client: &Client,
    arn: &str,
    ids: &[String],
    port: Option<u16>,
) -> Result<(), CallError> {
    if ids.is_empty() {
        return Ok(());
    }
    client
        .deregister_targets()
        .target_group_arn(arn)
        .set_targets(Some(targets(ids, port)))
        .send()
        .await
        .map_err(|e| {
            CallError::new(
                "DeregisterTargets",
                format!("{} from {arn}", ids.join(", ")),
                &e,
            )
        })?;
    Ok(())
}

/// The targets a group holds (ids), whatever their health.
pub async fn registered(client: &Client, arn: &str) -> Result<Vec<String>, CallError> {
    let out = client
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| CallError::new("DescribeTargetHealth", arn, &e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
        .collect())
}
