//! The burst test bed: a web tier of two sshd test hosts on loopback, each with its web
//! service stand-in on its own address and the same port, registered as IP targets in
//! a hybrid target group (IP targets, deregistration delay of 2 s) of a load balancer;
//! the cloud side (moto with the template deployed, the real functions); a launch
//! network (127.77.0.0/24: the Auto Scaling group's instances get addresses there);
//! clients that make the hosts busy (each holds connections open to a host's service,
//! which the load sampler counts); and what a user checks with the `aws` CLI.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::dr::{metric_in, Service, RECOVERY_SUBNET, RECOVERY_VPC};
use crate::ferry::{ferry_bin, Ferry};
use crate::moto::Moto;
use crate::procs::{free_port, Proc};
use crate::stack::Stack;

pub const TIER: &str = "web";
pub const HOSTS: [&str; 2] = ["web1", "web2"];

pub struct BurstBed {
    pub stack: Stack,
    pub ferry: Ferry,
    pub port: u16,
    pub services: Vec<Service>,
    pub subnet: String,
    pub target_group: String,
    /// The hosted zone of the tier's weighted records (a bed made with DNS).
    pub zone: Option<String>,
    /// The on-prem servers' addresses (their targets).
    pub onprem: Vec<String>,
}

/// Clients holding `conns` connections open to each of `addrs`; stop when dropped.
pub struct Clients {
    _procs: Vec<Proc>,
}

impl Clients {
    pub fn start(addrs: &[String], conns: usize) -> Result<Self> {
        let bin = ferry_bin()?.with_file_name("ferry-tcp-peer");
        let mut procs = Vec::new();
        for a in addrs {
            procs.push(Proc::spawn(
                &format!("clients of {a}"),
                std::process::Command::new(&bin)
                    .args(["--connect", a, "--conns", &conns.to_string()])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null()),
            )?);
        }
        Ok(Clients { _procs: procs })
    }
}

impl BurstBed {
    /// The bed, with `extra` added to the tier's `[[burst]]`.
    pub fn new(extra: &str) -> Result<Self> {
        Self::make(extra, false)
    }

    /// The bed with no load balancer: the tier shares `www.shop.example.` by Route 53
    /// weighted records instead (the target group exists but the tier does not use it).
    pub fn with_dns(extra: &str) -> Result<Self> {
        Self::make(extra, true)
    }

    fn make(extra: &str, dns: bool) -> Result<Self> {
        let mut stack = Stack::new()?.with_cloud()?;
        for (i, h) in HOSTS.iter().enumerate() {
            let idx = stack.add_host(h, None)?;
            crate::disk::random(&stack.hosts[idx].disk, 4 << 20, 2000 + i as u64)?;
        }
        let kh = stack.pinned_known_hosts()?;
        let entries: Vec<_> = HOSTS.iter().map(|h| stack.entry(h, &kh)).collect();
        let onprem: Vec<String> = HOSTS.iter().map(|h| stack.host(h).ip.clone()).collect();
        // One service port on both addresses, as a tier behind a load balancer has.
        let mut services = Vec::new();
        let mut port = 0;
        for _ in 0..20 {
            port = free_port(&onprem[0])?;
            services.clear();
            if let Ok(s) = onprem
                .iter()
                .map(|a| Service::start(a, port))
                .collect::<Result<Vec<_>>>()
            {
                services = s;
                break;
            }
        }
        if services.len() != HOSTS.len() {
            bail!("no port free on both web hosts");
        }
        let moto = stack.moto.as_ref().context("no moto")?;
        let (vpc, subnet) = moto.network(RECOVERY_VPC, RECOVERY_SUBNET)?;
        let target_group = moto.ip_target_group("shop-web", port, &vpc)?;
        moto.aws(&[
            "elbv2",
            "modify-target-group-attributes",
            "--target-group-arn",
            &target_group,
            "--attributes",
            "Key=deregistration_delay.timeout_seconds,Value=2",
        ])?;
        let (traffic, zone) = match dns {
            false => (format!("target_group = \"{target_group}\"\n"), None),
            true => (String::new(), Some(moto.hosted_zone("shop.example.")?)),
        };
        let dns_table = match &zone {
            Some(z) => format!("\n[burst.dns]\nzone = \"{z}\"\nname = \"www.shop.example.\"\nttl = 2\nonprem_weight = 100\naws_weight = 50\n"),
            None => String::new(),
        };
        // `max = 2` unless the test gives its own.
        let max = match extra.contains("max = ") {
            true => "",
            false => "max = 2\n",
        };
        let tail = format!(
            "\n[[burst]]\ntier = \"{TIER}\"\nhosts = [\"web1\", \"web2\"]\ngolden = \"web1\"\n\
             {traffic}port = {port}\nsubnets = [\"{subnet}\"]\n\
             instance_type = \"t3.small\"\n{max}load = \"connections\"\nburst_above = 5\n\
             scale_in_below = 1\nperiod = \"10s\"\nsample_every = \"1s\"\nburst_periods = 1\n\
             scale_in_periods = 1\npoll = \"1s\"\nburst_timeout = \"1m\"\n{extra}\n{dns_table}"
        );
        let ferry = stack.ferry_protecting(&entries, &tail)?;
        Ok(BurstBed {
            stack,
            ferry,
            port,
            services,
            subnet,
            target_group,
            zone,
            onprem,
        })
    }

