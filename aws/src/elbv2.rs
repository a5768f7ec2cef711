//! ELBv2 target groups as a failover and a burst use them: register instances (by
//! instance id or address, as the group's target type wants), deregister targets, read
//! what a group holds and how healthy, its type and deregistration delay.

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use aws_sdk_elasticloadbalancingv2::Client;

use crate::CallError;

/// The target group's type (`instance`, `ip`, `lambda` or `alb`); `None` when it does
/// not exist.
async fn kind_of(client: &Client, arn: &str) -> Result<Option<String>, CallError> {
    let out = match client
        .describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let err = CallError::new("DescribeTargetGroups", arn, &e);
            if err.failure.is_not_found() {
                return Ok(None);
            }
            return Err(err);
        }
    };
    Ok(out.target_groups().first().map(|t| {
        t.target_type()
            .map(|k| k.as_str().to_string())
            .unwrap_or_else(|| "instance".into())
    }))
}

/// `instance`, `ip`, `lambda` or `alb` (`instance` for a group AWS does not know: the
/// registration that follows says so).
pub async fn target_type(client: &Client, arn: &str) -> Result<String, CallError> {
    Ok(kind_of(client, arn)
        .await?
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
    Ok(health(client, arn)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect())
}

/// Every registered target with its health state (`healthy`, `initial`, `draining`,
/// ...).
pub async fn health(
    client: &Client,
    arn: &str,
) -> Result<Vec<ferry_core::burst::TargetHealth>, CallError> {
    let out = client
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| CallError::new("DescribeTargetHealth", arn, &e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            Some(ferry_core::burst::TargetHealth {
                id: d.target()?.id()?.to_string(),
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// A target group's type and deregistration delay; `None` when it does not exist.
pub async fn describe(client: &Client, arn: &str) -> Result<Option<(String, u32)>, CallError> {
    let Some(kind) = kind_of(client, arn).await? else {
        return Ok(None);
    };
    let attrs = client
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| CallError::new("DescribeTargetGroupAttributes", arn, &e))?;
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value())
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    Ok(Some((kind, delay)))
}
