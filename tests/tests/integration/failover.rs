//! Failover, end to end on the local stack: a three-tier group protected, `ferry
//! daemon` syncing it (points, built AMIs, metrics), the origin made to fail, the alarm
//! firing, and the failover running without any ferry command: tiers in boot order, the
//! configured addresses, the traffic switched, the run recorded; a second alarm stopped
//! by the group's lock. And the failure paths: a host with no built image launches
//! nothing, a launch failure in a later tier removes the earlier tiers, and a dead
//! appliance beside a healthy origin does not fail over while a dead site does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ferry_core::keys;
use ferry_tests::dr::{
    alarm_state, executions, history, instances, interfaces_in, latest, metric, points, set_alarm,
    wait_execution, wait_until, BedHost, Daemon, DrBed, Service,
};
use ferry_tests::stack::{BUILD_IMAGE_SM, FAILOVER_SM, TABLE};
use serde_json::Value;

fn no_extra(_: &str) -> String {
    String::new()
}

/// The group's executions whose names start with `prefix`, oldest first.
fn runs(bed: &DrBed, prefix: &str) -> Result<Vec<Value>> {
    let sm = bed.stack.state_machine(FAILOVER_SM)?;
    let mut r: Vec<Value> = executions(bed.moto(), &sm)?
        .into_iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect();
    r.sort_by(|a, b| a["startDate"].to_string().cmp(&b["startDate"].to_string()));
    Ok(r)
}

fn group_instances(bed: &DrBed, states: &str) -> Result<Vec<Value>> {
    instances(
        bed.moto(),
        &[
            &format!("Name=tag:ferry:group,Values={}", bed.group),
            &format!("Name=instance-state-name,Values={states}"),
        ],
    )
}

/// The newest point of `host` with a built image: (point, AMI).
fn newest_built(bed: &DrBed, host: &str) -> Result<(String, String)> {
    let p = points(bed.moto(), host)?
        .into_iter()
        .find(|p| p["image_id"]["S"].is_string())
        .with_context(|| format!("{host} has no built point"))?;
    Ok((
        p["point"]["S"].as_str().unwrap_or_default().to_string(),
        p["image_id"]["S"].as_str().unwrap_or_default().to_string(),
    ))
}

fn lock_item(bed: &DrBed, kind: &str) -> Result<Value> {
    bed.moto()
        .get_item(TABLE, &keys::group_pk(&bed.group), &format!("LOCK#{kind}"))
}

/// Toggles the AWS view (OK, then ALARM): the composite goes OK then ALARM again, as a
/// second alarm would, and the rule starts a second execution.
fn second_alarm(bed: &DrBed) -> Result<()> {
    let aws = format!("ferry-{}-origin-down-aws", bed.group);
    set_alarm(bed.moto(), &aws, "OK", "test: reachable again")?;
    set_alarm(bed.moto(), &aws, "ALARM", "test: unreachable again")
}

