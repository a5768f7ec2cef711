//! Hosts that go wrong do not stop a discovery: one refuses SSH, one lacks `ss`, one
//! returns garbage in `/proc`; each gets a finding naming what went wrong, and the
//! healthy host is fully inventoried.

use anyhow::{Context, Result};
use ferry_tests::stack::Stack;
use serde_json::Value;

const GARBLING_CAT: &str = "#!/bin/sh\n\
case \"$1\" in\n\
  /proc/meminfo|/proc/cpuinfo) printf 'MemTotal: lots of kB\\n\\001\\002\\n' ;;\n\
  *) exec /bin/cat \"$@\" ;;\n\
esac\n";

fn host<'a>(d: &'a Value, name: &str) -> Result<&'a Value> {
    d["hosts"]
        .as_array()
        .context("no hosts")?
        .iter()
        .find(|h| h["host"] == name)
        .with_context(|| format!("{name} is missing from the discovery"))
}

fn codes(h: &Value) -> Vec<String> {
    h["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn message_with(h: &Value, code: &str, text: &str) -> bool {
    h["findings"].as_array().is_some_and(|f| {
        f.iter()
            .any(|x| x["code"] == code && x["message"].as_str().unwrap_or("").contains(text))
    })
}

#[test]
fn a_refusing_host_a_host_without_ss_and_garbage_in_proc_are_findings() -> Result<()> {
    let mut stack = Stack::new()?.with_moto()?;
    for h in ["ok1", "noss", "garbled", "refuser"] {
        stack.add_host(h, None)?;
    }
    let kh = stack.pinned_known_hosts()?;
    let entries: Vec<_> = ["ok1", "noss", "garbled", "refuser"]
        .iter()
        .map(|h| stack.entry(h, &kh))
        .collect();
    stack.host_mut("refuser").stop();
    stack.host_mut("noss").only_tools(&[
        "cat", "hostname", "uname", "lsblk", "df", "ip", "grep", "modinfo",
    ])?;
    stack.host("garbled").install_command("cat", GARBLING_CAT)?;
    let ferry = stack.ferry("file:///unused", &entries)?;

    let d = ferry.json(&["discover", "--sample", "2s", "--interval", "1s"])?;
    assert_eq!(d["hosts"].as_array().map(Vec::len), Some(4), "{d}");

    let refuser = host(&d, "refuser")?;
    assert_eq!(refuser["reachable"], false);
    assert!(
        message_with(refuser, "unreachable", "cannot connect"),
        "{refuser}"
    );

    let noss = host(&d, "noss")?;
    assert!(
        message_with(noss, "tool-missing", "ss is not installed"),
        "{noss}"
    );
    // Its sockets still come from the kernel's tables, without process names.
    let listeners = noss["listeners"].as_array().context("no listeners")?;
    assert!(!listeners.is_empty(), "{noss}");
    assert!(listeners.iter().all(|l| l["process"].is_null()));
    assert!(noss["inventory"]["os"]["id"].is_string());

    let garbled = host(&d, "garbled")?;
    assert!(
        message_with(garbled, "unreadable", "/proc/meminfo"),
        "{garbled}"
    );
    assert!(
        message_with(garbled, "unreadable", "/proc/cpuinfo"),
        "{garbled}"
    );
    assert!(garbled["inventory"]["cpus"].is_null());
    assert!(garbled["inventory"]["os"]["id"].is_string());

    let ok = host(&d, "ok1")?;
    let c = codes(ok);
    for bad in ["unreachable", "unreadable", "tool-missing"] {
        assert!(!c.iter().any(|x| x == bad), "ok1 has {bad}: {ok}");
    }
    let inv = &ok["inventory"];
    assert!(inv["cpus"].as_u64().unwrap_or(0) >= 1);
    assert!(inv["memory_bytes"].as_u64().unwrap_or(0) > 0);
    assert!(inv["interfaces"].as_array().is_some_and(|i| !i.is_empty()));
    assert_eq!(ok["performance"]["samples"], 3);
    assert!(ok["sizing"]["instance_type"].is_string(), "{ok}");
    Ok(())
}