    pub fn moto(&self) -> &Moto {
        self.stack.moto.as_ref().expect("the bed has moto")
    }

    /// The services' `addr:port`s.
    pub fn service_addrs(&self) -> Vec<String> {
        self.services
            .iter()
            .map(|s| format!("{}:{}", s.addr, s.port))
            .collect()
    }

    /// Captures a host and builds its image; returns (point, image id).
    pub fn capture_and_build(&self, host: &str) -> Result<(String, String)> {
        crate::dr::capture_and_build(&self.ferry, host)
    }

    /// The target ids the target group holds, sorted.
    pub fn targets(&self) -> Result<Vec<String>> {
        let mut out = crate::dr::target_ids(self.moto(), &self.target_group)?;
        out.sort();
        Ok(out)
    }

    /// The tier's Auto Scaling group, as `describe-auto-scaling-groups` prints it.
    pub fn group(&self) -> Result<Value> {
        let g = self.moto().aws(&[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            "ferry-burst-web",
        ])?;
        Ok(g["AutoScalingGroups"][0].clone())
    }

    /// Every version of the tier's launch template (oldest first).
    pub fn template_versions(&self) -> Result<Vec<Value>> {
        let v = self.moto().aws(&[
            "ec2",
            "describe-launch-template-versions",
            "--launch-template-name",
            "ferry-burst-web",
        ])?;
        let mut out = v["LaunchTemplateVersions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        out.sort_by_key(|x| x["VersionNumber"].as_i64());
        Ok(out)
    }

    /// The tier's published load over the last `window`.
    pub fn load(&self, window: Duration) -> Result<Vec<f64>> {
        metric_in(
            self.moto(),
            "Ferry/Burst",
            "Load",
            &[("Tier", TIER)],
            "Maximum",
            window,
        )
    }
}

impl BurstBed {
    /// The weighted A record sets of `www.shop.example.`: (set id, weight, addresses).
    pub fn weighted_records(&self) -> Result<Vec<(String, i64, Vec<String>)>> {
        let zone = self.zone.as_deref().context("a bed without DNS")?;
        let sets = self.moto().aws(&[
            "route53",
            "list-resource-record-sets",
            "--hosted-zone-id",
            zone,
        ])?;
        let mut out: Vec<(String, i64, Vec<String>)> = sets["ResourceRecordSets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["Name"] == "www.shop.example." && s["Type"] == "A")
            .map(|s| {
                let mut v: Vec<String> = s["ResourceRecords"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["Value"].as_str().map(str::to_string))
                    .collect();
                v.sort();
                (
                    s["SetIdentifier"].as_str().unwrap_or_default().to_string(),
                    s["Weight"].as_i64().unwrap_or(-1),
                    v,
                )
            })
            .collect();
        out.sort();
        Ok(out)
    }
}
