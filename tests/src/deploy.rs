//! Deploys `infra/template.yaml` into the local stack, so that the template is the one
//! source of truth for what the tests and the demo run against: the records table, the
//! store bucket and the state machines are created as the template declares them, with
//! `DefinitionSubstitutions` resolved to the local functions, and the functions'
//! environment is taken from the template too. (cargo-lambda serves the functions
//! instead of a deployment.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_yaml_ng::Value;

use crate::moto::{Moto, REGION};

/// moto's account.
pub const ACCOUNT: &str = "123456789012";

/// What a deployment created.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub table: String,
    pub bucket: String,
    /// State machine name (its `Name` property) -> ARN.
    pub state_machines: HashMap<String, String>,
    /// Every function's `Environment.Variables`, resolved (one cargo-lambda serves
    /// them all, so they must agree).
    pub function_env: Vec<(String, String)>,
    /// The binary of every function (`Metadata.BuildProperties.Binary`).
    pub functions: Vec<String>,
    /// EventBridge rules created (their names).
    pub rules: Vec<String>,
    /// SNS topic name -> ARN.
    pub topics: HashMap<String, String>,
    /// SQS queue name -> URL.
    pub queues: HashMap<String, String>,
}

pub fn lambda_arn(function: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}")
}

pub fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
}

pub fn state_machine_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
}

struct Template {
    doc: Value,
    dir: PathBuf,
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
                let default = match v.get("Default") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                if let (Some(k), Some(d)) = (k.as_str(), default) {
                    params.insert(k.to_string(), d);
                }
            }
        }
        for (k, v) in overrides {
            params.insert(k.to_string(), v.to_string());
        }
        // Pseudo parameters, as moto's account and region have them.
        for (k, v) in [
            ("AWS::Partition", "aws"),
            ("AWS::Region", REGION),
            ("AWS::AccountId", ACCOUNT),
        ] {
            params.insert(k.to_string(), v.to_string());
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Ok(Template { doc, dir, params })
    }

    fn resources(&self) -> Vec<(&str, &Value)> {
        match self.doc.get("Resources") {
            Some(Value::Mapping(rs)) => rs
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?, v)))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn resources_of(&self, kind: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    fn resource(&self, name: &str) -> Result<&Value> {
        self.resources()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r)
            .with_context(|| format!("no resource {name} in the template"))
    }

    fn prop<'a>(&self, r: &'a Value, name: &str) -> Result<&'a Value> {
        r.get("Properties")
            .and_then(|p| p.get(name))
            .with_context(|| format!("resource without {name}"))
    }

    /// `Ref` of a parameter or resource. A state machine's ARN is known once created.
    fn reference(&self, name: &str, sms: &HashMap<String, String>) -> Result<Option<String>> {
        if let Some(p) = self.params.get(name) {
            return Ok(Some(p.clone()));
        }
        let r = self.resource(name)?;
        let kind = r.get("Type").and_then(Value::as_str).unwrap_or("");
        Ok(match kind {
            "AWS::DynamoDB::Table" => Some(self.string(self.prop(r, "TableName")?, sms)?),
            "AWS::S3::Bucket" => Some(self.string(self.prop(r, "BucketName")?, sms)?),
            "AWS::Serverless::Function" => Some(function_name(r)?),
            "AWS::SNS::Topic" => Some(topic_arn(&self.string(self.prop(r, "TopicName")?, sms)?)),
            "AWS::Events::Rule" => Some(self.string(self.prop(r, "Name")?, sms)?),
            // A deployed queue's URL (what moto answered) is a parameter by now; before
            // that, the URL AWS would give it.
            "AWS::SQS::Queue" => Some(format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                self.string(self.prop(r, "QueueName")?, sms)?
            )),
            "AWS::Serverless::StateMachine" => {
                let n = self.string(self.prop(r, "Name")?, sms)?;
                sms.get(&n).cloned()
            }
            other => bail!("Ref of a {other} is not supported by the local deployment"),
        })
    }

    /// `GetAtt Resource.Attribute`.
    fn attribute(&self, what: &str, sms: &HashMap<String, String>) -> Result<Option<String>> {
        let (name, attr) = what
            .split_once('.')
            .context("GetAtt without an attribute")?;
        let r = self.resource(name)?;
        let kind = r.get("Type").and_then(Value::as_str).unwrap_or("");
        Ok(match (kind, attr) {
            ("AWS::Serverless::Function", "Arn") => Some(lambda_arn(&function_name(r)?)),
            ("AWS::DynamoDB::Table", "Arn") => Some(format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}",
                self.string(self.prop(r, "TableName")?, sms)?
            )),
            ("AWS::Serverless::StateMachine", "Name") => {
                Some(self.string(self.prop(r, "Name")?, sms)?)
            }
            ("AWS::SQS::Queue", "QueueName") => Some(self.string(self.prop(r, "QueueName")?, sms)?),
            ("AWS::SQS::Queue", "Arn") => Some(format!(
                "arn:aws:sqs:{REGION}:{ACCOUNT}:{}",
                self.string(self.prop(r, "QueueName")?, sms)?
            )),
            ("AWS::Events::Rule", "Arn") => Some(format!(
                "arn:aws:events:{REGION}:{ACCOUNT}:rule/{}",
                self.string(self.prop(r, "Name")?, sms)?
            )),
            _ => bail!("GetAtt {what} is not supported by the local deployment"),
        })
    }

    /// A value: a plain string or number, `!Ref`, `!GetAtt`, or `!Sub` of those.
    /// `Ok(None)` when it names a state machine not created yet.
    fn value(&self, v: &Value, sms: &HashMap<String, String>) -> Result<Option<String>> {
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Tagged(t) => {
                let arg = t.value.as_str().context("intrinsic of a non-string")?;
                if t.tag == "Ref" {
                    self.reference(arg, sms)
                } else if t.tag == "GetAtt" {
                    self.attribute(arg, sms)
                } else if t.tag == "Sub" {
                    self.sub(arg, sms)
                } else {
                    bail!("unsupported intrinsic {}", t.tag)
                }
            }
            other => bail!("unsupported template value {other:?}"),
        }
    }

    fn string(&self, v: &Value, sms: &HashMap<String, String>) -> Result<String> {
        self.value(v, sms)?
            .context("value depends on a state machine that does not exist yet")
    }

    fn sub(&self, text: &str, sms: &HashMap<String, String>) -> Result<Option<String>> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out += &rest[..i];
            let end = rest[i..].find('}').context("unclosed ${ in !Sub")? + i;
            let name = &rest[i + 2..end];
            let v = if name.contains('.') {
                self.attribute(name, sms)?
            } else {
                self.reference(name, sms)?
            };
            let Some(v) = v else { return Ok(None) };
            out += &v;
            rest = &rest[end + 1..];
        }
        out += rest;
        Ok(Some(out))
    }
}