#[test]
fn failover_runs_hands_off_from_the_alarm_tier_by_tier() -> Result<()> {
    let hosts = [
        BedHost::new("db1", "db", Some("127.77.0.10")),
        BedHost::new("app1", "app", Some("127.77.0.11")),
        BedHost::new("web1", "web", Some("127.77.0.12")),
    ];
    let ready = |t: &str| match t {
        "db" => "ready = \"health\"".to_string(),
        _ => String::new(),
    };
    let mut bed = DrBed::new("shop", &hosts, 4, "5s", "", &ready)?;
    let moto = bed.stack.moto.as_ref().context("moto")?;

    // Protected: recorded, alarms created; the same config again changes nothing.
    let p = bed.ferry.json(&["protect", "shop"])?;
    assert_eq!(p["record"], "created", "{p}");
    assert_eq!(p["failover"], "automatic");
    let again = bed.ferry.json(&["protect", "shop"])?;
    assert_eq!(again["record"], "unchanged", "{again}");
    assert!(
        again["alarms"]
            .as_array()
            .context("alarms")?
            .iter()
            .all(|a| a["action"] == "unchanged"),
        "{again}"
    );
    let composite = moto.aws(&[
        "cloudwatch",
        "describe-alarms",
        "--alarm-names",
        "ferry-shop-failover",
    ])?;
    let rule = composite["CompositeAlarms"][0]["AlarmRule"]
        .as_str()
        .context("no composite alarm")?
        .to_string();
    for child in [
        "ferry-shop-origin-down-aws",
        "ferry-shop-origin-down-appliance",
        "ferry-shop-appliance-silent",
    ] {
        assert!(rule.contains(child), "{rule}");
        assert_eq!(alarm_state(moto, child)?, "OK");
    }

    // RPO at risk: per host, notifying the topic, never failing over.
    let rpo = moto.aws(&[
        "cloudwatch",
        "describe-alarms",
        "--alarm-names",
        "ferry-shop-db1-rpo-at-risk",
    ])?;
    let rpo = &rpo["MetricAlarms"][0];
    assert_eq!(rpo["MetricName"], "RecoveryPointAge", "{rpo}");
    assert_eq!(rpo["Threshold"], 600.0);
    assert!(
        rpo["AlarmActions"][0]
            .as_str()
            .is_some_and(|a| a.ends_with(":ferry-notifications")),
        "{rpo}"
    );
    assert!(!rule.contains("rpo"), "{rule}");

    // The daemon syncs every tier (points, built AMIs) and publishes its view.
    let mut daemon = Daemon::start(&bed.ferry, bed.log("daemon.log"), &[])?;
    for h in ["db1", "app1", "web1"] {
        wait_until(
            &format!("two points of {h}, one built"),
            Duration::from_secs(240),
            || {
                let p = points(moto, h)?;
                Ok(p.len() >= 2 && p.iter().any(|p| p["image_id"]["S"].is_string()))
            },
        )?;
    }
    let group = [("Group", "shop")];
    wait_until(
        "heartbeats, a healthy origin and point ages published",
        Duration::from_secs(30),
        || {
            Ok(
                !metric(moto, "Heartbeat", &group, "Sum", Duration::from_secs(20))?.is_empty()
                    && latest(moto, "OriginHealthy", &group, 20)? == Some(1.0)
                    && ["db1", "app1", "web1"].iter().all(|h| {
                        metric(
                            moto,
                            "RecoveryPointAge",
                            &[("Group", "shop"), ("Host", h)],
                            "Maximum",
                            Duration::from_secs(60),
                        )
                        .is_ok_and(|v| !v.is_empty())
                    }),
            )
        },
    )?;
    let log = daemon.log_text();
    assert!(
        log.contains("captured")
            && log.contains("group=shop")
            && log.contains("host=db1")
            && log.contains("point="),
        "{log}"
    );

    // The origin fails: its sshd and its services stop. The appliance and the AWS-side
    // probe both see it, and the image builds in flight finish.
    bed.fail_origin();
    let moto = bed.moto();
    wait_until(
        "the appliance and AWS see the origin down",
        Duration::from_secs(60),
        || {
            Ok(latest(moto, "OriginHealthy", &group, 3)? == Some(0.0)
                && latest(moto, "OriginReachableFromAws", &group, 5)? == Some(0.0))
        },
    )?;
    let builds = bed.stack.state_machine(BUILD_IMAGE_SM)?;
    wait_until("no image build running", Duration::from_secs(300), || {
        Ok(executions(moto, &builds)?
            .iter()
            .all(|e| e["status"] != "RUNNING"))
    })?;
    let expected: Vec<(String, (String, String))> = ["db1", "app1", "web1"]
        .iter()
        .map(|h| Ok((h.to_string(), newest_built(&bed, h)?)))
        .collect::<Result<_>>()?;

    // CloudWatch would now set both views to ALARM; the local stack evaluates the
    // composite and delivers its event to the rule of the template.
    set_alarm(
        moto,
        "ferry-shop-origin-down-appliance",
        "ALARM",
        "test: OriginHealthy 0 for 1 period",
    )?;
    set_alarm(
        moto,
        "ferry-shop-origin-down-aws",
        "ALARM",
        "test: OriginReachableFromAws 0 for 1 period",
    )?;
    assert_eq!(alarm_state(moto, "ferry-shop-failover")?, "ALARM");
    let mut first = Value::Null;
    wait_until(
        "the failover started by the alarm",
        Duration::from_secs(30),
        || {
            first = runs(&bed, "failover-shop-")?
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            Ok(first.is_object())
        },
    )?;
    let first_arn = first["executionArn"].as_str().context("arn")?.to_string();
    let first_name = first["name"].as_str().context("name")?.to_string();

    // A second alarm during the run: a second execution, stopped by the lock.
    second_alarm(&bed)?;
    wait_until("a second execution", Duration::from_secs(30), || {
        Ok(runs(&bed, "failover-shop-")?.len() >= 2)
    })?;
    let second = runs(&bed, "failover-shop-")?.pop().context("second")?;
    let d2 = wait_execution(
        moto,
        second["executionArn"].as_str().context("arn")?,
        Duration::from_secs(60),
    )?;
    assert_eq!(d2["status"], "FAILED", "{d2}");
    assert_eq!(d2["error"], "GroupLocked", "{d2}");
    assert!(
        d2["cause"].as_str().unwrap_or("").contains(&first_name),
        "{d2}"
    );

    // The db tier is ready on health: its service answers at its recovery address once
    // the instance runs (moto's instances run nothing: this stands in for it).
    let mut db_service = None;
    let mut db_service_at = None;
    let started = Instant::now();
    let done = loop {
        if db_service.is_none()
            && !instances(
                moto,
                &[
                    "Name=tag:ferry:host,Values=db1",
                    "Name=instance-state-name,Values=running",
                ],
            )?
            .is_empty()
        {
            db_service = Some(Service::start("127.77.0.10", bed.port("db1"))?);
            db_service_at = Some(time::OffsetDateTime::now_utc());
        }
        let d = moto.aws(&[
            "stepfunctions",
            "describe-execution",
            "--execution-arn",
            &first_arn,
        ])?;
        if d["status"] != "RUNNING" {
            break d;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(180),
            "the failover did not end"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        done["status"],
        "SUCCEEDED",
        "{done}\n{}",
        serde_json::to_string_pretty(&history(moto, &first_arn)?)?
    );

    // The db tier was running and healthy before the app tier was launched.
    let events = history(moto, &first_arn)?;
    // The CLI prints event times as Unix seconds.
    let when = |e: &Value| {
        e["timestamp"]
            .as_f64()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp_nanos((t * 1e9) as i128).ok())
    };
    let output = |e: &Value| -> Option<Value> {
        serde_json::from_str(e["taskSucceededEventDetails"]["output"].as_str()?).ok()
    };
    let db_ready = events
        .iter()
        .filter(|e| e["type"] == "TaskSucceeded")
        .filter(|e| {
            output(e).is_some_and(|o| o["Payload"]["tier"] == "db" && o["Payload"]["ready"] == true)
        })
        .find_map(when)
        .context("no ready check of the db tier in the history")?;
    let app_launch = events
        .iter()
        .filter(|e| e["type"] == "TaskScheduled")
        .filter(|e| {
            e["taskScheduledEventDetails"]["parameters"]
                .as_str()
                .is_some_and(|p| p.contains("\"launch\"") && p.contains("\"app1\""))
        })
        .find_map(when)
        .context("no launch of app1 in the history")?;
    assert!(
        db_ready <= app_launch,
        "db ready {db_ready}, app launched {app_launch}"
    );
    assert!(db_service_at.context("the db instance never ran")? <= app_launch);

    // Instances from the newest built AMIs, at the configured addresses.
    let running = group_instances(&bed, "running")?;
    assert_eq!(running.len(), 3, "{running:?}");
    for (h, ip) in [
        ("db1", "127.77.0.10"),
        ("app1", "127.77.0.11"),
        ("web1", "127.77.0.12"),
    ] {
        let i = running
            .iter()
            .find(|i| {
                i["Tags"]
                    .to_string()
                    .contains(&format!("\"Value\":\"{h}\""))
            })
            .with_context(|| format!("no instance of {h}"))?;
        let (_, ami) = &expected.iter().find(|(x, _)| x == h).context("expected")?.1;
        assert_eq!(i["ImageId"], ami.as_str(), "{h}");
        assert_eq!(i["PrivateIpAddress"], ip, "{h}");
    }
    // Traffic switched to the web tier's recovery address: the record, and the target
    // group (the recovery instance in, the origin out).
    assert_eq!(bed.record_values()?, vec!["127.77.0.12".to_string()]);
    assert_eq!(bed.targets()?, vec!["127.77.0.12".to_string()]);

    // The run item: the point used per host with its achieved RPO, and the RTO.
    let item = moto.get_item(TABLE, &keys::group_pk("shop"), &keys::run_sk(&first_name))?;
    let run = &item["Item"];
    assert_eq!(run["status"]["S"], "failed-over", "{item}");
    assert!(
        run["rto_s"]["N"]
            .as_str()
            .and_then(|n| n.parse::<f64>().ok())
            .is_some_and(|r| r > 0.0),
        "{item}"
    );
    let run_hosts = run["hosts"]["L"].as_array().context("hosts")?;
    assert_eq!(run_hosts.len(), 3);
    for h in run_hosts {
        let h = &h["M"];
        let name = h["host"]["S"].as_str().unwrap_or_default();
        let (point, _) = &expected.iter().find(|(x, _)| x == name).context("host")?.1;
        assert_eq!(h["point"]["S"], point.as_str(), "{name}");
        assert!(
            h["rpo_s"]["N"]
                .as_str()
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|r| r >= 0.0),
            "{h}"
        );
    }
    assert_eq!(run["trigger"]["M"]["alarm"]["S"], "ferry-shop-failover");

    // The group is FAILED_OVER, and the daemon stops syncing it, even with the origin back.
    let status = bed.ferry.json(&["dr", "status", "shop"])?;
    assert_eq!(status["groups"][0]["state"], "FAILED_OVER", "{status}");
    assert_eq!(status["groups"][0]["held_by"], first_name.as_str());
    daemon.wait_log("syncing stops", Duration::from_secs(20))?;
    for h in &mut bed.stack.hosts {
        h.restart()?;
    }
    let moto = bed.moto();
    let before: Vec<usize> = ["db1", "app1", "web1"]
        .iter()
        .map(|h| points(moto, h).map(|p| p.len()))
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(12));
    let after: Vec<usize> = ["db1", "app1", "web1"]
        .iter()
        .map(|h| points(moto, h).map(|p| p.len()))
        .collect::<Result<_>>()?;
    assert_eq!(before, after, "the daemon synced a failed-over group");

    // A second alarm after the run: stopped by the lock, no second set of instances.
    second_alarm(&bed)?;
    wait_until("a third execution", Duration::from_secs(30), || {
        Ok(runs(&bed, "failover-shop-")?.len() >= 3)
    })?;
    let third = runs(&bed, "failover-shop-")?.pop().context("third")?;
    let d3 = wait_execution(
        moto,
        third["executionArn"].as_str().context("arn")?,
        Duration::from_secs(60),
    )?;
    assert_eq!(
        (d3["status"].as_str(), d3["error"].as_str()),
        (Some("FAILED"), Some("GroupLocked")),
        "{d3}"
    );
    assert!(
        d3["cause"].as_str().unwrap_or("").contains(&first_name),
        "{d3}"
    );
    assert_eq!(group_instances(&bed, "pending,running")?.len(), 3);

    // SIGTERM stops the daemon within seconds.
    let (took, st) = daemon.terminate(Duration::from_secs(10))?;
    assert!(st.success(), "{st}: {}", daemon.log_text());
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(db_service);
    Ok(())
}

