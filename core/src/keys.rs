//! Every key family of the one DynamoDB table, spelled once. `docs/contract.md` lists
//! them with the step contract; the state machines that write items themselves
//! (`RecordCutover`) use the same spelling, and a test reads the definitions to check.
//!
//! Single-table design: everything about a host shares its partition key, so one Query
//! returns the host, its points in time order, its runs and its discovery; everything
//! about a protection group shares `GROUP#<name>`: its definition, its locks (the group
//! state), what the appliance last saw of the origin, and its failover and drill runs.

/// A table key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

/// Partition key prefix of everything about one host.
pub const HOST_PREFIX: &str = "HOST#";
/// Sort key of the host item itself.
pub const HOST_SK: &str = "HOST";
/// Sort key prefix of a recovery point.
pub const POINT_PREFIX: &str = "POINT#";
/// Sort key prefix of a run (a migration; later failover, failback, drill, burst).
pub const RUN_PREFIX: &str = "RUN#";
/// Sort key of a host's latest discovery, and partition key of the whole map.
pub const DISCOVERY: &str = "DISCOVERY";
/// Sort key of the latest discovery map.
pub const LATEST: &str = "LATEST";
/// Sort key prefix of a lock held on something of a host (an image build of a point;
/// later a failover of a group).
pub const LOCK_PREFIX: &str = "LOCK#";

/// Partition key prefix of everything about one protection group.
pub const GROUP_PREFIX: &str = "GROUP#";
/// Sort key of the group's definition (what `ferry protect` recorded).
pub const GROUP_SK: &str = "GROUP";
/// Sort key of what the appliance last saw of the group's origin.
pub const ORIGIN_SK: &str = "ORIGIN";
/// Partition key of the list of protected groups (one item per group, what the
/// AWS-side probe checks).
pub const GROUPS: &str = "GROUPS";

pub fn host_pk(host: &str) -> String {
    format!("{HOST_PREFIX}{host}")
}

pub fn point_sk(point: &str) -> String {
    format!("{POINT_PREFIX}{point}")
}

pub fn run_sk(run_id: &str) -> String {
    format!("{RUN_PREFIX}{run_id}")
}

/// The host item: `HOST#<name>` / `HOST`.
pub fn host(name: &str) -> ItemKey {
    ItemKey {
        pk: host_pk(name),
        sk: HOST_SK.into(),
    }
}

/// A recovery point: `HOST#<name>` / `POINT#<point id>` (point ids sort by time).
pub fn point(host: &str, point: &str) -> ItemKey {
    ItemKey {
        pk: host_pk(host),
        sk: point_sk(point),
    }
}

/// The lock on image builds of a point: `HOST#<name>` / `LOCK#build-image#<point id>`.
pub fn build_lock(host: &str, point: &str) -> ItemKey {
    ItemKey {
        pk: host_pk(host),
        sk: format!("{LOCK_PREFIX}build-image#{point}"),
    }
}

/// A run of a host: `HOST#<name>` / `RUN#<run id>` (written by the state machines).
pub fn run(host: &str, run_id: &str) -> ItemKey {
    ItemKey {
        pk: host_pk(host),
        sk: run_sk(run_id),
    }
}

pub fn group_pk(group: &str) -> String {
    format!("{GROUP_PREFIX}{group}")
}

/// A protection group's definition: `GROUP#<name>` / `GROUP`.
pub fn group(name: &str) -> ItemKey {
    ItemKey {
        pk: group_pk(name),
        sk: GROUP_SK.into(),
    }
}

/// A protected group in the list of groups: `GROUPS` / `<name>`.
pub fn group_entry(name: &str) -> ItemKey {
    ItemKey {
        pk: GROUPS.into(),
        sk: name.into(),
    }
}

/// What the appliance last saw of a group's origin: `GROUP#<name>` / `ORIGIN`.
pub fn group_origin(name: &str) -> ItemKey {
    ItemKey {
        pk: group_pk(name),
        sk: ORIGIN_SK.into(),
    }
}

