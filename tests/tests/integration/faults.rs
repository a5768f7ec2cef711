//! The fault suite (`bash scripts/faults.sh`): for each stage (capture, restore to a
//! file, restore onto a host, image build, migration) a kill -9 or an injected fault
//! in the middle of it, then the rerun. Every case checks that nothing was lost (what
//! the store held still restores, `verify --read-data` says ok), that no false point
//! appeared (a point exists only for a capture that finished), and that the rerun
//! converges (its target equals the point). Each case prints one row of the table,
//! `FAULT | stage | fault | outcome`.
//!
//! Elsewhere, in the same spirit: SIGTERM, a dropped connection and a failing read
//! during an LVM capture of a real guest (the VM tests' `snapshot`), a restore's `dd` killed (`restore_to_host`), a rebuild
//! after a failed build (`build_image_fn`), a launch refused inside the migrate state
//! machine (`migrate_sm`).

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_core::steps::build_image::{FinishRequest, PlanRequest};
use ferry_core::steps::{InstanceRequest, LaunchSpec};
use ferry_fn_build_image::cloud::Cloud;
use ferry_fn_build_image::steps;
use ferry_store::{Backend, Repository};
use ferry_tests::disk;
use ferry_tests::ebs::{file_blocks, nonzero, snapshot_blocks};
use ferry_tests::ferry::{Ferry, HostEntry};
use ferry_tests::procs::{dd_writers, kill9, sshd_sessions};
use ferry_tests::stack::{Stack, TABLE};

fn row(stage: &str, fault: &str, outcome: &str) {
    println!("FAULT | {stage} | {fault} | {outcome} |");
}

/// Waits until `ready` holds, while the child runs; fails if it ends first.
fn wait_while_running(child: &mut Child, what: &str, ready: impl Fn() -> bool) -> Result<()> {
    let start = Instant::now();
    while !ready() {
        if child.try_wait()?.is_some() {
            bail!("the command finished before {what}");
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("{what} did not happen within two minutes");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn points(ferry: &Ferry, host: &str) -> Result<usize> {
    Ok(ferry
        .json(&["points", host])?
        .as_array()
        .map(Vec::len)
        .unwrap_or(0))
}

fn verified(ferry: &Ferry) -> Result<()> {
    let v = ferry.run(&["verify", "--read-data", "--json"])?;
    anyhow::ensure!(v.json()?["ok"] == true, "verify: {}", v.stdout);
    Ok(())
}

#[test]
fn capture_killed_during_upload() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("db1", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let store_dir = stack.path().join("store");
    let ferry = stack.ferry(&stack.file_store("store"), &[stack.entry("db1", &kh)])?;
    ferry.json(&["store", "init"])?;

    let mut child = ferry.spawn(&["capture", "db1", "--json"])?;
    wait_while_running(&mut child, "two packs were uploaded", || {
        disk::files_under(&store_dir.join("packs")).len() >= 2
    })?;
    child.kill()?;
    child.wait()?;
    let left = disk::files_under(&store_dir.join("packs")).len();
    assert!(left >= 2);
    assert_eq!(
        points(&ferry, "db1")?,
        0,
        "a killed capture must leave no point"
    );

    let rerun = ferry.json(&["capture", "db1"])?;
    assert!(rerun["packs_recovered"].as_u64().unwrap() >= 2, "{rerun}");
    // The same capture into a fresh store uploads more than the rerun did.
    let ferry2 = stack.ferry(&stack.file_store("fresh"), &[stack.entry("db1", &kh)])?;
    ferry2.json(&["store", "init"])?;
    let fresh = ferry2.json(&["capture", "db1"])?;
    assert!(
        rerun["bytes_uploaded"].as_u64().unwrap() < fresh["bytes_uploaded"].as_u64().unwrap(),
        "rerun {rerun} vs fresh {fresh}"
    );
    let out = stack.path().join("r.img");
    ferry.json(&["restore", "db1", "--to", out.to_str().unwrap()])?;
    assert_eq!(disk::sha256(&out)?, disk::sha256(&base)?);
    verified(&ferry)?;
    row(
        "capture",
        "kill -9 during upload",
        &format!("no point; {left} packs left; the rerun reuses them (uploads less than a fresh capture); restore equals the disk; verify ok"),
    );
    Ok(())
}

#[test]
fn capture_connection_dropped() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("db2", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let store_dir = stack.path().join("store");
    let ferry = stack.ferry(&stack.file_store("store"), &[stack.entry("db2", &kh)])?;
    ferry.json(&["store", "init"])?;
    let mut child = ferry.spawn(&["capture", "db2"])?;
    wait_while_running(&mut child, "a pack was uploaded", || {
        !disk::files_under(&store_dir.join("packs")).is_empty()
    })?;
    kill9(&sshd_sessions(&stack.host("db2").dir.join("sshd_config")));
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(points(&ferry, "db2")?, 0);
    ferry.json(&["capture", "db2"])?;
    let r = stack.path().join("r.img");
    ferry.json(&["restore", "db2", "--to", r.to_str().unwrap()])?;
    assert_eq!(disk::sha256(&r)?, disk::sha256(&base)?);
    verified(&ferry)?;
    row(
        "capture",
        "SSH connection dropped mid-read (sshd session killed)",
        "exit 1, no point; the rerun captures; restore equals the disk; verify ok",
    );
    Ok(())
}

#[test]
fn restore_to_file_killed() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let ferry = stack.ferry("s3://ferry-store/faults", &[HostEntry::local("app", &base)])?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "app"])?;
    let out = stack.path().join("app.img");
    std::fs::write(&out, b"yesterday's file")?;
    let partial = stack.path().join("app.img.ferry-partial");
    let mut child = ferry.spawn(&["restore", "app", "--to", out.to_str().unwrap()])?;
    wait_while_running(&mut child, "the restore started writing", || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    })?;
    child.kill()?;
    child.wait()?;
    assert_eq!(
        std::fs::read(&out)?,
        b"yesterday's file",
        "the target is untouched"
    );
    ferry.json(&["restore", "app", "--to", out.to_str().unwrap()])?;
    assert_eq!(disk::sha256(&out)?, disk::sha256(&base)?);
    assert!(!partial.exists());
    verified(&ferry)?;
    row(
        "restore to a file",
        "kill -9 while writing",
        "the target file is untouched (only FILE.ferry-partial was written); the rerun replaces the partial file and the target equals the point",
    );
    Ok(())
}

