//! `ferry discover [HOST...|--group G]`: inventory, dependency map, performance, sizing
//! and waves, learned over SSH with stock tools; stored beside the config (and in
//! DynamoDB when a table is configured).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::args::HostKeyArgs;
use crate::ctx::Ctx;
use crate::discover::collect::Window;
use crate::discover::discovery::Discovery;
use crate::discover::model::Severity;
use crate::discover::run::{analyse, visit, TypeSource};
use crate::discover::{propose, results, targets};
use crate::report::Report;

/// How long sizing waits for DescribeInstanceTypes before using the shipped catalog.
const TYPES_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hosts of the config (default: every host with `ssh`, and the [discovery] addresses).
    pub hosts: Vec<String>,
    /// Only the hosts of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Sample performance and connections over this window (e.g. 10m); 0: one look.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub sample: Duration,
    /// Time between samples.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Write proposed [[host]] entries for hosts not in the config to
    /// ferry.discovered.toml beside it.
    #[arg(long)]
    pub write_config: bool,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

#[derive(Debug, Serialize)]
pub struct DiscoverReport {
    #[serde(flatten)]
    pub discovery: Discovery,
    pub results: PathBuf,
    pub proposed_config: Option<PathBuf>,
}

/// The instance types to size from: DescribeInstanceTypes when AWS is configured on
/// this machine, else (or when that fails) the shipped catalog.
async fn instance_types(ctx: &Ctx) -> Result<TypeSource> {
    if !ferry_aws::settings::configured(&ctx.settings.aws) {
        return TypeSource::catalog(None);
    }
    let ec2 = &ctx.aws().await.ec2;
    match tokio::time::timeout(TYPES_TIMEOUT, ferry_aws::ec2::instance_types(ec2)).await {
        Ok(Ok(types)) => Ok(TypeSource {
            types,
            from: "DescribeInstanceTypes (live)".into(),
            fallback_reason: None,
        }),
        // One line in the finding, whatever the SDK's description holds.
        Ok(Err(e)) => TypeSource::catalog(Some(e.to_string().replace('\n', " "))),
        Err(_) => TypeSource::catalog(Some(format!(
            "DescribeInstanceTypes did not answer within {} s",
            TYPES_TIMEOUT.as_secs()
        ))),
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<DiscoverReport> {
    let s = &ctx.settings;
    let targets = targets::targets(
        &s.all_hosts()?,
        &s.discovery,
        &args.hosts,
        args.group.as_deref(),
        args.keys.accept_new_host_key,
    )?;
    let w = Window {
        length: args.sample,
        interval: args.interval,
    };
    if !ctx.json() {
        eprintln!(
            "discovering {} target(s), {} sample(s) each",
            targets.len(),
            w.samples()
        );
    }
    let hosts = visit(targets.clone(), w).await;
    let d = analyse(hosts, instance_types(ctx).await?, w)?;
    let path = ctx.discovery_results();
    results::write_file(&path, &d)?;
    if let Some(table) = &ctx.aws_table().await {
        results::write_records(table, &d).await?;
    }
    let proposed = if args.write_config {
        let known: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
        let p = ctx
            .config_path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("ferry.discovered.toml");
        std::fs::write(
            &p,
            propose::proposal(&d.hosts, &targets, &known, &d.generated),
        )
        .with_context(|| format!("writing {}", p.display()))?;
        Some(p)
    } else {
        None
    };
    Ok(DiscoverReport {
        discovery: d,
        results: path,
        proposed_config: proposed,
    })
}

impl Report for DiscoverReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let d = &self.discovery;
        writeln!(
            out,
            "{:<16} {:<16} {:<5} {:<28} {:>4} {:>9} {:<12} FINDINGS",
            "HOST", "ADDRESS", "TIER", "OS", "CPUS", "MEMORY", "EC2 TYPE"
        )?;
        for h in &d.hosts {
            let inv = h.inventory.as_ref();
            let count = |s: Severity| h.findings.iter().filter(|f| f.severity == s).count();
            writeln!(
                out,
                "{:<16} {:<16} {:<5} {:<28} {:>4} {:>9} {:<12} {} blocker, {} warning",
                h.host,
                h.address.as_deref().unwrap_or("-"),
                h.tier.as_deref().unwrap_or("-"),
                inv.and_then(|i| i.os.as_ref())
                    .map(|o| o.pretty_name.chars().take(28).collect::<String>())
                    .unwrap_or_else(|| if h.reachable {
                        "?".into()
                    } else {
                        "unreachable".into()
                    }),
                inv.and_then(|i| i.cpus)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                inv.and_then(|i| i.memory_bytes)
                    .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
                    .unwrap_or_else(|| "-".into()),
                h.sizing
                    .as_ref()
                    .map(|z| z.instance_type.as_str())
                    .unwrap_or("-"),
                count(Severity::Blocker),
                count(Severity::Warning),
            )?;
        }
        writeln!(out, "\ndependencies (client -> server:port, connections):")?;
        for e in &d.edges {
            writeln!(
                out,
                "  {} ({}) -> {}:{} ({}) x{}",
                e.client.label(),
                e.client_process.as_deref().unwrap_or("?"),
                e.server.label(),
                e.port,
                e.server_process.as_deref().unwrap_or("?"),
                e.connections
            )?;
        }
        writeln!(out, "\nwaves:")?;
        for w in &d.waves {
            writeln!(out, "  {}: {} ({})", w.number, w.hosts.join(", "), w.reason)?;
        }
        writeln!(out, "\nsizing from {}", d.instance_types)?;
        writeln!(out, "stored in {}", self.results.display())?;
        if let Some(p) = &self.proposed_config {
            writeln!(out, "proposed [[host]] entries: {}", p.display())?;
        }
        Ok(())
    }
}
