//! The disk and host work of a failback, one task at a time: a pass over one host
//! (capture its recovery instance, delta-write its origin), a tier's pre-cutover hook
//! on its recovery instances, a tier's post-cutover hook and health at the origin.
//!
//! A recovery instance was started from the origin's disk, so it presents the origin's
//! SSH host keys and authorizes the origin's keys: its address is pinned with the
//! origin's keys before the appliance connects, and a different key is refused.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_core::group::GroupRecord;
use ferry_core::steps::failback::{HookRun, HostHome, PassReport, TierDone, TierHome};
use ferry_core::steps::failover::rfc3339;
use time::OffsetDateTime;

use crate::capture::{capture_host, CaptureOptions};
use crate::ctx::Ctx;
use crate::dr::config::GroupConfig;
use crate::host::{Access, Host, SnapshotMethod};
use crate::restore::{restore_to_host, ToHostOptions};
use crate::shutdown::Shutdown;
use crate::ssh::{known_hosts, SshAddr, SshSession};

/// The recovery instance's disk when the config names none: a Nitro instance's root
/// volume.
pub const DEFAULT_RECOVERY_DISK: &str = "/dev/nvme0n1";

/// How often a tier's health checks are probed while it starts, and how long one probe
/// may take.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a pass has done so far, readable while it runs (a pass stopped part-way
/// reports it).
#[derive(Debug, Default)]
pub struct PassProgress {
    pub origin_bytes_written: Arc<AtomicU64>,
}

/// The host as the appliance reaches its recovery instance: the origin's name, user,
/// key and known_hosts file; the recovery address and disk.
pub fn recovery_host(origin: &Host, group: &GroupConfig, home: &HostHome) -> Result<Host> {
    let Access::Ssh {
        addr,
        identity,
        known_hosts,
    } = &origin.access
    else {
        bail!(
            "host {} has no `ssh` address: a failback writes to its origin over SSH",
            origin.name
        );
    };
    let cfg = group.hosts.get(&origin.name);
    let port = cfg.and_then(|c| c.recovery_ssh_port).unwrap_or(addr.port);
    Ok(Host {
        name: origin.name.clone(),
        access: Access::Ssh {
            addr: SshAddr {
                user: addr.user.clone(),
                host: home.recovery_ip.clone(),
                port,
            },
            identity: identity.clone(),
            known_hosts: known_hosts.clone(),
        },
        disk: cfg
            .and_then(|c| c.recovery_disk.clone())
            .unwrap_or_else(|| DEFAULT_RECOVERY_DISK.to_string()),
        snapshot: SnapshotMethod::None,
        snapshot_size: origin.snapshot_size.clone(),
        sudo: origin.sudo,
        tier: origin.tier.clone(),
        group: origin.group.clone(),
        read: origin.read,
    })
}

/// Pins the origin's host keys for the recovery instance's address.
fn pin(origin: &Host, recovery: &Host) -> Result<()> {
    let (
        Access::Ssh {
            addr: o,
            known_hosts,
            ..
        },
        Access::Ssh { addr: r, .. },
    ) = (&origin.access, &recovery.access)
    else {
        return Ok(());
    };
    let n = known_hosts::pin_as((&o.host, o.port), (&r.host, r.port), known_hosts).with_context(
        || {
            format!(
                "host {}: pinning its host keys for its recovery instance at {}:{}",
                origin.name, r.host, r.port
            )
        },
    )?;
    if n > 0 {
        tracing::info!(host = %origin.name, address = %r.host, keys = n, "pinned the origin's host keys for its recovery instance");
    }
    Ok(())
}

