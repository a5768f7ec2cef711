//! The `build-image` steps in process against moto's EBS direct APIs, EC2 and DynamoDB:
//! the snapshot's blocks read back equal the captured image block for block, the AMI's
//! root device is that snapshot, the point's record names both; a retry reuses what was
//! built; a child point writes only the blocks that differ.

use anyhow::Result;
use ferry_core::keys;
use ferry_core::steps::build_image::{AbandonRequest, PlanRequest};
use ferry_fn_build_image::cloud::Cloud;
use ferry_fn_build_image::steps;
use ferry_store::{Backend, Repository};
use ferry_tests::build::build;
use ferry_tests::disk;
use ferry_tests::ebs::{file_blocks, nonzero, snapshot_blocks};
use ferry_tests::ferry::HostEntry;
use ferry_tests::stack::{Stack, TABLE};

#[tokio::test]
async fn point_to_snapshot_to_ami_and_incremental_child() -> Result<()> {
    let (base, changed) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let disk_path = stack.path().join("app1.img");
    disk::copy(&base, &disk_path)?;
    let entry = HostEntry::local("app1", &disk_path);
    let store = "s3://ferry-store/images";
    let ferry = stack.ferry(store, &[entry])?;
    ferry.json(&["store", "init"])?;
    let p1 = ferry.json(&["capture", "app1"])?;

    let cfg = moto.sdk_config().await;
    let cloud = Cloud::new(&cfg, Some(TABLE.into()), 128);
    let repo = Repository::open(Backend::open_with(store, &cfg)?).await?;
    // A point captured before locations objects existed: the first build writes it.
    let p1_id = p1["point"].as_str().unwrap();
    let locations = ferry_core::layout::locations_key("app1", p1_id);
    assert!(repo.backend.size(&locations).await? > 0, "capture wrote it");
    repo.backend.remove(&locations).await?;
    let (plan, r1) = build(&cloud, &repo, "app1", "first").await?;
    assert!(
        repo.backend.size(&locations).await? > 0,
        "the build wrote it again"
    );
    assert_eq!(r1.point, p1["point"].as_str().unwrap());
    assert!(plan.parent_snapshot_id.is_none());
    assert!(
        plan.ranges.len() > 1,
        "256 MiB in ranges of 128 blocks: {plan:?}"
    );

    // Block for block: every non-zero block of the image is in the snapshot, and
    // nothing else is.
    let want = file_blocks(&base)?;
    let got = snapshot_blocks(&cloud.ebs, &r1.snapshot_id).await?;
    let nonzero = nonzero(&want);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), nonzero);
    for (i, data) in &got {
        assert!(data == &want[*i as usize], "block {i} differs");
    }
    assert_eq!(r1.blocks_written, nonzero.len() as u64);

    // The AMI boots from that snapshot.
    let images = moto.aws(&["ec2", "describe-images", "--image-ids", &r1.image_id])?;
    let image = &images["Images"][0];
    assert_eq!(image["Name"], format!("ferry-app1-{}", r1.point));
    assert_eq!(image["RootDeviceName"], "/dev/xvda");
    assert_eq!(image["BlockDeviceMappings"][0]["DeviceName"], "/dev/xvda");
    assert_eq!(
        image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
        r1.snapshot_id.as_str()
    );
    assert_eq!(image["Architecture"], "x86_64");
    assert_eq!(image["EnaSupport"], true);

    // The point's record: point -> snapshot -> AMI.
    let item = moto.get_item(TABLE, &keys::host_pk("app1"), &keys::point_sk(&r1.point))?;
    assert_eq!(item["Item"]["state"]["S"], "image-built");
    assert_eq!(item["Item"]["snapshot_id"]["S"], r1.snapshot_id.as_str());
    assert_eq!(item["Item"]["image_id"]["S"], r1.image_id.as_str());

    // A retry finds the image: nothing to write, the same ids.
    let (again_plan, again) = build(&cloud, &repo, "app1", "again").await?;
    assert!(again_plan.ranges.is_empty());
    assert_eq!(again_plan.image_id.as_deref(), Some(r1.image_id.as_str()));
    assert_eq!(
        (again.snapshot_id.as_str(), again.image_id.as_str()),
        (r1.snapshot_id.as_str(), r1.image_id.as_str())
    );

    // A day of changes, a new point, a child snapshot.
    disk::copy(&changed, &disk_path)?;
    ferry.json(&["capture", "app1"])?;
    let (plan2, r2) = build(&cloud, &repo, "app1", "child").await?;
    assert_eq!(
        plan2.parent_snapshot_id.as_deref(),
        Some(r1.snapshot_id.as_str())
    );
    let now = file_blocks(&changed)?;
    let differ = (0..now.len()).filter(|&i| now[i] != want[i]).count() as u64;
    assert!(
        r2.blocks_written >= differ,
        "{} written, {differ} differ",
        r2.blocks_written
    );
    assert!(
        r2.blocks_written as f64 <= 1.25 * differ as f64,
        "{} blocks written for {differ} that differ",
        r2.blocks_written
    );
    let child = snapshot_blocks(&cloud.ebs, &r2.snapshot_id).await?;
    for (i, data) in &child {
        assert!(data == &now[*i as usize], "child block {i} differs");
    }
    println!(
        "child snapshot: {} blocks written, {differ} differ",
        r2.blocks_written
    );
    Ok(())
}

