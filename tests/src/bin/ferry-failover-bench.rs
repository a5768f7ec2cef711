//! `ferry-failover-bench`: how long Ferry's failover orchestration takes, alarm to
//! traffic switched, for an 8-host, 3-tier group (2 databases, 3 application servers,
//! 3 web servers) on the local stack, and, in the same run, how long the same 8 hosts
//! take to come up with `ferry migrate`, one after another in boot order (what an
//! operator without DR orchestration would do with Ferry's own migration tool).
//!
//! moto's instances run at once, so what is measured is orchestration on top of
//! instance boot: the trigger (alarm state change -> EventBridge rule -> the trigger
//! function -> StartExecution), the lock and the points, each tier's launch and checks
//! (polled every `--poll-s`), the traffic switch and the record. On AWS, each tier adds
//! its instances' boot time (a minute or two for status checks to pass).
//!
//! Per round: both views of the origin set to ALARM (as CloudWatch would), the run
//! followed to SUCCEEDED, its run item read (RTO, each tier's time, each state's time);
//! then the group is reset as a failback would leave it (alarms OK, the lock released,
//! the recovery instances terminated).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_tests::dr::{executions, next_execution, set_alarm_at_once, wait_execution};
use ferry_tests::ferry::HostEntry;
use ferry_tests::stack::{Stack, FAILOVER_SM, TABLE};
use ferry_tests::stats::median;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds between two checks of a launched tier.
    #[arg(long, default_value_t = 2)]
    poll_s: u64,
    /// Leave out the sequential `ferry migrate` baseline.
    #[arg(long)]
    no_migrate: bool,
}

const TIERS: [(&str, &[&str]); 3] = [
    ("db", &["db1", "db2"]),
    ("app", &["app1", "app2", "app3"]),
    ("web", &["web1", "web2", "web3"]),
];

fn num(v: &Value) -> Option<f64> {
    v["N"].as_str().and_then(|n| n.parse().ok())
}

