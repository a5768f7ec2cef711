//! The disaster-recovery test bed: a protection group of sshd test hosts on loopback
//! with small disks, each with a service stand-in (`ferry-tcp-peer`) on its own address
//! and port, the cloud side (moto with the template deployed, the real functions), a
//! target network whose recovery addresses are loopback addresses too (127.77.0.0/16:
//! moto's instances run nothing, so a test stands in for a recovered service by
//! listening at its recovery address), a Route 53 zone, and helpers to read what a user
//! would check with the `aws` CLI: metrics, alarms, executions, instances.

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::ferry::{ferry_bin, Ferry};
use crate::moto::Moto;
use crate::procs::{free_port, Proc};
use crate::stack::Stack;

/// One host of the group: its tier, its service port, its recovery address.
#[derive(Debug, Clone)]
pub struct BedHost {
    pub name: String,
    pub tier: String,
    /// Launch settings and health checks, as `[group.host.<name>]` holds them.
    pub recovery_ip: Option<String>,
    /// Extra keys of its `[group.host.<name>]` (e.g. a subnet of its own).
    pub extra: String,
}

/// A service stand-in listening on `addr:port`; stops when dropped.
pub struct Service {
    pub addr: String,
    pub port: u16,
    _proc: Proc,
}

impl Service {
    pub fn start(addr: &str, port: u16) -> Result<Self> {
        let bin = ferry_bin()?.with_file_name("ferry-tcp-peer");
        let mut p = Proc::spawn(
            &format!("service {addr}:{port}"),
            std::process::Command::new(bin)
                .args(["--address", addr, "--listen", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )?;
        let started = Instant::now();
        while TcpStream::connect((addr, port)).is_err() {
            p.check_alive()?;
            if started.elapsed() > Duration::from_secs(10) {
                bail!("service stand-in on {addr}:{port} never listened");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Service {
            addr: addr.to_string(),
            port,
            _proc: p,
        })
    }
}

pub struct DrBed {
    pub stack: Stack,
    pub ferry: Ferry,
    pub hosts: Vec<BedHost>,
    /// Each host's service port (the same on its origin and recovery addresses).
    pub ports: Vec<(String, u16)>,
    /// The origin's services, by host; dropped to make the origin fail.
    pub services: Vec<(String, Service)>,
    pub vpc: String,
    pub subnet: String,
    pub drill_subnet: String,
    pub zone: String,
    pub record: String,
    /// An ELBv2 target group (IP targets) holding the origin's web host.
    pub target_group: String,
    pub group: String,
}

/// The recovery network: moto accepts loopback CIDRs, and the functions, running on
/// this machine, reach its addresses.
pub const RECOVERY_VPC: &str = "127.77.0.0/16";
pub const RECOVERY_SUBNET: &str = "127.77.0.0/24";
pub const DRILL_SUBNET: &str = "127.77.1.0/24";

impl BedHost {
    pub fn new(name: &str, tier: &str, recovery_ip: Option<&str>) -> Self {
        BedHost {
            name: name.into(),
            tier: tier.into(),
            recovery_ip: recovery_ip.map(str::to_string),
            extra: String::new(),
        }
    }
}

impl DrBed {
    /// A group `group` of `hosts` (tiers in the order first named), disks of
    /// `disk_mib`, every tier syncing every `interval`; `group_extra` adds keys to the
    /// `[[group]]` and `tier_extra(tier)` to each `[[group.tier]]`.
    pub fn new(
        group: &str,
        hosts: &[BedHost],
        disk_mib: usize,
        interval: &str,
        group_extra: &str,
        tier_extra: &dyn Fn(&str) -> String,
    ) -> Result<Self> {
        let mut stack = Stack::new()?;
        stack.minute_s = Some(2.0);
        let mut stack = stack.with_cloud()?;
        for (i, h) in hosts.iter().enumerate() {
            let idx = stack.add_host(&h.name, None)?;
            crate::disk::random(&stack.hosts[idx].disk, disk_mib << 20, 1000 + i as u64)?;
        }
        let kh = stack.pinned_known_hosts()?;
        let entries: Vec<_> = hosts.iter().map(|h| stack.entry(&h.name, &kh)).collect();
        let mut ports = Vec::new();
        let mut services = Vec::new();
        for h in hosts {
            let ip = stack.host(&h.name).ip.clone();
            let port = free_port(&ip)?;
            services.push((h.name.clone(), Service::start(&ip, port)?));
            ports.push((h.name.clone(), port));
        }
        let moto = stack.moto.as_ref().context("no moto")?;
        let (vpc, subnet) = moto.network(RECOVERY_VPC, RECOVERY_SUBNET)?;
        let drill = moto.aws(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc,
            "--cidr-block",
            DRILL_SUBNET,
        ])?;
        let drill_subnet = drill["Subnet"]["SubnetId"]
            .as_str()
            .context("no drill subnet")?
            .to_string();
        let zone = moto.hosted_zone("shop.example.")?;
        let record = "www.shop.example.".to_string();
        let web = hosts.last().context("no hosts")?;
        let web_ip = stack.host(&web.name).ip.clone();
        let web_port = ports
            .iter()
            .find(|(h, _)| h == &web.name)
            .map(|(_, p)| *p)
            .context("no port")?;
        moto.aws(&[
            "route53",
            "change-resource-record-sets",
            "--hosted-zone-id",
            &zone,
            "--change-batch",
            &serde_json::json!({"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": record, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": web_ip}]}}]})
            .to_string(),
        ])?;
        let target_group = moto.ip_target_group(&format!("{group}-web"), 80, &vpc)?;
        moto.aws(&[
            "elbv2",
            "register-targets",
            "--target-group-arn",
            &target_group,
            "--targets",
            &format!("Id={web_ip},Port=80"),
        ])?;
        let mut tail = format!(
            "\n[[group]]\nname = \"{group}\"\nrpo = \"10m\"\nrto = \"5m\"\nsubnet = \"{subnet}\"\ndrill_subnet = \"{drill_subnet}\"\n\
             public_endpoint = \"tcp://{web_ip}:{web_port}\"\nprobe_interval = \"1s\"\nperiod = \"10s\"\nfailover_after = 1\n\
             poll = \"1s\"\ntier_timeout = \"2m\"\n{group_extra}\n"
        );
        let mut tiers: Vec<&str> = Vec::new();
        for h in hosts {
            if !tiers.contains(&h.tier.as_str()) {
                tiers.push(&h.tier);
            }
        }
        for t in &tiers {
            let names: Vec<String> = hosts
                .iter()
                .filter(|h| &h.tier == t)
                .map(|h| format!("\"{}\"", h.name))
                .collect();
            tail += &format!(
                "\n[[group.tier]]\nname = \"{t}\"\nhosts = [{}]\ninterval = \"{interval}\"\n{}\n",
                names.join(", "),
                tier_extra(t)
            );
        }
        for h in hosts {
            let port = ports
                .iter()
                .find(|(n, _)| n == &h.name)
                .map(|(_, p)| *p)
                .unwrap_or(0);
            tail += &format!(
                "\n[group.host.{}]\nhealth = [\"tcp:{port}\"]\n{}",
                h.name,
                h.extra
                    .replace("{root}", &stack.path().display().to_string())
            );
            if let Some(ip) = &h.recovery_ip {
                tail += &format!("private_ip = \"{ip}\"\n");
            }
        }
        tail += &format!(
            "\n[[group.dns]]\nzone = \"{zone}\"\nname = \"{record}\"\norigin = [\"{web_ip}\"]\nrecovery_hosts = [\"{}\"]\n",
            web.name
        );
        tail += &format!(
            "\n[[group.target_group]]\narn = \"{target_group}\"\nport = 80\norigin = [\"{web_ip}\"]\nrecovery_hosts = [\"{}\"]\n",
            web.name
        );
        let ferry = stack.ferry_protecting(&entries, &tail)?;
        Ok(DrBed {
            stack,
            ferry,
            hosts: hosts.to_vec(),
            ports,
            services,
            vpc,
            subnet,
            drill_subnet,
            zone,
            record,
            target_group,
            group: group.to_string(),
        })
    }

    pub fn moto(&self) -> &Moto {
        self.stack.moto.as_ref().expect("the bed has moto")
    }

    pub fn port(&self, host: &str) -> u16 {
        self.ports
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, p)| *p)
            .unwrap_or(0)
    }

    /// The origin fails: every host's sshd and service stop.
    pub fn fail_origin(&mut self) {
        self.services.clear();
        for h in &mut self.stack.hosts {
            h.stop();
        }
    }

    /// Captures a host and builds its image (`ferry capture --image`, then waits for
    /// the build).
    pub fn capture_and_build(&self, host: &str) -> Result<String> {
        Ok(capture_and_build(&self.ferry, host)?.0)
    }

    /// The addresses of the record the group switches.
    pub fn record_values(&self) -> Result<Vec<String>> {
        let sets = self.moto().aws(&[
            "route53",
            "list-resource-record-sets",
            "--hosted-zone-id",
            &self.zone,
        ])?;
        Ok(sets["ResourceRecordSets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["Name"] == self.record.as_str() && s["Type"] == "A")
            .flat_map(|s| s["ResourceRecords"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["Value"].as_str().map(str::to_string))
            .collect())
    }

    /// The targets the group's target group holds.
    pub fn targets(&self) -> Result<Vec<String>> {
        target_ids(self.moto(), &self.target_group)
    }

    /// The log file a spawned ferry writes to.
    pub fn log(&self, name: &str) -> PathBuf {
        self.stack.path().join(name)
    }
}

/// The target ids a target group holds, as `describe-target-health` lists them.
pub fn target_ids(moto: &Moto, arn: &str) -> Result<Vec<String>> {
    let h = moto.aws(&["elbv2", "describe-target-health", "--target-group-arn", arn])?;
    Ok(h["TargetHealthDescriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["Target"]["Id"].as_str().map(str::to_string))
        .collect())
}

/// Captures a host and builds its image (`ferry capture --image`, then `ferry image`,
/// which waits for the build); returns (point, image id).
pub fn capture_and_build(ferry: &Ferry, host: &str) -> Result<(String, String)> {
    let cap = ferry.json(&["capture", host, "--image"])?;
    let point = cap["point"].as_str().context("no point")?.to_string();
    let built = ferry.json(&["image", host, "--point", &point])?;
    if built["status"] != "SUCCEEDED" {
        bail!("image build of {host} {point}: {built}");
    }
    let image = built["image_id"]
        .as_str()
        .with_context(|| format!("no image id in {built}"))?
        .to_string();
    Ok((point, image))
}

/// Values of one metric over the last `window`, one per `period_s` (newest last).
pub fn metric(
    moto: &Moto,
    name: &str,
    dims: &[(&str, &str)],
    stat: &str,
    window: Duration,
) -> Result<Vec<f64>> {
    metric_in(moto, "Ferry", name, dims, stat, window)
}

/// [`metric`] in another namespace.
pub fn metric_in(
    moto: &Moto,
    namespace: &str,
    name: &str,
    dims: &[(&str, &str)],
    stat: &str,
    window: Duration,
) -> Result<Vec<f64>> {
    let end = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let start = end - time::Duration::seconds(window.as_secs() as i64 + 5);
    let fmt = |t: time::OffsetDateTime| t.unix_timestamp().to_string();
    let dims: Vec<Value> = dims
        .iter()
        .map(|(k, v)| serde_json::json!({"Name": k, "Value": v}))
        .collect();
    let q = serde_json::json!([{"Id": "m", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims}, "Period": 1, "Stat": stat}}]);
    let out = moto.aws(&[
        "cloudwatch",
        "get-metric-data",
        "--metric-data-queries",
        &q.to_string(),
        "--start-time",
        &fmt(start),
        "--end-time",
        &fmt(end),
        "--scan-by",
        "TimestampAscending",
    ])?;
    Ok(out["MetricDataResults"][0]["Values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect())
}

/// The newest value (the period's maximum) of one metric over the last `window_s`.
pub fn latest(
    moto: &Moto,
    name: &str,
    dims: &[(&str, &str)],
    window_s: u64,
) -> Result<Option<f64>> {
    Ok(
        metric(moto, name, dims, "Maximum", Duration::from_secs(window_s))?
            .last()
            .copied(),
    )
}

/// How many network interfaces a subnet holds.
pub fn interfaces_in(moto: &Moto, subnet: &str) -> Result<usize> {
    let eni = moto.aws(&[
        "ec2",
        "describe-network-interfaces",
        "--filters",
        &format!("Name=subnet-id,Values={subnet}"),
    ])?;
    Ok(eni["NetworkInterfaces"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0))
}

/// Waits (at most `timeout`) until `check` says yes; `what` names what it waits for.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{what}: not after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Sets an alarm's state; an ALARM in a wall-clock second of its own. The triggers name
/// a run by the second its alarm came in and take a second event in the same second for
/// a redelivery of the first (by design), so a test's new alarm must not share a second
/// with the run before it.
pub fn set_alarm(moto: &Moto, name: &str, state: &str, reason: &str) -> Result<()> {
    if state == "ALARM" {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        std::thread::sleep(Duration::from_nanos(
            1_000_000_000 - u64::from(now.subsec_nanos()),
        ));
    }
    set_alarm_at_once(moto, name, state, reason)
}

/// [`set_alarm`] without waiting for a new second: for benchmarks that time from the
/// call (their rounds are seconds apart).
pub fn set_alarm_at_once(moto: &Moto, name: &str, state: &str, reason: &str) -> Result<()> {
    moto.aws(&[
        "cloudwatch",
        "set-alarm-state",
        "--alarm-name",
        name,
        "--state-value",
        state,
        "--state-reason",
        reason,
    ])?;
    Ok(())
}

pub fn alarm_state(moto: &Moto, name: &str) -> Result<String> {
    let a = moto.aws(&["cloudwatch", "describe-alarms", "--alarm-names", name])?;
    for kind in ["MetricAlarms", "CompositeAlarms"] {
        if let Some(s) = a[kind][0]["StateValue"].as_str() {
            return Ok(s.to_string());
        }
    }
    bail!("no alarm {name}")
}

/// Executions of a state machine, as `list-executions` prints them.
pub fn executions(moto: &Moto, state_machine: &str) -> Result<Vec<Value>> {
    let l = moto.aws(&[
        "stepfunctions",
        "list-executions",
        "--state-machine-arn",
        state_machine,
    ])?;
    Ok(l["executions"].as_array().cloned().unwrap_or_default())
}

/// Waits (at most `timeout`) for an execution of `state_machine` beyond the `before`
/// it had, running or done; returns it as `list-executions` prints it.
pub fn next_execution(
    moto: &Moto,
    state_machine: &str,
    before: usize,
    timeout: Duration,
) -> Result<Value> {
    let mut exec = Value::Null;
    wait_until("the next execution", timeout, || {
        let all = executions(moto, state_machine)?;
        if all.len() > before {
            exec = all
                .into_iter()
                .find(|e| e["status"] == "RUNNING" || e["status"] == "SUCCEEDED")
                .unwrap_or(Value::Null);
        }
        Ok(exec.is_object())
    })?;
    Ok(exec)
}

/// Waits for an execution to end; returns `describe-execution`'s document.
pub fn wait_execution(moto: &Moto, arn: &str, timeout: Duration) -> Result<Value> {
    let start = Instant::now();
    loop {
        let d = moto.aws(&[
            "stepfunctions",
            "describe-execution",
            "--execution-arn",
            arn,
        ])?;
        if d["status"] != "RUNNING" {
            return Ok(d);
        }
        if start.elapsed() > timeout {
            bail!("execution {arn} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Instances matching EC2 filters (`Name=tag:ferry:group,Values=shop`).
pub fn instances(moto: &Moto, filters: &[&str]) -> Result<Vec<Value>> {
    let mut args = vec!["ec2", "describe-instances", "--filters"];
    args.extend_from_slice(filters);
    let d = moto.aws(&args)?;
    Ok(d["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
        .collect())
}

/// A host's point items, newest first.
pub fn points(moto: &Moto, host: &str) -> Result<Vec<Value>> {
    let q = moto.aws(&[
        "dynamodb",
        "query",
        "--table-name",
        crate::stack::TABLE,
        "--key-condition-expression",
        "pk = :pk AND begins_with(sk, :sk)",
        "--expression-attribute-values",
        &serde_json::json!({":pk": {"S": format!("HOST#{host}")}, ":sk": {"S": "POINT#"}})
            .to_string(),
        "--no-scan-index-forward",
    ])?;
    Ok(q["Items"].as_array().cloned().unwrap_or_default())
}

/// The history's events, as `get-execution-history` prints them.
pub fn history(moto: &Moto, arn: &str) -> Result<Vec<Value>> {
    let h = moto.aws(&[
        "stepfunctions",
        "get-execution-history",
        "--execution-arn",
        arn,
    ])?;
    Ok(h["events"].as_array().cloned().unwrap_or_default())
}

/// `ferry daemon`, running, its log in a file; killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(ferry: &Ferry, log: PathBuf, args: &[&str]) -> Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut a = vec!["daemon"];
        a.extend_from_slice(args);
        let child = ferry
            .command(&a)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting ferry daemon")?;
        Ok(Daemon { child, log })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` (at most `timeout`).
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            if let Some(s) = self.child.try_wait()? {
                bail!(
                    "the daemon exited ({s}) before logging {needle:?}:\n{}",
                    self.log_text()
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "the daemon did not log {needle:?} within {timeout:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling a child process we started and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM, then how long it took to exit (at most `timeout`), and its status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<(Duration, std::process::ExitStatus)> {
        let start = Instant::now();
        self.signal(libc::SIGTERM);
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok((start.elapsed(), s));
            }
            if start.elapsed() > timeout {
                bail!("the daemon did not stop within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL);
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.kill9();
        }
    }
}
