//! The EC2 on-demand price list Ferry ships (`core/data/ec2-on-demand-prices.json`:
//! source and date in the file), read by discovery's right-sizing and by drills, which
//! report what their instances cost.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct PriceList {
    pub source: String,
    pub data_date: String,
    /// USD per hour, by instance type.
    pub hourly: BTreeMap<String, f64>,
}

pub fn price_list() -> Result<PriceList, serde_json::Error> {
    serde_json::from_str(include_str!("../data/ec2-on-demand-prices.json"))
}

/// What an instance of `hourly_usd` costs for `seconds` of running: EC2 bills Linux
/// instances per second with a minimum of one minute.
pub fn cost_usd(hourly_usd: f64, seconds: f64) -> f64 {
    hourly_usd * seconds.max(60.0) / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_prices_common_types_and_bills_a_minute_at_least() {
        let p = price_list().unwrap();
        assert!(p.hourly["t3.medium"] > 0.0 && p.hourly["m5.large"] > 0.0);
        assert!(!p.data_date.is_empty() && !p.source.is_empty());
        assert!((cost_usd(3.6, 10.0) - 0.06).abs() < 1e-9);
        assert!((cost_usd(3.6, 3600.0) - 3.6).abs() < 1e-9);
    }
}
