//! Where a discovery is kept: a JSON file (always; `ferry report` reads it) and, when
//! `[aws] table` is set, DynamoDB items for the cloud side and the console: one per host
//! (`HOST#<name>`, `DISCOVERY`) and one for the whole map (`DISCOVERY`, `LATEST`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use ferry_core::records::host_pk;

use super::model::Severity;
use super::run::Discovery;

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

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub async fn write_records(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    d: &Discovery,
) -> Result<()> {
    let put = |item: HashMap<String, AttributeValue>| async move {
        ddb.put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
            .with_context(|| format!("PutItem into table {table}"))
    };
    for h in &d.hosts {
        let mut item: HashMap<String, AttributeValue> = HashMap::new();
        item.insert("pk".into(), s(host_pk(&h.host)));
        item.insert("sk".into(), s("DISCOVERY"));
        item.insert("kind".into(), s("discovery"));
        item.insert("generated".into(), s(&d.generated));
        item.insert("reachable".into(), AttributeValue::Bool(h.reachable));
        if let Some(t) = &h.tier {
            item.insert("tier".into(), s(t));
        }
        if let Some(z) = &h.sizing {
            item.insert("instance_type".into(), s(&z.instance_type));
        }
        let blockers = h
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
            .count();
        item.insert("blockers".into(), AttributeValue::N(blockers.to_string()));
        item.insert("report".into(), s(serde_json::to_string(h)?));
        put(item).await?;
    }
    let mut item: HashMap<String, AttributeValue> = HashMap::new();
    item.insert("pk".into(), s("DISCOVERY"));
    item.insert("sk".into(), s("LATEST"));
    item.insert("kind".into(), s("discovery-map"));
    item.insert("generated".into(), s(&d.generated));
    item.insert("edges".into(), s(serde_json::to_string(&d.edges)?));
    item.insert("waves".into(), s(serde_json::to_string(&d.waves)?));
    put(item).await?;
    Ok(())
}