/// A group's lock of one kind: `GROUP#<name>` / `LOCK#failover` (held from a
/// failover's start; kept, as the group's FAILED_OVER state, once it succeeded) or
/// `LOCK#drill` (held by a running drill).
pub fn group_lock(name: &str, kind: &str) -> ItemKey {
    ItemKey {
        pk: group_pk(name),
        sk: format!("{LOCK_PREFIX}{kind}"),
    }
}

/// A failover or drill run of a group: `GROUP#<name>` / `RUN#<run id>`.
pub fn group_run(group: &str, run_id: &str) -> ItemKey {
    ItemKey {
        pk: group_pk(group),
        sk: run_sk(run_id),
    }
}

/// A host's latest discovery: `HOST#<name>` / `DISCOVERY`.
pub fn host_discovery(host: &str) -> ItemKey {
    ItemKey {
        pk: host_pk(host),
        sk: DISCOVERY.into(),
    }
}

/// The latest discovery's map and waves: `DISCOVERY` / `LATEST`.
pub fn discovery_map() -> ItemKey {
    ItemKey {
        pk: DISCOVERY.into(),
        sk: LATEST.into(),
    }
}

/// Partition key of the list of burst tiers (one item per tier: its definition, as
/// `ferry burst setup` recorded it).
pub const BURSTS: &str = "BURSTS";
/// Partition key prefix of a burst tier's lock and runs.
pub const BURST_PREFIX: &str = "BURST#";

/// A burst tier's definition: `BURSTS` / `<tier>`.
pub fn burst_tier(tier: &str) -> ItemKey {
    ItemKey {
        pk: BURSTS.into(),
        sk: tier.into(),
    }
}

pub fn burst_pk(tier: &str) -> String {
    format!("{BURST_PREFIX}{tier}")
}

/// The tier's lock, held by a running burst or scale-in: `BURST#<tier>` / `LOCK#tier`.
pub fn burst_lock(tier: &str) -> ItemKey {
    ItemKey {
        pk: burst_pk(tier),
        sk: format!("{LOCK_PREFIX}tier"),
    }
}

/// A burst or scale-in run of a tier: `BURST#<tier>` / `RUN#<run id>`.
pub fn burst_run(tier: &str, run_id: &str) -> ItemKey {
    ItemKey {
        pk: burst_pk(tier),
        sk: run_sk(run_id),
    }
}

/// Values of the `kind` attribute every item carries.
pub mod kinds {
    pub const HOST: &str = "host";
    pub const POINT: &str = "point";
    pub const RUN: &str = "run";
    pub const DISCOVERY: &str = "discovery";
    pub const DISCOVERY_MAP: &str = "discovery-map";
    pub const LOCK: &str = "lock";
    pub const GROUP: &str = "group";
    pub const ORIGIN: &str = "origin";
    pub const BURST_TIER: &str = "burst-tier";
}

/// The lock kinds of a group ([`group_lock`]), and the states a failover lock holds.
pub mod locks {
    pub const FAILOVER: &str = "failover";
    pub const DRILL: &str = "drill";
    /// A failover is under way.
    pub const FAILING_OVER: &str = "failing-over";
    /// The group failed over; its lock is kept (never expiring) until failback.
    pub const FAILED_OVER: &str = "failed-over";
    /// A failback holds the group's failover lock (never expiring) for its whole run.
    pub const FAILING_BACK: &str = "failing-back";
    /// A failback failed after its cutover began: the traffic may point at either
    /// side; `ferry failback` may run again.
    pub const FAILBACK_FAILED: &str = "failback-failed";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_points_by_time_and_group_by_host() {
        assert_eq!(host("db1").pk, "HOST#db1");
        assert_eq!(host("db1").sk, "HOST");
        assert!(point_sk("20261124T090000Z-1") < point_sk("20261124T100000Z-0"));
        assert_eq!(run("web1", "migrate-web1-x").sk, "RUN#migrate-web1-x");
        assert_eq!(host_discovery("a").pk, point("a", "p").pk);
        assert_eq!(discovery_map().pk, "DISCOVERY");
        assert_eq!(group("shop").pk, "GROUP#shop");
        assert_eq!(group_lock("shop", locks::FAILOVER).sk, "LOCK#failover");
        assert_eq!(
            group_run("shop", "failover-shop-x").pk,
            group_origin("shop").pk
        );
    }
}
