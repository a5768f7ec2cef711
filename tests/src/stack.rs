//! A whole local stack for one test (or the demo): a temp dir, a client key, optionally
//! moto, and sshd hosts. Dropping it stops everything it started.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::deploy::{deploy, Deployed};
use crate::ferry::{write_config, Ferry, HostEntry};
use crate::moto::{CargoLambda, Moto};
use crate::procs::free_port;
use crate::router::Router;
use crate::sshd::{keygen, SshHost};

/// The records table, as `infra/template.yaml` names it by default.
pub const TABLE: &str = "ferry";
/// The store bucket the local deployment creates (the template's `StoreBucketName`).
pub const STORE_BUCKET: &str = "ferry-store";
/// The store the functions read (`FERRY_STORE`), as the template sets it.
pub const CLOUD_STORE: &str = "s3://ferry-store/store";
/// Blocks per build-image writer in the local stack (the template's
/// `ImageRangeBlocks`): small, so that the test images are written by several
/// parallel Map iterations.
pub const RANGE_BLOCKS: &str = "128";
pub const MIGRATE_SM: &str = "ferry-migrate";
pub const FAILOVER_SM: &str = "ferry-failover";
/// The notification topic the template creates.
pub const NOTIFY_TOPIC: &str = "ferry-notifications";
pub const BUILD_IMAGE_SM: &str = "ferry-build-image";

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub client_key: PathBuf,
    pub moto: Option<Moto>,
    /// With [`Stack::with_cloud`]: the router in front of moto and cargo-lambda.
    pub router: Option<Router>,
    pub lambda: Option<CargoLambda>,
    /// What the template deployment created (with moto).
    pub deployed: Option<Deployed>,
    pub hosts: Vec<SshHost>,
    /// Seconds a minute lasts for the local stack's schedule rules (default 60).
    pub minute_s: Option<f64>,
}

