//! A whole discovery, orchestrated: visit the targets in parallel, then map
//! dependencies, guess tiers, size each host against the instance types at hand (what
//! EC2 offers, or the shipped catalog), and propose waves.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use futures::{stream, StreamExt};

use super::collect::{collect, Window};
use super::deps::edges;
use super::discovery::Discovery;
use super::model::{Finding, HostReport, Severity};
use super::plan::{guess_tier, waves};
use super::sizing::{catalog, price_list, recommend, TypeInfo};
use super::targets::{answers, Target};

/// Hosts visited at once.
const PARALLEL: usize = 16;

/// The instance types sizing chooses from, and where they come from.
pub struct TypeSource {
    pub types: Vec<TypeInfo>,
    /// `DescribeInstanceTypes (live)` or the shipped catalog with its date.
    pub from: String,
    /// Why the catalog stands in for a configured AWS account (one line), if it does.
    pub fallback_reason: Option<String>,
}

impl TypeSource {
    /// The shipped catalog, standing in for the live API when `reason` says why.
    pub fn catalog(reason: Option<String>) -> Result<Self> {
        let (types, from) =
            catalog().context("the shipped instance type catalog does not parse")?;
        Ok(TypeSource {
            types,
            from,
            fallback_reason: reason,
        })
    }
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

/// Dependencies, tiers, sizing and waves over the visited hosts. When the catalog
/// stands in for a configured account, every sized host says so and why.
pub fn analyse(mut hosts: Vec<HostReport>, types: TypeSource, w: Window) -> Result<Discovery> {
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
        h.sizing = recommend(h, &types.types, &prices);
        if h.sizing.is_none() {
            h.findings.push(Finding::new(
                Severity::Warning,
                "sizing",
                "no current-generation type with a known price fits this host",
            ));
        }
        if let Some(why) = &types.fallback_reason {
            h.findings.push(Finding::new(
                Severity::Info,
                "sizing",
                format!("sized from the shipped catalog: {why}"),
            ));
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
        instance_types: types.from,
    })
}
