//! `ferry convert`: a point made bootable on EC2 Nitro, as a new point of the same host.
//!
//! The point is restored to a work copy on the appliance (sparse), a helper VM boots
//! with the copy attached (as libguestfs and MGN's conversion server do: a real kernel
//! activates the guest's LVM and mounts its file systems, so the appliance needs neither
//! device-mapper nor root mounts), the guest's files are edited and its own initramfs
//! generator run in a chroot ([`guest`]), the helper powers off, and the copy is captured
//! as a point whose parent is the source: only the chunks conversion changed are new in
//! the store. What changed is recorded on the point (`converted`).

pub mod devices;
pub mod guest;
pub mod helper;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_core::convert::{Change, Conversion, TARGET};
use serde::Serialize;

use crate::capture::{capture_host, CaptureOptions, CaptureReport, Derived};
use crate::host::{Access, Host, SnapshotMethod};
use crate::progress::Progress;
use crate::records::Records;
use crate::restore::restore_to_file;
use crate::settings::ConvertSettings;
use crate::shutdown::Shutdown;
use ferry_store::repo::Repository;
use helper::{HelperFiles, HelperVm, GUEST_DISK};

/// What `ferry convert --json` prints.
#[derive(Debug, Serialize)]
pub struct ConvertReport {
    pub host: String,
    /// The point converted.
    pub from: String,
    /// The converted point.
    pub point: String,
    /// The conversion existed already: nothing was done.
    pub already_converted: bool,
    pub changes: Vec<Change>,
    /// Bytes and chunks new in the store for the converted point (the rest are the
    /// source's).
    pub image_size: u64,
    pub bytes_new: u64,
    pub chunks_new: u64,
    pub chunks: u64,
    /// Seconds: restoring the work copy, helper power-on to SSH, the edits and the
    /// initramfs, capturing the result; and in all.
    pub restore_s: f64,
    pub helper_boot_s: f64,
    pub convert_s: f64,
    pub capture_s: f64,
    pub duration_s: f64,
    /// The point was written, but recording it in DynamoDB failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_point_error: Option<String>,
}

pub struct ConvertJob<'a> {
    pub repo: Arc<Repository>,
    pub records: Option<&'a Records>,
    pub host: &'a Host,
    pub point: Option<&'a str>,
    pub settings: &'a ConvertSettings,
    pub progress: &'a Progress,
    pub shutdown: Shutdown,
}

/// The newest point of `host` converted from `from`, if there is one.
async fn existing(
    repo: &Repository,
    host: &str,
    from: &str,
) -> Result<Option<ferry_core::manifest::PointMeta>> {
    let ids = repo.list_points(host).await?;
    for id in ids.iter().rev().filter(|id| id.as_str() > from) {
        let meta = repo.resolve_point_meta(host, Some(id)).await?;
        if meta.converted.as_ref().is_some_and(|c| c.from == from) {
            return Ok(Some(meta));
        }
    }
    Ok(None)
}

pub async fn convert_point(job: ConvertJob<'_>) -> Result<ConvertReport> {
    let started = Instant::now();
    let h = job.host;
    let src = job.repo.resolve_point(&h.name, job.point).await?;
    if let Some(c) = &src.meta.converted {
        bail!(
            "point {} of host {} is already converted (from {}); convert its source, or use it as it is",
            src.meta.point,
            h.name,
            c.from
        );
    }
    if let Some(done) = existing(&job.repo, &h.name, &src.meta.point).await? {
        let c = done.converted.clone().unwrap_or_else(|| Conversion {
            from: src.meta.point.clone(),
            target: TARGET.into(),
            ran_on: String::new(),
            changes: Vec::new(),
        });
        return Ok(ConvertReport {
            host: h.name.clone(),
            from: src.meta.point.clone(),
            point: done.point,
            already_converted: true,
            changes: c.changes,
            image_size: done.image_size,
            bytes_new: done.stats.bytes_new,
            chunks_new: done.stats.chunks_new,
            chunks: done.stats.chunks,
            restore_s: 0.0,
            helper_boot_s: 0.0,
            convert_s: 0.0,
            capture_s: 0.0,
            duration_s: started.elapsed().as_secs_f64(),
            after_point_error: None,
        });
    }
    let files = HelperFiles::from_settings(job.settings)?;
    let work = tempfile::Builder::new()
        .prefix("ferry-convert-")
        .tempdir_in(
            job.settings
                .work_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
        )
        .context("creating the conversion's work directory")?;
    let copy = work.path().join("image.raw");

    let t = Instant::now();
    restore_to_file(&job.repo, &src, &copy, false, job.progress)
        .await
        .with_context(|| format!("restoring point {} to a work copy", src.meta.point))?;
    let restore_s = t.elapsed().as_secs_f64();

    let mut vm = HelperVm::start(job.settings, &files, &copy, work.path()).await?;
    let boot = Duration::from_secs(job.settings.boot_timeout_s);
    let (session, up) = tokio::select! {
        r = vm.session(boot) => r?,
        _ = job.shutdown.requested() => bail!("interrupted while the conversion helper booted"),
    };
    let helper_boot_s = up.as_secs_f64();
    tracing::info!(host = %h.name, point = %src.meta.point, boot = ?up, "conversion helper up");
    let t = Instant::now();
    let changes = tokio::select! {
        r = guest::convert(&session, GUEST_DISK) => r.with_context(|| format!("converting point {} of host {}", src.meta.point, h.name))?,
        _ = job.shutdown.requested() => bail!("interrupted while converting; nothing was written to the store"),
    };
    vm.power_off(session, Duration::from_secs(60)).await?;
    let convert_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let copy_host = Host {
        name: h.name.clone(),
        access: Access::Local,
        disk: copy.display().to_string(),
        snapshot: SnapshotMethod::None,
        snapshot_size: h.snapshot_size.clone(),
        sudo: false,
        tier: h.tier.clone(),
        group: h.group.clone(),
        read: h.read,
    };
    let conversion = Conversion {
        from: src.meta.point.clone(),
        target: TARGET.into(),
        ran_on: "helper-vm".into(),
        changes: changes.clone(),
    };
    let opts = CaptureOptions {
        accept_new_host_key: false,
        shutdown: job.shutdown.clone(),
        parent: Some(src.meta.point.clone()),
        derived: Some(Derived {
            disk: src.meta.disk.clone(),
            consistency: src.meta.consistency,
            machine: src.meta.machine.clone(),
            conversion,
        }),
    };
    let cap: CaptureReport = capture_host(
        job.repo.clone(),
        job.records,
        &copy_host,
        &opts,
        job.progress,
    )
    .await
    .context("storing the converted image")?;
    Ok(ConvertReport {
        host: h.name.clone(),
        from: src.meta.point.clone(),
        point: cap.point,
        already_converted: false,
        changes,
        image_size: cap.image_size,
        bytes_new: cap.stats.bytes_new,
        chunks_new: cap.stats.chunks_new,
        chunks: cap.stats.chunks,
        restore_s,
        helper_boot_s,
        convert_s,
        capture_s: t.elapsed().as_secs_f64(),
        duration_s: started.elapsed().as_secs_f64(),
        after_point_error: cap.after_point_error,
    })
}
