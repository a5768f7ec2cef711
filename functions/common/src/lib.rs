//! `ferry-fn`: what every Ferry Lambda function shares.
//!
//! - [`StepError`]: how a step fails, as Step Functions sees it: the error name is
//!   `Retryable` or `NonRetryable` (see `ferry_core::steps::errors`), never a Rust type
//!   path, so the definitions' `Retry` and `Catch` can match it.
//! - [`sdk_error`]: classifies an AWS SDK error (read by `ferry_aws`) and names the
//!   call that failed.
//! - [`init_tracing`]: JSON-free, level from `RUST_LOG`, for CloudWatch Logs.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ferry_aws::CallError;
use ferry_core::steps::errors;
use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    NonRetryable(String),
    /// Not retryable, under a name of its own that a definition catches apart (one of
    /// `ferry_core::steps::errors`, e.g. `GroupLocked`).
    #[error("{message}")]
    Named { name: &'static str, message: String },
}

impl StepError {
    pub fn name(&self) -> &'static str {
        match self {
            StepError::Retryable(_) => errors::RETRYABLE,
            StepError::NonRetryable(_) => errors::NON_RETRYABLE,
            StepError::Named { name, .. } => name,
        }
    }

    pub fn named(name: &'static str, message: impl Into<String>) -> Self {
        StepError::Named {
            name,
            message: message.into(),
        }
    }
}

impl From<StepError> for Diagnostic {
    fn from(e: StepError) -> Self {
        Diagnostic {
            error_type: e.name().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// An SDK error as a step error: `op` names the call, `what` the object it was about.
pub fn sdk_error<E, R>(op: &'static str, what: &str, err: SdkError<E, R>) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StepError::from(CallError::new(op, what, &err))
}

impl From<CallError> for StepError {
    fn from(e: CallError) -> Self {
        if e.failure.retryable {
            StepError::Retryable(e.to_string())
        } else {
            StepError::NonRetryable(e.to_string())
        }
    }
}

/// Logs to stdout (CloudWatch Logs), level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .without_time()
        .with_ansi(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_carry_stable_names() {
        let d: Diagnostic = StepError::Retryable("x".into()).into();
        assert_eq!(d.error_type, "Retryable");
        let d: Diagnostic = StepError::NonRetryable("bad subnet".into()).into();
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("NonRetryable", "bad subnet")
        );
    }
}
