//! Host and point records in DynamoDB (written when `[aws] table` is set). The store
//! stays the source of truth: these are what the cloud side reads without opening it.

use std::collections::HashMap;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use ferry_core::manifest::PointMeta;
use ferry_core::records::{host_pk, point_sk, HostRecord, PointRecord, HOST_SK};
use serde::Serialize;

use crate::settings::HostConfig;

pub struct Records {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// JSON -> DynamoDB attribute: numbers stay numbers, nulls are left out of maps.
fn attr(v: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(attr).collect()),
        Value::Object(o) => AttributeValue::M(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), attr(v)))
                .collect(),
        ),
    }
}

fn item(
    pk: String,
    sk: String,
    kind: &str,
    record: &impl Serialize,
) -> Result<HashMap<String, AttributeValue>> {
    let value = serde_json::to_value(record)?;
    let AttributeValue::M(mut m) = attr(&value) else {
        anyhow::bail!("record is not an object");
    };
    m.insert("pk".into(), AttributeValue::S(pk));
    m.insert("sk".into(), AttributeValue::S(sk));
    m.insert("kind".into(), AttributeValue::S(kind.into()));
    Ok(m)
}

impl Records {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Records { client, table }
    }

    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
            .with_context(|| format!("PutItem into table {}", self.table))?;
        Ok(())
    }

    pub async fn put_host(
        &self,
        h: &HostConfig,
        host_key: Option<&str>,
        last_point: &str,
    ) -> Result<()> {
        let r = HostRecord {
            name: h.name.clone(),
            ssh: h.ssh.clone(),
            host_key: host_key.map(str::to_string),
            disk: h.disk.clone(),
            snapshot: h.snapshot.as_str().to_string(),
            tier: h.tier.clone(),
            group: h.group.clone(),
            last_point: Some(last_point.to_string()),
        };
        self.put(item(host_pk(&h.name), HOST_SK.into(), "host", &r)?)
            .await
    }

    pub async fn put_point(&self, meta: &PointMeta, manifest_key: &str) -> Result<()> {
        let r = PointRecord::from_meta(meta, manifest_key.to_string());
        self.put(item(
            host_pk(&meta.host),
            point_sk(&meta.point),
            "point",
            &r,
        )?)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_maps_to_attributes() {
        let v = serde_json::json!({"a": 1, "b": "x", "c": null, "d": [true], "e": {"f": 2.5}});
        let AttributeValue::M(m) = attr(&v) else {
            panic!()
        };
        assert_eq!(m["a"], AttributeValue::N("1".into()));
        assert_eq!(m["b"], AttributeValue::S("x".into()));
        assert!(!m.contains_key("c"));
        assert_eq!(m["d"], AttributeValue::L(vec![AttributeValue::Bool(true)]));
    }
}
