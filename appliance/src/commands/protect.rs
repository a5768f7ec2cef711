//! `ferry protect GROUP`: record a protection group in AWS and create its alarms;
//! idempotent, and says what it changed.

use std::io::Write;

use anyhow::Result;

use crate::ctx::Ctx;
use crate::dr::protect::{protect, Protected};
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `[[group]]` to protect.
    pub group: String,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Protected> {
    let g = ctx.settings.group(&args.group)?;
    protect(ctx, g).await
}

impl Report for Protected {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "group {}: record {}, failover {}",
            self.group, self.record, self.failover
        )?;
        for c in &self.changes {
            writeln!(out, "  changed {c}")?;
        }
        for a in self.alarms.iter().filter(|a| a.action != "unchanged") {
            writeln!(out, "  alarm {} {}", a.name, a.action)?;
        }
        let same = self
            .alarms
            .iter()
            .filter(|a| a.action == "unchanged")
            .count();
        if same > 0 {
            writeln!(out, "  {same} alarms unchanged")?;
        }
        for w in &self.warnings {
            eprintln!("warning: {w}");
        }
        Ok(())
    }
}
