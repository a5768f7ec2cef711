//! `ferry burst setup TIER` and `ferry burst status [TIER]`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::burst::setup::{setup, SetUp};
use crate::burst::status::{status, BurstStatus};
use crate::ctx::Ctx;
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: BurstCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum BurstCommand {
    /// Make AWS ready for the tier's bursts (launch template from the golden host's
    /// newest image, Auto Scaling group, target tracking, on-prem targets, alarms);
    /// idempotent, and says what it changed.
    Setup {
        /// The `[[burst]]` tier.
        tier: String,
    },
    /// Per tier: capacity on-prem and in AWS, alarm states, the image in use against
    /// the newest built, the last runs.
    Status {
        /// One tier; default: every tier set up.
        tier: Option<String>,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BurstReport {
    SetUp(SetUp),
    Status(BurstStatus),
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<BurstReport> {
    match args.command {
        BurstCommand::Setup { tier } => {
            let c = ctx.settings.burst(&tier)?;
            Ok(BurstReport::SetUp(setup(ctx, c).await?))
        }
        BurstCommand::Status { tier } => {
            Ok(BurstReport::Status(status(ctx, tier.as_deref()).await?))
        }
    }
}

impl Report for BurstReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            BurstReport::SetUp(s) => {
                writeln!(
                    out,
                    "tier {}: {} from {} (point {}), group {}, target group {}, weighted record {}",
                    s.tier,
                    s.launch_template,
                    s.image_id,
                    s.point,
                    s.auto_scaling_group,
                    s.target_group.as_deref().unwrap_or("-"),
                    s.dns.as_deref().unwrap_or("-")
                )?;
                if s.changes.is_empty() {
                    writeln!(out, "  nothing changed")?;
                }
                for c in &s.changes {
                    writeln!(out, "  {c}")?;
                }
            }
            BurstReport::Status(st) => {
                for t in &st.tiers {
                    writeln!(
                        out,
                        "tier {}: on-prem {}/{} healthy, AWS {} in service of {} desired (min {}, max {}), {} AWS target(s)",
                        t.tier, t.onprem_healthy, t.onprem_targets, t.aws_in_service, t.aws_desired, t.aws_min, t.aws_max, t.aws_targets
                    )?;
                    writeln!(
                        out,
                        "  alarms: burst {}, scale-in {}",
                        t.burst_alarm, t.scale_in_alarm
                    )?;
                    let stale = t.image_in_use != t.newest_image;
                    writeln!(
                        out,
                        "  image: {} (template version {}), newest built {} of {}{}",
                        t.image_in_use.as_deref().unwrap_or("-"),
                        t.template_version
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "-".into()),
                        t.newest_image.as_deref().unwrap_or("-"),
                        t.golden,
                        if stale {
                            " (the next burst or image build rolls it in)"
                        } else {
                            ""
                        }
                    )?;
                    if let Some(d) = &t.dns {
                        writeln!(
                            out,
                            "  {}: on-prem {} / AWS {}",
                            d.name,
                            d.onprem.join(", "),
                            if d.aws.is_empty() {
                                "-".to_string()
                            } else {
                                d.aws.join(", ")
                            }
                        )?;
                    }
                    for p in &t.problems {
                        writeln!(out, "  problem: {p}")?;
                    }
                    if let Some(r) = &t.running {
                        writeln!(out, "  running: {r}")?;
                    }
                    for r in &t.runs {
                        let took = r
                            .alarm_to_done_s
                            .map(|s| format!(", {s:.1} s from the alarm"))
                            .unwrap_or_default();
                        writeln!(
                            out,
                            "  {} {} {}{took}: {}",
                            r.started, r.run_id, r.status, r.summary
                        )?;
                    }
                }
                if st.tiers.is_empty() {
                    writeln!(out, "no tier is set up for burst")?;
                }
            }
        }
        Ok(())
    }
}