struct Round {
    /// Alarm set -> execution started (the trigger path).
    trigger_s: f64,
    /// The execution, start to end.
    execution_s: f64,
    /// Alarm -> traffic switched, as the run item records it.
    rto_s: f64,
    tiers: Vec<(String, f64)>,
    states: Vec<(String, f64, u32)>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let stack = Stack::new()?.with_cloud()?;
    let moto = stack.moto.as_ref().context("moto")?;
    let dir = stack.path().to_path_buf();
    let mut entries = Vec::new();
    for (i, h) in TIERS.iter().flat_map(|(_, hs)| hs.iter()).enumerate() {
        let disk = dir.join(format!("{h}.img"));
        ferry_tests::disk::random(&disk, 2 << 20, 500 + i as u64)?;
        entries.push(HostEntry::local(h, &disk));
    }
    let (_vpc, subnet) = moto.network("10.60.0.0/16", "10.60.1.0/24")?;
    let zone = moto.hosted_zone("bench.example.")?;
    let mut tail = format!(
        "\n[[group]]\nname = \"bench\"\nrpo = \"15m\"\nrto = \"30m\"\nsubnet = \"{subnet}\"\n\
         public_endpoint = \"tcp://127.0.0.1:9\"\nperiod = \"10s\"\nfailover_after = 1\npoll = \"{}s\"\n",
        args.poll_s
    );
    for (t, hs) in TIERS {
        let names: Vec<String> = hs.iter().map(|h| format!("\"{h}\"")).collect();
        tail += &format!(
            "\n[[group.tier]]\nname = \"{t}\"\nhosts = [{}]\ninterval = \"1h\"\n",
            names.join(", ")
        );
    }
    tail += &format!("\n[[group.dns]]\nzone = \"{zone}\"\nname = \"www.bench.example\"\nrecovery_hosts = [\"web1\", \"web2\", \"web3\"]\n");
    let ferry = stack.ferry_protecting(&entries, &tail)?;
    eprintln!("capturing 8 hosts and building their AMIs");
    for e in &entries {
        ferry.json(&["capture", &e.name, "--image"])?;
    }
    for e in &entries {
        let r = ferry.json(&["image", &e.name])?;
        if r["status"] != "SUCCEEDED" {
            bail!("image of {}: {r}", e.name);
        }
    }
    ferry.json(&["protect", "bench"])?;
    let sm = stack.state_machine(FAILOVER_SM)?;

    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        let before = executions(moto, &sm)?.len();
        let t0 = Instant::now();
        set_alarm_at_once(moto, "ferry-bench-origin-down-appliance", "ALARM", "bench")?;
        set_alarm_at_once(moto, "ferry-bench-origin-down-aws", "ALARM", "bench")?;
        let exec = next_execution(moto, &sm, before, Duration::from_secs(60))?;
        let trigger_s = t0.elapsed().as_secs_f64();
        let arn = exec["executionArn"].as_str().context("arn")?.to_string();
        let name = exec["name"].as_str().context("name")?.to_string();
        let d = wait_execution(moto, &arn, Duration::from_secs(600))?;
        if d["status"] != "SUCCEEDED" {
            bail!("round {round}: {d}");
        }
        let start = d["startDate"].as_f64().unwrap_or(0.0);
        let stop = d["stopDate"].as_f64().unwrap_or(0.0);
        let item = moto.get_item(TABLE, "GROUP#bench", &format!("RUN#{name}"))?;
        let run = &item["Item"];
        let tiers = run["tiers"]["L"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["M"]["tier"]["S"].as_str().unwrap_or("?").to_string(),
                    num(&t["M"]["ready_after_s"]).unwrap_or(f64::NAN),
                )
            })
            .collect();
        let states = run["states"]["L"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["M"]["name"]["S"].as_str().unwrap_or("?").to_string(),
                    num(&s["M"]["seconds"]).unwrap_or(0.0),
                    num(&s["M"]["visits"]).unwrap_or(0.0) as u32,
                )
            })
            .collect();
        let r = Round {
            trigger_s,
            execution_s: stop - start,
            rto_s: num(&run["rto_s"]).unwrap_or(f64::NAN),
            tiers,
            states,
        };
        eprintln!(
            "round {round}: {name} SUCCEEDED, alarm -> traffic switched {:.1} s",
            r.rto_s
        );
        rounds.push(r);
        // Reset as a failback would leave the group.
        set_alarm_at_once(moto, "ferry-bench-origin-down-aws", "OK", "bench reset")?;
        set_alarm_at_once(
            moto,
            "ferry-bench-origin-down-appliance",
            "OK",
            "bench reset",
        )?;
        moto.aws(&[
            "dynamodb",
            "delete-item",
            "--table-name",
            TABLE,
            "--key",
            &serde_json::json!({"pk": {"S": "GROUP#bench"}, "sk": {"S": "LOCK#failover"}})
                .to_string(),
        ])?;
        let ids: Vec<String> =
            ferry_tests::dr::instances(moto, &[&format!("Name=tag:ferry:run-id,Values={name}")])?
                .iter()
                .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
                .collect();
        let mut a = vec!["ec2", "terminate-instances", "--instance-ids"];
        a.extend(ids.iter().map(String::as_str));
        moto.aws(&a)?;
    }

    let mut migrate_s = None;
    if !args.no_migrate {
        eprintln!("baseline: ferry migrate, host by host in boot order");
        let t0 = Instant::now();
        for (_, hs) in TIERS {
            for h in hs {
                let r = ferry.json(&["migrate", h, "--subnet", &subnet])?;
                if r["status"] != "SUCCEEDED" {
                    bail!("migrate {h}: {r}");
                }
            }
        }
        migrate_s = Some(t0.elapsed().as_secs_f64());
    }

    println!("Failover of an 8-host, 3-tier group on the local stack (moto; instances run at once), {} rounds, tier checks every {} s:", args.rounds, args.poll_s);
    println!();
    println!("| measure | median | rounds |");
    println!("|---|---|---|");
    let row = |label: &str, v: Vec<f64>| {
        let all: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
        println!(
            "| {label} | {:.1} s | {} |",
            median(v.clone()),
            all.join(", ")
        );
    };
    row(
        "alarm -> execution started (trigger)",
        rounds.iter().map(|r| r.trigger_s).collect(),
    );
    row(
        "alarm -> traffic switched (RTO, orchestration)",
        rounds.iter().map(|r| r.rto_s).collect(),
    );
    row(
        "execution, start to end",
        rounds.iter().map(|r| r.execution_s).collect(),
    );
    for (i, (t, _)) in rounds[0].tiers.iter().enumerate() {
        row(
            &format!("tier {t} ready, from the run's start"),
            rounds
                .iter()
                .map(|r| r.tiers.get(i).map(|x| x.1).unwrap_or(f64::NAN))
                .collect(),
        );
    }
    println!();
    println!("| state (first round) | seconds | visits |");
    println!("|---|---|---|");
    for (n, s, v) in &rounds[0].states {
        println!("| {n} | {s:.2} | {v} |");
    }
    if let Some(m) = migrate_s {
        println!();
        println!("| same run, same 8 hosts | seconds |");
        println!("|---|---|");
        println!(
            "| Ferry failover, alarm -> traffic switched (median) | {:.1} |",
            median(rounds.iter().map(|r| r.rto_s).collect())
        );
        println!("| `ferry migrate` host after host in boot order | {m:.1} |");
    }
    Ok(())
}
