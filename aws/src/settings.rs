//! `[aws]` in `ferry.toml`: where the appliance finds its AWS resources.

/// Default names of the deployed state machines (`infra/template.yaml`).
pub const DEFAULT_MIGRATE: &str = "ferry-migrate";
pub const DEFAULT_BUILD_IMAGE: &str = "ferry-build-image";
pub const DEFAULT_FAILOVER: &str = "ferry-failover";
pub const DEFAULT_FAILBACK: &str = "ferry-failback";
pub const DEFAULT_FAILBACK_QUEUE: &str = "ferry-failback-work";
pub const DEFAULT_BURST: &str = "ferry-burst";
pub const DEFAULT_SCALE_IN: &str = "ferry-scale-in";

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
    /// The failover state machine (failovers and drills), by name or ARN (default
    /// `ferry-failover`).
    pub failover_state_machine: Option<String>,
    /// The failback state machine, by name or ARN (default `ferry-failback`).
    pub failback_state_machine: Option<String>,
    /// The burst and scale-in state machines, by name or ARN (default `ferry-burst`,
    /// `ferry-scale-in`): `ferry runs` lists their runs.
    pub burst_state_machine: Option<String>,
    pub scale_in_state_machine: Option<String>,
    /// The queue the appliance takes failback work from, by name or URL (default
    /// `ferry-failback-work`, the template's `FailbackQueueUrl`).
    pub failback_queue: Option<String>,
    /// The SNS topic the protection groups' alarms notify (the template's
    /// `NotificationTopicArn` output); none: alarms notify nobody.
    pub notify_topic: Option<String>,
}

impl AwsSettings {
    pub fn migrate_state_machine(&self) -> &str {
        self.migrate_state_machine
            .as_deref()
            .unwrap_or(DEFAULT_MIGRATE)
    }

    pub fn failover_state_machine(&self) -> &str {
        self.failover_state_machine
            .as_deref()
            .unwrap_or(DEFAULT_FAILOVER)
    }

    pub fn failback_state_machine(&self) -> &str {
        self.failback_state_machine
            .as_deref()
            .unwrap_or(DEFAULT_FAILBACK)
    }

    pub fn burst_state_machine(&self) -> &str {
        self.burst_state_machine.as_deref().unwrap_or(DEFAULT_BURST)
    }

    pub fn scale_in_state_machine(&self) -> &str {
        self.scale_in_state_machine
            .as_deref()
            .unwrap_or(DEFAULT_SCALE_IN)
    }

    pub fn failback_queue(&self) -> &str {
        self.failback_queue
            .as_deref()
            .unwrap_or(DEFAULT_FAILBACK_QUEUE)
    }

    pub fn build_image_state_machine(&self) -> &str {
        self.build_image_state_machine
            .as_deref()
            .unwrap_or(DEFAULT_BUILD_IMAGE)
    }
}

/// Whether this machine has any AWS configuration at all: a region, credentials, a
/// profile or an endpoint in the environment, or a shared config or credentials file.
/// Without any, the appliance does what it can offline (discovery sizes from its
/// shipped catalog) instead of letting the SDK probe the instance metadata service.
pub fn configured(s: &AwsSettings) -> bool {
    const VARS: &[&str] = &[
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ];
    if s.region.is_some() || VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return true;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |var: &str, rel: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(rel)))
            .is_some_and(|p| p.exists())
    };
    file("AWS_CONFIG_FILE", ".aws/config")
        || file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
}
