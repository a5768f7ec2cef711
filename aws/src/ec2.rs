//! EC2 as discovery uses it: the instance types the account offers, as plain data.

use ferry_core::instance_types::InstanceType;

use crate::CallError;

/// Every instance type the account offers (DescribeInstanceTypes, all pages).
pub async fn instance_types(ec2: &aws_sdk_ec2::Client) -> Result<Vec<InstanceType>, CallError> {
    let mut out = Vec::new();
    let mut pages = ec2.describe_instance_types().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| CallError::new("DescribeInstanceTypes", "of the region", &e))?;
        for t in page.instance_types() {
            let (Some(name), Some(vcpus), Some(mib)) = (
                t.instance_type().map(|n| n.as_str().to_string()),
                t.v_cpu_info().and_then(|v| v.default_v_cpus()),
                t.memory_info().and_then(|m| m.size_in_mib()),
            ) else {
                continue;
            };
            out.push(InstanceType {
                name,
                vcpus: vcpus.max(0) as u32,
                memory_bytes: (mib.max(0) as u64) << 20,
                architectures: t
                    .processor_info()
                    .map(|p| {
                        p.supported_architectures()
                            .iter()
                            .map(|a| a.as_str().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                current_generation: t.current_generation().unwrap_or(false),
            });
        }
    }
    Ok(out)
}
