//! A capture killed mid-upload leaves no point and the rerun reuses its packs; a
//! corrupted pack is named by verify and restore, and nothing is restored.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ferry_tests::disk;
use ferry_tests::stack::Stack;

fn pack_files(store: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(store.join("packs")) {
        for d in dirs.flatten() {
            if let Ok(files) = std::fs::read_dir(d.path()) {
                out.extend(files.flatten().map(|f| f.path()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn killed_capture_leaves_no_point_and_the_rerun_uploads_less() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("db1", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let store_dir = stack.path().join("store");
    let ferry = stack.ferry(&stack.file_store("store"), &[stack.entry("db1", &kh)])?;
    ferry.json(&["store", "init"])?;

    let mut child = ferry.spawn(&["capture", "db1", "--json"])?;
    let start = Instant::now();
    while pack_files(&store_dir).len() < 2 {
        if child.try_wait()?.is_some() {
            bail!("capture finished before it could be killed mid-upload");
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("no pack uploaded within a minute");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL: no chance to clean up.
    child.kill()?;
    child.wait()?;
    let left = pack_files(&store_dir).len();
    assert!(left >= 2);
    assert!(
        !store_dir.join("points").exists()
            || std::fs::read_dir(store_dir.join("points/db1"))?.count() == 0
    );
    let points = ferry.json(&["points", "db1"])?;
    assert_eq!(
        points.as_array().unwrap().len(),
        0,
        "a killed capture must leave no point"
    );

    let rerun = ferry.json(&["capture", "db1"])?;
    assert!(rerun["packs_recovered"].as_u64().unwrap() >= 2, "{rerun}");

    // The same capture into a fresh store uploads more than the rerun did.
    let ferry2 = stack.ferry(&stack.file_store("fresh"), &[stack.entry("db1", &kh)])?;
    ferry2.json(&["store", "init"])?;
    let fresh = ferry2.json(&["capture", "db1"])?;
    assert!(
        rerun["bytes_uploaded"].as_u64().unwrap() < fresh["bytes_uploaded"].as_u64().unwrap(),
        "rerun {rerun} vs fresh {fresh}"
    );
    let out = stack.path().join("r.img");
    ferry.json(&["restore", "db1", "--to", out.to_str().unwrap()])?;
    assert_eq!(disk::sha256(&out)?, disk::sha256(&base)?);
    assert!(ferry.json(&["verify", "--read-data"])?["ok"]
        .as_bool()
        .unwrap());
    Ok(())
}

#[test]
fn corrupted_pack_is_named_and_nothing_is_restored() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("web2", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let store_dir = stack.path().join("store");
    let ferry = stack.ferry(&stack.file_store("store"), &[stack.entry("web2", &kh)])?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "web2"])?;
    assert_eq!(ferry.run(&["verify", "--read-data"])?.code, Some(0));

    // Flip bytes inside the first blob of one pack (the trailer stays readable).
    let pack = pack_files(&store_dir).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&pack)?;
    for b in &mut bytes[100..110] {
        *b ^= 0x5a;
    }
    std::fs::write(&pack, bytes)?;
    let pack_name = pack.file_name().unwrap().to_str().unwrap().to_string();

    let v = ferry.run(&["verify", "--read-data"])?;
    assert_eq!(v.code, Some(1));
    assert!(
        v.stderr.contains(&pack_name) && v.stderr.contains("chunk "),
        "{}",
        v.stderr
    );
    let vj = ferry.run(&["verify", "--read-data", "--json"])?;
    assert_eq!(vj.json()?["ok"], false);
    // Without --read-data the structure is still fine.
    assert_eq!(ferry.run(&["verify"])?.code, Some(0));

    let out = stack.path().join("restored.img");
    let r = ferry.run(&["restore", "web2", "--to", out.to_str().unwrap()])?;
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains(&pack_name) && r.stderr.contains("chunk "),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "nothing may be left at the target");
    assert!(!stack.path().join("restored.img.ferry-partial").exists());

    // Onto a host: the damage is found while staging, before the host's disk is touched.
    stack.add_host("target", None)?;
    std::fs::write(&stack.host("target").disk, vec![9u8; base_len(&base)?])?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry(
        &stack.file_store("store"),
        &[stack.entry("web2", &kh), stack.entry("target", &kh)],
    )?;
    let before = disk::sha256(&stack.host("target").disk)?;
    let r = ferry.run(&["restore", "web2", "--to-host", "target"])?;
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains(&pack_name) && r.stderr.contains("nothing was written"),
        "{}",
        r.stderr
    );
    assert_eq!(disk::sha256(&stack.host("target").disk)?, before);
    Ok(())
}

fn base_len(p: &std::path::Path) -> Result<usize> {
    Ok(std::fs::metadata(p)?.len() as usize)
}
