//! `ferry-burst-bench`: how long a burst takes on the local stack, alarm to capacity in
//! service (two instances from the tier's AMI, registered and healthy in the hybrid
//! target group beside the two on-prem servers), and its scale-in, alarm to the
//! instances gone; beside, in the same run, the same steps scripted with the `aws` CLI
//! as an operator without Ferry would (set the capacity, wait for InService, register
//! the addresses, wait for healthy; deregister, wait the delay, capacity to zero, wait
//! for them to go). Then the cost of the load metric: the daemon publishes for
//! `--publish-s` seconds; the calls it made and the datapoints CloudWatch holds, per
//! hour per tier.
//!
//! moto's instances are in service at once, so the figures are orchestration: the
//! trigger (alarm -> EventBridge rule -> the burst function -> StartExecution), the
//! lock and checks, the capacity polls (every `poll`, 1 s here), the run record. On AWS
//! each burst adds the instances' boot and the target group's health checks.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_tests::burst::{BurstBed, TIER};
use ferry_tests::dr::{
    executions, next_execution, set_alarm_at_once, wait_execution, wait_until, Daemon,
};
use ferry_tests::stats::median;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// How long the daemon publishes the load for the cost figure.
    #[arg(long, default_value_t = 60)]
    publish_s: u64,
}

/// Sets `alarm` to ALARM and waits for the run it starts; (alarm -> started, alarm ->
/// ended) in seconds.
fn run(bed: &BurstBed, sm: &str, alarm: &str) -> Result<(f64, f64)> {
    let arn = bed.stack.state_machine(sm)?;
    let before = executions(bed.moto(), &arn)?.len();
    let t0 = Instant::now();
    set_alarm_at_once(bed.moto(), alarm, "ALARM", "bench")?;
    let exec = next_execution(bed.moto(), &arn, before, Duration::from_secs(60))?;
    let started = t0.elapsed().as_secs_f64();
    let d = wait_execution(
        bed.moto(),
        exec["executionArn"].as_str().context("arn")?,
        Duration::from_secs(300),
    )?;
    let ended = t0.elapsed().as_secs_f64();
    if d["status"] != "SUCCEEDED" {
        bail!("{sm}: {d}");
    }
    set_alarm_at_once(bed.moto(), alarm, "OK", "bench reset")?;
    Ok((started, ended))
}

