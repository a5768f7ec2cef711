//! `ferry runs [HOST] [--limit N]`: image builds and migrations (and, without a host,
//! failovers, drills, failbacks, bursts and scale-ins), newest first.

use std::io::Write;

use anyhow::Result;
use ferry_aws::sfn::ExecutionInfo;
use serde::Serialize;

use crate::cloud::executions::Cloud;
use crate::ctx::Ctx;
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this host's runs.
    pub host: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Runs(pub Vec<ExecutionInfo>);

pub async fn run(args: Args, ctx: &Ctx) -> Result<Runs> {
    let cloud = Cloud::new(&ctx.aws().await.sfn, &ctx.settings.aws);
    Ok(Runs(cloud.runs(args.host.as_deref(), args.limit).await?))
}

impl Report for Runs {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.0.is_empty() {
            return writeln!(out, "no runs");
        }
        writeln!(
            out,
            "{:<48} {:<10} {:<26} {:>9}",
            "RUN", "STATUS", "STARTED", "DURATION"
        )?;
        for r in &self.0 {
            writeln!(
                out,
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
            )?;
        }
        Ok(())
    }
}
