//! Deploys `infra/template.yaml` into the local stack, so that the template is the one
//! source of truth for what the tests and the demo run against: the records table and
//! the store bucket are created as the template declares them. (Functions are served by
//! cargo-lambda instead of being deployed; state machines join as they are written.)

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_yaml_ng::Value;

use crate::moto::Moto;

/// What a deployment created.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub table: String,
    pub bucket: String,
}

struct Template {
    doc: Value,
    params: HashMap<String, String>,
}

impl Template {
    fn load(path: &Path, overrides: &[(&str, &str)]) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        let mut params = HashMap::new();
        if let Some(Value::Mapping(ps)) = doc.get("Parameters") {
            for (k, v) in ps {
                if let (Some(k), Some(d)) = (k.as_str(), v.get("Default").and_then(Value::as_str)) {
                    params.insert(k.to_string(), d.to_string());
                }
            }
        }
        for (k, v) in overrides {
            params.insert(k.to_string(), v.to_string());
        }
        Ok(Template { doc, params })
    }

    /// A scalar property: a plain string or `!Ref Parameter`.
    fn string(&self, v: &Value) -> Result<String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Tagged(t) if t.tag == "Ref" => {
                let name = t.value.as_str().context("!Ref of a non-string")?;
                self.params
                    .get(name)
                    .cloned()
                    .with_context(|| format!("parameter {name} has no value"))
            }
            other => bail!("unsupported template value {other:?}"),
        }
    }

    fn resources_of(&self, kind: &str) -> Vec<&Value> {
        match self.doc.get("Resources") {
            Some(Value::Mapping(rs)) => rs
                .values()
                .filter(|r| r.get("Type").and_then(Value::as_str) == Some(kind))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A list property of `{AttributeName, <field>}` items in the CLI's shorthand
/// (`AttributeName=pk,KeyType=HASH`).
fn shorthand(t: &Template, props: &Value, list: &str, field: &str) -> Result<Vec<String>> {
    let items = props
        .get(list)
        .and_then(Value::as_sequence)
        .with_context(|| format!("table without {list}"))?;
    items
        .iter()
        .map(|i| {
            Ok(format!(
                "AttributeName={},{field}={}",
                t.string(i.get("AttributeName").context("AttributeName")?)?,
                t.string(i.get(field).with_context(|| field.to_string())?)?
            ))
        })
        .collect()
}

/// Creates the template's table and bucket in moto. `params` fills parameters without
/// defaults (`StoreBucketName`).
pub fn deploy(moto: &Moto, template: &Path, params: &[(&str, &str)]) -> Result<Deployed> {
    let t = Template::load(template, params)?;
    let tables = t.resources_of("AWS::DynamoDB::Table");
    let [table] = tables.as_slice() else {
        bail!("the template should declare exactly one DynamoDB table");
    };
    let p = table
        .get("Properties")
        .context("table without Properties")?;
    let name = t.string(p.get("TableName").context("table without TableName")?)?;
    let mut args: Vec<String> = vec![
        "dynamodb".into(),
        "create-table".into(),
        "--table-name".into(),
        name.clone(),
    ];
    args.push("--attribute-definitions".into());
    args.extend(shorthand(&t, p, "AttributeDefinitions", "AttributeType")?);
    args.push("--key-schema".into());
    args.extend(shorthand(&t, p, "KeySchema", "KeyType")?);
    args.push("--billing-mode".into());
    args.push(t.string(p.get("BillingMode").context("BillingMode")?)?);
    moto.aws(&args.iter().map(String::as_str).collect::<Vec<_>>())?;

    let buckets = t.resources_of("AWS::S3::Bucket");
    let [bucket] = buckets.as_slice() else {
        bail!("the template should declare exactly one S3 bucket");
    };
    let bp = bucket
        .get("Properties")
        .context("bucket without Properties")?;
    let bucket_name = t.string(bp.get("BucketName").context("bucket without BucketName")?)?;
    moto.aws(&["s3api", "create-bucket", "--bucket", &bucket_name])?;
    if bp.get("VersioningConfiguration").is_some() {
        moto.aws(&[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            &bucket_name,
            "--versioning-configuration",
            "Status=Enabled",
        ])?;
    }
    Ok(Deployed {
        table: name,
        bucket: bucket_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_template() {
        let t = Template::load(
            &crate::disk::repo_root().join("infra/template.yaml"),
            &[("StoreBucketName", "b")],
        )
        .unwrap();
        let tables = t.resources_of("AWS::DynamoDB::Table");
        assert_eq!(tables.len(), 1);
        let name = t
            .string(
                tables[0]
                    .get("Properties")
                    .unwrap()
                    .get("TableName")
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(name, "ferry");
        assert_eq!(t.resources_of("AWS::S3::Bucket").len(), 1);
    }
}
