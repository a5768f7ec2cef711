//! The local cloud side end to end: a Step Functions execution in moto invokes the real
//! `launch` function binary (served by cargo-lambda behind the router), which launches
//! an instance in moto's EC2. A function error reaches the definition under its stable
//! name, so `Catch` can route it.

use std::time::Duration;

use anyhow::Result;
use ferry_tests::stack::Stack;
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-migrate";

#[test]
fn an_execution_invokes_the_launch_function_and_catches_its_errors() -> Result<()> {
    let stack = Stack::new()?.with_cloud()?;
    let moto = stack.moto.as_ref().unwrap();
    let (_, subnet) = moto.network("10.30.0.0/16", "10.30.1.0/24")?;
    let ami = moto.test_image("ferry-app1")?;

    let definition = json!({
        "Comment": "Launch a target and report it; a NonRetryable error goes to LaunchFailed.",
        "StartAt": "LaunchTarget",
        "States": {
            "LaunchTarget": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:launch",
                    "Payload.$": "$"
                },
                "ResultSelector": {"instance.$": "$.Payload"},
                "Catch": [{"ErrorEquals": ["NonRetryable"], "ResultPath": "$.error", "Next": "LaunchFailed"}],
                "End": true
            },
            "LaunchFailed": {"Type": "Fail", "Error": "LaunchFailed", "Cause": "the launch step refused its input"}
        }
    });
    let sm = moto.aws(&[
        "stepfunctions",
        "create-state-machine",
        "--name",
        "ferry-launch-test",
        "--definition",
        &definition.to_string(),
        "--role-arn",
        ROLE,
    ])?;
    let sm = sm["stateMachineArn"].as_str().unwrap().to_string();

    let input = json!({"action": "launch", "run_id": "migrate-app1-20261124T1200Z", "host": "app1",
                       "image_id": ami, "instance_type": "t3.medium", "subnet_id": subnet,
                       "private_ip": "10.30.1.40"});
    let done = moto.run_execution(
        &sm,
        "migrate-app1-20261124T1200Z",
        &input,
        Duration::from_secs(120),
    )?;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out: Value = serde_json::from_str(done["output"].as_str().unwrap_or("{}"))?;
    let id = out["instance"]["instance_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(id.starts_with("i-"), "{out}");
    let d = moto.aws(&["ec2", "describe-instances", "--instance-ids", &id])?;
    let inst = &d["Reservations"][0]["Instances"][0];
    assert_eq!(inst["InstanceType"], "t3.medium");
    assert_eq!(inst["PrivateIpAddress"], "10.30.1.40");
    assert_eq!(inst["SubnetId"], subnet.as_str());

    // A bad subnet: the function fails NonRetryable, the definition catches it.
    let mut bad = input.clone();
    bad["run_id"] = json!("migrate-app1-bad");
    bad["subnet_id"] = json!("subnet-00000000");
    let failed = moto.run_execution(&sm, "migrate-app1-bad", &bad, Duration::from_secs(120))?;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let history = moto.history(&failed)?;
    let text = history.to_string();
    assert!(
        text.contains("LaunchFailed"),
        "the Catch routed the error: {text}"
    );
    Ok(())
}
