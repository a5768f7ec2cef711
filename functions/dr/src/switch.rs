//! `switch_traffic`: from the origin to the recovery instances. Target groups first
//! (the recovery instances registered beside the origin's targets), then the Route 53
//! records (the moment traffic moves, and where the RTO ends), then the origin's
//! targets deregistered. Every call is idempotent, so a retried step does no harm.

use std::collections::BTreeMap;

use ferry_core::group::GroupRecord;
use ferry_core::steps::failover::{rfc3339, RunRef, Switched, SwitchedRecord, SwitchedTargets};
use ferry_fn::StepError;
use ferry_fn_launch::handler::{run_instances, tag};
use time::OffsetDateTime;

use crate::check::refresh;
use crate::{records, Dr};

/// A recovery instance: its id and private address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub instance_id: String,
    pub private_ip: Option<String>,
}

/// The addresses a record points at: the fixed ones, then the named hosts' recovery
/// addresses (a host named but not recovered is an error: half a switch is worse).
pub fn addresses(
    fixed: &[String],
    hosts: &[String],
    recovered: &BTreeMap<String, Recovered>,
) -> Result<Vec<String>, String> {
    let mut out = fixed.to_vec();
    for h in hosts {
        let ip = recovered
            .get(h)
            .and_then(|r| r.private_ip.clone())
            .ok_or_else(|| format!("host {h} has no recovery instance with an address"))?;
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// One record set UPSERTed to `values`: what the run reports of it.
async fn upsert(
    dr: &Dr,
    r: &ferry_core::group::DnsSwitch,
    values: Vec<String>,
    comment: &str,
) -> Result<SwitchedRecord, StepError> {
    ferry_aws::route53::upsert(
        &dr.route53,
        &r.zone_id,
        &r.name,
        &r.record_type,
        r.ttl,
        &values,
        comment,
    )
    .await?;
    Ok(SwitchedRecord {
        name: r.name.clone(),
        addresses: values,
    })
}

async fn recovered(dr: &Dr, run_id: &str) -> Result<BTreeMap<String, Recovered>, StepError> {
    let running = run_instances(&dr.ec2, run_id, None, &["running"]).await?;
    Ok(running
        .iter()
        .filter_map(|i| {
            let host = tag(i, ferry_core::tags::HOST)?.to_string();
            Some((
                host,
                Recovered {
                    instance_id: i.instance_id()?.to_string(),
                    private_ip: i.private_ip_address().map(str::to_string),
                },
            ))
        })
        .collect())
}

pub async fn switch_traffic(dr: &Dr, req: RunRef) -> Result<Switched, StepError> {
    refresh(dr, &req.group, &req.run_id, req.mode, None).await?;
    let group: GroupRecord = records::group(dr, &req.group).await?;
    let rec = recovered(dr, &req.run_id).await?;
    let bad = |e: String| StepError::NonRetryable(format!("traffic switch of {}: {e}", req.group));
    let mut target_groups = Vec::new();
    for tg in &group.traffic.target_groups {
        let kind = ferry_aws::elbv2::target_type(&dr.elbv2, &tg.arn).await?;
        let ids: Vec<String> = match kind.as_str() {
            "ip" => addresses(&[], &tg.recovery_hosts, &rec).map_err(bad)?,
            _ => tg
                .recovery_hosts
                .iter()
                .map(|h| {
                    rec.get(h)
                        .map(|r| r.instance_id.clone())
                        .ok_or_else(|| bad(format!("host {h} has no recovery instance")))
                })
                .collect::<Result<_, _>>()?,
        };
        ferry_aws::elbv2::register(&dr.elbv2, &tg.arn, &ids, tg.port).await?;
        target_groups.push(SwitchedTargets {
            arn: tg.arn.clone(),
            registered: ids,
            deregistered: Vec::new(),
        });
    }
    let mut dns = Vec::new();
    for r in &group.traffic.dns {
        let values = addresses(&r.recovery, &r.recovery_hosts, &rec).map_err(bad)?;
        dns.push(upsert(dr, r, values, &format!("Ferry {}", req.run_id)).await?);
    }
    let switched_at = OffsetDateTime::now_utc();
    for (tg, done) in group
        .traffic
        .target_groups
        .iter()
        .zip(target_groups.iter_mut())
    {
        ferry_aws::elbv2::deregister(&dr.elbv2, &tg.arn, &tg.origin, tg.port).await?;
        done.deregistered = tg.origin.clone();
    }
    tracing::info!(group = %req.group, run = %req.run_id, records = dns.len(), target_groups = target_groups.len(), "traffic switched");
    Ok(Switched {
        switched_at: rfc3339(switched_at),
        dns,
        target_groups,
    })
}

/// `switch_home`: the traffic back from the recovery instances to the origin. The
/// origin's targets registered first, then the Route 53 records (the moment traffic
/// moves), then the recovery instances deregistered. Idempotent like the switch out.
pub async fn switch_home(
    dr: &Dr,
    req: ferry_core::steps::failback::FailbackRef,
) -> Result<Switched, StepError> {
    let group: GroupRecord = records::group(dr, &req.group).await?;
    let run: ferry_core::steps::failback::FailbackRecord = dr
        .table
        .get(&ferry_core::keys::group_run(&req.group, &req.run_id))
        .await
        .map_err(records::table_error)?
        .ok_or_else(|| StepError::NonRetryable(format!("run {} has no run item", req.run_id)))?;
    let home = |h: &String| run.hosts.iter().find(|x| &x.host == h);
    let mut target_groups = Vec::new();
    for tg in &group.traffic.target_groups {
        ferry_aws::elbv2::register(&dr.elbv2, &tg.arn, &tg.origin, tg.port).await?;
        target_groups.push(SwitchedTargets {
            arn: tg.arn.clone(),
            registered: tg.origin.clone(),
            deregistered: Vec::new(),
        });
    }
    let mut dns = Vec::new();
    for r in &group.traffic.dns {
        let comment = format!("Ferry {} (home)", req.run_id);
        dns.push(upsert(dr, r, r.origin.clone(), &comment).await?);
    }
    let switched_at = OffsetDateTime::now_utc();
    for (tg, done) in group
        .traffic
        .target_groups
        .iter()
        .zip(target_groups.iter_mut())
    {
        let kind = ferry_aws::elbv2::target_type(&dr.elbv2, &tg.arn).await?;
        let ids: Vec<String> = tg
            .recovery_hosts
            .iter()
            .filter_map(home)
            .map(|h| match kind.as_str() {
                "ip" => h.recovery_ip.clone(),
                _ => h.instance_id.clone(),
            })
            .collect();
        ferry_aws::elbv2::deregister(&dr.elbv2, &tg.arn, &ids, tg.port).await?;
        done.deregistered = ids;
    }
    tracing::info!(group = %req.group, run = %req.run_id, "traffic switched home");
    Ok(Switched {
        switched_at: rfc3339(switched_at),
        dns,
        target_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_point_at_fixed_addresses_then_the_hosts_recovery_addresses() {
        let rec: BTreeMap<String, Recovered> = [
            (
                "web1".to_string(),
                Recovered {
                    instance_id: "i-1".into(),
                    private_ip: Some("10.0.1.10".into()),
                },
            ),
            (
                "web2".to_string(),
                Recovered {
                    instance_id: "i-2".into(),
                    private_ip: Some("10.0.1.11".into()),
                },
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            addresses(
                &["198.51.100.7".into()],
                &["web1".into(), "web2".into()],
                &rec
            )
            .unwrap(),
            vec!["198.51.100.7", "10.0.1.10", "10.0.1.11"]
        );
        let e = addresses(&[], &["web3".into()], &rec).unwrap_err();
        assert!(e.contains("web3"), "{e}");
    }
}
