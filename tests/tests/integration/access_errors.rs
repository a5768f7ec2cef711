//! Host keys are pinned; bad input gives one clear line on stderr and a non-zero exit.

use anyhow::Result;
use ferry_tests::disk;
use ferry_tests::ferry::Run;
use ferry_tests::stack::Stack;

fn one_error_line(r: &Run) -> String {
    assert_ne!(r.code, Some(0), "expected a failure, stdout: {}", r.stdout);
    let lines = r.error_lines();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got: {lines:#?}"
    );
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    lines[0].to_string()
}

fn small_disk(stack: &Stack) -> Result<std::path::PathBuf> {
    let p = stack.path().join("small.img");
    std::fs::write(&p, vec![0u8; 4 << 20])?;
    disk::scribble(&p, 1, 20, 4096)?;
    Ok(p)
}

#[test]
fn unknown_host_key_is_refused_unless_accepted_then_pinned() -> Result<()> {
    let mut stack = Stack::new()?;
    let d = small_disk(&stack)?;
    stack.add_host("h1", Some(&d))?;
    let kh = stack.path().join("empty_known_hosts");
    let ferry = stack.ferry(&stack.file_store("s"), &[stack.entry("h1", &kh)])?;
    ferry.json(&["store", "init"])?;

    let e = one_error_line(&ferry.run(&["capture", "h1"])?);
    assert!(
        e.contains("unknown host key") && e.contains("--accept-new-host-key"),
        "{e}"
    );
    assert!(!kh.exists() || std::fs::read_to_string(&kh)?.is_empty());

    ferry.json(&["capture", "h1", "--accept-new-host-key"])?;
    let pinned = std::fs::read_to_string(&kh)?;
    assert_eq!(
        pinned,
        stack.host("h1").known_hosts_line()?,
        "the key is pinned in OpenSSH format"
    );
    // Pinned now: no flag needed.
    ferry.json(&["capture", "h1"])?;
    Ok(())
}

/// Hardening, defect 10: a key marked `@revoked` is refused even with
/// --accept-new-host-key (it used to be pinned), and comments before the pinned line no
/// longer shift the line number the error names.
#[test]
fn revoked_host_key_is_refused_and_never_pinned() -> Result<()> {
    let mut stack = Stack::new()?;
    let d = small_disk(&stack)?;
    stack.add_host("h3", Some(&d))?;
    let line = stack.host("h3").known_hosts_line()?;
    let key = line
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ");
    let kh = stack.path().join("known_hosts");
    let text = format!("# fleet keys\n@revoked   *  {key}\n");
    std::fs::write(&kh, &text)?;
    let ferry = stack.ferry(&stack.file_store("s"), &[stack.entry("h3", &kh)])?;
    ferry.json(&["store", "init"])?;
    let e = one_error_line(&ferry.run(&["capture", "h3", "--accept-new-host-key"])?);
    assert!(e.contains("REVOKED") && e.contains(":2"), "{e}");
    assert_eq!(std::fs::read_to_string(&kh)?, text, "nothing pinned");
    Ok(())
}

#[test]
fn changed_host_key_is_always_refused() -> Result<()> {
    let mut stack = Stack::new()?;
    let d = small_disk(&stack)?;
    stack.add_host("h2", Some(&d))?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry(&stack.file_store("s"), &[stack.entry("h2", &kh)])?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "h2"])?;

    stack.host_mut("h2").change_host_key()?;
    for args in [
        &["capture", "h2"][..],
        &["capture", "h2", "--accept-new-host-key"][..],
    ] {
        let e = one_error_line(&ferry.run(args)?);
        assert!(
            e.contains("HOST KEY CHANGED") && e.contains(&kh.display().to_string()),
            "{e}"
        );
    }
    assert_eq!(ferry.json(&["points", "h2"])?.as_array().unwrap().len(), 1);
    Ok(())
}

#[test]
fn missing_disk_dead_host_bad_key_and_bad_config_each_give_one_clear_line() -> Result<()> {
    let mut stack = Stack::new()?;
    let d = small_disk(&stack)?;
    stack.add_host("ok", Some(&d))?;
    stack.add_host("dead", Some(&d))?;
    let kh = stack.pinned_known_hosts()?;
    let mut missing = stack.entry("ok", &kh);
    missing.name = "nodisk".into();
    missing.disk = "/dev/does-not-exist".into();
    let mut badkey = stack.entry("ok", &kh);
    badkey.name = "badkey".into();
    let other_key = stack.path().join("other_key");
    ferry_tests::sshd::keygen(&other_key)?;
    badkey.identity = Some(other_key);
    let mut entries = vec![
        stack.entry("ok", &kh),
        stack.entry("dead", &kh),
        missing,
        badkey,
    ];
    let mut local_missing = stack.entry("ok", &kh);
    local_missing.name = "localmissing".into();
    local_missing.ssh = None;
    local_missing.identity = None;
    local_missing.disk = stack.path().join("nope.img");
    entries.push(local_missing);
    let ferry = stack.ferry(&stack.file_store("s"), &entries)?;
    ferry.json(&["store", "init"])?;
    stack.host_mut("dead").stop();

    let e = one_error_line(&ferry.run(&["capture", "nodisk"])?);
    assert!(
        e.contains("nodisk") && e.contains("/dev/does-not-exist"),
        "{e}"
    );
    let e = one_error_line(&ferry.run(&["capture", "localmissing"])?);
    assert!(e.contains("localmissing") && e.contains("nope.img"), "{e}");
    let e = one_error_line(&ferry.run(&["capture", "dead"])?);
    assert!(
        e.contains("dead") && e.contains(&stack.host("dead").port.to_string()),
        "{e}"
    );
    let e = one_error_line(&ferry.run(&["capture", "badkey"])?);
    assert!(e.contains("badkey") && e.contains("refused the key"), "{e}");
    let e = one_error_line(&ferry.run(&["capture", "nosuchhost"])?);
    assert!(e.contains("nosuchhost"), "{e}");
    // Nothing was recorded for any of them.
    assert_eq!(ferry.json(&["points", "ok"])?.as_array().unwrap().len(), 0);

    // A malformed config: unknown key, and broken TOML.
    let cfg = stack.path().join("ferry.toml");
    let good = std::fs::read_to_string(&cfg)?;
    std::fs::write(
        &cfg,
        good.replace("[[host]]\nname = \"ok\"", "[[host]]\nnmae = \"ok\""),
    )?;
    let e = one_error_line(&ferry.run(&["points", "ok"])?);
    assert!(
        e.contains("ferry.toml") && e.contains("line ") && e.contains("nmae"),
        "{e}"
    );
    std::fs::write(&cfg, "store = \"file:///x\n")?;
    let e = one_error_line(&ferry.run(&["points", "ok"])?);
    assert!(e.contains("ferry.toml") && e.contains("line 1"), "{e}");
    std::fs::remove_file(&cfg)?;
    let e = one_error_line(&ferry.run(&["points", "ok"])?);
    assert!(e.contains("cannot read config"), "{e}");
    Ok(())
}
