//! A moto server on a free loopback port, and the `aws` CLI pointed at it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::procs::{free_port, wait_for_port, Proc};

pub const REGION: &str = "us-east-1";

pub struct Moto {
    /// Where moto listens.
    pub port: u16,
    /// Where clients reach it: its own port, or the router's in front of it.
    pub public_port: u16,
    /// The aws CLI session, started by the first [`Moto::aws`] (dropped before moto).
    cli: Mutex<Option<AwsCli>>,
    _proc: Proc,
}

/// What `aws` printed: JSON, or nothing (null).
fn parse_output(out: &[u8]) -> Result<serde_json::Value> {
    if out.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_slice(out)?)
}

/// One python3 process running the aws CLI's driver for command after command.
struct AwsCli {
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    _proc: Proc,
}

impl AwsCli {
    fn start(env: Vec<(String, String)>) -> Result<Self> {
        let script = crate::disk::repo_root().join("tests/moto/aws_cli.py");
        let mut proc = Proc::spawn(
            "aws CLI session",
            Command::new("python3")
                .arg(&script)
                .envs(env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .context("python3 is not installed: run scripts/setup.sh")?;
        let child = proc.child_mut();
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("the aws CLI session has no stdin or stdout");
        };
        Ok(AwsCli {
            input,
            output: BufReader::new(output),
            _proc: proc,
        })
    }

    /// Runs one command: its exit code, stdout and stderr.
    fn run(&mut self, args: &[&str]) -> Result<(i64, String, String)> {
        let mut line = serde_json::to_string(args)?;
        line.push('\n');
        self.input
            .write_all(line.as_bytes())
            .and_then(|()| self.input.flush())
            .context("the aws CLI session is gone (is awscli installed for python3?)")?;
        let mut answer = String::new();
        if self.output.read_line(&mut answer)? == 0 {
            bail!(
                "the aws CLI session ended (is awscli installed for python3? run scripts/setup.sh)"
            );
        }
        let v: serde_json::Value =
            serde_json::from_str(&answer).context("the aws CLI session's answer")?;
        Ok((
            v["rc"].as_i64().unwrap_or(255),
            v["out"].as_str().unwrap_or_default().to_string(),
            v["err"].as_str().unwrap_or_default().to_string(),
        ))
    }
}

impl Moto {
    /// Starts moto's server (PyPI `moto[server]`) through `tests/moto/ferry_moto.py`
    /// (RegisterImage completed: see that file), logging to `log_dir/moto.log`.
    pub fn start(log_dir: &Path) -> Result<Self> {
        let port = free_port("127.0.0.1")?;
        Self::start_behind(log_dir, port, port, None)
    }

