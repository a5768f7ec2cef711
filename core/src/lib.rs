//! `ferry-core`: what the Ferry appliance and the cloud functions agree on.
//!
//! No AWS SDK and no I/O live here: only the store format, the record types and the pure
//! planning logic both sides share. `docs/format.md` documents the format in prose; this
//! crate is its executable definition.
//!
//! # Layout
//! - [`id`]: BLAKE3 content ids of chunks and packs.
//! - [`chunking`]: FastCDC v2020 parameters and a streaming chunker fed block by block.
//! - [`convert`]: conversion for EC2 (NVMe and ENA in the initramfs, fstab and root by
//!   UUID, the serial console, DHCP on any interface), as pure edits, and its record.
//! - [`repo_config`]: the store's `config` object (format version, chunker, compression).
//! - [`layout`]: object keys inside a store (`config`, `packs/`, `index/`, `points/`).
//! - [`pack`]: pack objects (compressed chunks plus a trailer that indexes them).
//! - [`image_hash`]: the whole-image BLAKE3, hashed block by block in parallel.
//! - [`index`]: index objects, mapping chunk id -> (pack, offset, length).
//! - [`manifest`]: recovery-point manifests (the ordered chunk list of one image).
//! - [`locations`]: per-point chunk-location objects, read one image range at a time.
//! - [`delta`]: which byte ranges of an image differ from another point.
//! - [`ebs`]: a point as 512 KiB EBS snapshot blocks; which blocks a child changes.
//! - [`keys`]: every DynamoDB key family (`HOST#`, `POINT#`, `RUN#`, `GROUP#`,
//!   `DISCOVERY`).
//! - [`records`]: DynamoDB record types for hosts and recovery points.
//! - [`alarms`]: a protection group's metrics and CloudWatch alarms (the failover
//!   alarm needs two observers), and their names.
//! - [`group`]: a protection group as recorded (tiers, launch settings, traffic switch,
//!   health checks, targets).
//! - [`names`]: execution names and the UTC stamps they and point ids carry.
//! - [`prices`]: the EC2 on-demand price list shipped with Ferry.
//! - [`steps`]: the step contract: typed inputs and outputs of every state-machine step
//!   and execution, and the error names the definitions match.
//! - [`tags`]: tag names on what Ferry creates in AWS.
//! - [`instance_types`]: EC2 instance types as sizing reads them.
//! - [`error`]: the typed errors of decoding and validating stored objects.

pub mod alarm_event;
pub mod alarms;
pub mod blockmap;
pub mod burst;
pub mod cbt;
pub mod chunking;
pub mod convert;
pub mod delta;
pub mod ebs;
pub mod error;
pub mod group;
pub mod id;
pub mod image_hash;
pub mod index;
pub mod instance_types;
pub mod keys;
pub mod layout;
pub mod locations;
pub mod manifest;
pub mod names;
pub mod pack;
pub mod prices;
pub mod records;
pub mod repo_config;
pub mod steps;
pub mod tags;

pub use error::FormatError;
pub use id::ChunkId;
