//! The Ferry appliance as a library: every command is a use case callable from the
//! `ferry` binary, from a long-running daemon, or from tests, with the same [`Ctx`].
//!
//! # Layout
//! - [`commands`]: the command line (global options, one module per command with its
//!   clap `Args`, its `run(args, &Ctx)` and its report) and the one dispatch.
//! - [`ctx`]: what a command runs with: settings, output mode, progress, the injected
//!   [`shutdown`] signal, and AWS clients built once (from `ferry-aws`).
//! - [`report`]: the `Report` trait, and the one place that prints JSON or human output
//!   and picks the exit code.
//! - [`settings`]: `ferry.toml` (the schema); [`host`]: the domain host the rest uses;
//!   [`addresses`]: addresses and ranges as the config spells them.
//! - [`ssh`]: russh sessions, host-key pinning, streamed remote commands.
//! - [`capture`]: the streaming capture pipeline and its sources.
//! - [`convert`]: `ferry convert`: a point made bootable on EC2 Nitro in a helper VM.
//! - [`restore`]: restore to a file or a block device, or a delta restore onto a host
//!   (in-use check, `--base` sample, read-back).
//! - [`records`]: host and point records in DynamoDB. (Store checks are
//!   `ferry_store::check`.)
//! - [`cloud`]: image builds, migrations and runs as Step Functions executions.
//! - [`discover`]: agentless discovery, assessment, sizing, waves and the HTML report.
//! - [`dr`]: disaster recovery: protection groups, the daemon (syncs, probes,
//!   metrics), failovers and drills, failback (the appliance as the failback state
//!   machine's worker), status.
//! - [`progress`]: progress bars on a terminal.
//!
//! The store itself (backends, the opened repository) is `ferry-store`; the format and
//! the contract with the cloud side are `ferry-core`; AWS clients and calls are
//! `ferry-aws`.

pub mod addresses;
pub mod burst;
pub mod capture;
pub mod cloud;
pub mod commands;
pub mod convert;
pub mod ctx;
pub mod discover;
pub mod dr;
pub mod host;
pub mod progress;
pub mod records;
pub mod report;
pub mod restore;
pub mod settings;
pub mod shutdown;
pub mod ssh;

pub use ctx::Ctx;

/// Logs on stderr: warnings by default (the AWS SDK's own chatter only from `-v` on),
/// `-v` info, `-vv` debug; `FERRY_LOG` overrides.
pub fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => "warn,aws_config=error,aws_smithy_runtime=error,aws_runtime=error",
        1 => "info,aws=warn,russh=warn",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or journald gets plain `key=value`.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