/// The binary cargo-lambda serves a function as (`Metadata.BuildProperties.Binary`).
fn function_name(r: &Value) -> Result<String> {
    r.get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("function without Metadata.BuildProperties.Binary")
}

/// A list property of `{AttributeName, <field>}` items in the CLI's shorthand
/// (`AttributeName=pk,KeyType=HASH`).
fn shorthand(t: &Template, props: &Value, list: &str, field: &str) -> Result<Vec<String>> {
    let none = HashMap::new();
    let items = props
        .get(list)
        .and_then(Value::as_sequence)
        .with_context(|| format!("table without {list}"))?;
    items
        .iter()
        .map(|i| {
            Ok(format!(
                "AttributeName={},{field}={}",
                t.string(i.get("AttributeName").context("AttributeName")?, &none)?,
                t.string(i.get(field).with_context(|| field.to_string())?, &none)?
            ))
        })
        .collect()
}

fn deploy_table(moto: &Moto, t: &Template) -> Result<String> {
    let tables = t.resources_of("AWS::DynamoDB::Table");
    let [(_, table)] = tables.as_slice() else {
        bail!("the template should declare exactly one DynamoDB table");
    };
    let p = table
        .get("Properties")
        .context("table without Properties")?;
    let none = HashMap::new();
    let name = t.string(t.prop(table, "TableName")?, &none)?;
    let mut args: Vec<String> = vec![
        "dynamodb".into(),
        "create-table".into(),
        "--table-name".into(),
        name.clone(),
    ];
    args.push("--attribute-definitions".into());
    args.extend(shorthand(t, p, "AttributeDefinitions", "AttributeType")?);
    args.push("--key-schema".into());
    args.extend(shorthand(t, p, "KeySchema", "KeyType")?);
    args.push("--billing-mode".into());
    args.push(t.string(t.prop(table, "BillingMode")?, &none)?);
    moto.aws(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok(name)
}

fn deploy_bucket(moto: &Moto, t: &Template) -> Result<String> {
    let buckets = t.resources_of("AWS::S3::Bucket");
    let [(_, bucket)] = buckets.as_slice() else {
        bail!("the template should declare exactly one S3 bucket");
    };
    let name = t.string(t.prop(bucket, "BucketName")?, &HashMap::new())?;
    moto.aws(&["s3api", "create-bucket", "--bucket", &name])?;
    if t.prop(bucket, "VersioningConfiguration").is_ok() {
        moto.aws(&[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            &name,
            "--versioning-configuration",
            "Status=Enabled",
        ])?;
    }
    Ok(name)
}

/// A state machine's definition with its substitutions, or `None` while one of them
/// names a state machine not created yet.
fn definition(t: &Template, sm: &Value, sms: &HashMap<String, String>) -> Result<Option<String>> {
    let uri = t.string(t.prop(sm, "DefinitionUri")?, sms)?;
    let path = t.dir.join(&uri);
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if let Some(Value::Mapping(subs)) = sm
        .get("Properties")
        .and_then(|p| p.get("DefinitionSubstitutions"))
    {
        for (k, v) in subs {
            let k = k.as_str().context("substitution name")?;
            let Some(v) = t.value(v, sms)? else {
                return Ok(None);
            };
            text = text.replace(&format!("${{{k}}}"), &v);
        }
    }
    if let Some(i) = text.find("${") {
        let end = text[i..].find('}').map_or(text.len(), |e| i + e + 1);
        bail!("{uri}: {} has no substitution", &text[i..end]);
    }
    Ok(Some(text))
}

fn deploy_state_machines(moto: &Moto, t: &Template) -> Result<HashMap<String, String>> {
    let mut sms: HashMap<String, String> = HashMap::new();
    let mut todo = t.resources_of("AWS::Serverless::StateMachine");
    while !todo.is_empty() {
        let before = todo.len();
        let mut waiting = Vec::new();
        for (logical, sm) in todo {
            let name = t.string(t.prop(sm, "Name")?, &sms)?;
            match definition(t, sm, &sms).with_context(|| format!("state machine {logical}"))? {
                None => waiting.push((logical, sm)),
                Some(def) => {
                    let out = moto.aws(&[
                        "stepfunctions",
                        "create-state-machine",
                        "--name",
                        &name,
                        "--definition",
                        &def,
                        "--role-arn",
                        &format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
                    ])?;
                    let arn = out["stateMachineArn"]
                        .as_str()
                        .context("create-state-machine: no ARN")?;
                    sms.insert(name, arn.to_string());
                }
            }
        }
        if waiting.len() == before {
            bail!("state machines refer to each other in a cycle");
        }
        todo = waiting;
    }
    Ok(sms)
}

/// YAML (a template's event pattern) as JSON text.
fn yaml_json(v: &Value) -> Result<String> {
    let j: serde_json::Value = serde_yaml_ng::from_value(v.clone())?;
    Ok(j.to_string())
}

/// Every EventBridge rule of the template, with its targets (`Id`, `Arn`, an `Input`
/// or `InputTransformer` if given), on the default bus.
fn deploy_rules(moto: &Moto, t: &Template, sms: &HashMap<String, String>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (logical, rule) in t.resources_of("AWS::Events::Rule") {
        let name = t.string(t.prop(rule, "Name")?, sms)?;
        let mut args = vec![
            "events".to_string(),
            "put-rule".into(),
            "--name".into(),
            name.clone(),
        ];
        if let Ok(p) = t.prop(rule, "EventPattern") {
            args.extend(["--event-pattern".into(), yaml_json(p)?]);
        }
        if let Ok(s) = t.prop(rule, "ScheduleExpression") {
            args.extend(["--schedule-expression".into(), t.string(s, sms)?]);
        }
        moto.aws(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .with_context(|| format!("rule {logical}"))?;
        let targets = t
            .prop(rule, "Targets")?
            .as_sequence()
            .with_context(|| format!("rule {logical}: Targets is not a list"))?;
        let mut list = Vec::new();
        for target in targets {
            let mut j = serde_json::json!({
                "Id": t.string(target.get("Id").context("target without Id")?, sms)?,
                "Arn": t.string(target.get("Arn").context("target without Arn")?, sms)?,
            });
            if let Some(i) = target.get("Input") {
                j["Input"] = t.string(i, sms)?.into();
            }
            list.push(j);
        }
        moto.aws(&[
            "events",
            "put-targets",
            "--rule",
            &name,
            "--targets",
            &serde_json::Value::Array(list).to_string(),
        ])
        .with_context(|| format!("targets of rule {logical}"))?;
        names.push(name);
    }
    Ok(names)
}

/// Creates the template's queues; a queue's `Ref` (its URL, as moto answers it) is
/// known from here on.
fn deploy_queues(moto: &Moto, t: &mut Template) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut refs = Vec::new();
    for (logical, q) in t.resources_of("AWS::SQS::Queue") {
        let name = t.string(t.prop(q, "QueueName")?, &HashMap::new())?;
        let made = moto.aws(&["sqs", "create-queue", "--queue-name", &name])?;
        let url = made["QueueUrl"].as_str().context("create-queue: no URL")?;
        out.insert(name, url.to_string());
        refs.push((logical.to_string(), url.to_string()));
    }
    t.params.extend(refs);
    Ok(out)
}

fn deploy_topics(moto: &Moto, t: &Template) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (_, topic) in t.resources_of("AWS::SNS::Topic") {
        let name = t.string(t.prop(topic, "TopicName")?, &HashMap::new())?;
        let made = moto.aws(&["sns", "create-topic", "--name", &name])?;
        let arn = made["TopicArn"].as_str().context("create-topic: no ARN")?;
        out.insert(name, arn.to_string());
    }
    Ok(out)
}

