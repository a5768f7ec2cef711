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

/// Execution names allow letters, digits, `-` and `_`, at most 80 characters.
const NAME_MAX: usize = 80;
/// Longest host part of a name.
const HOST_MAX: usize = 32;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn short_hash(s: &str) -> String {
    ferry_core::ChunkId::of(s.as_bytes()).to_hex()[..8].to_string()
}

/// A host as execution names spell it: the name itself when it is short and uses only
/// allowed characters, else a readable prefix, `_` and a hash of the whole name, so
/// that `web1.shop` and `web1-shop`, or two long names with one prefix, never share it.
pub fn host_label(host: &str) -> String {
    if host.len() <= HOST_MAX && host.chars().all(allowed) {
        return host.to_string();
    }
    let readable: String = host
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .take(HOST_MAX - 9)
        .collect();
    format!("{readable}_{}", short_hash(host))
}

/// An execution name: `<kind>-<host label>-<rest...>`; one longer than Step Functions
/// allows keeps its first 71 characters and ends with a hash of the whole.
pub fn execution_name(kind: &str, host: &str, rest: &[&str]) -> String {
    let mut parts = vec![kind.to_string(), host_label(host)];
    parts.extend(rest.iter().map(|p| {
        p.chars()
            .map(|c| if allowed(c) { c } else { '-' })
            .collect()
    }));
    let name = parts.join("-");
    if name.len() <= NAME_MAX {
        return name;
    }
    format!("{}-{}", &name[..NAME_MAX - 9], short_hash(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_valid_bounded_and_unique() {
        assert_eq!(
            execution_name("migrate", "web1", &["20261124T1200Z"]),
            "migrate-web1-20261124T1200Z"
        );
        // Two hosts that would have spelled alike, and two long ones with one prefix.
        let a = execution_name("migrate", "web1.shop", &["20261124T1200Z"]);
        let b = execution_name("migrate", "web1-shop", &["20261124T1200Z"]);
        assert_ne!(a, b);
        let long1 = format!("{}-one", "x".repeat(90));
        let long2 = format!("{}-two", "x".repeat(90));
        let p = "20261124T120000Z-85d358e2";
        let (n1, n2) = (
            execution_name("image", &long1, &[p]),
            execution_name("image", &long2, &[p]),
        );
        assert_ne!(n1, n2);
        for n in [&a, &b, &n1, &n2] {
            assert!(n.len() <= 80 && n.chars().all(allowed), "{n}");
        }
        assert!(is_run_of(&n1, &long1) && !is_run_of(&n1, &long2));
        let retry = execution_name("image", &long1, &[p, "20261125T080000Z"]);
        assert!(retry.len() <= 80 && is_run_of(&retry, &long1));
        let very = execution_name("image-migrate", &"y".repeat(32), &[p, "20261125T080000Z"]);
        assert_eq!(very.len(), 80);
    }

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
        // Host names are spelled as execution names spell them.
        let dotted = execution_name("migrate", "web1.shop", &["20261124T120000Z"]);
        assert!(is_run_of(&dotted, "web1.shop"));
        assert!(!is_run_of(&dotted, "web1-shop"));
    }
}
