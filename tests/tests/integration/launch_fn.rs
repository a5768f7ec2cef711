//! The `launch` function's handler against moto's EC2: launch with the planned type,
//! subnet and address; a retry finds the same instance; describe; clean-up terminates;
//! bad input fails as NonRetryable, naming the call.

use anyhow::Result;
use ferry_core::steps::{InstanceRequest, LaunchSpec};
use ferry_fn_launch::handler;
use ferry_tests::stack::Stack;

fn state(r: handler::Reply) -> ferry_core::steps::InstanceState {
    r.state().expect("an instance state")
}

fn removal(r: handler::Reply) -> ferry_core::steps::instance::RunRemoval {
    r.removal().expect("a run removal")
}

#[tokio::test]
async fn launch_describe_retry_and_terminate_against_moto() -> Result<()> {
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let (vpc, subnet) = moto.network("10.20.0.0/16", "10.20.1.0/24")?;
    let sg = moto.aws(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "web",
        "--description",
        "web",
        "--vpc-id",
        &vpc,
    ])?;
    let sg = sg["GroupId"].as_str().unwrap().to_string();
    let ami = moto.test_image("ferry-web1-test")?;

    let cfg = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&cfg);
    let spec = LaunchSpec {
        run_id: "migrate-web1-20261124T1200Z".into(),
        host: "web1".into(),
        image_id: ami.clone(),
        instance_type: "t3.small".into(),
        subnet_id: subnet.clone(),
        private_ip: Some("10.20.1.15".into()),
        security_group_ids: vec![sg.clone()],
        group: None,
    };
    let first = state(handler::handle(&ec2, InstanceRequest::Launch(spec.clone())).await?);
    assert!(first.launched_now);
    assert_eq!(first.instance_type.as_deref(), Some("t3.small"));
    assert_eq!(first.subnet_id.as_deref(), Some(subnet.as_str()));
    assert_eq!(first.private_ip.as_deref(), Some("10.20.1.15"));
    assert_eq!(first.image_id.as_deref(), Some(ami.as_str()));

    // A retried step (same run) finds the instance instead of launching a second.
    let again = state(handler::handle(&ec2, InstanceRequest::Launch(spec.clone())).await?);
    assert_eq!(again.instance_id, first.instance_id);
    assert!(!again.launched_now);
    let listed = moto.aws(&[
        "ec2",
        "describe-instances",
        "--filters",
        "Name=tag:ferry:run-id,Values=migrate-web1-20261124T1200Z",
    ])?;
    let n: usize = listed["Reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Instances"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 1);

    let d = state(
        handler::handle(
            &ec2,
            InstanceRequest::Describe {
                instance_id: first.instance_id.clone(),
            },
        )
        .await?,
    );
    assert_eq!(d.state, "running");
    assert!(d.status_checks.is_some());

    // Bad input is not retryable, and says which call refused what.
    let mut bad = spec.clone();
    bad.run_id = "migrate-web1-bad".into();
    bad.subnet_id = "subnet-00000000".into();
    let err = handler::handle(&ec2, InstanceRequest::Launch(bad))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "NonRetryable", "{err}");
    assert!(err.to_string().contains("RunInstances"), "{err}");

    let t = state(
        handler::handle(
            &ec2,
            InstanceRequest::Terminate {
                instance_id: first.instance_id.clone(),
            },
        )
        .await?,
    );
    assert!(
        matches!(t.state.as_str(), "shutting-down" | "terminated"),
        "{t:?}"
    );
    let gone = state(
        handler::handle(
            &ec2,
            InstanceRequest::Describe {
                instance_id: first.instance_id.clone(),
            },
        )
        .await?,
    );
    assert_eq!(gone.state, "terminated");
    Ok(())
}

/// Hardening, defect 7: an instance EC2 does not know yet (its API is eventually
/// consistent right after RunInstances) is "ask again", not a failure that terminates
/// a good instance; a launch step that failed after RunInstances is cleaned up by run.
#[tokio::test]
async fn unknown_yet_is_retryable_and_a_run_is_cleaned_up_by_its_tag() -> Result<()> {
    use ferry_fn::StepError;
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().unwrap();
    let (_, subnet) = moto.network("10.30.0.0/16", "10.30.1.0/24")?;
    let ami = moto.test_image("ferry-app-test")?;
    let cfg = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&cfg);
    let e = handler::handle(
        &ec2,
        InstanceRequest::Describe {
            instance_id: "i-0123456789abcdef0".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StepError::Retryable(_)), "{e:?}");

    let spec = LaunchSpec {
        run_id: "migrate-app-20261125T1500Z".into(),
        host: "app".into(),
        image_id: ami,
        instance_type: "t3.small".into(),
        subnet_id: subnet,
        private_ip: None,
        security_group_ids: vec![],
        group: None,
    };
    let launched = state(handler::handle(&ec2, InstanceRequest::Launch(spec.clone())).await?);
    let done = removal(
        handler::handle(
            &ec2,
            InstanceRequest::TerminateRun {
                run_id: spec.run_id.clone(),
            },
        )
        .await?,
    );
    assert_eq!(done.terminated, vec![launched.instance_id.clone()]);
    let d = moto.aws(&[
        "ec2",
        "describe-instances",
        "--instance-ids",
        &launched.instance_id,
    ])?;
    let state = d["Reservations"][0]["Instances"][0]["State"]["Name"].clone();
    assert!(state == "shutting-down" || state == "terminated", "{state}");
    // Nothing launched by a run: nothing to do, not an error.
    let none = removal(
        handler::handle(
            &ec2,
            InstanceRequest::TerminateRun {
                run_id: "migrate-app-never".into(),
            },
        )
        .await?,
    );
    assert!(none.terminated.is_empty() && none.done(), "{none:?}");
    Ok(())
}