#[test]
fn restore_to_host_killed() -> Result<()> {
    let (base, changed) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("app", Some(&changed))?;
    stack.add_host("origin", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry(
        &stack.file_store("store"),
        &[stack.entry("app", &kh), stack.entry("origin", &kh)],
    )?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "app"])?;
    let target = stack.host("origin").disk.clone();
    std::fs::write(&target, vec![0u8; std::fs::metadata(&base)?.len() as usize])?;
    let mut child = ferry.spawn(&["restore", "app", "--to-host", "origin"])?;
    wait_while_running(&mut child, "a dd wrote to the target", || {
        !dd_writers(&target).is_empty()
    })?;
    child.kill()?;
    child.wait()?;
    // Whatever dd still had in its pipe lands; then nothing more is written.
    std::thread::sleep(Duration::from_millis(500));
    let mixed = disk::sha256(&target)? != disk::sha256(&changed)?;
    let rerun = ferry.json(&["restore", "app", "--to-host", "origin"])?;
    assert_eq!(disk::sha256(&target)?, disk::sha256(&changed)?);
    assert_eq!(rerun["bytes_read_back"], std::fs::metadata(&base)?.len());
    row(
        "restore onto a host",
        "kill -9 of ferry while dd writes",
        &format!(
            "the disk is left {}; the rerun compares by reading it, writes {} bytes, reads it back equal to the point",
            if mixed { "mixed" } else { "whole" },
            rerun["bytes_written"]
        ),
    );
    Ok(())
}

#[tokio::test]
async fn image_build_write_fails_then_is_retried() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let store = "s3://ferry-store/faults-build";
    let ferry = stack.ferry(store, &[HostEntry::local("web", &base)])?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "web"])?;
    let cfg = moto.sdk_config().await;
    let cloud = Cloud::new(&cfg, Some(TABLE.into()), 128);
    let repo = Repository::open(Backend::open_with(store, &cfg)?).await?;
    let attempt = "fault-build";
    let plan = steps::plan(
        &cloud,
        &repo,
        PlanRequest {
            host: "web".into(),
            point: None,
            attempt: attempt.into(),
        },
    )
    .await?;
    // A pack the store cannot serve for a while (an S3 outage of one object).
    let packs = repo.list_packs().await?;
    let (_, info) = &packs[packs.len() / 2];
    let saved = repo.backend.get(&info.key).await?;
    repo.backend.remove(&info.key).await?;
    let mut failed = 0;
    let mut written = Vec::new();
    for &r in &plan.ranges {
        match steps::write(&cloud, &repo, plan.write(r).unwrap()).await {
            Ok(w) => written.push(w.blocks_written),
            Err(_) => failed += 1,
        }
    }
    assert!(failed > 0, "the missing pack failed no range");
    // The object is back; the failed ranges' steps are retried (Step Functions' Retry),
    // writing their blocks again over whatever they wrote before failing.
    repo.backend.put(&info.key, saved).await?;
    written.clear();
    for &r in &plan.ranges {
        written.push(
            steps::write(&cloud, &repo, plan.write(r).unwrap())
                .await?
                .blocks_written,
        );
    }
    let done = steps::finish(
        &cloud,
        &repo,
        FinishRequest {
            host: "web".into(),
            point: plan.point.clone(),
            attempt: attempt.into(),
            snapshot_id: plan.snapshot_id.clone(),
            parent_snapshot_id: None,
            writes: written,
        },
    )
    .await?;
    let want = file_blocks(&base)?;
    let got = snapshot_blocks(&cloud.ebs, &done.snapshot_id).await?;
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), nonzero(&want));
    for (i, data) in &got {
        assert!(data == &want[*i as usize], "block {i}");
    }
    row(
        "image build",
        "a write step fails mid-range (a pack unreadable), then is retried",
        &format!("{failed} ranges failed; retried, the snapshot holds exactly the image's {} non-zero blocks; the AMI is registered", got.len()),
    );
    Ok(())
}