#[test]
fn failover_without_a_built_image_launches_nothing() -> Result<()> {
    let hosts = [
        BedHost::new("db1", "db", None),
        BedHost::new("app1", "app", None),
    ];
    let bed = DrBed::new("norpo", &hosts, 2, "1h", "", &no_extra)?;
    bed.capture_and_build("db1")?;
    bed.ferry.json(&["capture", "app1"])?;
    bed.ferry.json(&["protect", "norpo"])?;
    let r = bed.ferry.run(&["failover", "norpo", "--json"])?;
    assert!(!r.ok(), "{}", r.stdout);
    let doc = r.json()?;
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["error"], "NoRecoveryPoint", "{doc}");
    let cause = doc["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("app1") && cause.contains("not built"),
        "{cause}"
    );
    assert!(group_instances(
        &bed,
        "pending,running,stopping,stopped,shutting-down,terminated"
    )?
    .is_empty());
    assert!(
        lock_item(&bed, "failover")?.get("Item").is_none(),
        "the lock was not released"
    );
    assert_eq!(doc["run"]["status"], "failed", "{doc}");
    let status = bed.ferry.json(&["dr", "status", "norpo"])?;
    assert_eq!(status["groups"][0]["state"], "PROTECTED");
    Ok(())
}

#[test]
fn failover_launch_failure_in_the_app_tier_cleans_up_the_db_tier() -> Result<()> {
    let mut app = BedHost::new("app1", "app", None);
    app.extra = "subnet = \"subnet-00000000\"\n".into();
    let hosts = [BedHost::new("db1", "db", Some("127.77.0.20")), app];
    let bed = DrBed::new("badapp", &hosts, 2, "1h", "", &no_extra)?;
    bed.capture_and_build("db1")?;
    bed.capture_and_build("app1")?;
    bed.ferry.json(&["protect", "badapp"])?;
    let r = bed.ferry.run(&["failover", "badapp", "--json"])?;
    assert!(!r.ok(), "{}", r.stdout);
    let doc = r.json()?;
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert!(
        doc["cause"].as_str().unwrap_or("").contains("RunInstances"),
        "{doc}"
    );
    // The db tier was launched, and is gone again.
    let all = group_instances(
        &bed,
        "pending,running,stopping,stopped,shutting-down,terminated",
    )?;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["State"]["Name"], "terminated");
    assert!(all[0]["Tags"].to_string().contains("db1"));
    assert!(
        lock_item(&bed, "failover")?.get("Item").is_none(),
        "the lock was not released"
    );
    assert_eq!(doc["run"]["status"], "failed");
    // The recovery address is free again: a corrected run could use it.
    assert_eq!(interfaces_in(bed.moto(), &bed.subnet)?, 0);
    Ok(())
}

