//! `ferry report [--out FILE] [--from FILE]`: the last discovery as a self-contained
//! HTML page.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::discover::{report, results};
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The HTML file to write.
    #[arg(long, default_value = "discovery.html")]
    pub out: PathBuf,
    /// The discovery to render (default: where `ferry discover` stored it).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Written {
    pub report: PathBuf,
    pub hosts: usize,
    pub edges: usize,
    pub waves: usize,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Written> {
    let from = args.from.unwrap_or_else(|| ctx.discovery_results());
    let d = results::read_file(&from)?;
    std::fs::write(&args.out, report::render(&d))
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(Written {
        report: args.out,
        hosts: d.hosts.len(),
        edges: d.edges.len(),
        waves: d.waves.len(),
    })
}

impl Report for Written {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "report written to {} ({} hosts, {} dependencies, {} waves)",
            self.report.display(),
            self.hosts,
            self.edges,
            self.waves
        )
    }
}
