//! The one place AWS SDK clients are built. Endpoints come from the standard
//! `AWS_ENDPOINT_URL` (or per-service `AWS_ENDPOINT_URL_S3`, ...) variables, so an
//! emulator or a VPC endpoint needs no code branch; S3 switches to path-style addressing
//! whenever an endpoint is overridden, as S3-compatible endpoints expect.

use aws_config::{BehaviorVersion, Region};

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Region; falls back to the SDK's usual chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// DynamoDB table for host and point records; none: records are not written.
    pub table: Option<String>,
    /// The migrate state machine, by name or ARN (default `ferry-migrate`).
    pub migrate_state_machine: Option<String>,
    /// The build-image state machine, by name or ARN (default `ferry-build-image`).
    pub build_image_state_machine: Option<String>,
    /// Start each captured point's AMI build (as `ferry capture --image` does).
    #[serde(default)]
    pub image_after_capture: bool,
}

/// The shared SDK configuration every client is built from.
pub async fn sdk_config(s: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &s.region {
        loader = loader.region(Region::new(r.clone()));
    }
    loader.load().await
}

fn endpoint_overridden(service_var: &str) -> bool {
    std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os(service_var).is_some()
}

pub async fn s3_client(s: &AwsSettings) -> aws_sdk_s3::Client {
    let cfg = sdk_config(s).await;
    let conf = aws_sdk_s3::config::Builder::from(&cfg)
        .force_path_style(endpoint_overridden("AWS_ENDPOINT_URL_S3"))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub async fn ec2_client(s: &AwsSettings) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(s).await)
}

pub async fn sfn_client(s: &AwsSettings) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&sdk_config(s).await)
}

pub async fn dynamodb_client(s: &AwsSettings) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(s).await)
}

/// An AWS SDK error, read once the same way for every service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFailure {
    /// The service's error code (`NoSuchKey`, `Throttling`, ...), if it answered.
    pub code: Option<String>,
    /// `code: message`, or the SDK's description when the service did not answer.
    pub message: String,
    /// Worth retrying: a transport failure, throttling, a service having a bad moment.
    pub retryable: bool,
}

/// Error codes that mean "try again later", across the services Ferry calls.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "InsufficientInstanceCapacity",
    "RequestTimeout",
];

pub fn sdk_failure<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> SdkFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
    let transport = matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    let code = err.code().map(str::to_string);
    let message = match (&code, err.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
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