fn group(bed: &BurstBed) -> Result<Vec<Value>> {
    Ok(bed.group()?["Instances"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// `aws elbv2 <call>` of `targets` (`Id=...,Port=...`) in the bed's target group.
fn targets_call(bed: &BurstBed, call: &str, targets: &[String]) -> Result<()> {
    let mut a = vec![
        "elbv2",
        call,
        "--target-group-arn",
        bed.target_group.as_str(),
        "--targets",
    ];
    a.extend(targets.iter().map(String::as_str));
    bed.moto().aws_process(&a)?;
    Ok(())
}

/// The same burst and scale-in with the aws CLI; (out, in) seconds.
fn by_hand(bed: &BurstBed) -> Result<(f64, f64)> {
    let m = bed.moto();
    let tg = &bed.target_group;
    let t0 = Instant::now();
    m.aws_process(&[
        "autoscaling",
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "ferry-burst-web",
        "--desired-capacity",
        "2",
    ])?;
    wait_until("2 InService", Duration::from_secs(60), || {
        Ok(group(bed)?
            .iter()
            .filter(|i| i["LifecycleState"] == "InService")
            .count()
            == 2)
    })?;
    let ids: Vec<String> = group(bed)?
        .iter()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect();
    let mut a = vec!["ec2", "describe-instances", "--instance-ids"];
    a.extend(ids.iter().map(String::as_str));
    let d = m.aws_process(&a)?;
    let ips: Vec<String> = d["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["PrivateIpAddress"].as_str().map(str::to_string))
        .collect();
    let targets: Vec<String> = ips
        .iter()
        .map(|ip| format!("Id={ip},Port={}", bed.port))
        .collect();
    targets_call(bed, "register-targets", &targets)?;
    wait_until("healthy", Duration::from_secs(60), || {
        let h = m.aws_process(&["elbv2", "describe-target-health", "--target-group-arn", tg])?;
        Ok(h["TargetHealthDescriptions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                ips.iter().any(|ip| d["Target"]["Id"] == ip.as_str())
                    && d["TargetHealth"]["State"] == "healthy"
            })
            .count()
            == 2)
    })?;
    let out = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    targets_call(bed, "deregister-targets", &targets)?;
    std::thread::sleep(Duration::from_secs(2)); // the target group's deregistration delay
    m.aws_process(&[
        "autoscaling",
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "ferry-burst-web",
        "--desired-capacity",
        "0",
    ])?;
    wait_until("none left", Duration::from_secs(60), || {
        Ok(group(bed)?.is_empty())
    })?;
    Ok((out, t1.elapsed().as_secs_f64()))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bed = BurstBed::new("")?;
    eprintln!("capturing web1, building its AMI, setting the tier up");
    bed.capture_and_build("web1")?;
    bed.ferry.json(&["burst", "setup", TIER])?;

    let (mut trig, mut out, mut sin, mut hand_out, mut hand_in) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=args.rounds {
        let (started, ended) = run(&bed, "ferry-burst", "ferry-burst-web-out")?;
        let (_, gone) = run(&bed, "ferry-scale-in", "ferry-burst-web-in")?;
        let (ho, hi) = by_hand(&bed)?;
        eprintln!("round {round}: burst {ended:.1} s (trigger {started:.1} s), scale-in {gone:.1} s; aws CLI {ho:.1} s / {hi:.1} s");
        trig.push(started);
        out.push(ended);
        sin.push(gone);
        hand_out.push(ho);
        hand_in.push(hi);
    }

    eprintln!("publishing the load for {} s", args.publish_s);
    let mut daemon = Daemon::start(
        &bed.ferry,
        bed.stack.path().join("daemon.log"),
        &["--tier", TIER, "--json"],
    )?;
    daemon.wait_log("publishing the tier's load", Duration::from_secs(30))?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(args.publish_s));
    daemon.terminate(Duration::from_secs(30))?;
    let window = t0.elapsed().as_secs_f64();
    let text = daemon.log_text();
    // The report is the pretty-printed JSON document that ends the output.
    let start = text.rfind("\n{\n").map(|i| i + 1).unwrap_or(0);
    let report: Value = serde_json::from_str(text[start..].trim())
        .with_context(|| format!("no daemon report in {text}"))?;
    let published = report["load_published"].as_f64().unwrap_or(0.0);
    let held = bed.load(Duration::from_secs(args.publish_s + 30))?.len() as f64;

    println!(
        "burst on the local stack, {} rounds (medians), 2 instances into a hybrid target group:",
        args.rounds
    );
    println!("  {:<44} {:>10} {:>12}", "", "Ferry", "aws CLI");
    println!(
        "  {:<44} {:>9.1}s {:>11}",
        "alarm -> execution started (trigger)",
        median(trig),
        "-"
    );
    println!(
        "  {:<44} {:>9.1}s {:>11.1}s",
        "alarm -> capacity in service and healthy",
        median(out),
        median(hand_out)
    );
    println!(
        "  {:<44} {:>9.1}s {:>11.1}s",
        "alarm -> instances drained and gone",
        median(sin),
        median(hand_in)
    );
    println!("load metric, sampled every 1 s for {window:.0} s:");
    println!(
        "  PutMetricData calls by the daemon: {published:.0} ({:.0} per hour per tier)",
        published / window * 3600.0
    );
    println!("  values CloudWatch holds for the tier: {held:.0}");
    println!(
        "  at the default 10 s: {:.0} calls per hour per tier",
        3600.0 / 10.0
    );
    Ok(())
}
