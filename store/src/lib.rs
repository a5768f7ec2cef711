//! `ferry-store`: a Ferry store opened for reading and writing, in a local directory or
//! in S3. The appliance writes captures through it; the cloud functions read points and
//! chunks through it. The format itself is `ferry-core`'s.
//!
//! # Layout
//! - [`backend`]: the object-storage port (`put`, `get`, `get_range`, `list`, `remove`)
//!   and its
//!   `file://` and `s3://` adapters.
//! - [`repo`]: a store opened for use: its config, its chunk index, packs, points.
//! - [`chunks`]: planning and opening reads of chunks (restores, image builds).
//! - [`check`]: the store checks behind `ferry verify`.
//! - [`locations`]: a point's chunk-location object, read one image range at a time.
//! - [`blocks`]: a point's block map, for the next capture's changed-block detection.
//! - [`lock`]: shared and exclusive store locks (prune, concurrent appliances).
//! - [`error`]: the typed errors of [`repo`].

pub mod backend;
pub mod blocks;
pub mod check;
pub mod chunks;
pub mod error;
pub mod locations;
pub mod lock;
pub mod repo;

pub use backend::{Backend, BackendError};
pub use error::RepoError;
pub use repo::Repository;
