//! Failback: a failed-over group comes home through the store, as the failback state
//! machine's worker (`statemachines/failback.asl.json`).
//!
//! - [`work`]: one task's work: a pass over a host (capture its recovery instance,
//!   delta-write its origin), a tier's pre-cutover hook, a tier's post-cutover hook and
//!   health.
//! - [`worker`]: the work queue read by long polling, heartbeats, aborts, answers.
//! - [`run`]: `ferry failback GROUP [--abort]`: start or resume, work, follow, report.

pub mod run;
pub mod work;
pub mod worker;
