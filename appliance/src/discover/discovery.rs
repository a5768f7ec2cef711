//! A whole discovery's result, as stored in `discovery.json` and rendered by the report.

use serde::{Deserialize, Serialize};

use super::deps::Edge;
use super::model::HostReport;
use super::plan::Wave;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    /// RFC 3339.
    pub generated: String,
    pub window_s: f64,
    pub interval_s: f64,
    pub hosts: Vec<HostReport>,
    pub edges: Vec<Edge>,
    pub waves: Vec<Wave>,
    /// Where the prices behind the sizing come from, and their date.
    pub prices: String,
    /// Where the instance types behind the sizing come from: DescribeInstanceTypes, or
    /// the shipped catalog and its date.
    #[serde(default)]
    pub instance_types: String,
}
