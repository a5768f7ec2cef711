//! Hardening, defects 3 and 4: one damaged index object or one stray pack no longer
//! stops every capture, restore and verify of every host (the damaged object is skipped
//! and named, its packs are read through their own trailers, the next capture replaces
//! it); and `verify` no longer passes a store that restore cannot read (pack sizes
//! against the index, index objects against their names, index entries against the
//! packs' own trailers).

use std::path::{Path, PathBuf};

use anyhow::Result;
use ferry_core::index::IndexFile;
use ferry_core::ChunkId;
use ferry_tests::disk;
use ferry_tests::ferry::{Ferry, HostEntry};
use ferry_tests::stack::Stack;

/// Two hosts captured into one file store; returns the stack, ferry, the store dir and
/// the index object each capture wrote.
struct TwoHosts {
    stack: Stack,
    ferry: Ferry,
    store: PathBuf,
    base: PathBuf,
    changed: PathBuf,
    index_a: PathBuf,
    index_b: PathBuf,
}

fn two_hosts() -> Result<TwoHosts> {
    let (base, changed) = disk::workload()?;
    let stack = Stack::new()?;
    let (da, db) = (stack.path().join("a.img"), stack.path().join("b.img"));
    disk::copy(&base, &da)?;
    disk::copy(&changed, &db)?;
    let ferry = stack.ferry(
        &stack.file_store("store"),
        &[HostEntry::local("a", &da), HostEntry::local("b", &db)],
    )?;
    let store = stack.path().join("store");
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "a"])?;
    let index_a = disk::files_under(&store.join("index")).remove(0);
    ferry.json(&["capture", "b"])?;
    let index_b = disk::files_under(&store.join("index"))
        .into_iter()
        .find(|p| p != &index_a)
        .expect("capture b wrote an index object");
    Ok(TwoHosts {
        stack,
        ferry,
        store,
        base,
        changed,
        index_a,
        index_b,
    })
}

fn restores_to(t: &TwoHosts, host: &str, want: &Path) -> Result<()> {
    let out = t.stack.path().join(format!("{host}-restored.img"));
    let _ = std::fs::remove_file(&out);
    t.ferry
        .json(&["restore", host, "--to", &out.display().to_string()])?;
    assert_eq!(disk::sha256(&out)?, disk::sha256(want)?, "{host}");
    Ok(())
}

#[test]
fn a_damaged_index_object_and_a_stray_pack_stop_nothing() -> Result<()> {
    let t = two_hosts()?;
    // Damage b's index object in the middle (its name no longer matches), and leave a
    // stray object where packs live.
    let mut bytes = std::fs::read(&t.index_b)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&t.index_b, bytes)?;
    let stray = t.store.join(format!("packs/00/{}", "0".repeat(64)));
    std::fs::create_dir_all(stray.parent().unwrap())?;
    std::fs::write(&stray, b"not a pack at all")?;
    let index_name = t.index_b.file_name().unwrap().to_str().unwrap();

    // Every point restores: b's packs are read through their own trailers.
    restores_to(&t, "a", &t.base)?;
    restores_to(&t, "b", &t.changed)?;
    // verify names both objects and fails.
    let v = t.ferry.run(&["verify", "--json"])?;
    assert_eq!(v.code, Some(1), "{}", v.stderr);
    let errors = v.json()?["errors"].to_string();
    assert!(errors.contains(index_name), "{errors}");
    assert!(errors.contains(&"0".repeat(64)), "{errors}");
    // A capture works, and replaces the damaged index object.
    t.ferry.json(&["capture", "a"])?;
    assert!(!t.index_b.exists(), "the damaged index object was replaced");
    restores_to(&t, "b", &t.changed)?;
    // With the stray object removed by the operator, the store is whole again.
    let v = t.ferry.run(&["verify", "--read-data", "--json"])?;
    assert!(v.json()?["errors"].to_string().contains(&"0".repeat(64)));
    std::fs::remove_file(&stray)?;
    let v = t.ferry.run(&["verify", "--read-data", "--json"])?;
    assert_eq!(v.json()?["ok"], true, "{}", v.stdout);
    Ok(())
}

#[test]
fn verify_ok_means_every_point_restores() -> Result<()> {
    let t = two_hosts()?;
    assert_eq!(t.ferry.json(&["verify", "--read-data"])?["ok"], true);

    // An index entry that points at the wrong bytes, in an index object whose name
    // matches its (wrong) content: written so by a bug, not damaged in storage.
    let f = IndexFile::decode("i", &std::fs::read(&t.index_a)?)?;
    let mut wrong = f.clone();
    let (_, entries) = &mut wrong.packs[0];
    let (x, y) = (entries[1], entries[2]);
    entries[1].offset = y.offset;
    entries[1].stored_len = y.stored_len;
    entries[2].offset = x.offset;
    entries[2].stored_len = x.stored_len;
    let enc = wrong.encode();
    std::fs::remove_file(&t.index_a)?;
    std::fs::write(
        t.store
            .join(format!("index/{}", ChunkId::of(&enc).to_hex())),
        &enc,
    )?;
    let out = t.stack.path().join("a.img.out");
    let r = t
        .ferry
        .run(&["restore", "a", "--to", out.to_str().unwrap()])?;
    assert_ne!(r.code, Some(0), "restore cannot read it");
    let v = t.ferry.run(&["verify", "--read-data", "--json"])?;
    assert_eq!(
        v.json()?["ok"],
        false,
        "verify --read-data must not pass it"
    );
    assert!(
        v.stdout.contains("differs from the pack's own"),
        "{}",
        v.stdout
    );
    std::fs::write(&t.index_a, f.encode())?;
    std::fs::remove_file(
        t.store
            .join(format!("index/{}", ChunkId::of(&enc).to_hex())),
    )?;
    restores_to(&t, "a", &t.base)?;

    // A pack cut short: restore fails for the chunks past the cut; structural verify
    // (no data read) already says so.
    let pack = disk::files_under(&t.store.join("packs"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let bytes = std::fs::read(&pack)?;
    std::fs::write(&pack, &bytes[..bytes.len() / 2])?;
    let v = t.ferry.run(&["verify", "--json"])?;
    assert_eq!(v.json()?["ok"], false, "structural verify must see the cut");
    assert!(v.stdout.contains("truncated or damaged"), "{}", v.stdout);
    Ok(())
}
