//! The whole migration as a user runs it: capture a host over SSH into the S3 store
//! (starting its image build), `ferry migrate` it, and check in AWS what it made: the
//! execution SUCCEEDED with the operator's state names, the snapshot's blocks are the
//! source disk's block for block, the AMI boots from that snapshot with the source's
//! architecture and boot mode, the instance runs with the requested type, subnet and
//! address, and DynamoDB links point -> snapshot -> AMI -> instance. A migration into
//! a subnet that does not exist fails with the step's reason and exits non-zero.

use anyhow::{Context, Result};
use ferry_core::keys;
use ferry_tests::disk;
use ferry_tests::ebs::assert_snapshot_is_image;
use ferry_tests::stack::{Stack, CLOUD_STORE, TABLE};

#[test]
fn capture_over_ssh_then_migrate_to_a_verified_instance() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?.with_cloud()?;
    stack.add_host("web1", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry(CLOUD_STORE, &[stack.entry("web1", &kh)])?;
    let moto = stack.moto.as_ref().unwrap();

    ferry.json(&["store", "init"])?;
    let cap = ferry.json(&["capture", "web1", "--image"])?;
    let point = cap["point"].as_str().context("no point")?.to_string();
    assert!(
        cap["image_execution"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("image-web1-{point}")),
        "{cap}"
    );

    let (_, subnet) = moto.network("10.50.0.0/16", "10.50.1.0/24")?;
    let run = ferry.json(&[
        "migrate",
        "web1",
        "--subnet",
        &subnet,
        "--instance-type",
        "m5.large",
        "--private-ip",
        "10.50.1.20",
    ])?;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["point"], point.as_str());
    assert!(run["name"]
        .as_str()
        .unwrap_or("")
        .starts_with("migrate-web1-"));
    assert!(run["duration_s"].as_f64().is_some());
    let states: Vec<&str> = run["states"]
        .as_array()
        .context("no states")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for s in [
        "BuildRecoveryImage",
        "LaunchTarget",
        "WaitUntilRunning",
        "VerifyTarget",
        "RecordCutover",
    ] {
        assert!(states.contains(&s), "{s} not in {states:?}");
    }

    // The real aws CLI shows the same names.
    let history = moto.aws(&[
        "stepfunctions",
        "get-execution-history",
        "--execution-arn",
        run["execution_arn"].as_str().context("no ARN")?,
    ])?;
    assert!(history.to_string().contains("\"RecordCutover\""));

    // The snapshot is the source disk, block for block.
    let snapshot = run["snapshot_id"].as_str().context("no snapshot")?;
    let blocks = tokio::runtime::Runtime::new()?.block_on(async {
        let cfg = moto.sdk_config().await;
        let ebs = aws_sdk_ebs::Client::new(&cfg);
        assert_snapshot_is_image(&ebs, snapshot, &base).await
    })?;
    assert!(blocks > 0);

    // The AMI boots from it, as the source machine did.
    let ami = run["image_id"].as_str().context("no image")?;
    let image = moto.aws(&["ec2", "describe-images", "--image-ids", ami])?;
    let image = &image["Images"][0];
    assert_eq!(image["RootDeviceName"], "/dev/xvda");
    let root = image["BlockDeviceMappings"]
        .as_array()
        .context("no mappings")?
        .iter()
        .find(|m| m["DeviceName"] == image["RootDeviceName"])
        .context("no mapping for the root device")?;
    assert_eq!(root["Ebs"]["SnapshotId"], snapshot);
    let arch = std::process::Command::new("uname").arg("-m").output()?;
    let arch = String::from_utf8_lossy(&arch.stdout).trim().to_string();
    let want_arch = if arch == "aarch64" { "arm64" } else { "x86_64" };
    assert_eq!(image["Architecture"], want_arch);
    let want_boot = if std::path::Path::new("/sys/firmware/efi").exists() {
        "uefi"
    } else {
        "legacy-bios"
    };
    assert_eq!(image["BootMode"], want_boot);

    // The instance runs with the requested type, subnet and address.
    let id = run["instance_id"].as_str().context("no instance")?;
    let d = moto.aws(&["ec2", "describe-instances", "--instance-ids", id])?;
    let inst = &d["Reservations"][0]["Instances"][0];
    assert_eq!(inst["State"]["Name"], "running");
    assert_eq!(inst["InstanceType"], "m5.large");
    assert_eq!(inst["SubnetId"], subnet.as_str());
    assert_eq!(inst["PrivateIpAddress"], "10.50.1.20");
    assert_eq!(inst["ImageId"], ami);

    // DynamoDB: the point names its snapshot and image, the run its instance.
    let p = moto.get_item(TABLE, &keys::host_pk("web1"), &keys::point_sk(&point))?;
    assert_eq!(p["Item"]["snapshot_id"]["S"], snapshot);
    assert_eq!(p["Item"]["image_id"]["S"], ami);
    let r = moto.get_item(
        TABLE,
        &keys::host_pk("web1"),
        &keys::run_sk(run["name"].as_str().unwrap_or("")),
    )?;
    assert_eq!(r["Item"]["point"]["S"], point.as_str());
    assert_eq!(r["Item"]["snapshot_id"]["S"], snapshot);
    assert_eq!(r["Item"]["image_id"]["S"], ami);
    assert_eq!(r["Item"]["instance_id"]["S"], id);

    // `ferry image` again finds the same image; `ferry runs` lists both kinds of run.
    let again = ferry.json(&["image", "web1"])?;
    assert_eq!(again["image_id"], ami);
    let runs = ferry.json(&["runs", "web1"])?;
    let names: Vec<&str> = runs
        .as_array()
        .context("runs is not a list")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("migrate-web1-")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("image-web1-")),
        "{names:?}"
    );

    // A subnet that does not exist: the run fails with the launch step's reason.
    let bad = ferry.run(&["migrate", "web1", "--subnet", "subnet-00000000", "--json"])?;
    assert!(!bad.ok(), "{}", bad.stdout);
    let doc = bad.json()?;
    assert_eq!(doc["status"], "FAILED");
    assert!(
        doc["cause"].as_str().unwrap_or("").contains("RunInstances"),
        "{doc}"
    );
    Ok(())
}
