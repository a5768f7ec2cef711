//! Execution names, spelled once for the appliance and the functions: Step Functions
//! allows letters, digits, `-` and `_`, at most 80 characters, and a name stays taken
//! after its execution ends, so names carry what a run is about and when it started
//! (`migrate-web1-20261124T120000Z`, `failover-shop-20261130T120000Z`).

use time::OffsetDateTime;

/// Longest name Step Functions accepts.
const NAME_MAX: usize = 80;
/// Longest subject (host or group) part of a name.
const SUBJECT_MAX: usize = 32;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn short_hash(s: &str) -> String {
    crate::ChunkId::of(s.as_bytes()).to_hex()[..8].to_string()
}

/// A host or group as execution names spell it: the name itself when it is short and
/// uses only allowed characters, else a readable prefix, `_` and a hash of the whole
/// name, so that `web1.shop` and `web1-shop`, or two long names with one prefix, never
/// share it.
pub fn host_label(host: &str) -> String {
    if host.len() <= SUBJECT_MAX && host.chars().all(allowed) {
        return host.to_string();
    }
    let readable: String = host
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .take(SUBJECT_MAX - 9)
        .collect();
    format!("{readable}_{}", short_hash(host))
}

/// An execution name: `<kind>-<subject label>-<rest...>`; one longer than Step
/// Functions allows keeps its first 71 characters and ends with a hash of the whole.
pub fn execution_name(kind: &str, subject: &str, rest: &[&str]) -> String {
    let mut parts = vec![kind.to_string(), host_label(subject)];
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

/// A UTC time as names carry it: `20261130T120000Z`.
pub fn utc_stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The time a name or point id starts with (`20261130T120000Z...`), if it does.
pub fn parse_utc_stamp(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() < 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { s.get(r)?.parse().ok() };
    let date = time::Date::from_calendar_date(
        num(0..4)? as i32,
        time::Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
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
        let very = execution_name("image-migrate", &"y".repeat(32), &[p, "20261125T080000Z"]);
        assert_eq!(very.len(), 80);
    }

    #[test]
    fn stamps_round_trip_and_point_ids_carry_their_time() {
        let t = time::macros::datetime!(2026-11-30 12:34:56 UTC);
        assert_eq!(utc_stamp(t), "20261130T123456Z");
        assert_eq!(parse_utc_stamp("20261130T123456Z-85d358e2"), Some(t));
        assert_eq!(parse_utc_stamp("20261130T123456Z"), Some(t));
        for bad in [
            "",
            "2026113",
            "20261130X123456Z",
            "20261399T123456Z",
            "2026113aT123456Z",
        ] {
            assert_eq!(parse_utc_stamp(bad), None, "{bad}");
        }
    }
}
