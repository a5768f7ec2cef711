//! The integration tests: one binary (it links the AWS SDKs once), one module per area.
//! Each test starts its own peers (moto, sshd hosts, the functions) on free loopback
//! ports and stops them; nothing is shared through the process environment, so the
//! tests run in parallel.

mod access_errors;
mod build_image_fn;
mod build_image_sm;
mod burst;
mod capture_records;
mod capture_ssh;
mod cbt;
mod daemon;
mod damaged_objects;
mod discover_findings;
mod discover_offline;
mod discover_shop;
mod drill;
mod failback;
mod failover;
mod faults;
mod launch_fn;
mod migrate_e2e;
mod migrate_sm;
mod point_selection;
mod restore_targets;
mod restore_to_host;
mod sample_disk;
mod stepfunctions_local;
mod store_damage;
