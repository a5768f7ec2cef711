//! `ferry convert HOST [--point P]`: a point made bootable on EC2 Nitro, stored as a new
//! point of the host (see [`crate::convert`]). Idempotent: a point converted before
//! is reported, not converted again.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use crate::convert::{convert_point, ConvertJob, ConvertReport};
use crate::ctx::Ctx;
use crate::report::{mib, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Host whose point to convert.
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<ConvertReport> {
    let host = ctx.settings.host(&args.host)?;
    let repo = Arc::new(ctx.repo().await?);
    let records = ctx.records().await;
    convert_point(ConvertJob {
        repo,
        records: records.as_ref(),
        host: &host,
        point: args.point.as_deref(),
        settings: &ctx.settings.convert,
        progress: &ctx.progress,
        shutdown: ctx.shutdown.clone(),
    })
    .await
}

impl Report for ConvertReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.already_converted {
            writeln!(
                out,
                "{}: point {} was converted before: point {}",
                self.host, self.from, self.point
            )?;
        } else {
            writeln!(
                out,
                "{}: point {} converted for EC2 Nitro: point {} (new in the store {} of {}, {} of {} chunks; {:.0}s: helper up in {:.0}s, conversion {:.0}s)",
                self.host,
                self.from,
                self.point,
                mib(self.bytes_new),
                mib(self.image_size),
                self.chunks_new,
                self.chunks,
                self.duration_s,
                self.helper_boot_s,
                self.convert_s
            )?;
        }
        for c in &self.changes {
            writeln!(out, "  {:<15} {}", c.kind.label(), c.detail)?;
        }
        if let Some(e) = &self.after_point_error {
            eprintln!("warning: host {}: {e}", self.host);
        }
        Ok(())
    }
}