#[tokio::test]
async fn image_build_attempt_dies_without_cleanup() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let store = "s3://ferry-store/faults-dies";
    let ferry = stack.ferry(store, &[HostEntry::local("db", &base)])?;
    ferry.json(&["store", "init"])?;
    let p = ferry.json(&["capture", "db"])?;
    let cfg = moto.sdk_config().await;
    let cloud = Cloud::new(&cfg, Some(TABLE.into()), 128);
    let repo = Repository::open(Backend::open_with(store, &cfg)?).await?;
    let dead = steps::plan(
        &cloud,
        &repo,
        PlanRequest {
            host: "db".into(),
            point: None,
            attempt: "dies".into(),
        },
    )
    .await?;
    // Half its ranges, then the attempt is gone (stopped execution, lost process).
    for &r in &dead.ranges[..dead.ranges.len() / 2] {
        steps::write(&cloud, &repo, dead.write(r).unwrap()).await?;
    }
    // Its lock runs out.
    let lock = ferry_core::keys::build_lock("db", p["point"].as_str().unwrap());
    moto.expire_lock(TABLE, &lock.pk, &lock.sk)?;
    let (plan, done) = ferry_tests::build::build(&cloud, &repo, "db", "rerun").await?;
    assert_ne!(plan.snapshot_id, dead.snapshot_id);
    let gone = moto.aws(&[
        "ec2",
        "describe-snapshots",
        "--filters",
        "Name=tag:ferry:attempt,Values=dies",
    ])?;
    assert_eq!(gone["Snapshots"].as_array().map(Vec::len), Some(0));
    let want = file_blocks(&base)?;
    let got = snapshot_blocks(&cloud.ebs, &done.snapshot_id).await?;
    assert_eq!(got.len(), nonzero(&want).len());
    row(
        "image build",
        "the build dies half-way without cleaning up (lock left to expire)",
        "the next attempt takes the expired lock, deletes the dead attempt's unfinished snapshot and builds a complete one",
    );
    Ok(())
}

#[tokio::test]
async fn migrate_launch_refused_then_rerun() -> Result<()> {
    use ferry_fn_launch::handler;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let (_, subnet) = moto.network("10.50.0.0/16", "10.50.1.0/24")?;
    let ami = moto.test_image("ferry-fault-test")?;
    let cfg = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&cfg);
    let spec = |run: &str, subnet: &str| LaunchSpec {
        run_id: run.into(),
        host: "web".into(),
        image_id: ami.clone(),
        instance_type: "t3.small".into(),
        subnet_id: subnet.into(),
        private_ip: None,
        security_group_ids: vec![],
        group: None,
    };
    let bad = handler::handle(
        &ec2,
        InstanceRequest::Launch(spec("run-1", "subnet-00000000")),
    )
    .await;
    assert!(bad.is_err());
    // The definition's clean-up of a failed launch.
    let none = handler::handle(
        &ec2,
        InstanceRequest::TerminateRun {
            run_id: "run-1".into(),
        },
    )
    .await?
    .removal()
    .context("terminate_run answers a removal")?;
    assert!(none.terminated.is_empty() && none.done(), "{none:?}");
    let good = handler::handle(&ec2, InstanceRequest::Launch(spec("run-2", &subnet)))
        .await?
        .state()
        .context("launch answers a state")?;
    assert!(good.launched_now);
    let left = moto.aws(&[
        "ec2",
        "describe-instances",
        "--filters",
        "Name=tag:ferry:run-id,Values=run-1",
    ])?;
    assert_eq!(left["Reservations"].as_array().map(Vec::len), Some(0));
    row(
        "migration",
        "RunInstances refused (a subnet that does not exist)",
        "the step fails NonRetryable, its clean-up finds no instance of the run; the rerun launches one",
    );
    Ok(())
}
