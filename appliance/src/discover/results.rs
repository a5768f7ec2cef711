//! Where a discovery is kept: a JSON file (always; `ferry report` reads it) and, when
//! `[aws] table` is set, DynamoDB items for the cloud side and the console: one per host
//! (`HOST#<name>`, `DISCOVERY`) and one for the whole map (`DISCOVERY`, `LATEST`).

use std::path::Path;

use anyhow::{Context, Result};
use ferry_aws::dynamodb::Table;
use ferry_core::keys::{self, kinds};

use super::discovery::Discovery;
use super::model::Severity;

pub fn write_file(path: &Path, d: &Discovery) -> Result<()> {
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(d)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn read_file(path: &Path) -> Result<Discovery> {
    let text = std::fs::read(path)
        .with_context(|| format!("reading {} (run `ferry discover` first)", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not a discovery", path.display()))
}

/// One item per host and one for the whole map (keys in `ferry_core::keys`).
pub async fn write_records(table: &Table, d: &Discovery) -> Result<()> {
    for h in &d.hosts {
        let blockers = h
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
            .count();
        let item = serde_json::json!({
            "generated": d.generated,
            "reachable": h.reachable,
            "tier": h.tier,
            "instance_type": h.sizing.as_ref().map(|z| &z.instance_type),
            "blockers": blockers,
            "report": serde_json::to_string(h)?,
        });
        table
            .put(&keys::host_discovery(&h.host), kinds::DISCOVERY, &item)
            .await
            .with_context(|| format!("recording the discovery of host {}", h.host))?;
    }
    let map = serde_json::json!({
        "generated": d.generated,
        "edges": serde_json::to_string(&d.edges)?,
        "waves": serde_json::to_string(&d.waves)?,
    });
    table
        .put(&keys::discovery_map(), kinds::DISCOVERY_MAP, &map)
        .await
        .context("recording the discovery map")?;
    Ok(())
}