fn function_binaries(t: &Template) -> Result<Vec<String>> {
    t.resources_of("AWS::Serverless::Function")
        .into_iter()
        .map(|(name, f)| {
            f.get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|p| p.get("Binary"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| {
                    format!("function {name} names no Metadata.BuildProperties.Binary")
                })
        })
        .collect()
}

fn function_env(t: &Template) -> Result<Vec<(String, String)>> {
    let mut env: HashMap<String, String> = HashMap::new();
    let none = HashMap::new();
    for (name, f) in t.resources_of("AWS::Serverless::Function") {
        let vars = f
            .get("Properties")
            .and_then(|p| p.get("Environment"))
            .and_then(|e| e.get("Variables"));
        let Some(Value::Mapping(vars)) = vars else {
            continue;
        };
        for (k, v) in vars {
            let k = k.as_str().context("variable name")?.to_string();
            let v = t.string(v, &none)?;
            if let Some(old) = env.insert(k.clone(), v.clone()) {
                if old != v {
                    bail!("functions disagree on {k} ({old} / {v}; {name}); one cargo-lambda serves them all");
                }
            }
        }
    }
    let mut env: Vec<_> = env.into_iter().collect();
    env.sort();
    Ok(env)
}

/// Creates the template's table, bucket and state machines in moto. `params` fills
/// parameters (`StoreBucketName`) and may override defaults.
pub fn deploy(moto: &Moto, template: &Path, params: &[(&str, &str)]) -> Result<Deployed> {
    let mut t = Template::load(template, params)?;
    let queues = deploy_queues(moto, &mut t)?;
    let table = deploy_table(moto, &t)?;
    let bucket = deploy_bucket(moto, &t)?;
    let state_machines = deploy_state_machines(moto, &t)?;
    let topics = deploy_topics(moto, &t)?;
    let rules = deploy_rules(moto, &t, &state_machines)?;
    Ok(Deployed {
        table,
        bucket,
        state_machines,
        function_env: function_env(&t)?,
        functions: function_binaries(&t)?,
        rules,
        topics,
        queues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_template() {
        let t = Template::load(
            &crate::disk::repo_root().join("infra/template.yaml"),
            &[("StoreBucketName", "b"), ("ImageRangeBlocks", "128")],
        )
        .unwrap();
        let none = HashMap::new();
        let tables = t.resources_of("AWS::DynamoDB::Table");
        assert_eq!(tables.len(), 1);
        assert_eq!(
            t.string(t.prop(tables[0].1, "TableName").unwrap(), &none)
                .unwrap(),
            "ferry"
        );
        assert_eq!(t.resources_of("AWS::S3::Bucket").len(), 1);
        let env: HashMap<_, _> = function_env(&t).unwrap().into_iter().collect();
        assert_eq!(env["FERRY_STORE"], "s3://b/store");
        assert_eq!(env["FERRY_TABLE"], "ferry");
        assert_eq!(env["FERRY_IMAGE_RANGE_BLOCKS"], "128");
        let mut bins = function_binaries(&t).unwrap();
        bins.sort();
        assert_eq!(bins, vec!["build-image", "burst", "dr", "launch"]);
        assert_eq!(
            env["FERRY_FAILOVER_STATE_MACHINE"],
            state_machine_arn("ferry-failover")
        );
        // Every state machine's substitutions resolve once the ones it names exist.
        let sms: HashMap<String, String> = [(
            "ferry-build-image".to_string(),
            state_machine_arn("ferry-build-image"),
        )]
        .into_iter()
        .collect();
        for (name, sm) in t.resources_of("AWS::Serverless::StateMachine") {
            let def = definition(&t, sm, &sms).unwrap().unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&def).unwrap();
            assert!(parsed["States"].is_object(), "{name}");
            assert!(
                ["build-image", "launch", "burst"]
                    .iter()
                    .any(|f| def.contains(&lambda_arn(f))),
                "{name} invokes none of the functions"
            );
        }
    }

    /// The strings of a value, seen through `!Sub` and the like.
    fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items.iter().flat_map(strings).collect(),
            Value::Tagged(t) => strings(&t.value),
            _ => Vec::new(),
        }
    }

    /// Hardening, defect 13: every permission that creates, writes or deletes is
    /// narrowed by a condition (tags, owner, VPC), except where the template says why
    /// AWS leaves no way to; "*" resources only for calls without resource-level
    /// permissions; the store bucket refuses plain HTTP.
    #[test]
    fn iam_is_narrowed_where_aws_allows() {
        let t = Template::load(
            &crate::disk::repo_root().join("infra/template.yaml"),
            &[("StoreBucketName", "b")],
        )
        .unwrap();
        // Volumes and interfaces created by RunInstances: no id or tag to condition on;
        // the groups' and tiers' own target groups carry no tag Ferry could require.
        let explained = [
            "LaunchCreatesVolumeAndInterface",
            "SwitchTargets",
            "BurstTargets",
        ];
        let mut checked = 0;
        for (name, f) in t.resources() {
            let Some(Value::Sequence(policies)) =
                f.get("Properties").and_then(|p| p.get("Policies"))
            else {
                continue;
            };
            for st in policies
                .iter()
                .filter_map(|p| p.get("Statement"))
                .filter_map(Value::as_sequence)
                .flatten()
            {
                let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("?");
                let actions = strings(st.get("Action").unwrap_or(&Value::Null));
                let resources = strings(st.get("Resource").unwrap_or(&Value::Null));
                let star = resources == ["*"];
                // "*" only for calls without resource-level permissions: reads, or a
                // call narrowed by a condition key (PutMetricData by its namespace).
                if star {
                    assert!(
                        actions.iter().all(|a| a.contains(":Describe"))
                            || st.get("Condition").is_some(),
                        "{name}/{sid}: \"*\" for {actions:?}"
                    );
                }
                // Starting one named state machine is as narrow as a condition.
                let named = actions.iter().all(|a| a == "states:StartExecution")
                    && !resources.is_empty()
                    && resources.iter().all(|r| !r.contains('*'));
                let mutating = actions.iter().any(|a| {
                    [
                        "RunInstances",
                        "RegisterImage",
                        "DeleteSnapshot",
                        "TerminateInstances",
                        "CreateTags",
                        "DeleteNetworkInterface",
                        "RegisterTargets",
                        "DeregisterTargets",
                        "ChangeResourceRecordSets",
                        "StartExecution",
                        "PutMetricData",
                    ]
                    .iter()
                    .any(|m| a.ends_with(m))
                        || a.starts_with("ebs:")
                        || a == "dynamodb:PutItem"
                        || a == "dynamodb:UpdateItem"
                        || a == "dynamodb:DeleteItem"
                });
                if mutating && !explained.contains(&sid) && !named {
                    assert!(
                        st.get("Condition").is_some(),
                        "{name}/{sid} has no condition"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 14, "{checked} statements checked");
        let policies = t.resources_of("AWS::S3::BucketPolicy");
        let doc = serde_yaml_ng::to_string(policies[0].1).unwrap();
        assert!(
            doc.contains("aws:SecureTransport") && doc.contains("Deny"),
            "{doc}"
        );
    }
}