    /// Starts moto on `port`, telling it that its public port is `public_port` (where
    /// a router in front of it listens; its Step Functions interpreter calls Lambda
    /// there). `minute_s` shortens the minute of its schedule rules (`rate(1 minute)`
    /// fires every `minute_s` seconds), for tests that cannot wait minutes.
    pub fn start_behind(
        log_dir: &Path,
        port: u16,
        public_port: u16,
        minute_s: Option<f64>,
    ) -> Result<Self> {
        let log = std::fs::File::create(log_dir.join("moto.log"))?;
        let server = crate::disk::repo_root().join("tests/moto/ferry_moto.py");
        let mut proc = Proc::spawn(
            "moto server",
            Command::new("python3")
                .arg(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_PORT", public_port.to_string())
                .env(
                    "FERRY_LOCAL_MINUTE_S",
                    minute_s
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "60".into()),
                )
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )
        .context("python3 is not installed: run scripts/setup.sh")?;
        wait_for_port(
            &mut proc,
            ([127, 0, 0, 1], port).into(),
            Duration::from_secs(60),
        )?;
        Ok(Moto {
            port,
            public_port,
            cli: Mutex::new(None),
            _proc: proc,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.public_port)
    }

    /// Environment for any AWS client (ferry, the aws CLI) to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint().as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An SDK configuration for this server, built explicitly (tests in one process
    /// each have their own moto, so nothing is taken from the process environment).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ebs::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Runs the official `aws` CLI against this server and parses its JSON output.
    /// The commands run in one python3 process per server that keeps the CLI's driver
    /// loaded (`tests/moto/aws_cli.py`: the same code as the `aws` command, without a
    /// second of start-up per command); they are serialised.
    pub fn aws(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut cli = self
            .cli
            .lock()
            .map_err(|_| anyhow::anyhow!("the aws CLI session lock is poisoned"))?;
        if cli.is_none() {
            *cli = Some(AwsCli::start(self.env())?);
        }
        let Some(session) = cli.as_mut() else {
            bail!("the aws CLI session did not start");
        };
        // botocore sends SQS to its legacy global endpoint despite AWS_ENDPOINT_URL.
        let mut full: Vec<&str> = args.to_vec();
        let endpoint = self.endpoint();
        full.extend(["--output", "json", "--endpoint-url", &endpoint]);
        let (rc, out, err) = match session.run(&full) {
            Ok(r) => r,
            Err(e) => {
                // A dead session is started again by the next command.
                *cli = None;
                return Err(e.context(format!("aws {}", args.join(" "))));
            }
        };
        if rc != 0 {
            bail!("aws {}: {err}", args.join(" "));
        }
        parse_output(out.as_bytes())
    }

    /// Runs `aws` as a process of its own, as a user typing it would (start-up
    /// included): for benchmarks that time commands by hand.
    pub fn aws_process(&self, args: &[&str]) -> Result<serde_json::Value> {
        // As in [`Moto::aws`], `--endpoint-url` for SQS's sake.
        let out = Command::new("aws")
            .args(args)
            .args(["--output", "json", "--endpoint-url", &self.endpoint()])
            .envs(self.env())
            .output()
            .context("running the aws CLI")?;
        if !out.status.success() {
            bail!(
                "aws {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        parse_output(&out.stdout)
    }

    /// A VPC with one subnet, as a target network: returns (vpc id, subnet id).
    pub fn network(&self, vpc_cidr: &str, subnet_cidr: &str) -> Result<(String, String)> {
        let vpc = self.aws(&["ec2", "create-vpc", "--cidr-block", vpc_cidr])?;
        let vpc = vpc["Vpc"]["VpcId"]
            .as_str()
            .context("create-vpc: no id")?
            .to_string();
        let subnet = self.aws(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc,
            "--cidr-block",
            subnet_cidr,
        ])?;
        let subnet = subnet["Subnet"]["SubnetId"]
            .as_str()
            .context("create-subnet: no id")?
            .to_string();
        Ok((vpc, subnet))
    }

    /// An ELBv2 target group of IP targets (HTTP on `port`) in `vpc`: its ARN.
    pub fn ip_target_group(&self, name: &str, port: u16, vpc: &str) -> Result<String> {
        let tg = self.aws(&[
            "elbv2",
            "create-target-group",
            "--name",
            name,
            "--protocol",
            "HTTP",
            "--port",
            &port.to_string(),
            "--vpc-id",
            vpc,
            "--target-type",
            "ip",
        ])?;
        Ok(tg["TargetGroups"][0]["TargetGroupArn"]
            .as_str()
            .context("create-target-group: no ARN")?
            .to_string())
    }

    /// A Route 53 hosted zone named `name`: its id (without `/hostedzone/`).
    pub fn hosted_zone(&self, name: &str) -> Result<String> {
        let z = self.aws(&[
            "route53",
            "create-hosted-zone",
            "--name",
            name,
            "--caller-reference",
            name,
        ])?;
        Ok(z["HostedZone"]["Id"]
            .as_str()
            .context("create-hosted-zone: no id")?
            .trim_start_matches("/hostedzone/")
            .to_string())
    }

    /// Registers an image to launch from, on the snapshot of an empty volume.
    pub fn test_image(&self, name: &str) -> Result<String> {
        let vol = self.aws(&[
            "ec2",
            "create-volume",
            "--size",
            "1",
            "--availability-zone",
            "us-east-1a",
        ])?;
        let vol = vol["VolumeId"].as_str().context("create-volume: no id")?;
        let snap = self.aws(&["ec2", "create-snapshot", "--volume-id", vol])?;
        let snap = snap["SnapshotId"]
            .as_str()
            .context("create-snapshot: no id")?;
        let mapping = format!("DeviceName=/dev/xvda,Ebs={{SnapshotId={snap}}}");
        let ami = self.aws(&[
            "ec2",
            "register-image",
            "--name",
            name,
            "--architecture",
            "x86_64",
            "--root-device-name",
            "/dev/xvda",
            "--block-device-mappings",
            &mapping,
        ])?;
        Ok(ami["ImageId"]
            .as_str()
            .context("register-image: no id")?
            .to_string())
    }

    /// Starts an execution named `name` and waits (at most `timeout`) until it ends;
    /// returns `describe-execution`'s document.
    pub fn run_execution(
        &self,
        state_machine: &str,
        name: &str,
        input: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let exec = self.aws(&[
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            state_machine,
            "--name",
            name,
            "--input",
            &input.to_string(),
        ])?;
        let arn = exec["executionArn"]
            .as_str()
            .context("start-execution: no ARN")?
            .to_string();
        let start = std::time::Instant::now();
        loop {
            let d = self.aws(&[
                "stepfunctions",
                "describe-execution",
                "--execution-arn",
                &arn,
            ])?;
            if d["status"] != "RUNNING" {
                return Ok(d);
            }
            if start.elapsed() > timeout {
                bail!("execution {name} still running after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The execution's history, as `get-execution-history` prints it.
    pub fn history(&self, execution: &serde_json::Value) -> Result<serde_json::Value> {
        let arn = execution["executionArn"]
            .as_str()
            .context("no executionArn")?;
        self.aws(&[
            "stepfunctions",
            "get-execution-history",
            "--execution-arn",
            arn,
        ])
    }

    /// One DynamoDB item by key, as `aws dynamodb get-item` prints it (`Item`, or no
    /// `Item` when there is none).
    pub fn get_item(&self, table: &str, pk: &str, sk: &str) -> Result<serde_json::Value> {
        let key = serde_json::json!({"pk": {"S": pk}, "sk": {"S": sk}}).to_string();
        self.aws(&["dynamodb", "get-item", "--table-name", table, "--key", &key])
    }

    /// Makes a lock item look expired, as if its holder died long ago.
    pub fn expire_lock(&self, table: &str, pk: &str, sk: &str) -> Result<()> {
        let key = serde_json::json!({"pk": {"S": pk}, "sk": {"S": sk}}).to_string();
        self.aws(&[
            "dynamodb",
            "update-item",
            "--table-name",
            table,
            "--key",
            &key,
            "--update-expression",
            "SET expires = :e",
            "--expression-attribute-values",
            r#"{":e": {"N": "1"}}"#,
        ])?;
        Ok(())
    }

    /// A raw HTTP call to moto's own API (`/moto-api/...`).
    pub fn moto_api(&self, method: &str, path: &str, body: &str) -> Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        let status = resp.split_whitespace().nth(1).unwrap_or("");
        if !status.starts_with('2') {
            bail!(
                "moto {method} {path}: {}",
                resp.lines().next().unwrap_or("")
            );
        }
        Ok(resp)
    }
}

/// `cargo lambda watch` serving the Lambda APIs, and the function binaries of this
/// build running against it: no compile happens once the stack is up, and no source
/// change restarts a function in the middle of an invocation. As Lambda starts a new
/// execution environment after one dies, a function process that exits is started again.
pub struct CargoLambda {
    pub port: u16,
    stop: Arc<AtomicBool>,
    supervisor: Option<std::thread::JoinHandle<()>>,
    _proc: Proc,
}

/// How one function process is started (again).
struct FunctionCmd {
    name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl FunctionCmd {
    fn spawn(&self) -> Result<Proc> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        Proc::spawn(
            &self.name,
            Command::new(&self.bin)
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )
    }
}

impl CargoLambda {
    /// Starts the APIs in the workspace root, then every binary of `functions` from
    /// `bin_dir` with `env` (as the template gives it) and the runtime API's address.
    pub fn start(
        log_dir: &Path,
        port: u16,
        env: &[(String, String)],
        functions: &[String],
        bin_dir: &Path,
    ) -> Result<Self> {
        let log = std::fs::File::create(log_dir.join("cargo-lambda.log"))?;
        let mut proc = Proc::spawn(
            "cargo lambda watch",
            Command::new("cargo")
                .args([
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "--ignore-changes",
                    "-A",
                    "127.0.0.1",
                    "-P",
                    &port.to_string(),
                ])
                .current_dir(crate::disk::repo_root())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )
        .context("cargo-lambda is not installed: run scripts/setup.sh")?;
        wait_for_port(
            &mut proc,
            ([127, 0, 0, 1], port).into(),
            Duration::from_secs(60),
        )?;
        let mut running = Vec::new();
        for f in functions {
            let bin = bin_dir.join(f);
            if !bin.exists() {
                bail!(
                    "function {f} is not built at {}: build the workspace's binaries first",
                    bin.display()
                );
            }
            let mut fenv = env.to_vec();
            fenv.extend([
                (
                    "AWS_LAMBDA_RUNTIME_API".to_string(),
                    format!("http://127.0.0.1:{port}/.rt/{f}"),
                ),
                ("AWS_LAMBDA_FUNCTION_NAME".to_string(), f.clone()),
                ("AWS_LAMBDA_FUNCTION_VERSION".to_string(), "1".to_string()),
                (
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_string(),
                    "1024".to_string(),
                ),
            ]);
            let cmd = FunctionCmd {
                name: f.clone(),
                bin,
                env: fenv,
                log: log_dir.join(format!("fn-{f}.log")),
            };
            let p = cmd.spawn()?;
            running.push((cmd, p));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let supervisor = {
            let stop = stop.clone();
            std::thread::spawn(move || supervise(running, &stop))
        };
        Ok(CargoLambda {
            port,
            stop,
            supervisor: Some(supervisor),
            _proc: proc,
        })
    }
}

/// Starts again every function process that exits, until `stop`.
fn supervise(mut running: Vec<(FunctionCmd, Proc)>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        for (cmd, p) in running.iter_mut() {
            if p.check_alive().is_err() {
                std::thread::sleep(Duration::from_millis(200));
                match cmd.spawn() {
                    Ok(new) => *p = new,
                    Err(e) => eprintln!("cannot start function {} again: {e:#}", cmd.name),
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for CargoLambda {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.supervisor.take() {
            let _ = s.join();
        }
    }
}
