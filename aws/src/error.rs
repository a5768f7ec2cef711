//! AWS SDK errors, read once the same way for every service.
//!
//! Rules: an SDK error is never flattened into a bare string; it is read into
//! [`SdkFailure`] (the service's code, its message, whether a retry can help), and a
//! failed call carries that with the call's name and what it was about ([`CallError`]).

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS SDK error as Ferry reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SdkFailure {
    /// The service's error code (`NoSuchKey`, `Throttling`, ...), if it answered.
    pub code: Option<String>,
    /// `code: message`, or the SDK's description when the service did not answer.
    pub message: String,
    /// Worth retrying: a transport failure, throttling, a service having a bad moment.
    pub retryable: bool,
}

impl SdkFailure {
    /// The service answered with this code.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// The service said that the thing asked about does not exist (`NoSuchKey`,
    /// `InvalidInstanceID.NotFound`, `ResourceNotFoundException`, ...).
    pub fn is_not_found(&self) -> bool {
        self.code.as_deref().is_some_and(|c| {
            c.contains("NotFound") || c.contains("NoSuch") || c == "ResourceNotFoundException"
        })
    }
}

/// Error codes that mean "try again later", across the services Ferry calls: the one
/// table every caller classifies by (throttling, capacity, the services' own internal
/// errors; EBS direct APIs, EC2, S3, DynamoDB, Step Functions, Lambda).
pub const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "EC2ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "ConcurrentLimitExceededException",
    "PriorRequestNotComplete",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "RequestTimeout",
    "RequestTimeoutException",
];

pub fn sdk_failure<E, R>(err: &SdkError<E, R>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let transport = matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    let code = err.code().map(str::to_string);
    let message = match (&code, err.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        _ => DisplayErrorContext(err).to_string(),
    };
    let retryable = transport
        || code
            .as_deref()
            .is_some_and(|c| RETRYABLE_CODES.contains(&c));
    SdkFailure {
        code,
        message,
        retryable,
    }
}

/// One AWS call that failed: which call, about what, and the service's answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call} {target}: {}", failure.message)]
pub struct CallError {
    /// The API call (`StartExecution`, `PutItem`, ...).
    pub call: &'static str,
    /// What it was about: a state machine, an execution, a table.
    pub target: String,
    pub failure: SdkFailure,
}

impl CallError {
    pub fn new<E, R>(call: &'static str, target: impl Into<String>, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        CallError {
            call,
            target: target.into(),
            failure: sdk_failure(err),
        }
    }

    /// A request the SDK refused to build (a required field missing): never retryable.
    pub fn invalid(
        call: &'static str,
        target: impl Into<String>,
        why: impl std::fmt::Display,
    ) -> Self {
        CallError {
            call,
            target: target.into(),
            failure: SdkFailure {
                code: Some("InvalidRequest".into()),
                message: format!("InvalidRequest: {why}"),
                retryable: false,
            },
        }
    }
}

#[cfg(test)]
mod retry_table_tests {
    use super::RETRYABLE_CODES;

    #[test]
    fn the_transient_errors_of_a_build_or_migration_are_retryable() {
        // EBS direct APIs, EC2, DynamoDB: each seen failing healthy builds and launches.
        for code in [
            "RequestThrottledException",
            "ConcurrentLimitExceededException",
            "InternalServerException",
            "RequestLimitExceeded",
            "InsufficientInstanceCapacity",
            "ProvisionedThroughputExceededException",
        ] {
            assert!(RETRYABLE_CODES.contains(&code), "{code}");
        }
        for code in [
            "ValidationException",
            "AccessDeniedException",
            "InvalidSubnetID.NotFound",
        ] {
            assert!(!RETRYABLE_CODES.contains(&code), "{code}");
        }
    }
}
