//! `ferry discover` on a test bed shaped like a customer's 3-tier web shop: a load
//! balancer, two web servers, three app servers, a primary database and a replica, each
//! in its own network namespace with its own address, hostname and sshd, with real TCP
//! traffic between them (lb -> web:80, web -> app:8080, app -> db:3306, replica ->
//! primary). Discovery over the address range finds exactly those edges (direction,
//! port, processes, connection counts), the tiers, sane sizing from moto's
//! DescribeInstanceTypes, and the waves; `--write-config` proposes entries the real
//! binary accepts; `ferry report` renders a page that headless Chromium opens, whose map
//! has one node per host and one edge per dependency.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_core::keys;
use ferry_tests::stack::{Stack, TABLE};
use ferry_tests::testbed::TestBed;
use serde_json::Value;

const HOSTS: &[(&str, u8)] = &[
    ("lb", 10),
    ("web1", 11),
    ("web2", 12),
    ("app1", 21),
    ("app2", 22),
    ("app3", 23),
    ("db1", 24),
    ("db2", 25),
];

fn shop(bed: &mut TestBed) -> Result<()> {
    bed.run("db1", "mysqld", &[3306], &[], 1)?;
    bed.run("db2", "mysqld", &[3306], &[("db1", 3306)], 1)?;
    for app in ["app1", "app2", "app3"] {
        bed.run(app, "java", &[8080], &[("db1", 3306)], 2)?;
    }
    for web in ["web1", "web2"] {
        bed.run(
            web,
            "httpd",
            &[80],
            &[("app1", 8080), ("app2", 8080), ("app3", 8080)],
            2,
        )?;
    }
    bed.run("lb", "haproxy", &[80], &[("web1", 80), ("web2", 80)], 2)?;
    // Every connection up: lb holds 4, db1 serves 3 x 2 + 1.
    let start = Instant::now();
    while bed.established("lb")? < 4 || bed.established("db1")? < 7 {
        bed.check()?;
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the shop's connections did not come up");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

type EdgeKey = (String, String, u16, String, String, u64);

fn expected_edges() -> BTreeSet<EdgeKey> {
    let mut e = BTreeSet::new();
    let mut add = |c: &str, s: &str, port, cp: &str, sp: &str, n| {
        e.insert((
            c.to_string(),
            s.to_string(),
            port,
            cp.to_string(),
            sp.to_string(),
            n,
        ));
    };
    for web in ["web1", "web2"] {
        add("lb", web, 80, "haproxy", "httpd", 2);
        for app in ["app1", "app2", "app3"] {
            add(web, app, 8080, "httpd", "java", 2);
        }
    }
    for app in ["app1", "app2", "app3"] {
        add(app, "db1", 3306, "java", "mysqld", 2);
    }
    add("db2", "db1", 3306, "mysqld", "mysqld", 1);
    e
}

fn host_of<'a>(d: &'a Value, name: &str) -> Result<&'a Value> {
    d["hosts"]
        .as_array()
        .context("no hosts")?
        .iter()
        .find(|h| h["host"] == name)
        .with_context(|| format!("{name} was not discovered"))
}

