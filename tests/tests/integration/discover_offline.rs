//! Assessment before there is an AWS account: `ferry discover --json` on a machine with
//! no AWS configuration at all sizes and prices every host from the shipped catalog, and
//! says nothing about credentials or instance metadata on stderr.

use anyhow::{Context, Result};
use ferry_tests::stack::Stack;

#[test]
fn discovery_sizes_hosts_without_any_aws_configuration() -> Result<()> {
    let mut stack = Stack::new()?;
    stack.add_host("web1", None)?;
    stack.add_host("db1", None)?;
    let kh = stack.pinned_known_hosts()?;
    let entries = vec![stack.entry("web1", &kh), stack.entry("db1", &kh)];
    let ferry = stack.ferry("file:///unused", &entries)?;
    let home = tempfile::tempdir()?;
    let mut cmd = ferry.command(&["discover", "web1", "db1", "--json"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    // No ~/.aws either.
    let out = cmd.env("HOME", home.path()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        d["instance_types"]
            .as_str()
            .is_some_and(|s| s.starts_with("shipped catalog") && s.contains("2025-06-01")),
        "{}",
        d["instance_types"]
    );
    let hosts = d["hosts"].as_array().context("no hosts")?;
    assert_eq!(hosts.len(), 2);
    for h in hosts {
        let z = &h["sizing"];
        assert!(z["instance_type"].is_string(), "{h}");
        assert!(z["hourly_usd"].as_f64().is_some_and(|p| p > 0.0), "{h}");
        // Without samples, the allocated CPUs and memory are what the type must hold.
        let inv = &h["inventory"];
        assert!(z["vcpus"].as_u64() >= inv["cpus"].as_u64(), "{h}");
        assert!(
            z["memory_bytes"].as_u64() >= inv["memory_bytes"].as_u64(),
            "{h}"
        );
    }
    let lower = stderr.to_lowercase();
    for noise in ["warn", "aws", "credential", "imds", "metadata"] {
        assert!(!lower.contains(noise), "stderr mentions {noise}: {stderr}");
    }
    Ok(())
}
