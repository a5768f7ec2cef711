//! A corrupted pack is named by verify and restore, and nothing is restored. (A capture
//! killed mid-upload is in the fault suite, `faults`.)

use anyhow::Result;
use ferry_tests::disk;
use ferry_tests::stack::Stack;

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
    let pack = disk::files_under(&store_dir.join("packs"))
        .into_iter()
        .next()
        .unwrap();
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
