//! `ferry`, the on-prem appliance: captures servers' disks agentlessly over SSH into a
//! deduplicated store, restores them, and checks the store.
//!
//! `main` is glue: parse the command line, load `ferry.toml`, open the store, dispatch.
//!
//! # Layout
//! - [`cli`]: the command line; [`settings`]: `ferry.toml`.
//! - [`ssh`]: russh sessions, host-key pinning, streamed remote commands.
//! - The store itself (backends, the opened repository, AWS clients) is the
//!   `ferry-store` crate, shared with the cloud functions.
//! - [`capture`]: the streaming capture pipeline and its sources.
//! - [`restore`]: restore to a file, or a delta restore onto a host.
//! - [`verify`]: store checks. [`db`]: DynamoDB records.
//! - [`cloud`]: image builds, migrations and runs as Step Functions executions.
//! - [`progress`], [`output`]: what the operator sees.

mod capture;
mod cli;
mod cloud;
mod db;
mod discover;
mod output;
mod progress;
mod restore;
mod settings;
mod ssh;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use cli::{Cli, Command, StoreCommand};
use ferry_store::Repository;
use progress::Progress;
use settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,aws=warn,russh=warn",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(cli: &Cli) -> Result<Settings> {
    let mut s = if cli.config.exists() || cli.store.is_none() {
        Settings::load(&cli.config)?
    } else {
        Settings {
            store: String::new(),
            aws: Default::default(),
            hosts: Vec::new(),
            discovery: Default::default(),
        }
    };
    if let Some(url) = &cli.store {
        s.store = url.clone();
    }
    Ok(s)
}

fn results_path(s: &Settings) -> std::path::PathBuf {
    s.discovery
        .results
        .clone()
        .unwrap_or_else(|| "discovery.json".into())
}

