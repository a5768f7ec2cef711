//! Hardening, defect 12: a capture whose point was written but whose DynamoDB record
//! failed used to report the capture as failed (exit 1) though the point exists. It now
//! reports the point, says the record failed, and exits 3.

use anyhow::Result;
use ferry_tests::disk;
use ferry_tests::ferry::{write_config, Ferry, HostEntry};
use ferry_tests::stack::Stack;

#[test]
fn point_written_record_failed_is_its_own_outcome() -> Result<()> {
    let (base, _) = disk::workload()?;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let config = stack.path().join("ferry.toml");
    let entry = HostEntry::local("db", &base);
    // A table that does not exist: every record write fails.
    write_config(
        &config,
        &stack.file_store("s"),
        Some("no-such-table"),
        &[entry],
    )?;
    let ferry = Ferry::new(&config, moto.env())?;
    ferry.json(&["store", "init"])?;
    let r = ferry.run(&["capture", "db", "--json"])?;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let out = r.json()?;
    let point = out["point"].as_str().unwrap().to_string();
    let why = out["after_point_error"].as_str().unwrap_or("");
    assert!(
        why.contains("was written") && why.contains("no-such-table"),
        "{out}"
    );
    let points = ferry.json(&["points", "db"])?;
    assert_eq!(points[0]["point"], point.as_str(), "{points}");
    // In human form too: the point line, then the warning.
    let h = ferry.run(&["capture", "db"])?;
    assert_eq!(h.code, Some(3));
    assert!(
        h.stdout.contains("point ") && h.stderr.contains("warning:"),
        "{}",
        h.stderr
    );
    Ok(())
}
