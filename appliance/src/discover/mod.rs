//! `ferry discover` and `ferry report`: what runs where, who talks to whom, and what
//! each server needs in AWS, learned agentlessly over SSH with stock tools.
//!
//! - [`targets`]: which hosts (config entries, groups, address ranges).
//! - [`script`]: the one shell script a collection runs, and its sections.
//! - [`collect`]: one host over SSH: inventory once, samples over the window.
//! - [`parse`]: the parsers for what those tools print.
//! - [`inventory`], [`sampler`]: from script sections to inventory, sockets and rates.
//! - [`assess`]: AWS compatibility findings.
//! - [`deps`]: the dependency map from every host's connections.
//! - [`plan`]: tiers and migration waves. [`sizing`]: the EC2 type recommendation.
//! - [`run`]: a whole discovery, orchestrated; [`discovery`]: its result;
//!   [`results`]: where it is kept. The EC2 instance types come from `ferry_aws::ec2`.
//! - [`propose`]: `--write-config`. [`report`], [`svg`]: the HTML report.

pub mod assess;
pub mod collect;
pub mod deps;
pub mod discovery;
pub mod inventory;
pub mod model;
pub mod parse;
pub mod plan;
pub mod propose;
pub mod report;
pub mod results;
pub mod run;
pub mod sampler;
pub mod script;
pub mod sizing;
pub mod svg;
pub mod targets;
