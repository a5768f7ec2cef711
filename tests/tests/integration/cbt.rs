//! Changed-block capture over SSH: the host hashes its disk in blocks with its own tools,
//! only the blocks that differ from the parent's cross the link, and the point is the one
//! a full read makes; each reason for a full read instead is taken and reported.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};
use ferry_store::{Backend, Repository};
use ferry_tests::disk;
use ferry_tests::ferry::Ferry;
use ferry_tests::stack::Stack;
use serde_json::Value;

/// Writes `n` bytes of a pattern at `at` in the disk image, as a program on the host would.
fn overwrite(disk: &Path, at: u64, n: usize, seed: u8) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(disk)?;
    f.seek(SeekFrom::Start(at))?;
    let data: Vec<u8> = (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    f.write_all(&data)?;
    Ok(())
}

/// The point restores to `out` byte for byte as `disk`.
fn restores_as(ferry: &Ferry, point: &Value, out: &Path, disk: &Path) -> Result<()> {
    let id = point["point"].as_str().context("no point id")?;
    let to = out.to_str().context("a path that is not UTF-8")?;
    ferry.json(&["restore", "web1", "--point", id, "--to", to])?;
    assert_eq!(disk::sha256(out)?, disk::sha256(disk)?, "point {id}");
    Ok(())
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

async fn chunks(
    store: &str,
    host: &str,
    point: &Value,
) -> Result<Vec<ferry_core::manifest::ChunkRef>> {
    let repo = Repository::open(Backend::open(store, &Default::default()).await?).await?;
    let id = point["point"].as_str().context("no point id")?;
    Ok(repo.read_point(host, id).await?.chunks)
}

#[tokio::test(flavor = "multi_thread")]
async fn cbt_incremental_capture_moves_only_changed_blocks_and_equals_a_full_read() -> Result<()> {
    let (base, changed) = disk::workload()?;
    let size = std::fs::metadata(&base)?.len();
    let mut stack = Stack::new()?;
    stack.add_host("web1", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let store = stack.file_store("s");
    let entry = stack.entry("web1", &kh);
    let ferry = stack.ferry(&store, std::slice::from_ref(&entry))?;
    ferry.json(&["store", "init"])?;

    let full = ferry.json(&["capture", "web1"])?;
    assert_eq!(full["method"], "full");
    assert_eq!(num(&full, "bytes_transferred"), size);
    assert!(
        full.get("full_read_reason").is_none(),
        "a first capture: {full}"
    );

    // A day of changes, then an incremental capture.
    let disk_path = stack.host("web1").disk.clone();
    disk::copy(&changed, &disk_path)?;
    let inc = ferry.json(&["capture", "web1"])?;
    assert_eq!(inc["method"], "changed-blocks", "{inc}");
    assert_eq!(inc["hasher"], "python3");
    assert_eq!(inc["parent"], full["point"]);
    let blocks = num(&inc, "blocks_changed");
    let wire = num(&inc, "bytes_transferred");
    assert!(blocks > 0, "{inc}");
    assert!(wire >= blocks * 65536, "the changed blocks crossed: {inc}");
    assert!(
        wire < size * 15 / 100,
        "only what changed crossed: {wire} of {size}"
    );
    assert_eq!(inc["image_blake3"], disk::blake3(&changed)?);
    let out = stack.path().join("restored.img");
    restores_as(&ferry, &inc, &out, &changed)?;

    // The same disk read in full cuts the same chunks: nothing is new, the list is equal.
    let mut off = entry.clone();
    off.extra = "changed_blocks = \"off\"\n".into();
    let again = stack.ferry(&store, &[off])?.json(&["capture", "web1"])?;
    assert_eq!(again["method"], "full");
    assert!(
        again["full_read_reason"].as_str().unwrap().contains("off"),
        "{again}"
    );
    assert_eq!(num(&again, "bytes_new"), 0, "{again}");
    assert_eq!(again["image_blake3"], inc["image_blake3"]);
    assert_eq!(
        chunks(&store, "web1", &again).await?,
        chunks(&store, "web1", &inc).await?
    );

    // With GNU coreutils only: more changes, at the disk's start and end too.
    overwrite(&disk_path, 0, 5000, 1)?;
    overwrite(&disk_path, 100 << 20, 300_000, 2)?;
    overwrite(&disk_path, size - 777, 777, 3)?;
    let mut cu = entry.clone();
    cu.extra = "changed_blocks = \"coreutils\"\n".into();
    let ferry_cu = stack.ferry(&store, &[cu])?;
    let third = ferry_cu.json(&["capture", "web1"])?;
    assert_eq!(third["method"], "changed-blocks", "{third}");
    assert_eq!(third["hasher"], "coreutils");
    assert_eq!(third["parent"], again["point"]);
    // 5000 bytes: 1 block; 300,000 bytes from a block boundary: 5; the last 777: 1.
    assert_eq!(num(&third, "blocks_changed"), 7, "{third}");
    assert_eq!(third["image_blake3"], disk::blake3(&disk_path)?);
    restores_as(&ferry_cu, &third, &out, &disk_path)?;
    // `ferry points` shows how each point was read.
    let points = ferry.json(&["points", "web1"])?;
    let methods: Vec<&str> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["stats"]["method"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        methods,
        ["full", "changed-blocks", "full", "changed-blocks"],
        "{points}"
    );
    Ok(())
}

/// A `python3` for the host that runs the real one, except for Ferry's block hashing,
/// where it does `then` after the first 64 KiB of hashes (or after all of them).
fn python_wrapper(then: &str) -> String {
    format!(
        "#!/bin/sh\ncase \"$2\" in\n  *'SHA-256 of each block'*) {then} ;;\n  *) exec /usr/bin/python3 \"$@\" ;;\nesac\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cbt_falls_back_to_a_full_read_for_each_reason_and_keeps_the_point() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    for h in ["bare", "broken", "racy", "grown", "weekly"] {
        stack.add_host(h, Some(&base))?;
    }
    let kh = stack.pinned_known_hosts()?;
    let mut entries: Vec<_> = ["bare", "broken", "racy", "grown", "weekly"]
        .iter()
        .map(|h| stack.entry(h, &kh))
        .collect();
    entries[4].extra = "full_every = \"10s\"\n".into();
    let store = stack.file_store("s");
    let ferry = stack.ferry(&store, &entries)?;
    ferry.json(&["store", "init"])?;
    let mut weekly_full = std::time::Instant::now();
    for h in ["bare", "broken", "racy", "grown", "weekly"] {
        weekly_full = std::time::Instant::now();
        assert_eq!(ferry.json(&["capture", h])?["method"], "full");
        overwrite(&stack.host(h).disk, 50 << 20, 4096, 9)?;
    }

    stack
        .host_mut("bare")
        .only_tools(&["cat", "stat", "blockdev", "uname", "test"])?;

    // Each case: a full read, its reason, and a point equal to the disk.
    let check = |host: &str, reason: &str| -> Result<()> {
        let r = ferry.json(&["capture", host])?;
        assert_eq!(r["method"], "full", "{host}: {r}");
        let why = r["full_read_reason"].as_str().unwrap_or("");
        assert!(
            why.contains(reason),
            "{host}: {why:?} does not say {reason:?}"
        );
        let disk = &stack.host(host).disk;
        assert_eq!(r["image_blake3"], disk::blake3(disk)?, "{host}");
        assert_eq!(num(&r, "bytes_transferred"), std::fs::metadata(disk)?.len());
        Ok(())
    };

    // No tool to hash with.
    check("bare", "neither Python 3 nor GNU coreutils")?;

    // Hashing dies mid-way.
    stack.host("broken").install_command(
        "python3",
        &python_wrapper("/usr/bin/python3 \"$@\" | head -c 65536; exit 1"),
    )?;
    check("broken", "hashing on the host failed")?;

    // A block changes after the host hashed it and before it is read (no snapshot).
    let disk = stack.host("racy").disk.display().to_string();
    stack.host("racy").install_command(
        "python3",
        &python_wrapper(&format!(
            "/usr/bin/python3 \"$@\"; s=$?; printf 'late' | dd of={disk} bs=1 seek=52428900 conv=notrunc status=none; exit $s"
        )),
    )?;
    check("racy", "changed while it was read")?;

    // The disk grew.
    let grown = stack.host("grown").disk.clone();
    let len = std::fs::metadata(&grown)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&grown)?
        .set_len(len + (1 << 20))?;
    check("grown", "size changed")?;

    // The periodic full read (its first point is older than 10 s by now).
    let due = std::time::Duration::from_millis(10_500);
    std::thread::sleep(due.saturating_sub(weekly_full.elapsed()));
    check("weekly", "full_every = 10s")?;
    // ... after which changed blocks are read again.
    overwrite(&stack.host("weekly").disk, 60 << 20, 10, 4)?;
    let next = ferry.json(&["capture", "weekly"])?;
    assert_eq!(next["method"], "changed-blocks", "{next}");
    Ok(())
}
