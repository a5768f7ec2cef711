//! `ferry points HOST`: a host's recovery points, oldest first.

use std::io::Write;

use anyhow::{bail, Result};
use ferry_core::manifest::{PointMeta, ReadMethod};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::report::{mib, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub host: String,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Points {
    #[serde(skip)]
    pub host: String,
    pub points: Vec<PointMeta>,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Points> {
    let repo = ctx.repo().await?;
    let host = args.host;
    let ids = repo.list_points(&host).await?;
    if ids.is_empty() && !ctx.settings.hosts.iter().any(|h| h.name == host) {
        bail!("no host {host:?} in the config and no points for it in the store");
    }
    let mut points = Vec::new();
    for id in ids {
        points.push(repo.read_point(&host, &id).await?.meta);
    }
    Ok(Points { host, points })
}

impl Report for Points {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.points.is_empty() {
            return writeln!(out, "host {} has no points", self.host);
        }
        writeln!(
            out,
            "{:<26} {:<22} {:>12} {:>12} {:<15} {:>12} CONSISTENCY",
            "POINT", "CREATED", "SIZE", "NEW", "READ", "OVER LINK"
        )?;
        for p in &self.points {
            let created = p
                .created
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]Z"
                ))
                .unwrap_or_default();
            let read = match p.stats.method {
                ReadMethod::Full => "full",
                ReadMethod::ChangedBlocks => "changed-blocks",
            };
            writeln!(
                out,
                "{:<26} {:<22} {:>12} {:>12} {:<15} {:>12} {}",
                p.point,
                created,
                mib(p.image_size),
                mib(p.stats.bytes_new),
                read,
                mib(p.stats.bytes_transferred),
                p.consistency
            )?;
            if let Some(why) = &p.stats.full_read_reason {
                writeln!(out, "  read in full: {why}")?;
            }
            if let Some(c) = &p.converted {
                writeln!(
                    out,
                    "  converted from {} for {} ({}): {}",
                    c.from,
                    c.target,
                    c.ran_on,
                    c.summary()
                )?;
            }
        }
        Ok(())
    }
}