#[test]
fn failover_needs_the_site_and_aws_to_agree() -> Result<()> {
    let hosts = [BedHost::new("db1", "db", None)];
    let mut bed = DrBed::new("split", &hosts, 2, "1h", "", &no_extra)?;
    bed.ferry.json(&["protect", "split"])?;
    let moto = bed.stack.moto.as_ref().context("moto")?;
    let group = [("Group", "split")];
    let mut daemon = Daemon::start(&bed.ferry, bed.log("daemon.log"), &[])?;
    wait_until("a heartbeat", Duration::from_secs(60), || {
        Ok(!metric(moto, "Heartbeat", &group, "Sum", Duration::from_secs(10))?.is_empty())
    })?;

    // The appliance dies; the origin is fine, and AWS still reaches it.
    daemon.kill9()?;
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        metric(moto, "Heartbeat", &group, "Sum", Duration::from_secs(2))?
            .iter()
            .all(|v| *v == 0.0)
    );
    wait_until("AWS reaching the origin", Duration::from_secs(30), || {
        Ok(latest(moto, "OriginReachableFromAws", &group, 5)? == Some(1.0))
    })?;
    set_alarm(
        moto,
        "ferry-split-appliance-silent",
        "ALARM",
        "test: no heartbeat for 1 period",
    )?;
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(alarm_state(moto, "ferry-split-failover")?, "OK");
    assert!(
        runs(&bed, "failover-split-")?.is_empty(),
        "a dead appliance alone failed over"
    );

    // Then the whole site dies: AWS cannot reach the origin either.
    bed.fail_origin();
    let moto = bed.moto();
    wait_until(
        "AWS seeing the origin down",
        Duration::from_secs(30),
        || Ok(latest(moto, "OriginReachableFromAws", &group, 5)? == Some(0.0)),
    )?;
    set_alarm(
        moto,
        "ferry-split-origin-down-aws",
        "ALARM",
        "test: unreachable for 1 period",
    )?;
    assert_eq!(alarm_state(moto, "ferry-split-failover")?, "ALARM");
    wait_until(
        "a failover started by the alarm",
        Duration::from_secs(30),
        || Ok(!runs(&bed, "failover-split-")?.is_empty()),
    )?;
    Ok(())
}
