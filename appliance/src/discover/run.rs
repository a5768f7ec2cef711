//! A whole discovery: visit the targets in parallel, then map dependencies, guess tiers,
//! size each host against what EC2 offers, and propose waves.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::collect::{collect, Window};
use super::deps::{edges, Edge};
use super::model::{Finding, HostReport, Severity};
use super::plan::{guess_tier, waves, Wave};
use super::sizing::{price_list, recommend, TypeInfo};
use super::targets::{answers, Target};

/// Hosts visited at once.
const PARALLEL: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    /// RFC 3339.
    pub generated: String,
    pub window_s: f64,
    pub interval_s: f64,
    pub hosts: Vec<HostReport>,
    pub edges: Vec<Edge>,
    pub waves: Vec<Wave>,
    /// Where the prices behind the sizing come from, and their date.
    pub prices: String,
}

/// Every current instance type the account offers (DescribeInstanceTypes).
pub async fn instance_types(ec2: &aws_sdk_ec2::Client) -> Result<Vec<TypeInfo>> {
    let mut out = Vec::new();
    let mut pages = ec2.describe_instance_types().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| anyhow!("{}", aws_sdk_ec2::error::DisplayErrorContext(e)))
            .context("DescribeInstanceTypes")?;
        for t in page.instance_types() {
            let (Some(name), Some(vcpus), Some(mib)) = (
                t.instance_type().map(|n| n.as_str().to_string()),
                t.v_cpu_info().and_then(|v| v.default_v_cpus()),
                t.memory_info().and_then(|m| m.size_in_mib()),
            ) else {
                continue;
            };
            out.push(TypeInfo {
                name,
                vcpus: vcpus.max(0) as u32,
                memory_bytes: (mib.max(0) as u64) << 20,
                architectures: t
                    .processor_info()
                    .map(|p| {
                        p.supported_architectures()
                            .iter()
                            .map(|a| a.as_str().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                current_generation: t.current_generation().unwrap_or(false),
            });
        }
    }
    Ok(out)
}

/// Visits every target; a range address where nothing answers on the SSH port is not a
/// host and is left out.
pub async fn visit(targets: Vec<Target>, w: Window) -> Vec<HostReport> {
    let found: Vec<Option<HostReport>> = stream::iter(targets)
        .map(|t| async move {
            if t.from_range && !answers(&t).await {
                return None;
            }
            Some(collect(&t, w).await)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut hosts: Vec<HostReport> = found.into_iter().flatten().collect();
    // A range address takes the host's own name when that name is unique and not taken.
    let learned: Vec<Option<String>> = hosts
        .iter()
        .map(|h| h.inventory.as_ref().and_then(|i| i.hostname.clone()))
        .collect();
    let taken: Vec<String> = hosts.iter().map(|h| h.host.clone()).collect();
    for (h, n) in hosts.iter_mut().zip(&learned) {
        let Some(n) = n else { continue };
        let unique = learned.iter().filter(|x| x.as_ref() == Some(n)).count() == 1;
        if unique && h.address.as_deref() == Some(h.host.as_str()) && !taken.contains(n) {
            h.host = n.clone();
        }
    }
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    hosts
}

/// Dependencies, tiers, sizing and waves over the visited hosts. `types` is `Err` when
/// EC2 could not be asked; every host then says why it has no sizing.
pub fn analyse(
    mut hosts: Vec<HostReport>,
    types: Result<Vec<TypeInfo>>,
    w: Window,
) -> Result<Discovery> {
    let prices = price_list().context("the shipped price list does not parse")?;
    let e = edges(&hosts);
    let tiers: Vec<Option<&'static str>> =
        hosts.iter().map(|h| guess_tier(h, &hosts, &e)).collect();
    for (h, t) in hosts.iter_mut().zip(&tiers) {
        h.tier = t.map(str::to_string);
        if !h.reachable {
            continue;
        }
        if super::sizing::needs(h).is_none() {
            h.findings.push(Finding::new(
                Severity::Warning,
                "sizing",
                "no sizing: the host's CPUs or memory could not be read",
            ));
            continue;
        }
        match &types {
            Ok(types) => {
                h.sizing = recommend(h, types, &prices);
                if h.sizing.is_none() {
                    h.findings.push(Finding::new(
                        Severity::Warning,
                        "sizing",
                        "no current-generation type with a known price fits this host",
                    ));
                }
            }
            Err(err) => h.findings.push(Finding::new(
                Severity::Info,
                "sizing",
                format!("no sizing: {err:#}"),
            )),
        }
    }
    let tier_map: BTreeMap<String, String> = hosts
        .iter()
        .filter_map(|h| Some((h.host.clone(), h.tier.clone()?)))
        .collect();
    let names: Vec<String> = hosts
        .iter()
        .filter(|h| h.reachable)
        .map(|h| h.host.clone())
        .collect();
    let waves = waves(&names, &tier_map, &e);
    Ok(Discovery {
        generated: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        window_s: w.length.as_secs_f64(),
        interval_s: w.interval.as_secs_f64(),
        hosts,
        edges: e,
        waves,
        prices: format!("{} ({})", prices.source, prices.data_date),
    })
}

/// Asks EC2 for its instance types, within a time limit (discovery must not hang on a
/// machine without AWS access).
pub async fn types_or_reason(ec2: &aws_sdk_ec2::Client) -> Result<Vec<TypeInfo>> {
    tokio::time::timeout(Duration::from_secs(30), instance_types(ec2))
        .await
        .map_err(|_| anyhow!("DescribeInstanceTypes did not answer within 30 s"))?
}
