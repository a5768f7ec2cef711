//! What commands print: one JSON document on stdout with `--json`, else a short human
//! summary on stdout. Errors and logs go to stderr.

use std::process::ExitCode;

use anyhow::Result;
use ferry_core::manifest::PointMeta;
use serde::Serialize;

use crate::capture::CaptureReport;
use crate::cloud::commands::RunReport;
use crate::cloud::sfn::ExecutionInfo;
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
