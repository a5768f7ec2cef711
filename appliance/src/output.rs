//! What commands print: one JSON document on stdout with `--json`, else a short human
//! summary on stdout. Errors and logs go to stderr.

use std::process::ExitCode;

use anyhow::Result;
use ferry_core::manifest::PointMeta;
use serde::Serialize;

use crate::capture::CaptureReport;
use crate::cloud::commands::RunReport;
use crate::cloud::sfn::ExecutionInfo;
use crate::discover::model::Severity;
use crate::discover::run::Discovery;
use crate::restore::{FileRestoreReport, HostRestoreReport};
use crate::verify::VerifyReport;
use ferry_store::repo::Repository;

pub struct Output {
    json: bool,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn print_json(v: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    pub fn store_init(&self, repo: &Repository, created: bool) -> Result<()> {
        if self.json {
            return print_json(&serde_json::json!({
                "store": repo.backend.describe(),
                "created": created,
                "config": repo.config,
            }));
        }
        let verb = if created {
            "created"
        } else {
            "already initialised:"
        };
        println!(
            "store {verb} {} (id {})",
            repo.backend.describe(),
            repo.config.store_id
        );
        Ok(())
    }

    /// One object for one host, an array for several; failures as `{host, error}`.
    pub fn captures(&self, results: Vec<(String, Result<CaptureReport>)>) -> Result<ExitCode> {
        let failed = results.iter().filter(|(_, r)| r.is_err()).count();
        if self.json {
            let docs: Vec<serde_json::Value> = results
                .iter()
                .map(|(host, r)| match r {
                    Ok(rep) => serde_json::to_value(rep).unwrap_or_default(),
                    Err(e) => serde_json::json!({"host": host, "error": format!("{e:#}")}),
                })
                .collect();
            if docs.len() == 1 {
                print_json(&docs[0])?;
            } else {
                print_json(&docs)?;
            }
        } else {
            for (host, r) in &results {
                match r {
                    Ok(c) => println!(
                        "{host}: point {} ({}) read {} in {:.1}s, new {} ({} of {} chunks), uploaded {}",
                        c.point,
                        c.consistency,
                        mib(c.stats.bytes_read),
                        c.stats.duration_s,
                        mib(c.stats.bytes_new),
                        c.stats.chunks_new,
                        c.stats.chunks,
                        mib(c.stats.bytes_uploaded)
                    ),
                    Err(e) => eprintln!("error: {e:#}"),
                }
                if let Ok(Some(arn)) = r.as_ref().map(|c| c.image_execution.as_ref()) {
                    println!("  image build started: {arn}");
                }
            }
        }
        Ok(if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    /// An image build or a migration; fails the command unless it succeeded (or, not
    /// waited for, is running).
    pub fn run(&self, r: &RunReport) -> Result<ExitCode> {
        let code = if r.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        if self.json {
            print_json(r)?;
            return Ok(code);
        }
        let took = r
            .duration_s
            .map(|d| format!(" in {d:.1}s"))
            .unwrap_or_default();
        println!("{} {}: {}{took}", r.name, r.host, r.status);
        match &r.summary {
            Some(s) => println!("  {s}"),
            None => {
                let chain: Vec<String> = [
                    Some(format!("point {}", r.point)),
                    r.snapshot_id.as_ref().map(|s| format!("snapshot {s}")),
                    r.image_id.as_ref().map(|s| format!("image {s}")),
                    r.instance_id.as_ref().map(|s| format!("instance {s}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                println!("  {}", chain.join(" -> "));
            }
        }
        if let (Some(e), c) = (&r.error, &r.cause) {
            println!("  failed: {e}: {}", c.as_deref().unwrap_or(""));
        }
        println!(
            "  history: aws stepfunctions get-execution-history --execution-arn {}",
            r.execution_arn
        );
        Ok(code)
    }

    pub fn runs(&self, runs: &[ExecutionInfo]) -> Result<()> {
        if self.json {
            return print_json(&runs);
        }
        if runs.is_empty() {
            println!("no runs");
            return Ok(());
        }
        println!(
            "{:<48} {:<10} {:<26} {:>9}",
            "RUN", "STATUS", "STARTED", "DURATION"
        );
        for r in runs {
            println!(
                "{:<48} {:<10} {:<26} {:>9}",
                r.name,
                r.status,
                r.started
                    .as_deref()
                    .map(|t| format!("{}Z", t.get(..19).unwrap_or(t)))
                    .unwrap_or_else(|| "-".into()),
                r.duration_s
                    .map(|d| format!("{d:.1}s"))
                    .unwrap_or_else(|| "-".into())
            );
        }
        Ok(())
    }

    pub fn discovery(
        &self,
        d: &Discovery,
        stored: &std::path::Path,
        proposed: Option<&std::path::Path>,
    ) -> Result<()> {
        if self.json {
            let mut v = serde_json::to_value(d)?;
            v["results"] = serde_json::json!(stored);
            v["proposed_config"] = serde_json::json!(proposed);
            return print_json(&v);
        }
        println!(
            "{:<16} {:<16} {:<5} {:<28} {:>4} {:>9} {:<12} FINDINGS",
            "HOST", "ADDRESS", "TIER", "OS", "CPUS", "MEMORY", "EC2 TYPE"
        );
        for h in &d.hosts {
            let inv = h.inventory.as_ref();
            let count = |s: Severity| h.findings.iter().filter(|f| f.severity == s).count();
            println!(
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
            );
        }
        println!("\ndependencies (client -> server:port, connections):");
        for e in &d.edges {
            println!(
                "  {} ({}) -> {}:{} ({}) x{}",
                e.client.label(),
                e.client_process.as_deref().unwrap_or("?"),
                e.server.label(),
                e.port,
                e.server_process.as_deref().unwrap_or("?"),
                e.connections
            );
        }
        println!("\nwaves:");
        for w in &d.waves {
            println!("  {}: {} ({})", w.number, w.hosts.join(", "), w.reason);
        }
        println!("\nstored in {}", stored.display());
        if let Some(p) = proposed {
            println!("proposed [[host]] entries: {}", p.display());
        }
        Ok(())
    }

    pub fn report(&self, path: &std::path::Path, d: &Discovery) -> Result<()> {
        if self.json {
            return print_json(&serde_json::json!({
                "report": path,
                "hosts": d.hosts.len(),
                "edges": d.edges.len(),
                "waves": d.waves.len(),
            }));
        }
        println!(
            "report written to {} ({} hosts, {} dependencies, {} waves)",
            path.display(),
            d.hosts.len(),
            d.edges.len(),
            d.waves.len()
        );
        Ok(())
    }

    pub fn points(&self, host: &str, points: &[PointMeta]) -> Result<()> {
        if self.json {
            return print_json(&points);
        }
        if points.is_empty() {
            println!("host {host} has no points");
            return Ok(());
        }
        println!(
            "{:<26} {:<22} {:>12} {:>12} CONSISTENCY",
            "POINT", "CREATED", "SIZE", "NEW"
        );
        for p in points {
            let created = p
                .created
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]Z"
                ))
                .unwrap_or_default();
            println!(
                "{:<26} {:<22} {:>12} {:>12} {}",
                p.point,
                created,
                mib(p.image_size),
                mib(p.stats.bytes_new),
                p.consistency
            );
        }
        Ok(())
    }

    pub fn restored_file(&self, r: &FileRestoreReport) -> Result<()> {
        if self.json {
            return print_json(r);
        }
        println!(
            "restored {} point {} to {} ({}) in {:.1}s; image blake3 {}",
            r.host,
            r.point,
            r.to.display(),
            mib(r.image_size),
            r.duration_s,
            r.image_blake3
        );
        Ok(())
    }

    pub fn restored_host(&self, r: &HostRestoreReport) -> Result<()> {
        if self.json {
            return print_json(r);
        }
        println!(
            "restored {} point {} onto {}:{}: wrote {} in {} ranges ({} of {} chunks differed, compared with {}) in {:.1}s",
            r.host,
            r.point,
            r.target,
            r.disk,
            mib(r.bytes_written),
            r.ranges_written,
            r.chunks_written,
            r.chunks,
            r.compared_with,
            r.duration_s
        );
        Ok(())
    }

    pub fn verified(&self, r: &VerifyReport) -> Result<()> {
        if self.json {
            return print_json(r);
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        let state = if r.ok { "ok" } else { "FAILED" };
        println!(
            "verify {state}: {} points, {} chunks, {} packs read ({})",
            r.points_checked,
            r.chunks_checked,
            r.packs_checked,
            mib(r.bytes_read)
        );
        Ok(())
    }
}