impl Stack {
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("ferry-stack-").tempdir()?;
        let client_key = dir.path().join("client_key");
        keygen(&client_key)?;
        Ok(Stack {
            dir,
            client_key,
            moto: None,
            router: None,
            lambda: None,
            deployed: None,
            hosts: Vec::new(),
            minute_s: None,
        })
    }

    /// Starts moto and deploys the template's table and bucket into it.
    pub fn with_moto(mut self) -> Result<Self> {
        let m = Moto::start(self.dir.path())?;
        self.deployed = Some(deploy_template(&m)?);
        self.moto = Some(m);
        Ok(self)
    }

    /// The cloud side: moto behind the router, Step Functions execution switched on,
    /// and `cargo lambda watch` serving the workspace's functions (with the same AWS
    /// environment, so they call moto through the router).
    pub fn with_cloud(mut self) -> Result<Self> {
        let (front, back, lambda) = (
            free_port("127.0.0.1")?,
            free_port("127.0.0.1")?,
            free_port("127.0.0.1")?,
        );
        let moto = Moto::start_behind(self.dir.path(), back, front, self.minute_s)?;
        moto.moto_api(
            "POST",
            "/moto-api/config",
            r#"{"stepfunctions": {"execute_state_machine": true}}"#,
        )?;
        self.router = Some(Router::start(front, back, lambda)?);
        let d = deploy_template(&moto)?;
        let mut env = moto.env();
        env.extend(d.function_env.clone());
        anyhow::ensure!(
            env.iter()
                .any(|(k, v)| k == "FERRY_STORE" && v == CLOUD_STORE),
            "the template's FERRY_STORE is not {CLOUD_STORE}"
        );
        let functions = d.functions.clone();
        self.deployed = Some(d);
        let bin_dir = crate::ferry::ferry_bin()?
            .parent()
            .context("the ferry binary has no directory")?
            .to_path_buf();
        self.lambda = Some(CargoLambda::start(
            self.dir.path(),
            lambda,
            &env,
            &functions,
            &bin_dir,
        )?);
        self.moto = Some(moto);
        Ok(self)
    }

    /// The ARN of a state machine the template deployed.
    pub fn state_machine(&self, name: &str) -> Result<String> {
        self.deployed
            .as_ref()
            .and_then(|d| d.state_machines.get(name))
            .cloned()
            .with_context(|| format!("state machine {name} was not deployed"))
    }

    /// The notification topic the template created (its ARN).
    pub fn notify_topic(&self) -> Result<String> {
        self.deployed
            .as_ref()
            .and_then(|d| d.topics.get(NOTIFY_TOPIC))
            .cloned()
            .context("the template made no notification topic")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts an sshd host whose disk is a copy of `disk` (or empty, sized `None`).
    pub fn add_host(&mut self, name: &str, disk: Option<&Path>) -> Result<usize> {
        let h = SshHost::start(self.dir.path(), name, &self.client_key)?;
        match disk {
            Some(d) => crate::disk::copy(d, &h.disk)?,
            None => std::fs::File::create(&h.disk).map(|_| ())?,
        }
        self.hosts.push(h);
        Ok(self.hosts.len() - 1)
    }

    pub fn host(&self, name: &str) -> &SshHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no test host {name}"))
    }

    pub fn host_mut(&mut self, name: &str) -> &mut SshHost {
        self.hosts
            .iter_mut()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no test host {name}"))
    }

    /// A known_hosts file pinning every host's current key.
    pub fn pinned_known_hosts(&self) -> Result<PathBuf> {
        let p = self.dir.path().join("known_hosts");
        let mut s = String::new();
        for h in &self.hosts {
            s += &h.known_hosts_line()?;
        }
        std::fs::write(&p, s)?;
        Ok(p)
    }

    /// The `[[host]]` entry for an sshd host.
    pub fn entry(&self, name: &str, known_hosts: &Path) -> HostEntry {
        let h = self.host(name);
        HostEntry {
            name: h.name.clone(),
            ssh: Some(h.ssh_addr()),
            identity: Some(self.client_key.clone()),
            disk: h.disk.clone(),
            known_hosts: Some(known_hosts.to_path_buf()),
            extra: String::new(),
        }
    }

    /// Writes `ferry.toml` for `hosts` and returns a runner for it. With moto, the
    /// config names the records table and the runner gets moto's environment.
    pub fn ferry(&self, store: &str, hosts: &[HostEntry]) -> Result<Ferry> {
        self.ferry_with(store, hosts, "", "")
    }

    /// [`Stack::ferry`], with more `[aws]` keys and more TOML after the hosts
    /// (`[[group]]`s).
    pub fn ferry_with(
        &self,
        store: &str,
        hosts: &[HostEntry],
        aws: &str,
        tail: &str,
    ) -> Result<Ferry> {
        let config = self.dir.path().join("ferry.toml");
        let table = self.moto.as_ref().map(|_| TABLE);
        write_config(&config, store, table, hosts)?;
        let mut text = std::fs::read_to_string(&config)?;
        if !aws.is_empty() {
            text = text.replacen(
                "[aws]
",
                &format!(
                    "[aws]
{aws}
"
                ),
                1,
            );
        }
        text += tail;
        std::fs::write(&config, text)?;
        let env = self.moto.as_ref().map(Moto::env).unwrap_or_default();
        Ferry::new(&config, env)
    }

    /// A runner for `hosts` and protection groups (`groups`, `[[group]]` TOML) on the
    /// cloud store, whose alarms notify the template's topic; the store initialised.
    pub fn ferry_protecting(&self, hosts: &[HostEntry], groups: &str) -> Result<Ferry> {
        let topic = self.notify_topic()?;
        let ferry = self.ferry_with(
            CLOUD_STORE,
            hosts,
            &format!("notify_topic = \"{topic}\""),
            groups,
        )?;
        ferry.json(&["store", "init"])?;
        Ok(ferry)
    }

    /// A `file://` store inside the stack's directory.
    pub fn file_store(&self, name: &str) -> String {
        format!("file://{}", self.dir.path().join(name).display())
    }
}

fn deploy_template(moto: &Moto) -> Result<Deployed> {
    let template = crate::disk::repo_root().join("infra/template.yaml");
    let d = deploy(
        moto,
        &template,
        &[
            ("StoreBucketName", STORE_BUCKET),
            ("ImageRangeBlocks", RANGE_BLOCKS),
        ],
    )?;
    anyhow::ensure!(
        d.table == TABLE,
        "the template's table is {}, expected {TABLE}",
        d.table
    );
    for sm in [MIGRATE_SM, BUILD_IMAGE_SM, FAILOVER_SM] {
        anyhow::ensure!(
            d.state_machines.contains_key(sm),
            "the template has no state machine {sm}"
        );
    }
    Ok(d)
}
