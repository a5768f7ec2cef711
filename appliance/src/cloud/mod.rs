//! The cloud side as the operator drives it from the appliance: Step Functions
//! executions of the deployed state machines (image builds, migrations, the list of
//! runs), followed state by state. The calls themselves are `ferry_aws::sfn`'s.
//!
//! - [`follow`]: waiting for an execution, showing its state names, timing its states.
//! - [`executions`]: what each use case starts, with which typed input, and reports.

pub mod executions;
pub mod follow;

/// Whether an execution is one of `host`'s runs. Names are `<kind>-<host>-<time...>`
/// (`image-`, `migrate-`, and `image-migrate-` for a build a migration started), and the
/// part after the host starts with a UTC time (`20261124T120000Z...`): so `web` does not
/// claim `web-1`'s runs.
pub fn is_run_of(name: &str, host: &str) -> bool {
    let host = host_label(host);
    ["image-migrate-", "migrate-", "image-"].iter().any(|kind| {
        name.strip_prefix(kind)
            .and_then(|r| r.strip_prefix(host.as_str()))
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|r| {
                let b = r.as_bytes();
                b.len() > 8 && b[..8].iter().all(u8::is_ascii_digit) && b[8] == b'T'
            })
    })
}

pub use ferry_core::names::{execution_name, host_label};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_runs_are_its_own() {
        let p = "20261124T120000Z-85d358e2";
        assert!(is_run_of(&format!("image-web-{p}"), "web"));
        assert!(is_run_of("migrate-web-20261124T120000Z", "web"));
        assert!(is_run_of("image-migrate-web-20261124T120000Z", "web"));
        assert!(is_run_of(&format!("image-web-{p}-20261125T080000Z"), "web"));
        // `web` is not `web-1`, nor `web1`, nor `app-web`.
        assert!(!is_run_of(&format!("image-web-1-{p}"), "web"));
        assert!(!is_run_of("migrate-web-1-20261124T120000Z", "web"));
        assert!(!is_run_of(&format!("image-web1-{p}"), "web"));
        assert!(!is_run_of(&format!("image-app-web-{p}"), "web"));
        assert!(is_run_of(&format!("image-web-1-{p}"), "web-1"));
        // Long names are spelled with a hash, and still told apart.
        let (long1, long2) = (
            format!("{}-one", "x".repeat(90)),
            format!("{}-two", "x".repeat(90)),
        );
        let n1 = execution_name("image", &long1, &[p]);
        assert!(is_run_of(&n1, &long1) && !is_run_of(&n1, &long2));
        let retry = execution_name("image", &long1, &[p, "20261125T080000Z"]);
        assert!(retry.len() <= 80 && is_run_of(&retry, &long1));
        // Host names are spelled as execution names spell them.
        let dotted = execution_name("migrate", "web1.shop", &["20261124T120000Z"]);
        assert!(is_run_of(&dotted, "web1.shop"));
        assert!(!is_run_of(&dotted, "web1-shop"));
    }
}
