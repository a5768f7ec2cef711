//! One entry point for every build step; the request's `action` picks the step.

use ferry_fn::StepError;
use ferry_store::Repository;
use serde_json::Value;

use crate::cloud::Cloud;
use crate::steps;
use crate::store::LazyStore;
use ferry_core::steps::build_image::BuildImageRequest;

fn json(v: impl serde::Serialize) -> Result<Value, StepError> {
    serde_json::to_value(v).map_err(|e| StepError::NonRetryable(format!("encoding the reply: {e}")))
}

/// An invocation: the store (opened on first use), then the step.
pub async fn invoke(
    c: &Cloud,
    store: &LazyStore,
    req: BuildImageRequest,
) -> Result<Value, StepError> {
    let repo = store.get().await?;
    handle(c, repo, req).await
}

pub async fn handle(
    c: &Cloud,
    repo: &Repository,
    req: BuildImageRequest,
) -> Result<Value, StepError> {
    match req {
        BuildImageRequest::Plan(r) => json(steps::plan(c, repo, r).await?),
        BuildImageRequest::Write(r) => json(steps::write(c, repo, r).await?),
        BuildImageRequest::Finish(r) => json(steps::finish(c, repo, r).await?),
        BuildImageRequest::Abandon(r) => json(steps::abandon(c, r).await?),
    }
}