#[test]
fn discovers_the_web_shop_edges_tiers_sizing_and_waves() -> Result<()> {
    let stack = Stack::new()?.with_moto()?;
    let mut bed = TestBed::start(stack.path(), &stack.client_key, HOSTS)?;
    shop(&mut bed)?;

    let ferry = stack.ferry("file:///unused", &[])?;
    let known_hosts = stack.path().join("known_hosts");
    let mut config = std::fs::read_to_string(&ferry.config)?;
    config += &format!(
        "\n[discovery]\naddresses = [\"{}.0/27\"]\nidentity = \"{}\"\nknown_hosts = \"{}\"\n",
        bed.net,
        stack.client_key.display(),
        known_hosts.display()
    );
    std::fs::write(&ferry.config, &config)?;

    let d = ferry.json(&[
        "discover",
        "--sample",
        "3s",
        "--interval",
        "1s",
        "--accept-new-host-key",
        "--write-config",
    ])?;

    // Exactly the eight hosts, each named by its own hostname.
    let names: BTreeSet<&str> = d["hosts"]
        .as_array()
        .context("no hosts")?
        .iter()
        .filter_map(|h| h["host"].as_str())
        .collect();
    let want: BTreeSet<&str> = HOSTS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "{d}");

    // Exactly the shop's dependencies: no invented ones, no discovery sessions.
    let got: BTreeSet<EdgeKey> = d["edges"]
        .as_array()
        .context("no edges")?
        .iter()
        .map(|e| {
            (
                e["client"]["host"].as_str().unwrap_or("?").to_string(),
                e["server"]["host"].as_str().unwrap_or("?").to_string(),
                e["port"].as_u64().unwrap_or(0) as u16,
                e["client_process"].as_str().unwrap_or("?").to_string(),
                e["server_process"].as_str().unwrap_or("?").to_string(),
                e["connections"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got, expected_edges(), "{}", d["edges"]);

    for (host, tier) in [
        ("lb", "lb"),
        ("web1", "web"),
        ("web2", "web"),
        ("app1", "app"),
        ("app2", "app"),
        ("app3", "app"),
        ("db1", "db"),
        ("db2", "db"),
    ] {
        let h = host_of(&d, host)?;
        assert_eq!(h["tier"], tier, "{host}");
        assert_eq!(h["performance"]["samples"], 4, "{host}");
        assert_eq!(
            h["address"],
            format!(
                "{}.{}",
                bed.net,
                bed.host(host)?.ip.rsplit('.').next().unwrap_or("")
            )
        );
        assert!(h["inventory"]["os"]["id"].is_string(), "{host}");
        // Sane sizing: a real type that fits what the host needs.
        let z = &h["sizing"];
        assert!(z["instance_type"].is_string(), "{host}: {h}");
        assert!(
            z["vcpus"].as_f64().unwrap_or(0.0) >= z["needed_vcpus"].as_f64().unwrap_or(f64::MAX)
        );
        assert!(
            z["memory_bytes"].as_u64().unwrap_or(0)
                >= z["needed_memory_bytes"].as_u64().unwrap_or(u64::MAX)
        );
        let p = &h["performance"];
        assert!(
            z["needed_vcpus"].as_f64().unwrap_or(0.0)
                >= p["cpu_cores"]["p95"].as_f64().unwrap_or(f64::MAX)
        );
        assert!(
            z["needed_memory_bytes"].as_f64().unwrap_or(0.0)
                >= p["memory_used_bytes"]["max"].as_f64().unwrap_or(f64::MAX)
        );
    }

    let waves: Vec<Vec<&str>> = d["waves"]
        .as_array()
        .context("no waves")?
        .iter()
        .map(|w| {
            w["hosts"]
                .as_array()
                .map(|h| h.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        waves,
        vec![
            vec!["db1"],
            vec!["db2"],
            vec!["app1", "app2", "app3"],
            vec!["web1", "web2"],
            vec!["lb"]
        ]
    );

    // Stored: the JSON file and the DynamoDB items.
    assert!(std::path::Path::new(d["results"].as_str().unwrap_or("")).exists());
    let moto = stack.moto.as_ref().context("no moto")?;
    let item = moto.get_item(TABLE, &keys::host_pk("db1"), keys::DISCOVERY)?;
    assert_eq!(item["Item"]["tier"]["S"], "db");

    // The report opens in headless Chromium; its map has one node per host and one
    // edge per dependency.
    let html = stack.path().join("report.html");
    ferry.json(&["report", "--out", html.to_str().context("path")?])?;
    let shot = stack.path().join("report.png");
    let dom = ferry_tests::browser::render(&html, &shot)?;
    assert_eq!(dom.matches("class=\"node ").count(), 8, "{dom}");
    assert_eq!(
        dom.matches("class=\"edge\"").count(),
        expected_edges().len()
    );
    if let Ok(keep) = std::env::var("FERRY_KEEP_REPORT") {
        std::fs::copy(&shot, keep)?;
    }

    // The proposed entries are a config the real binary accepts.
    let proposed = std::fs::read_to_string(d["proposed_config"].as_str().context("no proposal")?)?;
    assert_eq!(proposed.matches("[[host]]").count(), 8, "{proposed}");
    assert!(proposed.contains("tier = \"db\""));
    let other = stack.path().join("proposed");
    std::fs::create_dir_all(&other)?;
    let config2 = other.join("ferry.toml");
    std::fs::write(&config2, format!("store = \"file:///unused\"\n{proposed}"))?;
    let one = ferry.json(&[
        "--config",
        config2.to_str().context("path")?,
        "discover",
        "web1",
    ])?;
    assert_eq!(one["hosts"][0]["host"], "web1");
    Ok(())
}
