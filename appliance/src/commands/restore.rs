//! `ferry restore HOST --to FILE | --to-host TARGET`: a point into a file, or onto a
//! host's disk writing only what differs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::args::HostKeyArgs;
use crate::ctx::Ctx;
use crate::report::{mib, Report};
use crate::restore::{
    restore_to_file, restore_to_host, FileRestoreReport, HostRestoreReport, ToHostOptions,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Host whose point to restore.
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
    /// Write the image to this file.
    #[arg(long, conflicts_with = "to_host", required_unless_present = "to_host")]
    pub to: Option<PathBuf>,
    /// With --to: make the file durable (fsync) before reporting success.
    #[arg(long, requires = "to")]
    pub fsync: bool,
    /// Write onto this host's disk (a host of the config), only where it differs.
    #[arg(long)]
    pub to_host: Option<String>,
    /// A point known to be on the target disk: compare against it instead of reading the disk.
    #[arg(long, requires = "to_host")]
    pub base: Option<String>,
    /// With --to-host: write even when the disk is in use (mounted, swap, held by LVM or
    /// RAID, backing a loop device).
    #[arg(long, requires = "to_host")]
    pub force: bool,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Restored {
    File(FileRestoreReport),
    Host(HostRestoreReport),
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Restored> {
    let repo = ctx.repo().await?;
    let m = repo
        .resolve_point(&args.host, args.point.as_deref())
        .await?;
    if let Some(to) = &args.to {
        let r = restore_to_file(&repo, &m, to, args.fsync, &ctx.progress).await?;
        return Ok(Restored::File(r));
    }
    let target = ctx.settings.host(
        args.to_host
            .as_deref()
            .context("--to or --to-host is required")?,
    )?;
    let base = match &args.base {
        Some(b) => Some(repo.resolve_point(&args.host, Some(b)).await?),
        None => None,
    };
    let opts = ToHostOptions {
        written: None,
        accept_new_host_key: args.keys.accept_new_host_key,
        force: args.force,
    };
    let r = restore_to_host(&repo, &m, base.as_ref(), &target, &opts, &ctx.progress)
        .await
        .with_context(|| {
            format!(
                "restore of {} point {} to host {}",
                args.host, m.meta.point, target.name
            )
        })?;
    Ok(Restored::Host(r))
}

impl Report for Restored {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Restored::File(r) => writeln!(
                out,
                "restored {} point {} to {} ({}) in {:.1}s; image blake3 {}",
                r.host,
                r.point,
                r.to.display(),
                mib(r.image_size),
                r.duration_s,
                r.image_blake3
            ),
            Restored::Host(r) => writeln!(
                out,
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
            ),
        }
    }
}
