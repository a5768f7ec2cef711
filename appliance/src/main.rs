//! `ferry`, the on-prem appliance. Glue only: parse the command line, start tracing and
//! the runtime, run the command (see the library's `# Layout`), print the error.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferry_appliance::commands::{self, Cli};
use ferry_appliance::report::OutputMode;
use ferry_appliance::shutdown::Shutdown;
use ferry_appliance::Ctx;

/// How long a command may take to stop cleanly after Ctrl-C or SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon's log is its record of what it did: info from the start.
    let verbose = match cli.command {
        commands::Command::Daemon(_) => cli.verbose.max(1),
        _ => cli.verbose,
    };
    ferry_appliance::init_tracing(verbose);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let output = match cli.json {
        true => OutputMode::Json,
        false => OutputMode::Human,
    };
    let result = rt.block_on(async {
        let shutdown = Shutdown::on_signals()?;
        let ctx = Ctx::load(&cli.config, cli.store.as_deref(), output, shutdown.clone())?;
        tokio::select! {
            r = commands::run(cli.command, &ctx) => r,
            _ = async { shutdown.requested().await; tokio::time::sleep(GRACE).await } => {
                Err(anyhow::anyhow!("interrupted"))
            }
        }
    });
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}
