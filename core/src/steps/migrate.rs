//! The migrate state machine's input (`statemachines/migrate.asl.json`), as
//! `ferry migrate` starts it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateInput {
    /// The execution's name; the run item's key and the launch's idempotency token.
    pub run_id: String,
    pub host: String,
    /// The point to migrate; `null`: the host's newest (build-image decides).
    pub point: Option<String>,
    pub target: Target,
}

/// Where and how the migrated host runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub instance_type: String,
    pub subnet_id: String,
    /// Serialised as `null` when absent: the definition reads the path either way.
    pub private_ip: Option<String>,
    pub security_group_ids: Vec<String>,
}

/// The migrate state machine's output (its `Migrated` state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migrated {
    /// One line for the console.
    pub summary: String,
    pub host: String,
    pub point: String,
    pub snapshot_id: String,
    pub image_id: String,
    pub instance_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_has_every_path_the_definition_reads() {
        let i = MigrateInput {
            run_id: "migrate-web1-x".into(),
            host: "web1".into(),
            point: Some("p".into()),
            target: Target {
                instance_type: "t3.medium".into(),
                subnet_id: "subnet-1".into(),
                private_ip: None,
                security_group_ids: vec![],
            },
        };
        let v = serde_json::to_value(&i).unwrap();
        let def = include_str!("../../../statemachines/migrate.asl.json");
        for path in [
            "$.run_id",
            "$.host",
            "$.point",
            "$.target.instance_type",
            "$.target.subnet_id",
            "$.target.private_ip",
            "$.target.security_group_ids",
        ] {
            assert!(
                def.contains(&format!("\"{path}\"")),
                "{path} not read by the definition"
            );
            let ptr = path.trim_start_matches('$').replace('.', "/");
            assert!(v.pointer(&ptr).is_some(), "{path} missing from the input");
        }
    }
}
