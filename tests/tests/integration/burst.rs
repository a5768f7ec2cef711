//! Hybrid burst on the local stack: the web tier's load (connections the test's
//! clients hold to its two on-prem servers) sampled over SSH and published by the
//! daemon, its alarms starting bursts and scale-ins hands-off through the template's
//! rule and the burst function, the Auto Scaling group and the hybrid target group as
//! a user reads them with the `aws` CLI. moto evaluates no metric alarm: each test
//! checks that the metric the alarm watches was published past its threshold, then
//! sets the state as CloudWatch would.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_tests::burst::{BurstBed, Clients, TIER};
use ferry_tests::dr::{executions, set_alarm, wait_execution, wait_until, Daemon};
use ferry_tests::stack::TABLE;
use serde_json::Value;

const BURST_SM: &str = "ferry-burst";
const SCALE_IN_SM: &str = "ferry-scale-in";
const OUT: &str = "ferry-burst-web-out";
const IN: &str = "ferry-burst-web-in";

/// The executions of `sm` whose names start with `prefix`, oldest first.
fn runs(bed: &BurstBed, sm: &str, prefix: &str) -> Result<Vec<Value>> {
    let arn = bed.stack.state_machine(sm)?;
    let mut r: Vec<Value> = executions(bed.moto(), &arn)?
        .into_iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect();
    r.sort_by(|a, b| a["startDate"].to_string().cmp(&b["startDate"].to_string()));
    Ok(r)
}

/// Waits for the `n`-th execution of `sm` named `prefix*` to end; returns it described.
fn nth_run(bed: &BurstBed, sm: &str, prefix: &str, n: usize) -> Result<Value> {
    wait_until(
        &format!("execution {n} of {prefix}*"),
        Duration::from_secs(60),
        || Ok(runs(bed, sm, prefix)?.len() >= n),
    )?;
    let arn = runs(bed, sm, prefix)?[n - 1]["executionArn"]
        .as_str()
        .context("no arn")?
        .to_string();
    wait_execution(bed.moto(), &arn, Duration::from_secs(120))
}

/// The run and the last events of its history, for a failure message.
fn explain(bed: &BurstBed, run: &Value) -> String {
    let arn = run["executionArn"].as_str().unwrap_or_default();
    let h = ferry_tests::dr::history(bed.moto(), arn).unwrap_or_default();
    let tail: Vec<String> = h.iter().rev().take(6).rev().map(Value::to_string).collect();
    format!("{run}\n{}", tail.join("\n"))
}

/// The Auto Scaling group's instance ids in service.
fn in_service(bed: &BurstBed) -> Result<Vec<String>> {
    let mut ids: Vec<String> = bed.group()?["Instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["LifecycleState"] == "InService")
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids)
}

