//! `ferry daemon [--group G]... [--tier T]...`: the appliance's long-running mode (see
//! `crate::dr::daemon`); runs until SIGTERM or Ctrl-C. `packaging/ferry-daemon.service`
//! runs it under systemd.

use std::io::Write;

use anyhow::Result;

use super::args::HostKeyArgs;
use crate::ctx::Ctx;
use crate::dr::daemon::{DaemonOptions, DaemonReport};
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these groups (repeatable); default: every `[[group]]` and `[[burst]]`.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Only these burst tiers (repeatable): their load is sampled and published.
    #[arg(long = "tier")]
    pub tiers: Vec<String>,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<DaemonReport> {
    crate::dr::daemon::run(
        ctx,
        DaemonOptions {
            groups: args.groups,
            tiers: args.tiers,
            accept_new_host_key: args.keys.accept_new_host_key,
        },
    )
    .await
}

impl Report for DaemonReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "daemon stopped: groups {}, {} syncs, {} failed, {} probe rounds",
            self.groups.join(", "),
            self.syncs,
            self.sync_failures,
            self.probe_rounds
        )?;
        if !self.burst_tiers.is_empty() {
            writeln!(
                out,
                "burst tiers {}: {} load samples, {} published",
                self.burst_tiers.join(", "),
                self.load_samples,
                self.load_published
            )?;
        }
        Ok(())
    }
}
