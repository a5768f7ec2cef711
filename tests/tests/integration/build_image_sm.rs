//! `statemachines/build-image.asl.json` as deployed from the template, in moto's
//! interpreter against the real build-image binary: the Map writes the image's block
//! ranges in parallel; a Lambda error injected once is retried and the build succeeds;
//! a missing manifest and a corrupted pack fail the build with the reason, register no
//! AMI and leave no snapshot behind.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_tests::disk;
use ferry_tests::ferry::HostEntry;
use ferry_tests::moto::Moto;
use ferry_tests::router::Fault;
use ferry_tests::stack::{Stack, BUILD_IMAGE_SM, CLOUD_STORE, STORE_BUCKET};
use serde_json::{json, Value};

fn local_host(stack: &Stack, name: &str, disk: &std::path::Path) -> Result<HostEntry> {
    let path = stack.path().join(format!("{name}.img"));
    disk::copy(disk, &path)?;
    Ok(HostEntry {
        name: name.into(),
        ssh: None,
        identity: None,
        disk: path,
        known_hosts: None,
        extra: String::new(),
    })
}

fn entered(history: &Value, state: &str) -> usize {
    history["events"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["stateEnteredEventDetails"]["name"] == state)
                .count()
        })
        .unwrap_or(0)
}

fn snapshots_of(moto: &Moto, point: &str) -> Result<Vec<Value>> {
    let out = moto.aws(&[
        "ec2",
        "describe-snapshots",
        "--owner-ids",
        "self",
        "--filters",
        &format!("Name=tag:ferry:point,Values={point}"),
    ])?;
    Ok(out["Snapshots"].as_array().cloned().unwrap_or_default())
}

fn images_named(moto: &Moto, name: &str) -> Result<usize> {
    let out = moto.aws(&[
        "ec2",
        "describe-images",
        "--owners",
        "self",
        "--filters",
        &format!("Name=name,Values={name}"),
    ])?;
    Ok(out["Images"].as_array().map_or(0, Vec::len))
}

/// Flips bytes in the middle of one of the store's packs (the bucket is versioned; the
/// damaged copy becomes the current version). Returns the key and a copy of the intact
/// pack.
fn damage_a_pack(moto: &Moto, dir: &std::path::Path) -> Result<(String, std::path::PathBuf)> {
    let list = moto.aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        STORE_BUCKET,
        "--prefix",
        "store/packs/",
    ])?;
    let keys: Vec<&str> = list["Contents"]
        .as_array()
        .context("no packs")?
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    let key = keys[keys.len() / 2].to_string();
    let local = dir.join("pack");
    let path = local.to_str().context("path")?;
    moto.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        STORE_BUCKET,
        "--key",
        &key,
        path,
    ])?;
    let mut bytes = std::fs::read(&local)?;
    let intact = dir.join("pack.intact");
    std::fs::write(&intact, &bytes)?;
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&local, bytes)?;
    put_object(moto, &key, &local)?;
    Ok((key, intact))
}

fn put_object(moto: &Moto, key: &str, body: &std::path::Path) -> Result<()> {
    moto.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        STORE_BUCKET,
        "--key",
        key,
        "--body",
        body.to_str().context("path")?,
    ])?;
    Ok(())
}

