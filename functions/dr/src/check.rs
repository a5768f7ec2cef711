//! `check_tier`: is a launched tier up? Every host's instance running with both status
//! checks passed, and for a tier that asks for it, every health check answering at the
//! instance's private address. Each check also refreshes the run's lock: a drill that a
//! failover preempted, or that ran past its time limit, stops here.

use std::time::Duration;

use aws_sdk_ec2::types::Instance;
use ferry_core::group::Readiness;
use ferry_core::keys::locks;
use ferry_core::steps::errors;
use ferry_core::steps::failover::{
    parse_rfc3339, rfc3339, CheckTierRequest, HostCheck, Mode, TierCheck,
};
use ferry_fn::{sdk_error, StepError};
use ferry_fn_launch::handler::{run_instances, ANY_STATE};
use time::OffsetDateTime;

use crate::begin::{lock_error, FAILING_OVER};
use crate::Dr;

/// How long one health check may take from inside the VPC.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Refreshes the run's lock (a failover's stays FAILING_OVER); a drill also checks its
/// time limit.
pub async fn refresh(
    dr: &Dr,
    group: &str,
    run_id: &str,
    mode: Mode,
    deadline: Option<&str>,
) -> Result<(), StepError> {
    match mode {
        Mode::Failover => dr
            .lock(group, locks::FAILOVER, run_id)
            .take_in(Some(FAILING_OVER))
            .await
            .map_err(|e| lock_error(group, e)),
        Mode::Drill => {
            dr.lock(group, locks::DRILL, run_id)
                .take()
                .await
                .map_err(|e| lock_error(group, e))?;
            if let Some(d) = deadline.and_then(parse_rfc3339) {
                if OffsetDateTime::now_utc() > d {
                    return Err(StepError::named(
                        errors::DRILL_TIME_LIMIT,
                        format!("the drill of group {group} ran past its time limit ({}): it stops and removes what it launched", rfc3339(d)),
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Both status checks of each instance, "ok" when both passed, else the worse.
async fn status_checks(dr: &Dr, ids: &[String]) -> Result<Vec<(String, String)>, StepError> {
    let mut all = Vec::new();
    // DescribeInstanceStatus takes at most 100 ids.
    for part in ids.chunks(100) {
        let out = dr
            .ec2
            .describe_instance_status()
            .set_instance_ids(Some(part.to_vec()))
            .include_all_instances(true)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeInstanceStatus", &part.join(", "), e))?;
        all.extend(out.instance_statuses().to_vec());
    }
    Ok(all
        .iter()
        .map(|s| {
            let sys = s
                .system_status()
                .and_then(|x| x.status())
                .map(|x| x.as_str());
            let ins = s
                .instance_status()
                .and_then(|x| x.status())
                .map(|x| x.as_str());
            let v = match (sys, ins) {
                (Some("ok"), Some("ok")) => "ok",
                (Some("ok"), Some(other)) | (Some(other), _) => other,
                _ => "unknown",
            };
            (
                s.instance_id().unwrap_or_default().to_string(),
                v.to_string(),
            )
        })
        .collect())
}

fn state(i: &Instance) -> String {
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_else(|| "pending".into())
}

pub async fn check_tier(dr: &Dr, req: CheckTierRequest) -> Result<TierCheck, StepError> {
    refresh(
        dr,
        &req.group,
        &req.run_id,
        req.mode,
        req.deadline.as_deref(),
    )
    .await?;
    let mut found = Vec::new();
    for h in &req.tier.hosts {
        let mut instances = run_instances(&dr.ec2, &req.run_id, Some(&h.host), &ANY_STATE).await?;
        // A terminated instance from an earlier attempt is not the one to wait for.
        instances.sort_by_key(|i| state(i) == "terminated");
        found.push((h.host.clone(), instances.into_iter().next()));
    }
    let ids: Vec<String> = found
        .iter()
        .filter_map(|(_, i)| i.as_ref()?.instance_id().map(str::to_string))
        .collect();
    let checks = status_checks(dr, &ids).await?;
    // The health checks are the group's record, read once for the tier.
    let group = match req.tier.ready {
        Readiness::Health => Some(crate::records::group(dr, &req.group).await?),
        Readiness::StatusChecks => None,
    };
    let mut hosts = Vec::new();
    let mut waiting = Vec::new();
    // Hosts whose health checks to probe (all at once, after the loop).
    let mut probes = Vec::new();
    for (host, inst) in &found {
        let Some(i) = inst else {
            waiting.push(format!("{host}: not launched"));
            hosts.push(HostCheck {
                host: host.clone(),
                instance_id: None,
                state: "not-launched".into(),
                status_checks: None,
                private_ip: None,
                healthy: None,
            });
            continue;
        };
        let id = i.instance_id().unwrap_or_default().to_string();
        let st = state(i);
        if matches!(
            st.as_str(),
            "stopping" | "stopped" | "shutting-down" | "terminated"
        ) {
            return Err(StepError::named(
                errors::TARGET_DID_NOT_START,
                format!("{host}: instance {id} is {st}"),
            ));
        }
        let sc = checks
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, s)| s.clone());
        let ip = i.private_ip_address().map(str::to_string);
        if st != "running" {
            waiting.push(format!("{host}: {st}"));
        } else if sc.as_deref() != Some("ok") {
            waiting.push(format!(
                "{host}: status checks {}",
                sc.as_deref().unwrap_or("unknown")
            ));
        } else if let Some(g) = &group {
            let checks = g.host(host).map(|h| h.health.clone()).unwrap_or_default();
            probes.push((hosts.len(), checks, ip.clone().unwrap_or_default()));
        }
        hosts.push(HostCheck {
            host: host.clone(),
            instance_id: Some(id),
            state: st,
            status_checks: sc,
            private_ip: ip,
            healthy: None,
        });
    }
    let probed = futures::future::join_all(
        probes
            .iter()
            .map(|(_, checks, addr)| ferry_probe::probe_all(checks, addr, PROBE_TIMEOUT)),
    )
    .await;
    for ((i, _, _), results) in probes.iter().zip(probed) {
        let failed: Vec<String> = results
            .into_iter()
            .filter_map(|p| p.result.err().map(|e| e.to_string()))
            .collect();
        hosts[*i].healthy = Some(failed.is_empty());
        let host = &hosts[*i].host;
        waiting.extend(failed.into_iter().map(|f| format!("{host}: {f}")));
    }
    let ready = waiting.is_empty();
    tracing::info!(group = %req.group, run = %req.run_id, tier = %req.tier.tier, ready, waiting = ?waiting, "tier checked");
    Ok(TierCheck {
        tier: req.tier.tier.clone(),
        ready,
        waiting_for: (!ready).then(|| waiting.join("; ")),
        checked_at: rfc3339(OffsetDateTime::now_utc()),
        hosts,
    })
}