/// One pass over one host: capture the recovery instance (parent: the point it was
/// launched from on the first pass, the host's newest point after), then write what
/// differs to the origin and read it back against the point.
///
/// What differs is decided by reading the origin's disk, except when `base` names the
/// point an earlier pass of this run wrote there and read back: then the disk is
/// checked on a sample of its chunks (it is not trusted blindly) and the difference
/// comes from the two points, sparing a whole read of the origin inside the cutover
/// window. A base that fails its check, or a write from it that fails, is redone by
/// reading the disk.
pub async fn pass(
    ctx: &Ctx,
    group: &str,
    home: &HostHome,
    n: u32,
    base: Option<&str>,
    progress: &PassProgress,
    shutdown: Shutdown,
) -> Result<PassReport> {
    let cfg = ctx.settings.group(group)?;
    let origin = ctx.settings.host(&home.host)?;
    let recovery = recovery_host(&origin, cfg, home)?;
    pin(&origin, &recovery)?;
    let repo = Arc::new(ctx.repo().await?);
    let started = Instant::now();
    let opts = CaptureOptions {
        derived: None,
        accept_new_host_key: false,
        shutdown: shutdown.clone(),
        parent: (n == 1).then(|| home.launched_point.clone()),
    };
    // Not recorded in DynamoDB: the host's record keeps its origin address, and a
    // failover never launches from these points (they have no image).
    let cap = capture_host(repo.clone(), None, &recovery, &opts, &ctx.progress)
        .await
        .with_context(|| {
            format!(
                "pass {n}: capturing the recovery instance of {} at {}",
                home.host, home.recovery_ip
            )
        })?;
    let capture_s = started.elapsed().as_secs_f64();
    let m = repo.read_point(&home.host, &cap.point).await?;
    let written = progress.origin_bytes_written.clone();
    let write_started = Instant::now();
    let to_host = ToHostOptions {
        accept_new_host_key: false,
        force: false,
        written: Some(written.clone()),
    };
    let base = match base {
        Some(b) => Some(repo.read_point(&home.host, b).await?),
        None => None,
    };
    let write = async {
        if let Some(b) = &base {
            match restore_to_host(&repo, &m, Some(b), &origin, &to_host, &ctx.progress).await {
                Ok(r) => return Ok(r),
                Err(e) => tracing::warn!(
                    host = %home.host,
                    base = %b.meta.point,
                    "pass {n}: comparing by reading the origin instead: {e:#}"
                ),
            }
        }
        restore_to_host(&repo, &m, None, &origin, &to_host, &ctx.progress).await
    };
    let r = tokio::select! {
        r = write => r,
        _ = shutdown.requested() => Err(anyhow::anyhow!("stopped")),
    }
    .with_context(|| {
        format!(
            "pass {n}: writing point {} to the origin {}",
            cap.point, home.host
        )
    })?;
    Ok(PassReport {
        host: home.host.clone(),
        pass: n,
        point: Some(cap.point.clone()),
        parent: cap.parent.clone(),
        image_size: cap.image_size,
        bytes_read: cap.stats.bytes_read,
        bytes_new: cap.stats.bytes_new,
        bytes_uploaded: cap.stats.bytes_uploaded,
        origin_bytes_read: r.bytes_read_from_target,
        origin_bytes_written: r.bytes_written,
        origin_ranges_written: r.ranges_written as u64,
        capture_s,
        write_s: write_started.elapsed().as_secs_f64(),
        outcome: "done".into(),
        error: None,
    })
}

/// Runs `command` on each host over SSH (all at once); any non-zero exit fails the
/// tier, naming the host and the command's output.
async fn hooks(hosts: &[Host], command: &str) -> Result<Vec<HookRun>> {
    let runs = hosts.iter().map(|h| async move {
        let started = Instant::now();
        let target = h
            .ssh_target(false)
            .with_context(|| format!("host {} has no `ssh` address", h.name))?;
        let session = SshSession::connect(&target).await?;
        let r = session.run(&h.privileged(command)).await;
        session.close().await;
        let (status, _out, err) =
            r.with_context(|| format!("host {}: running {command:?}", h.name))?;
        if status != 0 {
            bail!(
                "host {} ({}): {command:?} exited with {status}: {}",
                h.name,
                h.service_address(),
                String::from_utf8_lossy(&err).trim()
            );
        }
        Ok(HookRun {
            host: h.name.clone(),
            address: h.service_address(),
            command: command.to_string(),
            exit_status: status,
            duration_s: started.elapsed().as_secs_f64(),
        })
    });
    futures::future::join_all(runs).await.into_iter().collect()
}

/// The tier's pre-cutover hook on its recovery instances.
pub async fn stop_tier(ctx: &Ctx, group: &str, tier: &TierHome) -> Result<TierDone> {
    let cfg = ctx.settings.group(group)?;
    let hook = cfg
        .tiers
        .iter()
        .find(|t| t.name == tier.tier)
        .and_then(|t| t.pre_cutover.clone());
    let mut hosts = Vec::new();
    for home in &tier.hosts {
        let origin = ctx.settings.host(&home.host)?;
        let recovery = recovery_host(&origin, cfg, home)?;
        pin(&origin, &recovery)?;
        hosts.push(recovery);
    }
    let runs = match &hook {
        Some(cmd) => hooks(&hosts, cmd).await?,
        None => {
            tracing::warn!(group, tier = %tier.tier, "no pre_cutover hook: the final pass reads disks the application may still write (crash-consistent)");
            Vec::new()
        }
    };
    Ok(TierDone {
        tier: tier.tier.clone(),
        done_at: rfc3339(OffsetDateTime::now_utc()),
        hooks: runs,
        healthy_after_s: None,
    })
}

