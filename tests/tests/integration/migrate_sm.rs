//! `statemachines/migrate.asl.json` end to end in moto: the execution builds the image
//! from the host's newest point (real build-image binary), launches it with the planned
//! type, subnet and address (real launch binary), waits until it runs, verifies it and
//! records the cutover in DynamoDB; the real aws CLI shows the operator's state names.

use std::time::Duration;

use anyhow::Result;
use ferry_core::keys;
use ferry_tests::disk;
use ferry_tests::ferry::HostEntry;
use ferry_tests::stack::{Stack, CLOUD_STORE, MIGRATE_SM, TABLE};
use serde_json::{json, Value};

#[test]
fn migrate_execution_builds_launches_verifies_and_records() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_cloud()?;
    let moto = stack.moto.as_ref().unwrap();
    let disk_path = stack.path().join("web1.img");
    disk::copy(&base, &disk_path)?;
    let ferry = stack.ferry(CLOUD_STORE, &[HostEntry::local("web1", &disk_path)])?;
    ferry.json(&["store", "init"])?;
    let point = ferry.json(&["capture", "web1"])?;

    let (_, subnet) = moto.network("10.40.0.0/16", "10.40.1.0/24")?;
    let sm = stack.state_machine(MIGRATE_SM)?;
    let run_id = "migrate-web1-20261124T1200Z";
    let input = json!({
        "run_id": run_id, "host": "web1", "point": null,
        "target": {"instance_type": "m5.large", "subnet_id": subnet, "private_ip": "10.40.1.21", "security_group_ids": []}
    });
    let done = moto.run_execution(&sm, run_id, &input, Duration::from_secs(180))?;
    let history = moto.history(&done)?;
    assert_eq!(done["status"], "SUCCEEDED", "{done}\n{history}");
    let out: Value = serde_json::from_str(done["output"].as_str().unwrap_or("{}"))?;
    assert_eq!(out["point"], point["point"]);
    assert!(
        out["summary"]
            .as_str()
            .unwrap_or("")
            .contains("web1 migrated"),
        "{out}"
    );

    // The state names read as the operator's checklist.
    let entered: Vec<String> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["stateEnteredEventDetails"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    for name in [
        "BuildRecoveryImage",
        "LaunchTarget",
        "WaitUntilRunning",
        "VerifyTarget",
        "RecordCutover",
    ] {
        assert!(
            entered.iter().any(|n| n == name),
            "{name} not in {entered:?}"
        );
    }

    let id = out["instance_id"].as_str().unwrap().to_string();
    let d = moto.aws(&["ec2", "describe-instances", "--instance-ids", &id])?;
    let inst = &d["Reservations"][0]["Instances"][0];
    assert_eq!(inst["State"]["Name"], "running");
    assert_eq!(inst["InstanceType"], "m5.large");
    assert_eq!(inst["SubnetId"], subnet.as_str());
    assert_eq!(inst["PrivateIpAddress"], "10.40.1.21");
    assert_eq!(inst["ImageId"], out["image_id"]);

    // DynamoDB: point -> snapshot -> AMI -> instance.
    let item = moto.get_item(TABLE, &keys::host_pk("web1"), &keys::run_sk(run_id))?;
    let item = &item["Item"];
    assert_eq!(item["point"]["S"], point["point"]);
    assert_eq!(item["image_id"]["S"], out["image_id"]);
    assert_eq!(item["instance_id"]["S"], id.as_str());
    assert!(item["snapshot_id"]["S"]
        .as_str()
        .unwrap_or("")
        .starts_with("snap-"));

    // A launch the target network refuses: the run fails with the step's reason in the
    // history, and no instance of that run is left.
    let bad_run = "migrate-web1-20261124T1300Z";
    let mut bad = input.clone();
    bad["run_id"] = json!(bad_run);
    bad["target"]["subnet_id"] = json!("subnet-00000000");
    let failed = moto.run_execution(&sm, bad_run, &bad, Duration::from_secs(120))?;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let history = moto.history(&failed)?.to_string();
    assert!(
        history.contains("MigrationFailed") && history.contains("RunInstances"),
        "{history}"
    );
    let left = moto.aws(&[
        "ec2",
        "describe-instances",
        "--filters",
        &format!("Name=tag:ferry:run-id,Values={bad_run}"),
    ])?;
    assert_eq!(left["Reservations"].as_array().map(Vec::len), Some(0));
    // ... and the run is recorded as failed, with the reason.
    let item = moto.get_item(TABLE, &keys::host_pk("web1"), &keys::run_sk(bad_run))?;
    assert_eq!(item["Item"]["status"]["S"], "failed", "{item}");
    assert_eq!(item["Item"]["error"]["S"], "NonRetryable");
    assert!(
        item["Item"]["cause"]["S"]
            .as_str()
            .unwrap_or("")
            .contains("RunInstances"),
        "{item}"
    );
    Ok(())
}