async fn open_repo(s: &Settings) -> Result<Repository> {
    let backend = ferry_store::Backend::open(&s.store, &s.aws).await?;
    Ok(Repository::open(backend).await?)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let s = load_settings(&cli)?;
    let out = output::Output::new(cli.json);
    let progress = Progress::new(cli.json);
    match &cli.command {
        Command::Store(StoreCommand::Init) => {
            let backend = ferry_store::Backend::open(&s.store, &s.aws).await?;
            let (repo, created) = Repository::init(backend).await?;
            out.store_init(&repo, created)?;
        }
        Command::Capture(args) => {
            let hosts = args
                .hosts
                .iter()
                .map(|h| s.host(h).cloned())
                .collect::<Result<Vec<_>>>()?;
            let repo = Arc::new(open_repo(&s).await?);
            let records = match &s.aws.table {
                Some(t) => Some(db::Records::new(
                    ferry_store::aws::dynamodb_client(&s.aws).await,
                    t.clone(),
                )),
                None => None,
            };
            let opts = capture::CaptureOptions {
                accept_new_host_key: args.keys.accept_new_host_key,
            };
            let cloud = match args.image || s.aws.image_after_capture {
                true => Some(cloud::commands::Cloud::new(&s.aws).await),
                false => None,
            };
            let mut results = Vec::new();
            for h in &hosts {
                let mut r =
                    capture::capture_host(repo.clone(), records.as_ref(), h, &opts, &progress)
                        .await;
                if let (Some(c), Ok(rep)) = (&cloud, &mut r) {
                    match c.start_image(&h.name, &rep.point).await {
                        Ok(arn) => rep.image_execution = Some(arn),
                        Err(e) => {
                            r = Err(e.context(format!(
                                "host {}: point {} was captured, but its image build did not start",
                                h.name, rep.point
                            )))
                        }
                    }
                }
                results.push((h.name.clone(), r));
            }
            return out.captures(results);
        }
        Command::Points { host } => {
            let repo = open_repo(&s).await?;
            let ids = repo.list_points(host).await?;
            if ids.is_empty() && !s.hosts.iter().any(|h| &h.name == host) {
                bail!("no host {host:?} in the config and no points for it in the store");
            }
            let mut points = Vec::new();
            for id in ids {
                points.push(repo.read_point(host, &id).await?.meta);
            }
            out.points(host, &points)?;
        }
        Command::Restore(args) => {
            let repo = open_repo(&s).await?;
            let m = repo
                .resolve_point(&args.host, args.point.as_deref())
                .await?;
            if let Some(to) = &args.to {
                let r = restore::restore_to_file(&repo, &m, to, args.fsync, &progress).await?;
                out.restored_file(&r)?;
            } else if let Some(target) = &args.to_host {
                let target = s.host(target)?;
                let base = match &args.base {
                    Some(b) => Some(repo.resolve_point(&args.host, Some(b)).await?),
                    None => None,
                };
                let opts = restore::ToHostOptions {
                    accept_new_host_key: args.keys.accept_new_host_key,
                };
                let r =
                    restore::restore_to_host(&repo, &m, base.as_ref(), target, &opts, &progress)
                        .await
                        .with_context(|| {
                            format!(
                                "restore of {} point {} to host {}",
                                args.host, m.meta.point, target.name
                            )
                        })?;
                out.restored_host(&r)?;
            }
        }
        Command::Image(args) => {
            let repo = open_repo(&s).await?;
            let c = cloud::commands::Cloud::new(&s.aws).await;
            let r = c
                .image(
                    &repo,
                    &args.host,
                    args.point.as_deref(),
                    !args.no_wait,
                    !cli.json,
                )
                .await
                .with_context(|| format!("image of host {}", args.host))?;
            return out.run(&r);
        }
        Command::Migrate(args) => {
            let repo = open_repo(&s).await?;
            let private_ip = match args.private_ip.as_deref() {
                Some("source") => Some(s.host(&args.host)?.ssh_address().with_context(|| {
                    format!(
                        "--private-ip source: host {} has no SSH address to keep",
                        args.host
                    )
                })?),
                other => other.map(str::to_string),
            };
            let target = cloud::commands::Target {
                instance_type: args.instance_type.clone(),
                subnet_id: args.subnet.clone(),
                private_ip,
                security_group_ids: args.security_groups.clone(),
            };
            let c = cloud::commands::Cloud::new(&s.aws).await;
            let r = c
                .migrate(&repo, &args.host, args.point.as_deref(), &target, !cli.json)
                .await
                .with_context(|| format!("migration of host {}", args.host))?;
            return out.run(&r);
        }
        Command::Runs(args) => {
            let c = cloud::commands::Cloud::new(&s.aws).await;
            let runs = c.runs(args.host.as_deref(), args.limit).await?;
            out.runs(&runs)?;
        }
        Command::Discover(args) => {
            use discover::{collect::Window, propose, results, run};
            let targets = discover::targets::targets(
                &s,
                &args.hosts,
                args.group.as_deref(),
                args.keys.accept_new_host_key,
            )?;
            let w = Window {
                length: args.sample,
                interval: args.interval,
            };
            if !cli.json {
                eprintln!(
                    "discovering {} target(s), {} sample(s) each",
                    targets.len(),
                    w.samples()
                );
            }
            let hosts = run::visit(targets.clone(), w).await;
            let ec2 = ferry_store::aws::ec2_client(&s.aws).await;
            let d = run::analyse(hosts, run::types_or_reason(&ec2).await, w)?;
            let path = results_path(&s);
            results::write_file(&path, &d)?;
            if let Some(t) = &s.aws.table {
                let ddb = ferry_store::aws::dynamodb_client(&s.aws).await;
                results::write_records(&ddb, t, &d).await?;
            }
            let proposed = if args.write_config {
                let known: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
                let p = cli
                    .config
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("ferry.discovered.toml");
                std::fs::write(
                    &p,
                    propose::proposal(&d.hosts, &targets, &known, &d.generated),
                )
                .with_context(|| format!("writing {}", p.display()))?;
                Some(p)
            } else {
                None
            };
            out.discovery(&d, &path, proposed.as_deref())?;
        }
        Command::Report(args) => {
            let from = args.from.clone().unwrap_or_else(|| results_path(&s));
            let d = discover::results::read_file(&from)?;
            std::fs::write(&args.out, discover::report::render(&d))
                .with_context(|| format!("writing {}", args.out.display()))?;
            out.report(&args.out, &d)?;
        }
        Command::Verify(args) => {
            let repo = open_repo(&s).await?;
            let hosts = match &args.host {
                Some(h) => vec![h.clone()],
                None => repo.list_hosts().await?,
            };
            let r = verify::verify(&repo, &hosts, args.point.as_deref(), args.read_data).await?;
            out.verified(&r)?;
            if !r.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
