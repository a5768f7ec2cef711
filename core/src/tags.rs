//! Tag names Ferry puts on what it creates in AWS, spelled once. The template's IAM
//! conditions (`aws:ResourceTag/ferry:point`) use the same names.

/// The host a snapshot, image or instance belongs to.
pub const HOST: &str = "ferry:host";
/// The recovery point a snapshot or image was built from.
pub const POINT: &str = "ferry:point";
/// A child snapshot's parent point.
pub const PARENT_POINT: &str = "ferry:parent-point";
/// The build attempt (execution name) that started a snapshot.
pub const ATTEMPT: &str = "ferry:attempt";
/// The run (execution name) that launched an instance.
pub const RUN_ID: &str = "ferry:run-id";
/// The protection group a recovery or drill instance belongs to.
pub const GROUP: &str = "ferry:group";
