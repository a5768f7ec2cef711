//! Failback, end to end on the local stack: a failed-over two-tier group whose
//! recovery instances took writes during the outage comes home with `ferry failback`:
//! two passes of only the changed bytes, the hooks, the traffic back, the recovery
//! instances terminated, the group PROTECTED and synced from the origin again. An
//! appliance killed mid-pass is waited for and finishes on restart; an abort before
//! the cutover leaves the group in AWS as it was.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_core::keys;
use ferry_tests::dr::{instances, points, wait_until, Daemon};
use ferry_tests::failback::{bytes_written, HomeBed, HOSTS, STOP_WRITE};
use ferry_tests::stack::TABLE;
use serde_json::Value;

/// The largest chunk (FastCDC's maximum): a write changes whole chunks.
const MAX_CHUNK: u64 = 128 << 10;

fn run_item(home: &HomeBed, run: &str) -> Result<Value> {
    let item = home
        .bed
        .moto()
        .get_item(TABLE, &keys::group_pk("shop"), &keys::run_sk(run))?;
    Ok(item["Item"].clone())
}

fn n(v: &Value) -> f64 {
    v["N"].as_str().and_then(|s| s.parse().ok()).unwrap_or(-1.0)
}

/// Every origin disk equals its recovery instance's final disk, byte for byte.
fn assert_home(home: &HomeBed) -> Result<()> {
    for (h, _, _) in HOSTS {
        let origin = std::fs::read(&home.bed.stack.host(h).disk)?;
        let recovery = std::fs::read(&home.recovery(h).disk)?;
        assert!(
            origin == recovery,
            "{h}: the origin's disk differs from its recovery instance's"
        );
    }
    Ok(())
}

#[test]
fn failback_brings_the_group_home_writing_only_what_changed() -> Result<()> {
    let home = HomeBed::new(16, 0)?;
    let bed = &home.bed;
    let moto = bed.moto();
    let web_ip = bed.stack.host("web1").ip.clone();
    assert_eq!(bed.record_values()?, vec!["127.77.0.21".to_string()]);
    let status = bed.ferry.json(&["dr", "status", "shop"])?;
    assert_eq!(status["groups"][0]["state"], "FAILED_OVER", "{status}");

    let out = bed.ferry.json(&["failback", "shop"])?;
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let name = out["name"].as_str().context("name")?.to_string();
    assert!(name.starts_with("failback-shop-"), "{name}");

    // Each origin now holds exactly its recovery instance's final disk, the stop
    // hook's last writes included; the origin's own late writes were undone.
    assert_home(&home)?;
    for (h, _, _) in HOSTS {
        assert!(
            home.recovery(h).dir.join("stopped").exists(),
            "{h}: no pre-cutover hook ran"
        );
    }

    // Traffic is home: the record and the target group hold the origin only.
    assert_eq!(bed.record_values()?, vec![web_ip.clone()]);
    assert_eq!(bed.targets()?, vec![web_ip.clone()]);
    // The recovery instances are terminated.
    let left = instances(
        moto,
        &[
            &format!("Name=tag:ferry:run-id,Values={}", home.failover_run),
            "Name=instance-state-name,Values=pending,running,stopping,stopped",
        ],
    )?;
    assert!(left.is_empty(), "{left:?}");

    // The run item: both passes of each host, bytes, the cutover window.
    let run = run_item(&home, &name)?;
    assert_eq!(run["status"]["S"], "failed-back", "{run}");
    assert_eq!(run["failover_run"]["S"], home.failover_run.as_str());
    let passes = run["passes"]["M"].as_object().context("passes")?;
    let mut uploaded = 0.0;
    for (h, _, _) in HOSTS {
        let changed = home.changed_bytes(h) as f64;
        let mut written = 0.0;
        for p in [1, 2] {
            let pass = &passes
                .get(&format!("{h}/{p}"))
                .with_context(|| format!("no pass {p} of {h}: {run}"))?["M"];
            assert_eq!(pass["outcome"]["S"], "done", "{pass}");
            written += n(&pass["origin_bytes_written"]);
            uploaded += n(&pass["bytes_uploaded"]);
        }
        // The first pass carries the outage's writes; the second only the stop hook's
        // (whole chunks: at most a largest chunk more on either side).
        let second = n(&passes[&format!("{h}/2")]["M"]["origin_bytes_written"]);
        assert!(
            second <= (STOP_WRITE.1 + 2 * MAX_CHUNK) as f64,
            "{h}: the final pass wrote {second} bytes"
        );
        assert!(
            written <= 1.3 * changed,
            "{h}: {written} bytes written for {changed} changed"
        );
        // Counted on the origin itself, by its `dd`.
        let counted = bytes_written(bed.stack.host(h)) as f64;
        assert!(
            counted <= 1.3 * changed,
            "{h}: the origin's dd wrote {counted} bytes for {changed} changed"
        );
        assert!(
            counted >= changed * 0.99,
            "{h}: {counted} bytes counted for {changed} changed"
        );
    }
    // Random bytes do not compress: what changed is what had to travel.
    let outage: u64 = HOSTS
        .iter()
        .map(|(h, _, _)| home.changed_bytes(h))
        .sum::<u64>()
        - home
            .origin_writes
            .iter()
            .flat_map(|(_, r)| r.iter().map(|(_, l)| *l))
            .sum::<u64>();
    assert!(
        uploaded <= 1.3 * outage as f64,
        "{uploaded} bytes uploaded for {outage} changed"
    );
    assert!(n(&run["bytes_uploaded"]) == uploaded, "{run}");
    let cutover = n(&run["cutover_s"]);
    assert!(
        cutover > 0.0 && cutover < 60.0,
        "cutover {cutover} s: {run}"
    );

    // The group is PROTECTED again, and the daemon syncs it from the origin.
    let status = bed.ferry.json(&["dr", "status", "shop"])?;
    assert_eq!(status["groups"][0]["state"], "PROTECTED", "{status}");
    let before = points(moto, "db1")?.len();
    let mut daemon = Daemon::start(&bed.ferry, bed.log("daemon.log"), &[])?;
    wait_until(
        "a capture of db1 from its origin",
        Duration::from_secs(90),
        || Ok(points(moto, "db1")?.len() > before),
    )?;
    // Read from the origin, which holds the final pass's point: nothing new.
    let newest = &points(moto, "db1")?[0];
    assert_eq!(n(&newest["stats"]["M"]["bytes_new"]), 0.0, "{newest}");
    daemon.terminate(Duration::from_secs(10))?;
    Ok(())
}
