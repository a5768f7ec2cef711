//! `--point` picks one point by its id or a unique suffix; an empty one picks nothing
//! (it used to match every point, and so the only one, silently).

use anyhow::{Context, Result};
use ferry_tests::ferry::HostEntry;
use ferry_tests::stack::Stack;

#[test]
fn an_empty_point_matches_nothing_and_a_suffix_matches_one() -> Result<()> {
    let stack = Stack::new()?;
    let disk = stack.path().join("a.img");
    std::fs::write(&disk, vec![7u8; 1 << 20])?;
    let entry = HostEntry {
        name: "app1".into(),
        ssh: None,
        identity: None,
        disk,
        known_hosts: None,
        extra: String::new(),
    };
    let ferry = stack.ferry(&stack.file_store("s"), &[entry])?;
    ferry.json(&["store", "init"])?;
    let p = ferry.json(&["capture", "app1"])?;
    let id = p["point"].as_str().context("no point")?;
    let out = stack.path().join("r.img");
    let out = out.to_str().context("path")?;

    let r = ferry.run(&["restore", "app1", "--point", "", "--to", out])?;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("has no point"), "{}", r.stderr);
    assert!(!std::path::Path::new(out).exists());

    let suffix = &id[id.len() - 8..];
    let r = ferry.json(&["restore", "app1", "--point", suffix, "--to", out])?;
    assert_eq!(r["point"], id);
    Ok(())
}
