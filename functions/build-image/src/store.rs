//! The store as the build steps reach it: opened on the first invocation (a function
//! deployed before its store exists still starts, and says what is missing per step),
//! and its errors as step errors.

use ferry_fn::StepError;
use ferry_store::{Backend, RepoError, Repository};
use tokio::sync::OnceCell;

pub fn repo_error(e: RepoError) -> StepError {
    if e.is_retryable() {
        StepError::Retryable(e.to_string())
    } else {
        StepError::NonRetryable(e.to_string())
    }
}

/// The store named by `url`, opened once, on first use, with the function's SDK
/// configuration.
pub struct LazyStore {
    url: String,
    cfg: aws_config::SdkConfig,
    repo: OnceCell<Repository>,
}

impl LazyStore {
    pub fn new(url: String, cfg: aws_config::SdkConfig) -> Self {
        LazyStore {
            url,
            cfg,
            repo: OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<&Repository, StepError> {
        self.repo
            // Boxed: the SDK's configuration loading is a deep future type.
            .get_or_try_init(|| {
                Box::pin(async {
                    let backend = Backend::open_with(&self.url, &self.cfg)?;
                    Repository::open(backend).await
                })
            })
            .await
            .map_err(repo_error)
    }
}
