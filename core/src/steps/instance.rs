//! The launch function's steps (`functions/launch`): launch, describe, terminate the
//! instance of a run.

use serde::{Deserialize, Serialize};

/// What the instance step is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum InstanceRequest {
    /// Launch the run's instance, or find the one an earlier try launched.
    Launch(LaunchSpec),
    /// Report an instance's state and status checks.
    Describe { instance_id: String },
    /// Terminate an instance (clean-up); an instance already gone is not an error.
    Terminate { instance_id: String },
    /// Terminate every instance a run launched, if it launched any (clean-up of a
    /// launch step that failed after RunInstances may have succeeded; removal of a
    /// drill), and delete the run's network interfaces that are left detached.
    /// Answers a [`RunRemoval`].
    TerminateRun { run_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    /// The run this launch belongs to; a retry with the same id finds the same instance.
    pub run_id: String,
    pub host: String,
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: String,
    /// Keep the source's address, when the subnet holds it.
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// The protection group a failover or drill launches for (tagged).
    #[serde(default)]
    pub group: Option<String>,
}

/// What `terminate_run` did, and what is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRemoval {
    /// Instances this call asked EC2 to terminate.
    pub terminated: Vec<String>,
    /// Instances of the run not terminated yet (shutting down).
    pub remaining: u32,
    /// Network interfaces of the run this call deleted, and those still there.
    pub interfaces_deleted: u32,
    pub interfaces_remaining: u32,
}

impl RunRemoval {
    /// Nothing of the run is left.
    pub fn done(&self) -> bool {
        self.remaining == 0 && self.interfaces_remaining == 0
    }
}

/// An instance as the steps report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    pub instance_id: String,
    /// EC2's state name: pending, running, stopping, stopped, shutting-down, terminated.
    pub state: String,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub private_ip: Option<String>,
    pub image_id: Option<String>,
    /// Both EC2 status checks passed ("ok"), or their worst status.
    pub status_checks: Option<String>,
    /// Whether this call launched it (false: found from an earlier try).
    pub launched_now: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_the_definitions_write_them() {
        let r: InstanceRequest = serde_json::from_str(
            r#"{"action":"launch","run_id":"migrate-web1-20261124T1200Z","host":"web1",
                "image_id":"ami-1","instance_type":"t3.small","subnet_id":"subnet-1"}"#,
        )
        .unwrap();
        let InstanceRequest::Launch(spec) = r else {
            panic!()
        };
        assert_eq!(spec.private_ip, None);
        assert!(spec.security_group_ids.is_empty());
        let t: InstanceRequest =
            serde_json::from_str(r#"{"action":"terminate","instance_id":"i-1"}"#).unwrap();
        assert_eq!(
            t,
            InstanceRequest::Terminate {
                instance_id: "i-1".into()
            }
        );
        assert!(serde_json::from_str::<InstanceRequest>(r#"{"action":"reboot"}"#).is_err());
    }
}