#[test]
fn build_image_state_machine_retries_and_cleans_up() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_cloud()?;
    let moto = stack.moto.as_ref().unwrap();
    let router = stack.router.as_ref().unwrap();
    let sm = stack.state_machine(BUILD_IMAGE_SM)?;
    let ferry = stack.ferry(
        CLOUD_STORE,
        &[
            local_host(&stack, "db1", &base)?,
            local_host(&stack, "db2", &base)?,
        ],
    )?;
    ferry.json(&["store", "init"])?;
    let p1 = ferry.json(&["capture", "db1"])?;
    let p1 = p1["point"].as_str().unwrap().to_string();

    // One write of the Map fails as a Lambda would on a transient error; the state's
    // Retry runs it again and the build succeeds.
    router.inject(Fault {
        function: "build-image".into(),
        payload_contains: r#""write""#.into(),
        error_type: "Retryable".into(),
        times: 1,
    });
    let input = json!({"host": "db1", "point": null});
    let done = moto.run_execution(&sm, "image-db1-1", &input, Duration::from_secs(300))?;
    let history = moto.history(&done)?;
    assert_eq!(done["status"], "SUCCEEDED", "{done}\n{history}");
    assert_eq!(router.faults_left(), 0, "the injected error was never hit");
    assert!(
        history.to_string().contains("injected by the test router"),
        "the retried failure is in the history"
    );
    let out: Value = serde_json::from_str(done["output"].as_str().unwrap_or("{}"))?;
    assert_eq!(out["point"], p1.as_str());
    // 256 MiB in ranges of 128 blocks: several parallel writers.
    assert!(entered(&history, "WriteRange") >= 2, "{history}");
    for state in ["PlanImage", "WriteBlocks", "FinishImage", "ImageReady"] {
        assert_eq!(entered(&history, state), 1, "{state}");
    }
    let ami = out["image_id"].as_str().context("no image_id")?;
    let image = moto.aws(&["ec2", "describe-images", "--image-ids", ami])?;
    assert_eq!(
        image["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
        out["snapshot_id"]
    );
    assert!(out["summary"].as_str().unwrap_or("").contains(ami));

    // A point that does not exist: the build fails at once, naming it.
    let missing = "20200101T000000Z-deadbeef";
    let failed = moto.run_execution(
        &sm,
        "image-db1-missing",
        &json!({"host": "db1", "point": missing}),
        Duration::from_secs(120),
    )?;
    let history = moto.history(&failed)?.to_string();
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"], "BuildImageFailed");
    assert!(
        history.contains(missing) && history.contains("NonRetryable"),
        "{history}"
    );
    assert!(snapshots_of(moto, missing)?.is_empty());

    // A damaged pack under a new point: the write fails on the checksum, nothing is
    // registered and the unfinished snapshot is deleted.
    let p2 = ferry.json(&["capture", "db2"])?;
    let p2 = p2["point"].as_str().unwrap().to_string();
    let (key, intact) = damage_a_pack(moto, stack.path())?;
    let failed = moto.run_execution(
        &sm,
        "image-db2-1",
        &json!({"host": "db2", "point": null}),
        Duration::from_secs(300),
    )?;
    let history = moto.history(&failed)?;
    assert_eq!(failed["status"], "FAILED", "{failed}\n{history}");
    assert_eq!(entered(&history, "CleanUpSnapshot"), 1, "{history}");
    let text = history.to_string();
    let pack_id = key.rsplit('/').next().unwrap_or(&key);
    assert!(
        text.contains(pack_id) || text.contains("checksum") || text.contains("corrupt"),
        "the failure names the damage: {text}"
    );
    assert_eq!(images_named(moto, &format!("ferry-db2-{p2}"))?, 0);
    assert!(
        snapshots_of(moto, &p2)?.is_empty(),
        "the unfinished snapshot was not deleted"
    );

    // The same through `ferry image`: it fails and says why; once the pack is repaired,
    // running it again starts a new build (the failed one keeps its name) that succeeds.
    let failed = ferry.run(&["image", "db2", "--json"])?;
    assert!(!failed.ok(), "{}", failed.stdout);
    let doc = failed.json()?;
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["name"], format!("image-db2-{p2}"));
    put_object(moto, &key, &intact)?;
    let again = ferry.json(&["image", "db2"])?;
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    assert!(
        again["name"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("image-db2-{p2}-")),
        "{again}"
    );
    assert_eq!(images_named(moto, &format!("ferry-db2-{p2}"))?, 1);
    Ok(())
}
