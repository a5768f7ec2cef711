//! `ferry discover`: what runs where, who talks to whom, and what each server needs in
//! AWS, learned agentlessly over SSH with stock tools.
//!
//! - [`script`]: the one shell script a collection runs, and its sections.
//! - [`parse`]: the parsers for what those tools print.
//! - [`model`]: what is learned per host, as stored and reported.
//! - [`deps`]: the dependency map from every host's connections.
//! - [`plan`]: tiers and migration waves.

pub mod deps;
pub mod model;
pub mod parse;
pub mod plan;
pub mod script;
