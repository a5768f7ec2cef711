//! Host and point records in DynamoDB (written when `[aws] table` is set). The store
//! stays the source of truth: these are what the cloud side reads without opening it.

use anyhow::{Context, Result};
use ferry_aws::dynamodb::Table;
use ferry_core::keys::{self, kinds};
use ferry_core::manifest::PointMeta;
use ferry_core::records::{HostRecord, PointRecord};

use crate::host::Host;

#[derive(Clone)]
pub struct Records {
    table: Table,
}

impl Records {
    pub fn new(table: Table) -> Self {
        Records { table }
    }

    pub async fn put_host(&self, h: &Host, host_key: Option<&str>, last_point: &str) -> Result<()> {
        let r = HostRecord {
            name: h.name.clone(),
            ssh: h.ssh_label(),
            host_key: host_key.map(str::to_string),
            disk: h.disk.clone(),
            snapshot: h.snapshot.as_str().to_string(),
            tier: h.tier.clone(),
            group: h.group.clone(),
            last_point: Some(last_point.to_string()),
        };
        self.table
            .put(&keys::host(&h.name), kinds::HOST, &r)
            .await
            .with_context(|| format!("recording host {}", h.name))
    }

    pub async fn put_point(&self, meta: &PointMeta, manifest_key: &str) -> Result<()> {
        let r = PointRecord::from_meta(meta, manifest_key.to_string());
        self.table
            .put(&keys::point(&meta.host, &meta.point), kinds::POINT, &r)
            .await
            .with_context(|| format!("recording point {} of host {}", meta.point, meta.host))
    }
}
