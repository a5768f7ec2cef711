//! Right-sizing: the cheapest current-generation EC2 type that fits the host's p95 CPU
//! and peak memory with headroom, from DescribeInstanceTypes (what the account offers)
//! when AWS is configured, else from the catalog shipped in
//! `appliance/data/ec2-instance-types.json`, priced from
//! `core/data/ec2-on-demand-prices.json` (both dated, their sources named).

use serde::Deserialize;

use super::model::{HostReport, Sizing};

/// Headroom over p95 CPU and over peak memory.
pub const CPU_HEADROOM: f64 = 1.3;
pub const MEMORY_HEADROOM: f64 = 1.25;
const MIN_MEMORY: u64 = 512 << 20;

pub use ferry_core::prices::{price_list, PriceList};

/// An instance type as DescribeInstanceTypes describes it.
pub use ferry_core::instance_types::InstanceType as TypeInfo;

#[derive(Debug, Clone, Deserialize)]
struct CatalogEntry {
    name: String,
    vcpus: u32,
    memory_mib: u64,
    architectures: Vec<String>,
    current_generation: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogFile {
    source: String,
    data_date: String,
    types: Vec<CatalogEntry>,
}

/// The instance types shipped with the appliance, for sizing before (or without) an
/// AWS account; and where they come from.
pub fn catalog() -> Result<(Vec<TypeInfo>, String), serde_json::Error> {
    let f: CatalogFile = serde_json::from_str(include_str!("../../data/ec2-instance-types.json"))?;
    let types = f
        .types
        .into_iter()
        .map(|e| TypeInfo {
            name: e.name,
            vcpus: e.vcpus,
            memory_bytes: e.memory_mib << 20,
            architectures: e.architectures,
            current_generation: e.current_generation,
        })
        .collect();
    Ok((
        types,
        format!("shipped catalog: {} ({})", f.source, f.data_date),
    ))
}

/// EC2's architecture name for `uname -m`.
pub fn ec2_arch(uname_m: &str) -> &str {
    match uname_m {
        "aarch64" | "arm64" => "arm64",
        "i386" | "i686" => "i386",
        other => other,
    }
}

/// What the host needs: (vCPUs, memory bytes, basis).
pub fn needs(h: &HostReport) -> Option<(f64, u64, String)> {
    let inv = h.inventory.as_ref()?;
    match &h.performance {
        Some(p) if p.samples >= 2 => {
            let cpu = (p.cpu_cores.p95 * CPU_HEADROOM).max(1.0);
            let mem = ((p.memory_used_bytes.max * MEMORY_HEADROOM) as u64).max(MIN_MEMORY);
            Some((
                cpu,
                mem,
                format!(
                    "p95 CPU {:.2} cores and peak memory {:.1} GiB over {} samples, +{:.0}%/+{:.0}% headroom",
                    p.cpu_cores.p95,
                    p.memory_used_bytes.max / (1u64 << 30) as f64,
                    p.samples,
                    (CPU_HEADROOM - 1.0) * 100.0,
                    (MEMORY_HEADROOM - 1.0) * 100.0
                ),
            ))
        }
        _ => Some((
            f64::from(inv.cpus?),
            inv.memory_bytes?,
            "allocated CPUs and memory (no performance samples)".to_string(),
        )),
    }
}

pub fn recommend(h: &HostReport, types: &[TypeInfo], prices: &PriceList) -> Option<Sizing> {
    let (cpu, mem, basis) = needs(h)?;
    let arch = ec2_arch(h.inventory.as_ref()?.arch.as_deref().unwrap_or("x86_64")).to_string();
    types
        .iter()
        .filter(|t| t.current_generation && t.architectures.contains(&arch))
        .filter(|t| f64::from(t.vcpus) >= cpu && t.memory_bytes >= mem)
        .filter_map(|t| prices.hourly.get(&t.name).map(|p| (t, *p)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.name.cmp(&b.0.name)))
        .map(|(t, price)| Sizing {
            instance_type: t.name.clone(),
            vcpus: t.vcpus,
            memory_bytes: t.memory_bytes,
            hourly_usd: price,
            needed_vcpus: (cpu * 100.0).round() / 100.0,
            needed_memory_bytes: mem,
            basis,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::model::{Inventory, Performance, Summary};

    fn t(name: &str, vcpus: u32, gib: u64, arch: &str, current: bool) -> TypeInfo {
        TypeInfo {
            name: name.into(),
            vcpus,
            memory_bytes: gib << 30,
            architectures: vec![arch.into()],
            current_generation: current,
        }
    }

    #[test]
    fn cheapest_current_type_that_fits_with_headroom() {
        let prices = price_list().unwrap();
        assert!(prices.source.contains("us-east-1") && !prices.data_date.is_empty());
        let types = vec![
            t("t3.medium", 2, 4, "x86_64", true),
            t("t3.large", 2, 8, "x86_64", true),
            t("m5.large", 2, 8, "x86_64", true),
            t("t4g.large", 2, 8, "arm64", true),
            t("m6i.xlarge", 4, 16, "x86_64", true),
            t("m4.large", 2, 8, "x86_64", false),
        ];
        let mut h = HostReport {
            host: "app1".into(),
            inventory: Some(Inventory {
                arch: Some("x86_64".into()),
                cpus: Some(8),
                memory_bytes: Some(32 << 30),
                ..Default::default()
            }),
            ..Default::default()
        };
        h.performance = Some(Performance {
            samples: 40,
            cpu_cores: Summary {
                p50: 0.5,
                p95: 1.2,
                max: 3.0,
            },
            memory_used_bytes: Summary {
                p50: 3e9,
                p95: 4e9,
                max: 5e9,
            },
            ..Default::default()
        });
        // 1.2 x 1.3 = 1.56 vCPUs, 5e9 x 1.25 = 6.25 GB: t3.medium is too small, t4g is
        // the wrong architecture, m4 is not current: t3.large is cheapest of the rest.
        let s = recommend(&h, &types, &prices).unwrap();
        assert_eq!(s.instance_type, "t3.large");
        assert!(s.basis.starts_with("p95 CPU"));
        // Without samples, the allocated 8 CPUs and 32 GiB are what it must fit.
        h.performance = None;
        assert_eq!(recommend(&h, &types, &prices), None);
    }

    #[test]
    fn the_shipped_catalog_prices_every_type_it_lists() {
        let prices = price_list().unwrap();
        let (types, source) = catalog().unwrap();
        assert!(types.len() >= 50, "{}", types.len());
        assert!(source.contains("2025-06-01"));
        for t in &types {
            assert!(
                prices.hourly.contains_key(&t.name),
                "{} has no price",
                t.name
            );
            assert!(t.vcpus >= 2 && t.memory_bytes >= 512 << 20, "{t:?}");
        }
        let t4g = types.iter().find(|t| t.name == "t4g.large").unwrap();
        assert_eq!((t4g.vcpus, t4g.memory_bytes), (2, 8 << 30));
        assert_eq!(t4g.architectures, vec!["arm64".to_string()]);
    }
}
