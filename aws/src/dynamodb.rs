//! DynamoDB as Ferry uses it: a record (any serde value) put as one item under a key
//! from `ferry_core::keys`, its fields as native attributes; and read back, by key or
//! as the items of one partition, as serde values again.

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
    #[error("item {pk}/{sk} is not what was expected: {reason}")]
    Item {
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

/// DynamoDB attribute -> JSON: numbers as integers when they are, sets as lists.
fn json(a: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    let number = |n: &str| -> Value {
        n.parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.to_string()))
    };
    match a {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(json).collect()),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
        AttributeValue::Ss(v) => Value::from(v.clone()),
        AttributeValue::Ns(v) => Value::Array(v.iter().map(|n| number(n)).collect()),
        _ => Value::Null,
    }
}

/// An item as a JSON object (its key and `kind` included).
pub fn item_json(item: &HashMap<String, AttributeValue>) -> serde_json::Value {
    serde_json::Value::Object(item.iter().map(|(k, v)| (k.clone(), json(v))).collect())
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

    /// Sets `fields` of the item at `key` (created if missing, other fields kept).
    pub async fn set(
        &self,
        key: &ItemKey,
        kind: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), TableError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()))
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":kind", AttributeValue::S(kind.into()));
        let mut sets = vec!["#kind = :kind".to_string()];
        for (i, (k, v)) in fields.iter().enumerate() {
            sets.push(format!("#f{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#f{i}"), k)
                .expression_attribute_values(format!(":v{i}"), attr(v));
        }
        req.update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(|e| {
                CallError::new(
                    "UpdateItem",
                    format!("{}/{} in table {}", key.pk, key.sk, self.name),
                    &e,
                )
            })?;
        Ok(())
    }

    /// Sets `fields` of the existing item at `key` (and, with `entry`, one entry of a
    /// map attribute: `(attribute, entry key, value)`) only if `condition` holds of it;
    /// `Ok(false)` when it did not. The condition may name `:now`-free placeholders
    /// given in `values`.
    pub async fn update_if(
        &self,
        key: &ItemKey,
        fields: &serde_json::Map<String, serde_json::Value>,
        entry: Option<(&str, &str, &serde_json::Value)>,
        condition: &str,
        values: &[(&str, serde_json::Value)],
    ) -> Result<bool, TableError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()));
        let mut sets = Vec::new();
        for (i, (k, v)) in fields.iter().enumerate() {
            sets.push(format!("#f{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#f{i}"), k)
                .expression_attribute_values(format!(":v{i}"), attr(v));
        }
        if let Some((map, k, v)) = entry {
            sets.push("#map.#entry = :entry".into());
            req = req
                .expression_attribute_names("#map", map)
                .expression_attribute_names("#entry", k)
                .expression_attribute_values(":entry", attr(v));
        }
        for (name, v) in values {
            req = req.expression_attribute_values(*name, attr(v));
        }
        let r = req
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(format!("attribute_exists(pk) AND ({condition})"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => {
                let call = CallError::new(
                    "UpdateItem",
                    format!("{}/{} in table {}", key.pk, key.sk, self.name),
                    &e,
                );
                match call.failure.is("ConditionalCheckFailedException") {
                    true => Ok(false),
                    false => Err(call.into()),
                }
            }
        }
    }

    /// The record at `key`, as `T` (without the item's key and `kind`).
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: &ItemKey,
    ) -> Result<Option<T>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                CallError::new(
                    "GetItem",
                    format!("{}/{} in table {}", key.pk, key.sk, self.name),
                    &e,
                )
            })?;
        out.item().map(|i| decode(key, i)).transpose()
    }

    /// The newest point of `host` with a built image, among its `look_at` newest
    /// points: (point id, image id).
    pub async fn newest_image(
        &self,
        host: &str,
        look_at: usize,
    ) -> Result<Option<(String, String)>, TableError> {
        use ferry_core::keys;
        let points: Vec<ferry_core::records::PointRecord> = self
            .query(&keys::host_pk(host), keys::POINT_PREFIX, true, look_at)
            .await?;
        Ok(points
            .into_iter()
            .find_map(|p| Some((p.point, p.image_id?))))
    }

    /// Items of partition `pk` whose sort key starts with `sk_prefix`, newest (highest
    /// sort key) first when `descending`, at most `limit`.
    pub async fn query<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        sk_prefix: &str,
        descending: bool,
        limit: usize,
    ) -> Result<Vec<T>, TableError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.name)
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()));
            // Key values may not be empty: no prefix is the whole partition.
            req = match sk_prefix.is_empty() {
                true => req.key_condition_expression("pk = :pk"),
                false => req
                    .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                    .expression_attribute_values(":sk", AttributeValue::S(sk_prefix.into())),
            };
            let page = req
                .scan_index_forward(!descending)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| {
                    CallError::new(
                        "Query",
                        format!("{pk}/{sk_prefix}* in table {}", self.name),
                        &e,
                    )
                })?;
            for i in page.items() {
                let key = ItemKey {
                    pk: pk.to_string(),
                    sk: match i.get("sk") {
                        Some(AttributeValue::S(s)) => s.clone(),
                        _ => String::new(),
                    },
                };
                out.push(decode(&key, i)?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes the item at `key` (nothing there is not an error).
    pub async fn delete(&self, key: &ItemKey) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()))
            .send()
            .await
            .map_err(|e| {
                CallError::new(
                    "DeleteItem",
                    format!("{}/{} in table {}", key.pk, key.sk, self.name),
                    &e,
                )
            })?;
        Ok(())
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }
}

/// An item as the record it holds: without its key and `kind`, which the table adds.
fn decode<T: serde::de::DeserializeOwned>(
    key: &ItemKey,
    item: &HashMap<String, AttributeValue>,
) -> Result<T, TableError> {
    let mut v = item_json(item);
    if let Some(o) = v.as_object_mut() {
        for k in ["pk", "sk", "kind"] {
            o.remove(k);
        }
    }
    serde_json::from_value(v).map_err(|e| TableError::Item {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        reason: e.to_string(),
    })
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
        // And back: the same JSON, nulls left out.
        let back = json(&AttributeValue::M(m));
        assert_eq!(
            back,
            serde_json::json!({"a": 1, "b": "x", "d": [true], "e": {"f": 2.5}})
        );
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
