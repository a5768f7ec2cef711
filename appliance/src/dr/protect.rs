//! `ferry protect GROUP`: record the group in DynamoDB (everything a failover needs,
//! defaults resolved), list it for the AWS-side probe, and create its alarms; say what
//! changed. Running it again with the same config changes nothing.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ferry_aws::cloudwatch;
use ferry_aws::dynamodb::Table;
use ferry_core::alarms::{alarm_prefix, AlarmKind, GroupAlarms};
use ferry_core::group::{Alarms, GroupEntry, GroupRecord};
use ferry_core::keys::{self, kinds};
use serde::Serialize;
use serde_json::Value;

use super::config::{Discovered, GroupConfig};
use crate::ctx::Ctx;

/// What `ferry protect` did.
#[derive(Debug, Clone, Serialize)]
pub struct Protected {
    pub group: String,
    /// `created`, `updated` or `unchanged`.
    pub record: String,
    /// One line per field that changed (`path: old -> new`).
    pub changes: Vec<String>,
    pub alarms: Vec<AlarmChange>,
    /// `automatic` (the failover alarm starts it) or `manual` (no AWS-side view).
    pub failover: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlarmChange {
    pub name: String,
    /// `created`, `updated`, `unchanged` or `deleted`.
    pub action: String,
}

/// What discovery found of each host: from the results file, else from the table.
pub(crate) async fn discovered(
    ctx: &Ctx,
    table: &Table,
    hosts: &[&str],
) -> BTreeMap<String, Discovered> {
    let mut out = BTreeMap::new();
    let from_file = crate::discover::results::read_file(&ctx.discovery_results()).ok();
    for h in hosts {
        let report = match &from_file {
            Some(d) => d.hosts.iter().find(|r| r.host == *h).cloned(),
            None => None,
        };
        let report = match report {
            Some(r) => Some(r),
            None => table
                .get::<Value>(&keys::host_discovery(h))
                .await
                .ok()
                .flatten()
                .and_then(|v| serde_json::from_str(v["report"].as_str()?).ok()),
        };
        if let Some(r) = report {
            out.insert(h.to_string(), of_report(&r));
        }
    }
    out
}

fn of_report(r: &crate::discover::model::HostReport) -> Discovered {
    Discovered {
        instance_type: r.sizing.as_ref().map(|s| s.instance_type.clone()),
        listening: r
            .listeners
            .iter()
            .filter(|l| !l.ip.is_loopback())
            .map(|l| l.port)
            .collect(),
    }
}

/// JSON flattened to `path -> value`, list items named by their `name` or `host`.
fn flatten(v: &Value, path: String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, p, out);
            }
        }
        Value::Array(a)
            if a.iter().all(|i| i.get("name").or(i.get("host")).is_some()) && !a.is_empty() =>
        {
            for i in a {
                let key = i
                    .get("name")
                    .or(i.get("host"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                flatten(i, format!("{path}[{key}]"), out);
            }
        }
        other => {
            out.insert(path, other.to_string());
        }
    }
}

/// What differs between the recorded group and the new one, one line per field.
pub fn changes(old: Option<&GroupRecord>, new: &GroupRecord) -> Vec<String> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    if let Some(o) = old {
        flatten(
            &serde_json::to_value(o).unwrap_or_default(),
            String::new(),
            &mut a,
        );
    }
    flatten(
        &serde_json::to_value(new).unwrap_or_default(),
        String::new(),
        &mut b,
    );
    let mut out = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            Some(old) if old == v => {}
            Some(old) => out.push(format!("{k}: {old} -> {v}")),
            None if old.is_some() => out.push(format!("{k}: (none) -> {v}")),
            None => {}
        }
    }
    for (k, v) in &a {
        if !b.contains_key(k) {
            out.push(format!("{k}: {v} -> (none)"));
        }
    }
    out
}