/// Defect 2 of the hardening issue: the snapshot's idempotency token was the point id,
/// so after a failed build (its snapshot deleted) every rebuild got the dead snapshot
/// back from EBS and failed. Now a retried step of one attempt gets its own snapshot
/// back and a new attempt starts a new one.
#[tokio::test]
async fn a_build_after_a_failed_one_succeeds() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let disk_path = stack.path().join("db1.img");
    disk::copy(&base, &disk_path)?;
    let entry = HostEntry::local("db1", &disk_path);
    let store = "s3://ferry-store/retry";
    let ferry = stack.ferry(store, &[entry])?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "db1"])?;
    let cfg = moto.sdk_config().await;
    let cloud = Cloud::new(&cfg, None, 128);
    let repo = Repository::open(Backend::open_with(store, &cfg)?).await?;
    let plan_of = |attempt: &str| PlanRequest {
        host: "db1".into(),
        point: None,
        attempt: attempt.into(),
    };

    // Attempt 1 starts its snapshot; a retried plan step gets the same one back.
    let first = steps::plan(&cloud, &repo, plan_of("attempt-1")).await?;
    let again = steps::plan(&cloud, &repo, plan_of("attempt-1")).await?;
    assert_eq!(first.snapshot_id, again.snapshot_id);
    // It fails; its clean-up deletes the unfinished snapshot.
    let gone = steps::abandon(
        &cloud,
        AbandonRequest {
            snapshot_id: first.snapshot_id.clone(),
            host: Some("db1".into()),
            point: Some(first.point.clone()),
            attempt: "attempt-1".into(),
        },
    )
    .await?;
    assert_eq!(gone.deleted, first.snapshot_id);

    // The next attempt builds on a new snapshot, to the end.
    let (plan, done) = build(&cloud, &repo, "db1", "attempt-2").await?;
    assert_ne!(plan.snapshot_id, first.snapshot_id);
    assert!(done.blocks_written > 0);
    let snaps = moto.aws(&[
        "ec2",
        "describe-snapshots",
        "--snapshot-ids",
        &done.snapshot_id,
    ])?;
    assert_eq!(snaps["Snapshots"][0]["State"], "completed");
    println!("FAULT | image build | a build fails and its snapshot is deleted | the next build starts a new snapshot (token per attempt) and completes |");
    Ok(())
}

/// Hardening, defect 8: one build of a point at a time. A second attempt is refused while
/// the first holds the point's lock (its clean-up can then never delete the snapshot the
/// first is writing); the lock is released at the end, and one whose holder died (expired)
/// is taken over, the dead attempt's unfinished snapshot deleted.
#[tokio::test]
async fn one_build_of_a_point_at_a_time() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let disk_path = stack.path().join("web9.img");
    disk::copy(&base, &disk_path)?;
    let entry = HostEntry::local("web9", &disk_path);
    let store = "s3://ferry-store/locks";
    let ferry = stack.ferry(store, &[entry])?;
    ferry.json(&["store", "init"])?;
    let p = ferry.json(&["capture", "web9"])?;
    let point = p["point"].as_str().unwrap().to_string();
    let cfg = moto.sdk_config().await;
    let cloud = Cloud::new(&cfg, Some(TABLE.into()), 128);
    let repo = Repository::open(Backend::open_with(store, &cfg)?).await?;
    let plan_of = |attempt: &str| PlanRequest {
        host: "web9".into(),
        point: None,
        attempt: attempt.into(),
    };

    let a = steps::plan(&cloud, &repo, plan_of("build-a")).await?;
    let b = steps::plan(&cloud, &repo, plan_of("build-b"))
        .await
        .unwrap_err();
    assert!(
        b.to_string().contains("another build") && b.to_string().contains("build-a"),
        "{b}"
    );
    // B's failure cleans up nothing of A's: A's snapshot is still being written.
    let snaps = moto.aws(&[
        "ec2",
        "describe-snapshots",
        "--snapshot-ids",
        a.snapshot_id.as_deref().unwrap(),
    ])?;
    assert_eq!(snaps["Snapshots"][0]["State"], "pending");

    // A dies without cleaning up; its lock runs out (here: set to have expired).
    let lock = keys::build_lock("web9", &point);
    moto.expire_lock(TABLE, &lock.pk, &lock.sk)?;
    let (c, done) = build(&cloud, &repo, "web9", "build-c").await?;
    assert_ne!(c.snapshot_id, a.snapshot_id);
    let dead = moto.aws(&[
        "ec2",
        "describe-snapshots",
        "--filters",
        "Name=tag:ferry:attempt,Values=build-a",
    ])?;
    assert_eq!(
        dead["Snapshots"].as_array().map(Vec::len),
        Some(0),
        "{dead}"
    );
    // Released at the end: the next attempt finds the image.
    let again = steps::plan(&cloud, &repo, plan_of("build-d")).await?;
    assert_eq!(again.image_id.as_deref(), Some(done.image_id.as_str()));
    let item = moto.get_item(TABLE, &lock.pk, &lock.sk)?;
    assert!(
        item.get("Item").is_none() || item["Item"]["holder"]["S"] == "build-d",
        "{item}"
    );
    Ok(())
}
