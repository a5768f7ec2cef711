//! The table's items this function reads (groups, points, what observers last saw of
//! an origin) and writes (run items), as the core record types.

use ferry_aws::dynamodb::TableError;
use ferry_core::group::{GroupEntry, GroupRecord};
use ferry_core::keys::{self, kinds};
use ferry_core::records::PointRecord;
use ferry_core::steps::failover::{parse_rfc3339, PointChoice, RunRecord};
use ferry_fn::StepError;
use serde::{Deserialize, Serialize};

use crate::Dr;

/// How many of a host's newest points `begin` looks through.
const POINTS_LOOKED_AT: usize = 1000;

pub fn table_error(e: TableError) -> StepError {
    match e {
        TableError::Call(c) => c.into(),
        other => StepError::NonRetryable(other.to_string()),
    }
}

/// The group as `ferry protect` recorded it.
pub async fn group(dr: &Dr, name: &str) -> Result<GroupRecord, StepError> {
    dr.table
        .get::<GroupRecord>(&keys::group(name))
        .await
        .map_err(table_error)?
        .ok_or_else(|| {
            StepError::NonRetryable(format!(
                "group {name} is not protected: record it with `ferry protect {name}`"
            ))
        })
}

/// A host's points as their records say (newest first), with their images.
pub async fn points(dr: &Dr, host: &str) -> Result<Vec<PointChoice>, StepError> {
    let records: Vec<PointRecord> = dr
        .table
        .query(
            &keys::host_pk(host),
            keys::POINT_PREFIX,
            true,
            POINTS_LOOKED_AT,
        )
        .await
        .map_err(table_error)?;
    Ok(records
        .into_iter()
        .filter_map(|r| {
            Some(PointChoice {
                created: parse_rfc3339(&r.created)?,
                point: r.point,
                image_id: r.image_id,
            })
        })
        .collect())
}

/// What the observers last saw of a group's origin (`GROUP#<g>` / `ORIGIN`): the
/// appliance writes its fields, the AWS-side probe its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// RFC 3339: the appliance's last probe round that found the origin healthy.
    #[serde(default)]
    pub appliance_last_healthy: Option<String>,
    #[serde(default)]
    pub appliance_healthy: Option<bool>,
    /// RFC 3339: the AWS-side probe's last success.
    #[serde(default)]
    pub aws_last_reachable: Option<String>,
    #[serde(default)]
    pub aws_reachable: Option<bool>,
}

pub async fn origin(dr: &Dr, group: &str) -> Result<Origin, StepError> {
    Ok(dr
        .table
        .get::<Origin>(&keys::group_origin(group))
        .await
        .map_err(table_error)?
        .unwrap_or_default())
}

pub async fn group_entries(dr: &Dr) -> Result<Vec<GroupEntry>, StepError> {
    dr.table
        .query(keys::GROUPS, "", false, usize::MAX)
        .await
        .map_err(table_error)
}

pub async fn put_run(dr: &Dr, run: &RunRecord) -> Result<(), StepError> {
    dr.table
        .put(&keys::group_run(&run.group, &run.run_id), kinds::RUN, run)
        .await
        .map_err(table_error)
}

pub async fn run(dr: &Dr, group: &str, run_id: &str) -> Result<Option<RunRecord>, StepError> {
    dr.table
        .get(&keys::group_run(group, run_id))
        .await
        .map_err(table_error)
}
