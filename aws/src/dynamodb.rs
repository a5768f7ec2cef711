//! DynamoDB as the appliance writes it: a record (any serde value) put as one item
//! under a key from `ferry_core::keys`, its fields as native attributes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ferry_core::keys::ItemKey;

use crate::CallError;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("record for {pk}/{sk} does not serialise to an object: {reason}")]
    Record {
        pk: String,
        sk: String,
        reason: String,
    },
}

/// The one Ferry table.
#[derive(Clone)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
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
    key: &ItemKey,
    kind: &str,
    record: &impl serde::Serialize,
) -> Result<HashMap<String, AttributeValue>, TableError> {
    let bad = |reason: String| TableError::Record {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        reason,
    };
    let value = serde_json::to_value(record).map_err(|e| bad(e.to_string()))?;
    let AttributeValue::M(mut m) = attr(&value) else {
        return Err(bad("not an object".into()));
    };
    m.insert("pk".into(), AttributeValue::S(key.pk.clone()));
    m.insert("sk".into(), AttributeValue::S(key.sk.clone()));
    m.insert("kind".into(), AttributeValue::S(kind.into()));
    Ok(m)
}

impl Table {
    pub fn new(client: aws_sdk_dynamodb::Client, name: String) -> Self {
        Table { client, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `record` as the item at `key` (replacing it), with `kind` beside it.
    pub async fn put(
        &self,
        key: &ItemKey,
        kind: &str,
        record: &impl serde::Serialize,
    ) -> Result<(), TableError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item(key, kind, record)?))
            .send()
            .await
            .map_err(|e| {
                CallError::new(
                    "PutItem",
                    format!("{}/{} in table {}", key.pk, key.sk, self.name),
                    &e,
                )
            })?;
        Ok(())
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

    #[test]
    fn items_carry_their_key_and_kind() {
        let key = ItemKey {
            pk: "HOST#a".into(),
            sk: "HOST".into(),
        };
        let m = item(&key, "host", &serde_json::json!({"name": "a"})).unwrap();
        assert_eq!(m["pk"], AttributeValue::S("HOST#a".into()));
        assert_eq!(m["kind"], AttributeValue::S("host".into()));
        assert!(item(&key, "host", &1).is_err());
    }
}