pub async fn protect(ctx: &Ctx, g: &GroupConfig) -> Result<Protected> {
    let table = ctx
        .aws_table()
        .await
        .context("ferry protect records the group in DynamoDB: set [aws] table")?;
    let hosts = ctx.settings.all_hosts()?;
    let names: Vec<&str> = g.host_names().collect();
    let found = discovered(ctx, &table, &names).await;
    let mut record = g.record(&hosts, &found)?;
    let notify = ctx.settings.aws.notify_topic.as_deref();
    let specs = GroupAlarms {
        group: &g.name,
        hosts: names.clone(),
        rpo_s: record.rpo_s,
        period_s: g.period().as_secs() as u32,
        periods: g.failover_after(),
        aws_probe: record.aws_probe.is_some(),
        notify,
    }
    .specs();
    record.alarms = Alarms {
        failover: specs
            .iter()
            .find(|s| matches!(s.kind, AlarmKind::Composite { .. }))
            .map(|s| s.name.clone()),
        others: specs
            .iter()
            .filter(|s| !matches!(s.kind, AlarmKind::Composite { .. }))
            .map(|s| s.name.clone())
            .collect(),
    };
    let key = keys::group(&g.name);
    let old: Option<GroupRecord> = table
        .get(&key)
        .await
        .with_context(|| format!("reading group {}", g.name))?;
    let changed = changes(old.as_ref(), &record);
    let state = match (&old, changed.is_empty()) {
        (None, _) => "created",
        (Some(_), true) => "unchanged",
        (Some(_), false) => "updated",
    };
    if state != "unchanged" {
        table
            .put(&key, kinds::GROUP, &record)
            .await
            .with_context(|| format!("recording group {}", g.name))?;
    }
    let entry = GroupEntry {
        group: g.name.clone(),
        probe: record.aws_probe.clone(),
    };
    table
        .put(&keys::group_entry(&g.name), kinds::GROUP, &entry)
        .await
        .with_context(|| format!("listing group {}", g.name))?;

    let cw = &ctx.aws().await.cloudwatch;
    let existing = cloudwatch::alarms(cw, &alarm_prefix(&g.name))
        .await
        .with_context(|| format!("reading the alarms of group {}", g.name))?;
    let mut alarms = Vec::new();
    // What the last protect created and this one does not: composites first.
    if let Some(old) = &old {
        let stale: Vec<String> = old
            .alarms
            .failover
            .iter()
            .chain(old.alarms.others.iter())
            .filter(|n| !specs.iter().any(|s| &&s.name == n))
            .filter(|n| existing.iter().any(|a| &&a.name == n))
            .cloned()
            .collect();
        for n in &stale {
            cloudwatch::delete_alarms(cw, std::slice::from_ref(n))
                .await
                .with_context(|| format!("deleting alarm {n}"))?;
            alarms.push(AlarmChange {
                name: n.clone(),
                action: "deleted".into(),
            });
        }
    }
    for spec in &specs {
        let have = existing.iter().find(|a| a.name == spec.name);
        let action = match have {
            Some(a) if a.matches(spec) => "unchanged",
            Some(_) => "updated",
            None => "created",
        };
        if action != "unchanged" {
            cloudwatch::put_alarm(cw, spec, have.map(|a| a.arn.as_str()))
                .await
                .with_context(|| format!("writing alarm {}", spec.name))?;
        }
        alarms.push(AlarmChange {
            name: spec.name.clone(),
            action: action.into(),
        });
    }
    let mut warnings = Vec::new();
    if record.aws_probe.is_none() {
        warnings.push(format!(
            "group {} has no public_endpoint: nothing in AWS watches the origin, so it fails over by `ferry failover {}` only (one observer alone must not decide)",
            g.name, g.name
        ));
    }
    if notify.is_none() {
        warnings.push("no [aws] notify_topic: the alarms notify nobody (set it to the template's NotificationTopicArn)".into());
    }
    if record.drill.is_none() {
        warnings.push(format!(
            "group {} has no drill_subnet: it cannot be drilled",
            g.name
        ));
    }
    Ok(Protected {
        group: g.name.clone(),
        record: state.into(),
        changes: changed,
        alarms,
        failover: if record.aws_probe.is_some() {
            "automatic"
        } else {
            "manual"
        }
        .into(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_the_field_by_tier_and_host() {
        let s = crate::settings::Settings::parse(
            "store = \"file:///x\"\n[[host]]\nname = \"db1\"\ndisk = \"/d\"\n[[group]]\nname = \"g\"\nrpo = \"5m\"\nrto = \"10m\"\nsubnet = \"subnet-1\"\n[[group.tier]]\nname = \"db\"\nhosts = [\"db1\"]\ninterval = \"5m\"\n",
        )
        .unwrap();
        let hosts = s.all_hosts().unwrap();
        let a = s.groups[0].record(&hosts, &BTreeMap::new()).unwrap();
        let mut b = a.clone();
        b.tiers[0].hosts[0].instance_type = "m5.large".into();
        b.rpo_s = 60;
        assert!(changes(Some(&a), &a).is_empty());
        let c = changes(Some(&a), &b);
        assert!(c.contains(&"rpo_s: 300 -> 60".to_string()), "{c:?}");
        assert!(
            c.iter()
                .any(|l| l.starts_with("tiers[db].hosts[db1].instance_type:")),
            "{c:?}"
        );
        assert!(changes(None, &a).is_empty());
    }
}
