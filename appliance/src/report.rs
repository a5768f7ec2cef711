//! The one place that decides what a command prints and how it exits: with `--json`,
//! exactly one JSON document on stdout; else the report's human form on stdout. Errors
//! and logs go to stderr. A report that cannot be serialised is an error, never `null`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

/// What a command returns: data that serialises as its `--json` document, a human
/// rendering of it, and the exit code it means.
pub trait Report: Serialize {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()>;

    /// Success unless the report says otherwise (a failed run, a damaged store).
    fn exit_code(&self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

/// How reports are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Human,
    Json,
}

impl OutputMode {
    pub fn emit(&self, report: &impl Report) -> Result<ExitCode> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match self {
            OutputMode::Json => {
                let text = serde_json::to_string_pretty(report)
                    .context("the command's report does not serialise")?;
                writeln!(out, "{text}")
            }
            OutputMode::Human => report.human(&mut out),
        }
        .context("writing the report to stdout")?;
        Ok(report.exit_code())
    }
}

/// Bytes as MiB with one decimal, as every human report prints sizes.
pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}
