//! The build-image steps run in this process, in the order and with the parallelism the
//! state machine gives them (plan, the ranges as the Map runs them, finish), for tests
//! and the image benchmark that look at one build closely.

use anyhow::Result;
use ferry_core::steps::build_image::{BuildImageResult, FinishRequest, Plan, PlanRequest};
use ferry_fn_build_image::cloud::Cloud;
use ferry_fn_build_image::steps;
use ferry_store::Repository;
use futures::{stream, StreamExt, TryStreamExt};

/// The Map's parallelism (`MaxConcurrency` of WriteBlocks).
pub const MAP_CONCURRENCY: usize = 8;

/// Builds the image of `host`'s newest point, as build attempt `attempt`.
pub async fn build(
    c: &Cloud,
    repo: &Repository,
    host: &str,
    attempt: &str,
) -> Result<(Plan, BuildImageResult)> {
    let plan = steps::plan(
        c,
        repo,
        PlanRequest {
            host: host.into(),
            point: None,
            attempt: attempt.into(),
        },
    )
    .await?;
    let writes = stream::iter(plan.ranges.iter().filter_map(|&r| plan.write(r)))
        .map(|r| async move { steps::write(c, repo, r).await.map(|w| w.blocks_written) })
        .buffer_unordered(MAP_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let done = steps::finish(
        c,
        repo,
        FinishRequest {
            host: host.into(),
            attempt: attempt.into(),
            point: plan.point.clone(),
            snapshot_id: plan.snapshot_id.clone(),
            parent_snapshot_id: plan.parent_snapshot_id.clone(),
            writes,
        },
    )
    .await?;
    Ok((plan, done))
}