/// (private address, image, state) of instances.
fn described(bed: &BurstBed, ids: &[String]) -> Result<Vec<(String, String, String)>> {
    let mut args = vec!["ec2", "describe-instances", "--instance-ids"];
    args.extend(ids.iter().map(String::as_str));
    let d = bed.moto().aws(&args)?;
    Ok(d["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            (
                i["PrivateIpAddress"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                i["ImageId"].as_str().unwrap_or_default().to_string(),
                i["State"]["Name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

#[test]
fn burst_web_tier_bursts_on_load_and_scales_in_when_it_falls() -> Result<()> {
    let bed = BurstBed::new("")?;
    // Both on-prem servers are captured and built; web1 is the golden host.
    let (_, other) = bed.capture_and_build("web2")?;
    let (point, ami) = bed.capture_and_build("web1")?;
    assert_ne!(other, ami);

    // Setup makes everything, says so, and a second run changes nothing.
    let setup = bed.ferry.json(&["burst", "setup", TIER])?;
    assert_eq!(setup["image_id"], ami.as_str(), "{setup}");
    assert_eq!(setup["point"], point.as_str());
    let changes = setup["changes"].to_string();
    for what in [
        "launch template ferry-burst-web created",
        "Auto Scaling group ferry-burst-web created",
        "target-tracking policy",
        "on-prem targets registered",
        "alarm ferry-burst-web-out created",
        "alarm ferry-burst-web-in created",
        "tier record created",
    ] {
        assert!(changes.contains(what), "{what}: {changes}");
    }
    assert!(
        changes.contains(":scalingPolicy:"),
        "the policy's ARN: {changes}"
    );
    let again = bed.ferry.json(&["burst", "setup", TIER])?;
    assert_eq!(again["changes"], serde_json::json!([]), "{again}");
    let mut onprem = bed.onprem.clone();
    onprem.sort();
    assert_eq!(bed.targets()?, onprem);
    let g = bed.group()?;
    assert_eq!(
        (
            g["MinSize"].as_i64(),
            g["MaxSize"].as_i64(),
            g["DesiredCapacity"].as_i64()
        ),
        (Some(0), Some(2), Some(0))
    );
    let policies = bed.moto().aws(&[
        "autoscaling",
        "describe-policies",
        "--auto-scaling-group-name",
        "ferry-burst-web",
    ])?;
    let tt = &policies["ScalingPolicies"][0]["TargetTrackingConfiguration"];
    assert_eq!(tt["DisableScaleIn"], true, "{policies}");

    // The daemon publishes the load; the test's clients make the hosts busy.
    let mut daemon = Daemon::start(
        &bed.ferry,
        bed.stack.path().join("daemon.log"),
        &["--tier", TIER],
    )?;
    daemon.wait_log("publishing the tier's load", Duration::from_secs(30))?;
    let clients = Clients::start(&bed.service_addrs(), 8)?;
    wait_until(
        "the load above 5 published",
        Duration::from_secs(40),
        || Ok(bed.load(Duration::from_secs(15))?.iter().any(|v| *v >= 8.0)),
    )?;
    let alarm = bed
        .moto()
        .aws(&["cloudwatch", "describe-alarms", "--alarm-names", OUT])?;
    let a = &alarm["MetricAlarms"][0];
    assert_eq!(
        (
            a["Namespace"].as_str(),
            a["MetricName"].as_str(),
            a["Threshold"].as_f64()
        ),
        (Some("Ferry/Burst"), Some("Load"), Some(5.0)),
        "{alarm}"
    );
    assert_eq!(a["ComparisonOperator"], "GreaterThanThreshold");

    // CloudWatch would now fire the burst alarm: a burst runs without any ferry command.
    set_alarm(bed.moto(), OUT, "ALARM", "test: Load 8 > 5 for 1 period")?;
    let first = nth_run(&bed, BURST_SM, "burst-web-", 1)?;
    assert_eq!(first["status"], "SUCCEEDED", "{}", explain(&bed, &first));
    let out: Value = serde_json::from_str(first["output"].as_str().unwrap_or("{}"))?;
    assert_eq!(out["desired"], 2, "{out}");
    let ids = in_service(&bed)?;
    assert_eq!(ids.len(), 2, "{ids:?}");
    let inst = described(&bed, &ids)?;
    assert!(
        inst.iter()
            .all(|(_, image, state)| image == &ami && state == "running"),
        "{inst:?}"
    );
    let mut want = onprem.clone();
    want.extend(inst.iter().map(|(ip, _, _)| ip.clone()));
    want.sort();
    assert_eq!(
        bed.targets()?,
        want,
        "the two on-prem servers beside the two instances"
    );

    // A second alarm during the burst adds nothing beyond max.
    set_alarm(bed.moto(), OUT, "OK", "test: between samples")?;
    set_alarm(bed.moto(), OUT, "ALARM", "test: Load still > 5")?;
    let second = nth_run(&bed, BURST_SM, "burst-web-", 2)?;
    assert_eq!(second["status"], "SUCCEEDED", "{}", explain(&bed, &second));
    assert_eq!(in_service(&bed)?, ids);
    assert_eq!(bed.group()?["DesiredCapacity"], 2);
    // Above max is refused (as Auto Scaling does), whoever asks.
    assert!(bed
        .moto()
        .aws(&[
            "autoscaling",
            "set-desired-capacity",
            "--auto-scaling-group-name",
            "ferry-burst-web",
            "--desired-capacity",
            "3"
        ])
        .is_err());

    // The load falls: the scale-in alarm fires, the tier scales in, drained first.
    drop(clients);
    wait_until(
        "the load below 1 published",
        Duration::from_secs(40),
        || {
            Ok(bed
                .load(Duration::from_secs(3))?
                .last()
                .is_some_and(|v| *v < 1.0))
        },
    )?;
    set_alarm(bed.moto(), OUT, "OK", "test: Load 0 < 5")?;
    set_alarm(bed.moto(), IN, "ALARM", "test: Load 0 < 1 for 1 period")?;
    let scale_in = nth_run(&bed, SCALE_IN_SM, "scale-in-web-", 1)?;
    assert_eq!(
        scale_in["status"],
        "SUCCEEDED",
        "{}",
        explain(&bed, &scale_in)
    );
    assert!(in_service(&bed)?.is_empty());
    assert_eq!(bed.group()?["DesiredCapacity"], 0);
    assert!(described(&bed, &ids)?
        .iter()
        .all(|(_, _, s)| s == "terminated"));
    assert_eq!(bed.targets()?, onprem, "exactly the two on-prem servers");
    let g = bed.group()?;
    assert_eq!(
        g["SuspendedProcesses"],
        serde_json::json!([]),
        "scaling resumed: {g}"
    );

    // The history shows the drain before the instances went.
    let arn = scale_in["executionArn"].as_str().unwrap_or_default();
    let h = ferry_tests::dr::history(bed.moto(), arn)?;
    let entered: Vec<&str> = h
        .iter()
        .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str())
        .collect();
    let pos = |s: &str| entered.iter().position(|x| *x == s);
    assert!(
        pos("Drain") < pos("WaitForDeregistration")
            && pos("WaitForDeregistration") < pos("LowerCapacity"),
        "{entered:?}"
    );

    // What the user sees.
    let st = bed.ferry.json(&["burst", "status", TIER])?;
    let t = &st["tiers"][0];
    assert_eq!(t["onprem_targets"], 2, "{st}");
    assert_eq!(t["aws_desired"], 0);
    assert_eq!(t["scale_in_alarm"], "ALARM");
    assert_eq!(t["image_in_use"], ami.as_str());
    assert_eq!(t["newest_image"], ami.as_str());
    let runs: Vec<(String, String)> = t["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["run_kind"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|(_, s)| s == "succeeded"), "{runs:?}");
    assert_eq!(runs.iter().filter(|(k, _)| k == "burst").count(), 2);
    let burst_run = t["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["run_id"] == first["name"])
        .context("the first burst's run item")?;
    assert_eq!(
        burst_run["instances"].as_array().map(Vec::len),
        Some(2),
        "{burst_run}"
    );
    assert!(
        burst_run["alarm_to_done_s"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{burst_run}"
    );

    let (_, status) = daemon.terminate(Duration::from_secs(20))?;
    assert!(status.success(), "{}", daemon.log_text());
    Ok(())
}

#[test]
fn burst_new_image_of_the_golden_host_rolls_into_the_launch_template() -> Result<()> {
    let bed = BurstBed::new("")?;
    let (_, first) = bed.capture_and_build("web1")?;
    bed.ferry.json(&["burst", "setup", TIER])?;
    let before = bed.template_versions()?;
    assert_eq!(before.len(), 1);
    // The golden host changes; its next capture's image build rolls the new image in.
    let disk = &bed.stack.host("web1").disk;
    ferry_tests::disk::scribble(disk, 77, 4, 64 << 10)?;
    let (_, second) = bed.capture_and_build("web1")?;
    assert_ne!(first, second);
    let after = bed.template_versions()?;
    assert_eq!(after.len(), 2, "{after:?}");
    let (old, new) = (
        &before[0]["LaunchTemplateData"],
        &after[1]["LaunchTemplateData"],
    );
    assert_eq!(new["ImageId"], second.as_str(), "{new}");
    assert_eq!(new["InstanceType"], "t3.small");
    // Every other field as it was.
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().map(|o| o.remove("ImageId"));
        v
    };
    assert_eq!(strip(old), strip(new));
    let st = bed.ferry.json(&["burst", "status", TIER])?;
    assert_eq!(st["tiers"][0]["image_in_use"], second.as_str(), "{st}");
    Ok(())
}

/// The tier's record names `host` as its golden host (as a record written with another
/// config would).
fn set_golden(bed: &BurstBed, host: &str) -> Result<()> {
    bed.moto().aws(&[
        "dynamodb",
        "update-item",
        "--table-name",
        TABLE,
        "--key",
        r#"{"pk": {"S": "BURSTS"}, "sk": {"S": "web"}}"#,
        "--update-expression",
        "SET golden = :g",
        "--expression-attribute-values",
        &serde_json::json!({":g": {"S": host}}).to_string(),
    ])?;
    Ok(())
}

#[test]
fn burst_fails_with_its_reason_and_changes_nothing() -> Result<()> {
    let bed = BurstBed::new("")?;
    // No built image of the golden host yet: setup refuses and creates nothing.
    let r = bed.ferry.run(&["burst", "setup", TIER])?;
    assert!(!r.ok(), "{}", r.stdout);
    let err = r.stderr;
    assert!(
        err.contains("has no built image yet") && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(bed
        .moto()
        .aws(&[
            "ec2",
            "describe-launch-template-versions",
            "--launch-template-name",
            "ferry-burst-web"
        ])
        .is_err());
    assert!(bed.group()?.is_null());

    let (_, ami) = bed.capture_and_build("web1")?;
    bed.ferry.json(&["burst", "setup", TIER])?;
    let versions = bed.template_versions()?.len();

    // The record now names a golden host with no built image (web2 was never built).
    set_golden(&bed, "web2")?;
    set_alarm(bed.moto(), OUT, "ALARM", "test: Load > 5")?;
    let run = nth_run(&bed, BURST_SM, "burst-web-", 1)?;
    assert_eq!(run["status"], "FAILED", "{}", explain(&bed, &run));
    assert_eq!(run["error"], "NoImage", "{run}");
    assert!(
        run["cause"].as_str().unwrap_or("").contains("web2"),
        "{run}"
    );
    assert_eq!(bed.group()?["DesiredCapacity"], 0);
    assert_eq!(bed.template_versions()?.len(), versions);

    // The target group is gone.
    set_golden(&bed, "web1")?;
    bed.moto().aws(&[
        "elbv2",
        "delete-target-group",
        "--target-group-arn",
        &bed.target_group,
    ])?;
    set_alarm(bed.moto(), OUT, "OK", "test")?;
    set_alarm(bed.moto(), OUT, "ALARM", "test: Load > 5")?;
    let run = nth_run(&bed, BURST_SM, "burst-web-", 2)?;
    assert_eq!(run["status"], "FAILED", "{}", explain(&bed, &run));
    assert_eq!(run["error"], "NotFound", "{run}");
    assert!(
        run["cause"].as_str().unwrap_or("").contains("target group"),
        "{run}"
    );
    assert_eq!(bed.group()?["DesiredCapacity"], 0);
    assert!(in_service(&bed)?.is_empty());
    let v = bed.template_versions()?;
    assert_eq!(v.len(), versions);
    assert_eq!(
        v[versions - 1]["LaunchTemplateData"]["ImageId"],
        ami.as_str()
    );

    // Both failures are recorded with their reasons, and the lock is free again.
    let st = bed.ferry.json(&["burst", "status", TIER])?;
    let t = &st["tiers"][0];
    assert!(t["running"].is_null(), "{st}");
    assert!(t["problems"].to_string().contains("does not exist"), "{st}");
    let errors: Vec<&str> = t["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["error"].as_str())
        .collect();
    assert!(
        errors.contains(&"NoImage") && errors.contains(&"NotFound"),
        "{st}"
    );
    Ok(())
}

#[test]
fn burst_by_weighted_dns_where_there_is_no_load_balancer() -> Result<()> {
    let bed = BurstBed::with_dns("max = 3\nburst_capacity = 2")?;
    bed.capture_and_build("web1")?;
    let setup = bed.ferry.json(&["burst", "setup", TIER])?;
    assert!(
        setup["changes"]
            .to_string()
            .contains("weighted record www.shop.example. (ferry-onprem, weight 100)"),
        "{setup}"
    );
    let mut onprem = bed.onprem.clone();
    onprem.sort();
    assert_eq!(
        bed.weighted_records()?,
        vec![("ferry-onprem".to_string(), 100, onprem.clone())]
    );
    // The target group of the bed is not the tier's: nothing registered there.
    assert!(bed.targets()?.is_empty());

    set_alarm(bed.moto(), OUT, "ALARM", "test: Load > 5")?;
    let run = nth_run(&bed, BURST_SM, "burst-web-", 1)?;
    assert_eq!(run["status"], "SUCCEEDED", "{}", explain(&bed, &run));
    let ids = in_service(&bed)?;
    assert_eq!(ids.len(), 2);
    let mut aws: Vec<String> = described(&bed, &ids)?
        .into_iter()
        .map(|(ip, _, _)| ip)
        .collect();
    aws.sort();
    assert_eq!(
        bed.weighted_records()?,
        vec![
            ("ferry-aws".to_string(), 50, aws),
            ("ferry-onprem".to_string(), 100, onprem.clone())
        ]
    );

    set_alarm(bed.moto(), IN, "ALARM", "test: Load < 1")?;
    let run = nth_run(&bed, SCALE_IN_SM, "scale-in-web-", 1)?;
    assert_eq!(run["status"], "SUCCEEDED", "{}", explain(&bed, &run));
    assert!(in_service(&bed)?.is_empty());
    // The AWS record set went before the instances, and only the on-prem one is left.
    assert_eq!(
        bed.weighted_records()?,
        vec![("ferry-onprem".to_string(), 100, onprem)]
    );
    let st = bed.ferry.json(&["burst", "status", TIER])?;
    assert_eq!(st["tiers"][0]["dns"]["aws"], serde_json::json!([]), "{st}");
    Ok(())
}
