//! The cloud side as the operator drives it from the appliance: Step Functions
//! executions of the deployed state machines (image builds, migrations, the list of
//! runs), followed state by state. The calls themselves are `ferry_aws::sfn`'s.
//!
//! - [`follow`]: waiting for an execution, showing its state names, timing its states.
//! - [`executions`]: what each use case starts, with which typed input, and reports.

pub mod executions;
pub mod follow;

/// An execution name from parts: Step Functions allows letters, digits, `-` and `_`,
/// at most 80 characters.
pub fn execution_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let mut name: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(80);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_valid_and_bounded() {
        assert_eq!(
            execution_name(&["migrate", "web1.shop", "20261124T1200Z"]),
            "migrate-web1-shop-20261124T1200Z"
        );
        assert_eq!(execution_name(&["x"; 100]).len(), 80);
    }
}
