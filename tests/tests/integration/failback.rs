//! Failback, end to end on the local stack: a failed-over two-tier group whose
//! recovery instances took writes during the outage comes home with `ferry failback`:
//! two passes of only the changed bytes, the hooks, the traffic back, the recovery
//! instances terminated, the group PROTECTED and synced from the origin again. An
//! appliance killed mid-pass is waited for, and its daemon finishes the run when it is
//! back; an abort before the cutover leaves the group in AWS as it was.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_core::keys;
use ferry_tests::dr::{instances, points, wait_execution, wait_until, Daemon};
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
        // The final pass trusts the first pass's checked point on the origin (after a
        // sample check) instead of reading the whole origin disk again.
        assert_eq!(
            n(&passes[&format!("{h}/2")]["M"]["origin_bytes_read"]),
            0.0,
            "{h}: {run}"
        );
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

/// `ferry failback shop` running in the background, its output in a log file.
fn spawn_failback(home: &HomeBed, log: &str) -> Result<std::process::Child> {
    let out = std::fs::File::create(home.bed.log(log))?;
    home.bed
        .ferry
        .command(&["failback", "shop"])
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting ferry failback")
}

fn wait_first_write(home: &HomeBed, child: &mut std::process::Child, log: &str) -> Result<()> {
    wait_until(
        "the first pass writing db1's origin",
        Duration::from_secs(120),
        || {
            if let Some(s) = child.try_wait()? {
                anyhow::bail!(
                    "ferry failback exited ({s}) before writing: {}",
                    std::fs::read_to_string(home.bed.log(log)).unwrap_or_default()
                );
            }
            Ok(bytes_written(home.bed.stack.host("db1")) > 0)
        },
    )
}

fn history_types(home: &HomeBed, arn: &str) -> Result<Vec<String>> {
    Ok(ferry_tests::dr::history(home.bed.moto(), arn)?
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_string))
        .collect())
}

#[test]
fn failback_resumes_when_the_appliance_killed_mid_pass_is_back() -> Result<()> {
    // Every write to an origin disk waits 3 s: the first pass is under way long enough
    // to be killed in the middle.
    let home = HomeBed::new(16, 3)?;
    let bed = &home.bed;
    let mut first = spawn_failback(&home, "failback-1.log")?;
    wait_first_write(&home, &mut first, "failback-1.log")?;
    first.kill()?;
    first.wait()?;
    let killed_at = bytes_written(bed.stack.host("db1"));

    // The execution waits for the appliance: its task's heartbeat times out and the
    // task is sent again, the run still RUNNING.
    let sm = bed.stack.state_machine("ferry-failback")?;
    let exec = ferry_tests::dr::executions(bed.moto(), &sm)?
        .into_iter()
        .find(|e| e["status"] == "RUNNING")
        .context("no failback running after the kill")?;
    let arn = exec["executionArn"].as_str().context("arn")?.to_string();
    wait_until("a heartbeat timeout", Duration::from_secs(30), || {
        Ok(history_types(&home, &arn)?
            .iter()
            .any(|t| t == "TaskTimedOut"))
    })?;
    let d = bed.moto().aws(&[
        "stepfunctions",
        "describe-execution",
        "--execution-arn",
        &arn,
    ])?;
    assert_eq!(d["status"], "RUNNING", "{d}");

    // The restarted appliance (its daemon, as systemd starts it again) resumes the
    // same execution and finishes it, without any ferry command.
    let mut daemon = Daemon::start(&bed.ferry, bed.log("daemon.log"), &[])?;
    let done = wait_execution(bed.moto(), &arn, Duration::from_secs(240))?;
    assert_eq!(done["status"], "SUCCEEDED", "{done}\n{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("failing back"),
        "{}",
        daemon.log_text()
    );
    assert_home(&home)?;
    for (h, _, _) in HOSTS {
        let changed = home.changed_bytes(h) as f64;
        let counted = bytes_written(bed.stack.host(h)) as f64;
        assert!(
            counted <= 2.0 * changed,
            "{h}: {counted} bytes written in all for {changed} changed (killed after {killed_at})"
        );
    }
    assert_eq!(
        bed.record_values()?,
        vec![bed.stack.host("web1").ip.clone()]
    );
    let status = bed.ferry.json(&["dr", "status", "shop"])?;
    assert_eq!(status["groups"][0]["state"], "PROTECTED", "{status}");
    daemon.terminate(Duration::from_secs(10))?;

    // A failback of a group that is home is refused, touching nothing.
    let again = bed.ferry.run(&["failback", "shop", "--json"])?;
    let again_out = again.json()?;
    assert!(!again.ok(), "{again_out}");
    assert_eq!(again_out["error"], "NotFailedOver", "{again_out}");
    assert_eq!(
        bed.record_values()?,
        vec![bed.stack.host("web1").ip.clone()]
    );
    Ok(())
}

#[test]
fn failback_abort_before_the_cutover_leaves_the_group_in_aws() -> Result<()> {
    let home = HomeBed::new(16, 4)?;
    let bed = &home.bed;
    let mut worker = spawn_failback(&home, "failback.log")?;
    wait_first_write(&home, &mut worker, "failback.log")?;

    let r = bed.ferry.run(&["failback", "shop", "--abort", "--json"])?;
    let out = r.json()?;
    assert!(r.ok(), "{out}\n{}", r.stderr);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["aborted"], true, "{out}");
    assert_eq!(out["error"], "FailbackAborted", "{out}");
    let st = worker.wait()?;
    assert!(!st.success(), "the worker's failback reported success");

    // Untouched in AWS: traffic, recovery instances, the lock (FAILED_OVER).
    let status = bed.ferry.json(&["dr", "status", "shop"])?;
    assert_eq!(status["groups"][0]["state"], "FAILED_OVER", "{status}");
    assert_eq!(status["groups"][0]["held_by"], home.failover_run.as_str());
    assert_eq!(bed.record_values()?, vec!["127.77.0.21".to_string()]);
    assert_eq!(bed.targets()?, vec!["127.77.0.21".to_string()]);
    let running = instances(
        bed.moto(),
        &[
            &format!("Name=tag:ferry:run-id,Values={}", home.failover_run),
            "Name=instance-state-name,Values=running",
        ],
    )?;
    assert_eq!(running.len(), 2, "{running:?}");
    // The origin's partial writes are reported as such.
    let name = out["name"].as_str().context("name")?;
    let run = run_item(&home, name)?;
    assert_eq!(run["status"]["S"], "aborted", "{run}");
    let summary = run["summary"]["S"].as_str().unwrap_or_default();
    assert!(summary.contains("FAILED_OVER"), "{summary}");
    assert!(
        summary.contains("part-written") && summary.contains("db1"),
        "{summary}"
    );
    Ok(())
}
