//! `ferry capture HOST...`: each host's disk into a new recovery point, optionally
//! starting its AMI build.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::args::HostKeyArgs;
use crate::capture::{capture_host, CaptureOptions, CaptureReport};
use crate::cloud::executions::Cloud;
use crate::ctx::Ctx;
use crate::report::{mib, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub hosts: Vec<String>,
    /// After each capture, start building its AMI in AWS (the build-image state
    /// machine), so that an image is ready before it is needed.
    #[arg(long)]
    pub image: bool,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

/// One host's capture, or why it failed.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Captured(Box<CaptureReport>),
    Failed { host: String, error: String },
}

/// One object for one host, an array for several; failures as `{host, error}`.
#[derive(Debug)]
pub struct Captures(pub Vec<Outcome>);

impl Serialize for Captures {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            all => all.serialize(s),
        }
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Captures> {
    let hosts = args
        .hosts
        .iter()
        .map(|h| ctx.settings.host(h))
        .collect::<Result<Vec<_>>>()?;
    let repo = Arc::new(ctx.repo().await?);
    let records = ctx.records().await;
    let opts = CaptureOptions {
        derived: None,
        parent: None,
        accept_new_host_key: args.keys.accept_new_host_key,
        shutdown: ctx.shutdown.clone(),
    };
    let image = args.image || ctx.settings.aws.image_after_capture;
    let mut results = Vec::new();
    for h in &hosts {
        let mut r = capture_host(repo.clone(), records.as_ref(), h, &opts, &ctx.progress).await;
        if let (true, Ok(rep)) = (image, &mut r) {
            let cloud = Cloud::new(&ctx.aws().await.sfn, &ctx.settings.aws);
            match cloud.start_image(&h.name, &rep.point).await {
                Ok(arn) => rep.image_execution = Some(arn),
                Err(e) => {
                    rep.after_point_error = Some(format!(
                        "point {} was written, but its image build did not start: {e:#} (start it with `ferry image {} --point {}`)",
                        rep.point, h.name, rep.point
                    ))
                }
            }
        }
        results.push(match r {
            Ok(rep) => Outcome::Captured(Box::new(rep)),
            Err(e) => Outcome::Failed {
                host: h.name.clone(),
                error: format!("{e:#}"),
            },
        });
        if ctx.shutdown.is_requested() {
            break;
        }
    }
    Ok(Captures(results))
}

impl Report for Captures {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for r in &self.0 {
            match r {
                Outcome::Captured(c) => {
                    writeln!(
                        out,
                        "{}: point {} ({}) read {} in {:.1}s, new {} ({} of {} chunks), uploaded {}",
                        c.host,
                        c.point,
                        c.consistency,
                        mib(c.stats.bytes_read),
                        c.stats.duration_s,
                        mib(c.stats.bytes_new),
                        c.stats.chunks_new,
                        c.stats.chunks,
                        mib(c.stats.bytes_uploaded)
                    )?;
                    if let Some(arn) = &c.image_execution {
                        writeln!(out, "  image build started: {arn}")?;
                    }
                    if let Some(e) = &c.after_point_error {
                        eprintln!("warning: host {}: {e}", c.host);
                    }
                }
                Outcome::Failed { error, .. } => eprintln!("error: {error}"),
            }
        }
        Ok(())
    }

    /// 1 when a capture failed (no point); 3 when every point was written but what
    /// follows one failed (its record, its image build start); else 0.
    fn exit_code(&self) -> ExitCode {
        let failed = self.0.iter().any(|r| matches!(r, Outcome::Failed { .. }));
        let after = self
            .0
            .iter()
            .any(|r| matches!(r, Outcome::Captured(c) if c.after_point_error.is_some()));
        match (failed, after) {
            (true, _) => ExitCode::FAILURE,
            (false, true) => ExitCode::from(3),
            _ => ExitCode::SUCCESS,
        }
    }
}
