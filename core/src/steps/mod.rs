//! The step contract: typed inputs and outputs of every state-machine step and of every
//! execution the appliance starts, shared by the functions that implement them, the
//! appliance, and the tests. JSON field names are the ones the Step Functions
//! definitions use in their paths; `docs/contract.md` lists them all in one table.
//!
//! - [`instance`]: the launch function (`launch`, `describe`, `terminate`).
//! - [`build_image`]: the build-image function (`plan`, `write`, `finish`, `abandon`)
//!   and the build-image state machine's input.
//! - [`migrate`]: the migrate state machine's input.

pub mod build_image;
pub mod instance;
pub mod migrate;

pub use instance::{InstanceRequest, InstanceState, LaunchSpec};

/// Error names a step fails with, as the definitions match them in `Retry` and `Catch`.
pub mod errors {
    /// Worth retrying: throttling, timeouts, a service having a bad moment.
    pub const RETRYABLE: &str = "Retryable";
    /// Retrying cannot help: bad input, a missing resource, a refused request.
    pub const NON_RETRYABLE: &str = "NonRetryable";
}
