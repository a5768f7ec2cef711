//! Route 53 as a failover uses it: point a record set at new addresses (UPSERT), and
//! read what a record set holds.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;

use crate::CallError;

fn fqdn(name: &str) -> String {
    match name.ends_with('.') {
        true => name.to_string(),
        false => format!("{name}."),
    }
}

/// Sets record set `name`/`record_type` of `zone_id` to `values` (created if missing).
pub async fn upsert(
    client: &Client,
    zone_id: &str,
    name: &str,
    record_type: &str,
    ttl: u64,
    values: &[String],
    comment: &str,
) -> Result<(), CallError> {
    let mut set = ResourceRecordSet::builder()
        .name(fqdn(name))
        .r#type(RrType::from(record_type))
        .ttl(ttl as i64);
    for v in values {
        set = set.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| CallError::invalid("ChangeResourceRecordSets", name, e))?,
        );
    }
    let set = set
        .build()
        .map_err(|e| CallError::invalid("ChangeResourceRecordSets", name, e))?;
    change(client, zone_id, name, ChangeAction::Upsert, set, comment).await
}

/// One change of one record set, sent as a batch of its own.
async fn change(
    client: &Client,
    zone_id: &str,
    name: &str,
    action: ChangeAction,
    set: ResourceRecordSet,
    comment: &str,
) -> Result<(), CallError> {
    let change = Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| CallError::invalid("ChangeResourceRecordSets", name, e))?;
    let batch = ChangeBatch::builder()
        .comment(comment)
        .changes(change)
        .build()
        .map_err(|e| CallError::invalid("ChangeResourceRecordSets", name, e))?;
    client
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| {
            CallError::new(
                "ChangeResourceRecordSets",
                format!("{name} in zone {zone_id}"),
                &e,
            )
        })?;
    Ok(())
}

/// The record sets from `name`/`record_type` on (one page: a name's sets come first).
async fn sets_from(
    client: &Client,
    zone_id: &str,
    name: &str,
    record_type: RrType,
) -> Result<Vec<ResourceRecordSet>, CallError> {
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(record_type)
        .send()
        .await
        .map_err(|e| {
            CallError::new(
                "ListResourceRecordSets",
                format!("{name} in zone {zone_id}"),
                &e,
            )
        })?;
    Ok(out.resource_record_sets().to_vec())
}

fn addresses(s: &ResourceRecordSet) -> Vec<String> {
    s.resource_records()
        .iter()
        .map(|r| r.value().to_string())
        .collect()
}

/// What record set `name`/`record_type` of `zone_id` holds; none when there is none.
pub async fn values(
    client: &Client,
    zone_id: &str,
    name: &str,
    record_type: &str,
) -> Result<Option<Vec<String>>, CallError> {
    let name = fqdn(name);
    Ok(sets_from(client, zone_id, &name, RrType::from(record_type))
        .await?
        .iter()
        .find(|s| s.name() == name && s.r#type().as_str() == record_type)
        .map(addresses))
}

/// One weighted record set: its weight and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    pub weight: i64,
    pub ttl: i64,
    pub values: Vec<String>,
}

fn weighted_set(name: &str, set_id: &str, w: &Weighted) -> Result<ResourceRecordSet, CallError> {
    let mut set = ResourceRecordSet::builder()
        .name(fqdn(name))
        .r#type(RrType::A)
        .set_identifier(set_id)
        .weight(w.weight)
        .ttl(w.ttl);
    for v in &w.values {
        set = set.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| CallError::invalid("ChangeResourceRecordSets", name, e))?,
        );
    }
    set.build()
        .map_err(|e| CallError::invalid("ChangeResourceRecordSets", name, e))
}

/// The weighted A record set `name`/`set_id` of `zone_id`, if there is one.
pub async fn weighted(
    client: &Client,
    zone_id: &str,
    name: &str,
    set_id: &str,
) -> Result<Option<Weighted>, CallError> {
    let name = fqdn(name);
    Ok(sets_from(client, zone_id, &name, RrType::A)
        .await?
        .iter()
        .find(|s| {
            s.name() == name && s.r#type() == &RrType::A && s.set_identifier() == Some(set_id)
        })
        .map(|s| Weighted {
            weight: s.weight().unwrap_or(0),
            ttl: s.ttl().unwrap_or(0),
            values: addresses(s),
        }))
}

/// UPSERTs (or DELETEs: `w` must then be the set as it stands) one weighted set.
pub async fn change_weighted(
    client: &Client,
    zone_id: &str,
    name: &str,
    set_id: &str,
    w: &Weighted,
    delete: bool,
) -> Result<(), CallError> {
    let action = match delete {
        true => ChangeAction::Delete,
        false => ChangeAction::Upsert,
    };
    let set = weighted_set(name, set_id, w)?;
    change(
        client,
        zone_id,
        name,
        action,
        set,
        &format!("Ferry burst: {set_id}"),
    )
    .await
}
