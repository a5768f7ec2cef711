//! The AWS-side probe, run every minute by the template's schedule: each protected
//! group's origin endpoint, probed from AWS, published as `OriginReachableFromAws`
//! (one of the failover alarm's two views), and its last success recorded where a
//! failover reads the failure time from.

use std::time::{Duration, SystemTime};

use ferry_aws::cloudwatch::{put_metrics, Datum};
use ferry_core::alarms::{dimensions, metrics, NAMESPACE};
use ferry_core::keys::{self, kinds};
use ferry_core::steps::failover::rfc3339;
use ferry_fn::StepError;
use futures::future::join_all;
use serde::Serialize;
use time::OffsetDateTime;

use crate::records::{self, table_error};
use crate::Dr;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRound {
    pub groups: Vec<GroupProbed>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupProbed {
    pub group: String,
    pub target: String,
    pub reachable: bool,
    pub error: Option<String>,
}

pub async fn probe(dr: &Dr) -> Result<ProbeRound, StepError> {
    let entries = records::group_entries(dr).await?;
    let probed = join_all(entries.iter().filter_map(|e| {
        let p = e.probe.clone()?;
        Some(async move {
            let r = ferry_probe::probe(&p.check, &p.address, TIMEOUT).await;
            GroupProbed {
                group: e.group.clone(),
                target: r.target,
                reachable: r.result.is_ok(),
                error: r.result.err().map(|e| e.to_string()),
            }
        })
    }))
    .await;
    let data: Vec<Datum> = probed
        .iter()
        .map(|g| Datum {
            metric: metrics::ORIGIN_REACHABLE_FROM_AWS.to_string(),
            dimensions: vec![(dimensions::GROUP.to_string(), g.group.clone())],
            value: if g.reachable { 1.0 } else { 0.0 },
            unit: None,
        })
        .collect();
    put_metrics(&dr.cloudwatch, NAMESPACE, &data, SystemTime::now()).await?;
    let now = rfc3339(OffsetDateTime::now_utc());
    for g in &probed {
        let mut fields = serde_json::Map::new();
        fields.insert("aws_reachable".into(), g.reachable.into());
        if g.reachable {
            fields.insert("aws_last_reachable".into(), now.clone().into());
        }
        dr.table
            .set(&keys::group_origin(&g.group), kinds::ORIGIN, &fields)
            .await
            .map_err(table_error)?;
        match &g.error {
            None => {
                tracing::info!(group = %g.group, target = %g.target, "origin reachable from AWS")
            }
            Some(e) => {
                tracing::warn!(group = %g.group, target = %g.target, "origin not reachable from AWS: {e}")
            }
        }
    }
    Ok(ProbeRound { groups: probed })
}
