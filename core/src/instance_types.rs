//! EC2 instance types as sizing reads them: from DescribeInstanceTypes when AWS is
//! reachable, or from the catalog the appliance ships for assessment before an account
//! exists.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    pub name: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    /// `x86_64`, `arm64`, ...
    pub architectures: Vec<String>,
    pub current_generation: bool,
}
