//! The one place AWS SDK clients are built. Endpoints come from the standard
//! `AWS_ENDPOINT_URL` (or per-service `AWS_ENDPOINT_URL_S3`, ...) variables, so an
//! emulator or a VPC endpoint needs no code branch; S3 switches to path-style addressing
//! whenever an endpoint is overridden, as S3-compatible endpoints expect.

use aws_config::{BehaviorVersion, Region};

use crate::AwsSettings;

/// The shared SDK configuration every client is built from.
pub async fn sdk_config(s: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &s.region {
        loader = loader.region(Region::new(r.clone()));
    }
    loader.load().await
}

/// S3 with path-style addressing whenever its endpoint is overridden (in the config
/// or by `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`).
#[cfg(feature = "s3")]
pub fn s3(cfg: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let overridden = cfg.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let conf = aws_sdk_s3::config::Builder::from(cfg)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

macro_rules! client {
    ($feature:literal, $name:ident, $krate:ident) => {
        #[cfg(feature = $feature)]
        pub fn $name(cfg: &aws_config::SdkConfig) -> $krate::Client {
            $krate::Client::new(cfg)
        }
    };
}

client!("dynamodb", dynamodb, aws_sdk_dynamodb);
client!("ec2", ec2, aws_sdk_ec2);
client!("sfn", sfn, aws_sdk_sfn);
client!("ebs", ebs, aws_sdk_ebs);
client!("cloudwatch", cloudwatch, aws_sdk_cloudwatch);
client!("eventbridge", eventbridge, aws_sdk_eventbridge);
client!("autoscaling", autoscaling, aws_sdk_autoscaling);
client!("elbv2", elbv2, aws_sdk_elasticloadbalancingv2);
client!("route53", route53, aws_sdk_route53);
client!("sqs", sqs, aws_sdk_sqs);
