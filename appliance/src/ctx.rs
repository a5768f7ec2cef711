//! What every command runs with: the settings, the output mode, progress, the injected
//! shutdown signal, and AWS clients, built once on first use (a command that never
//! talks to AWS never loads an AWS configuration).

use std::path::{Path, PathBuf};

use anyhow::Result;
use ferry_aws::dynamodb::Table;
use ferry_aws::sfn::Sfn;
use ferry_store::{Backend, Repository};
use tokio::sync::OnceCell;

use crate::progress::Progress;
use crate::records::Records;
use crate::report::OutputMode;
use crate::settings::Settings;
use crate::shutdown::Shutdown;

/// AWS clients, built from `[aws]` once per process.
pub struct Aws {
    pub sfn: Sfn,
    pub ec2: aws_sdk_ec2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    /// The records table, when `[aws] table` is set.
    pub table: Option<Table>,
}

pub struct Ctx {
    pub settings: Settings,
    /// The config file the settings came from (or would have).
    pub config_path: PathBuf,
    pub output: OutputMode,
    pub progress: Progress,
    pub shutdown: Shutdown,
    sdk: OnceCell<aws_config::SdkConfig>,
    aws: OnceCell<Aws>,
}

impl Ctx {
    pub fn new(
        settings: Settings,
        config_path: PathBuf,
        output: OutputMode,
        shutdown: Shutdown,
    ) -> Self {
        Ctx {
            settings,
            config_path,
            output,
            progress: Progress::new(output == OutputMode::Json),
            shutdown,
            sdk: OnceCell::new(),
            aws: OnceCell::new(),
        }
    }

    /// Loads `config` (when it exists or no store was given) and applies `--store`.
    pub fn load(
        config: &Path,
        store: Option<&str>,
        output: OutputMode,
        shutdown: Shutdown,
    ) -> Result<Self> {
        let mut s = if config.exists() || store.is_none() {
            Settings::load(config)?
        } else {
            Settings::store_only(String::new())
        };
        if let Some(url) = store {
            s.store = url.to_string();
        }
        Ok(Ctx::new(s, config.to_path_buf(), output, shutdown))
    }

    pub fn json(&self) -> bool {
        self.output == OutputMode::Json
    }

    /// The SDK configuration every client of this process is built from.
    pub async fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk_config().await
    }

    async fn sdk_config(&self) -> &aws_config::SdkConfig {
        self.sdk
            .get_or_init(|| ferry_aws::clients::sdk_config(&self.settings.aws))
            .await
    }

    pub async fn aws(&self) -> &Aws {
        self.aws
            .get_or_init(|| async {
                let aws = &self.settings.aws;
                let cfg = self.sdk_config().await;
                Aws {
                    sfn: Sfn::new(ferry_aws::clients::sfn(cfg)),
                    ec2: ferry_aws::clients::ec2(cfg),
                    cloudwatch: ferry_aws::clients::cloudwatch(cfg),
                    autoscaling: ferry_aws::clients::autoscaling(cfg),
                    elbv2: ferry_aws::clients::elbv2(cfg),
                    route53: ferry_aws::clients::route53(cfg),
                    table: aws
                        .table
                        .clone()
                        .map(|t| Table::new(ferry_aws::clients::dynamodb(cfg), t)),
                }
            })
            .await
    }

    /// The records table, when one is configured (no AWS is loaded otherwise).
    pub async fn aws_table(&self) -> Option<Table> {
        self.settings.aws.table.as_ref()?;
        self.aws().await.table.clone()
    }

    /// Host and point records, when a table is configured.
    pub async fn records(&self) -> Option<Records> {
        self.aws_table().await.map(Records::new)
    }

    /// The store's backend; an S3 store's client shares the process's SDK configuration.
    pub async fn backend(&self) -> Result<Backend> {
        let url = &self.settings.store;
        Ok(match url.starts_with("s3://") {
            true => Backend::open_with(url, self.sdk_config().await)?,
            false => Backend::open(url, &self.settings.aws).await?,
        })
    }

    pub async fn repo(&self) -> Result<Repository> {
        Ok(Repository::open(self.backend().await?).await?)
    }

    /// Where `ferry discover` keeps its results and `ferry report` reads them.
    pub fn discovery_results(&self) -> PathBuf {
        self.settings
            .discovery
            .results
            .clone()
            .unwrap_or_else(|| "discovery.json".into())
    }
}
