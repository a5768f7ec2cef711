//! Drills: the failover state machine in drill mode, into the group's drill subnet,
//! with no traffic switch; everything it launched removed at the end (no instance left
//! but terminated, no network interface), the group's records untouched, and the
//! measured RTO and cost reported. A drill past its time limit is stopped and removed;
//! a failover that starts during a drill goes on, and the drill stops and cleans up.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_tests::dr::{instances, interfaces_in, points, wait_until, BedHost, DrBed, Service};
use serde_json::Value;

fn run_instances(bed: &DrBed, run: &str) -> Result<Vec<Value>> {
    instances(
        bed.moto(),
        &[&format!("Name=tag:ferry:run-id,Values={run}")],
    )
}

/// Nothing of the run is left: its instances terminated, no interface in the drill
/// subnet.
fn all_removed(bed: &DrBed, run: &str) -> Result<()> {
    let i = run_instances(bed, run)?;
    assert!(!i.is_empty(), "the drill launched nothing");
    for x in &i {
        assert_eq!(x["State"]["Name"], "terminated", "{x}");
        assert_eq!(x["SubnetId"], bed.drill_subnet.as_str(), "{x}");
    }
    assert_eq!(interfaces_in(bed.moto(), &bed.drill_subnet)?, 0);
    Ok(())
}

#[test]
fn drill_runs_in_the_drill_subnet_and_removes_everything() -> Result<()> {
    let hosts = [
        BedHost::new("db1", "db", Some("127.77.0.30")),
        BedHost::new("web1", "web", Some("127.77.0.31")),
    ];
    let bed = DrBed::new("rehearse", &hosts, 2, "1h", "", &|_| String::new())?;
    bed.capture_and_build("db1")?;
    bed.capture_and_build("web1")?;
    bed.ferry.json(&["protect", "rehearse"])?;
    let record_before = bed.record_values()?;
    let targets_before = bed.targets()?;
    let points_before: Vec<Vec<Value>> = ["db1", "web1"]
        .iter()
        .map(|h| points(bed.moto(), h))
        .collect::<Result<_>>()?;

    let d = bed.ferry.json(&["drill", "rehearse"])?;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let name = d["name"].as_str().context("name")?;
    assert!(name.starts_with("drill-rehearse-"), "{name}");
    let run = &d["run"];
    assert_eq!(run["status"], "drilled", "{d}");
    assert!(run["rto_s"].as_f64().is_some_and(|r| r > 0.0), "{d}");
    assert!(run["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{d}");
    assert!(
        run["price_source"]
            .as_str()
            .is_some_and(|s| s.contains("On-Demand")),
        "{d}"
    );
    assert_eq!(run["hosts"].as_array().map(Vec::len), Some(2));
    assert!(run["switched"].is_null(), "a drill switched traffic: {d}");
    all_removed(&bed, name)?;

    // Records untouched: the traffic, the points, the group's state.
    assert_eq!(bed.record_values()?, record_before);
    assert_eq!(bed.targets()?, targets_before);
    let points_after: Vec<Vec<Value>> = ["db1", "web1"]
        .iter()
        .map(|h| points(bed.moto(), h))
        .collect::<Result<_>>()?;
    assert_eq!(points_before, points_after);
    let status = bed.ferry.json(&["dr", "status", "rehearse"])?;
    assert_eq!(status["groups"][0]["state"], "PROTECTED", "{status}");
    assert_eq!(status["groups"][0]["runs"][0]["run_id"], name);
    Ok(())
}

#[test]
fn drill_stops_at_its_time_limit_and_for_a_failover() -> Result<()> {
    let hosts = [BedHost::new("db1", "db", Some("127.77.0.40"))];
    // Ready on health: a drill instance (in the drill subnet, where nothing answers)
    // never is.
    let bed = DrBed::new(
        "busy",
        &hosts,
        2,
        "1h",
        "drill_time_limit = \"6s\"",
        &|_| "ready = \"health\"".into(),
    )?;
    bed.capture_and_build("db1")?;
    bed.ferry.json(&["protect", "busy"])?;

    // Past its time limit: stopped, everything removed, the lock released.
    let r = bed.ferry.run(&["drill", "busy", "--json"])?;
    assert!(!r.ok(), "{}", r.stdout);
    let d = r.json()?;
    assert_eq!(d["error"], "DrillTimeLimit", "{d}");
    all_removed(&bed, d["name"].as_str().context("name")?)?;

    // A longer limit; the change is shown.
    let config = std::fs::read_to_string(&bed.ferry.config)?;
    std::fs::write(
        &bed.ferry.config,
        config.replace("drill_time_limit = \"6s\"", "drill_time_limit = \"5m\""),
    )?;
    let p = bed.ferry.json(&["protect", "busy"])?;
    assert_eq!(p["record"], "updated");
    assert!(
        p["changes"]
            .to_string()
            .contains("drill.time_limit_s: 6 -> 300"),
        "{p}"
    );

    // A drill is waiting for its tier when a failover starts: the failover goes on (its
    // own instance answers at its recovery address), the drill stops and cleans up.
    let drill = bed.ferry.spawn(&["drill", "busy", "--json"])?;
    wait_until("the drill's instance", Duration::from_secs(60), || {
        Ok(!instances(
            bed.moto(),
            &[
                "Name=tag:ferry:group,Values=busy",
                "Name=instance-state-name,Values=running",
            ],
        )?
        .is_empty())
    })?;
    let _recovered = Service::start("127.77.0.40", bed.port("db1"))?;
    let f = bed.ferry.json(&["failover", "busy"])?;
    assert_eq!(f["status"], "SUCCEEDED", "{f}");
    let out = drill.wait_with_output()?;
    let d: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).to_string())?;
    assert_eq!(d["error"], "DrillPreempted", "{d}");
    assert!(
        d["cause"]
            .as_str()
            .unwrap_or("")
            .contains(f["name"].as_str().unwrap_or("?")),
        "{d}"
    );
    all_removed(&bed, d["name"].as_str().context("name")?)?;
    // The failover's instance runs on.
    let running = instances(
        bed.moto(),
        &[&format!(
            "Name=tag:ferry:run-id,Values={}",
            f["name"].as_str().unwrap_or("")
        )],
    )?;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0]["State"]["Name"], "running");
    Ok(())
}
