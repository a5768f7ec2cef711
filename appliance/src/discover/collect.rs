//! Collecting one host over SSH: the inventory script once, then the sample script every
//! interval over the window, on one connection. Whatever fails becomes a finding on the
//! host; discovery of the other hosts goes on.

use std::time::{Duration, Instant};

use super::assess::assess;
use super::inventory::learn;
use super::model::{Finding, HostReport, Severity};
use super::sampler::Sampler;
use super::script::{script, split, INVENTORY, SAMPLE};
use super::targets::Target;
use crate::ssh::SshSession;

#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Zero: one sample (sockets, no rates).
    pub length: Duration,
    pub interval: Duration,
}

impl Window {
    pub fn samples(&self) -> u32 {
        if self.length.is_zero() || self.interval.is_zero() {
            1
        } else {
            (self.length.as_secs_f64() / self.interval.as_secs_f64()).floor() as u32 + 1
        }
    }
}

pub async fn collect(t: &Target, w: Window) -> HostReport {
    let mut r = HostReport {
        host: t.name.clone(),
        address: Some(t.ssh.addr.host.clone()),
        ..Default::default()
    };
    let session = match SshSession::connect(&t.ssh).await {
        Ok(s) => s,
        Err(e) => {
            r.findings.push(Finding::new(
                Severity::Blocker,
                "unreachable",
                format!("{e:#}"),
            ));
            return r;
        }
    };
    r.reachable = true;
    let learned = match session.run(&script(INVENTORY)).await {
        Ok((_, out, _)) => learn(&split(&String::from_utf8_lossy(&out))),
        Err(e) => {
            r.findings.push(Finding::new(
                Severity::Blocker,
                "unreadable",
                format!("the inventory script did not run: {e:#}"),
            ));
            session.close().await;
            return r;
        }
    };
    r.findings.extend(learned.findings);
    r.findings.extend(assess(&learned.inventory));
    let mut sampler = Sampler::new(learned.own_connection);
    let sample_script = script(SAMPLE);
    let start = Instant::now();
    for i in 0..w.samples() {
        let due = start + w.interval * i;
        tokio::time::sleep_until(due.into()).await;
        match session.run(&sample_script).await {
            Ok((_, out, _)) => sampler.add(
                start.elapsed().as_secs_f64(),
                &split(&String::from_utf8_lossy(&out)),
            ),
            Err(e) => {
                r.findings.push(Finding::new(
                    Severity::Warning,
                    "sampling-stopped",
                    format!("sample {} failed: {e:#}", i + 1),
                ));
                break;
            }
        }
    }
    let s = sampler.finish(learned.inventory.cpus, w.interval.as_secs_f64());
    r.listeners = s.listeners;
    r.connections = s.connections;
    r.performance = s.performance;
    r.findings.extend(s.findings);
    let mut inventory = learned.inventory;
    inventory.memory_bytes = s.memory_total;
    r.inventory = Some(inventory);
    session.close().await;
    r
}