/// The tier's post-cutover hook on its origin hosts, then their health checks (as
/// `ferry protect` recorded them) until every one answers at the origin address.
pub async fn start_tier(
    ctx: &Ctx,
    group: &str,
    record: &GroupRecord,
    tier: &TierHome,
) -> Result<TierDone> {
    let cfg = ctx.settings.group(group)?;
    let hook = cfg
        .tiers
        .iter()
        .find(|t| t.name == tier.tier)
        .and_then(|t| t.post_cutover.clone());
    let hosts: Vec<Host> = tier
        .hosts
        .iter()
        .map(|h| ctx.settings.host(&h.host))
        .collect::<Result<_>>()?;
    let runs = match &hook {
        Some(cmd) => hooks(&hosts, cmd).await?,
        None => Vec::new(),
    };
    let hooks_done = Instant::now();
    let deadline = Duration::from_secs(tier.timeout_s.max(1));
    loop {
        let mut failing = Vec::new();
        for h in &hosts {
            let checks = record
                .host(&h.name)
                .map(|l| l.health.clone())
                .unwrap_or_default();
            for p in ferry_probe::probe_all(&checks, &h.service_address(), PROBE_TIMEOUT).await {
                if let Err(e) = p.result {
                    failing.push(format!("{}: {e}", h.name));
                }
            }
        }
        if failing.is_empty() {
            break;
        }
        if hooks_done.elapsed() > deadline {
            bail!(
                "tier {} is not healthy at the origin after {} s: {}",
                tier.tier,
                deadline.as_secs(),
                failing.join("; ")
            );
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
    Ok(TierDone {
        tier: tier.tier.clone(),
        done_at: rfc3339(OffsetDateTime::now_utc()),
        hooks: runs,
        healthy_after_s: Some(hooks_done.elapsed().as_secs_f64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Host {
        Host {
            name: "db1".into(),
            access: Access::Ssh {
                addr: "ferry@10.0.0.5:2222".parse().unwrap(),
                identity: "key".into(),
                known_hosts: "known_hosts".into(),
            },
            disk: "/dev/vg0/root".into(),
            snapshot: SnapshotMethod::Lvm,
            snapshot_size: "1G".into(),
            sudo: true,
            tier: Some("db".into()),
            group: Some("shop".into()),
            read: Default::default(),
        }
    }

    fn group(host_keys: &str) -> GroupConfig {
        toml::from_str(&format!(
            "name = \"shop\"\nrpo = \"15m\"\nrto = \"30m\"\n[[tier]]\nname = \"db\"\nhosts = [\"db1\"]\n[host.db1]\n{host_keys}"
        ))
        .unwrap()
    }

    fn home() -> HostHome {
        HostHome {
            host: "db1".into(),
            tier: "db".into(),
            instance_id: "i-1".into(),
            recovery_ip: "10.9.0.5".into(),
            launched_point: "p".into(),
        }
    }

    #[test]
    fn the_recovery_instance_is_the_origin_at_its_recovery_address() {
        let r = recovery_host(&origin(), &group(""), &home()).unwrap();
        assert_eq!(r.name, "db1");
        assert_eq!(r.ssh_label().as_deref(), Some("ferry@10.9.0.5:2222"));
        assert_eq!(r.disk, DEFAULT_RECOVERY_DISK);
        // Read as it is: the recovery instance's volume is not an LVM volume of it.
        assert_eq!(r.snapshot, SnapshotMethod::None);
        assert!(r.sudo);
        let r = recovery_host(
            &origin(),
            &group("recovery_disk = \"/dev/xvda\"\nrecovery_ssh_port = 22\n"),
            &home(),
        )
        .unwrap();
        assert_eq!(r.ssh_label().as_deref(), Some("ferry@10.9.0.5:22"));
        assert_eq!(r.disk, "/dev/xvda");
    }
}
