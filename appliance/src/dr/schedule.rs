//! When a tier's hosts sync: every `interval` after the host's newest point, or at the
//! next `cron` time after it (UTC), moved out of exclusion windows (no sync starts in
//! one), with a backoff after failures. The schedule is computed from the newest point
//! in the store, so that a restarted daemon (or one killed with SIGKILL) goes on where
//! it was: a host whose sync is overdue syncs at once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

/// A weekly window when no sync may start: days of the week and a time of day range
/// (UTC), which may cross midnight (`Mon-Fri 22:00-06:00` starts on Monday to Friday
/// evenings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    days: [bool; 7],
    /// Minutes of the day.
    start: u16,
    end: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {why} (write e.g. \"Mon-Fri 09:00-17:00\", \"Sat,Sun 00:00-06:00\" or \"22:00-06:00\")")]
pub struct BadWindow {
    text: String,
    why: &'static str,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Option<usize> {
    DAYS.iter().position(|d| s.eq_ignore_ascii_case(d))
}

fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

impl FromStr for Window {
    type Err = BadWindow;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| BadWindow {
            text: s.to_string(),
            why,
        };
        let (days_text, times) = match s.trim().rsplit_once(' ') {
            Some((d, t)) => (Some(d.trim()), t),
            None => (None, s.trim()),
        };
        let mut days = [days_text.is_none(); 7];
        for part in days_text.into_iter().flat_map(|d| d.split(',')) {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (
                        day(a).ok_or_else(|| bad("unknown day"))?,
                        day(b).ok_or_else(|| bad("unknown day"))?,
                    );
                    let mut i = a;
                    loop {
                        days[i] = true;
                        if i == b {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                None => days[day(part).ok_or_else(|| bad("unknown day"))?] = true,
            }
        }
        let (a, b) = times.split_once('-').ok_or_else(|| bad("no time range"))?;
        let (start, end) = (
            minutes(a).ok_or_else(|| bad("bad time"))?,
            minutes(b).ok_or_else(|| bad("bad time"))?,
        );
        if start == end {
            return Err(bad("empty time range"));
        }
        Ok(Window { days, start, end })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = DAYS
            .iter()
            .zip(self.days)
            .filter(|(_, on)| *on)
            .map(|(d, _)| *d)
            .collect();
        write!(
            f,
            "{} {:02}:{:02}-{:02}:{:02}",
            days.join(","),
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

fn weekday_index(t: OffsetDateTime) -> usize {
    t.weekday().number_days_from_monday() as usize
}

fn minute_of_day(t: OffsetDateTime) -> u16 {
    t.hour() as u16 * 60 + t.minute() as u16
}

impl Window {
    /// When the window that holds `t` ends; `None` when `t` is outside the window.
    pub fn end_if_inside(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let t = t.to_offset(time::UtcOffset::UTC);
        let m = minute_of_day(t);
        let today = weekday_index(t);
        let yesterday = (today + 6) % 7;
        let midnight = t.replace_time(time::Time::MIDNIGHT);
        let at = |base: OffsetDateTime, mins: u16| base + time::Duration::minutes(mins as i64);
        if self.start < self.end {
            (self.days[today] && m >= self.start && m < self.end).then(|| at(midnight, self.end))
        } else if self.days[today] && m >= self.start {
            Some(at(midnight + time::Duration::days(1), self.end))
        } else if self.days[yesterday] && m < self.end {
            Some(at(midnight, self.end))
        } else {
            None
        }
    }
}

/// A tier's sync policy.
#[derive(Debug, Clone)]
pub struct SyncPolicy {
    every: Every,
    pub exclude: Vec<Window>,
    /// At most this many of the tier's hosts sync at once.
    pub max_syncs: usize,
}

#[derive(Debug, Clone)]
enum Every {
    Interval(Duration),
    Cron(Box<croner::Cron>),
}

fn to_chrono(t: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl SyncPolicy {
    pub fn new(
        interval: Option<Duration>,
        cron: Option<&str>,
        exclude: Vec<Window>,
        max_syncs: usize,
    ) -> Result<Self, String> {
        let every = match (interval, cron) {
            (Some(i), None) if !i.is_zero() => Every::Interval(i),
            (None, Some(c)) => Every::Cron(Box::new(
                croner::Cron::from_str(c).map_err(|e| format!("cron {c:?}: {e}"))?,
            )),
            (Some(_), None) => return Err("interval must be more than zero".into()),
            _ => {
                return Err(
                    "give the tier either an interval or a cron, not both or neither".into(),
                )
            }
        };
        if max_syncs == 0 {
            return Err("max_syncs must be at least 1".into());
        }
        Ok(SyncPolicy {
            every,
            exclude,
            max_syncs,
        })
    }

    /// About how far apart syncs are (a cron: the gap after its next time).
    pub fn period(&self, now: OffsetDateTime) -> Duration {
        match &self.every {
            Every::Interval(i) => *i,
            Every::Cron(_) => {
                let a = self.tick_after(now);
                let b = self.tick_after(a);
                (b - a).try_into().unwrap_or(Duration::from_secs(60))
            }
        }
    }

    fn tick_after(&self, t: OffsetDateTime) -> OffsetDateTime {
        match &self.every {
            Every::Interval(i) => t + *i,
            Every::Cron(c) => c
                .find_next_occurrence(&to_chrono(t), false)
                .map(from_chrono)
                .unwrap_or(t + time::Duration::days(366)),
        }
    }

    /// The first moment at or after `t` outside every exclusion window.
    pub fn allowed_from(&self, mut t: OffsetDateTime) -> OffsetDateTime {
        for _ in 0..64 {
            match self.exclude.iter().filter_map(|w| w.end_if_inside(t)).max() {
                Some(end) => t = end,
                None => return t,
            }
        }
        t
    }

    /// When the next sync starts, given the host's newest point (none: at once). A
    /// cron time inside a window waits for the first cron time after it.
    pub fn next_sync(
        &self,
        last_point: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let Some(last) = last_point else {
            return self.allowed_from(now);
        };
        let mut due = self.tick_after(last);
        for _ in 0..64 {
            let allowed = self.allowed_from(due.max(now));
            if allowed == due.max(now) {
                return allowed;
            }
            due = match &self.every {
                Every::Interval(_) => return allowed,
                Every::Cron(_) => self.tick_after(allowed - time::Duration::seconds(1)),
            };
        }
        due
    }
}

/// How long a host waits after `failures` failed syncs in a row: doubling from a
/// quarter of the policy's period (at least 2 s, at most a minute), up to the period
/// itself (at least 5 minutes).
pub fn backoff(period: Duration, failures: u32) -> Duration {
    let base = (period / 4).clamp(Duration::from_secs(2), Duration::from_secs(60));
    let cap = period.max(Duration::from_secs(300));
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_parse_and_hold_their_times() {
        let w: Window = "Mon-Fri 09:00-17:00".parse().unwrap();
        // 2026-11-30 is a Monday.
        assert_eq!(
            w.end_if_inside(datetime!(2026-11-30 10:00 UTC)),
            Some(datetime!(2026-11-30 17:00 UTC))
        );
        assert_eq!(w.end_if_inside(datetime!(2026-11-30 17:00 UTC)), None);
        assert_eq!(
            w.end_if_inside(datetime!(2026-12-05 10:00 UTC)),
            None,
            "Saturday"
        );
        let night: Window = "Fri 22:00-06:00".parse().unwrap();
        assert_eq!(
            night.end_if_inside(datetime!(2026-12-04 23:00 UTC)),
            Some(datetime!(2026-12-05 06:00 UTC))
        );
        assert_eq!(
            night.end_if_inside(datetime!(2026-12-05 05:00 UTC)),
            Some(datetime!(2026-12-05 06:00 UTC))
        );
        assert_eq!(night.end_if_inside(datetime!(2026-12-06 05:00 UTC)), None);
        let daily: Window = "22:00-06:00".parse().unwrap();
        assert!(daily
            .end_if_inside(datetime!(2026-12-02 01:00 UTC))
            .is_some());
        let wrap: Window = "Sat-Mon 00:00-24:00".parse().unwrap();
        assert!(
            wrap.end_if_inside(datetime!(2026-11-29 12:00 UTC))
                .is_some(),
            "Sunday"
        );
        for bad in [
            "Someday 09:00-10:00",
            "09:00",
            "25:00-26:00",
            "Mon 09:00-09:00",
        ] {
            let e = bad.parse::<Window>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("Mon-Fri"), "{e}");
        }
        assert_eq!(w.to_string(), "mon,tue,wed,thu,fri 09:00-17:00");
    }

    #[test]
    fn syncs_follow_the_last_point_and_keep_out_of_windows() {
        let now = datetime!(2026-11-30 08:00 UTC);
        let every = SyncPolicy::new(Some(Duration::from_secs(900)), None, vec![], 1).unwrap();
        assert_eq!(every.next_sync(None, now), now);
        assert_eq!(
            every.next_sync(Some(datetime!(2026-11-30 07:50 UTC)), now),
            datetime!(2026-11-30 08:05 UTC)
        );
        // Overdue (the daemon was down): at once.
        assert_eq!(
            every.next_sync(Some(datetime!(2026-11-30 06:00 UTC)), now),
            now
        );
        let office = SyncPolicy::new(
            Some(Duration::from_secs(900)),
            None,
            vec!["Mon-Fri 08:00-17:00".parse().unwrap()],
            1,
        )
        .unwrap();
        assert_eq!(
            office.next_sync(Some(datetime!(2026-11-30 07:50 UTC)), now),
            datetime!(2026-11-30 17:00 UTC)
        );
        let cron = SyncPolicy::new(
            None,
            Some("0 */4 * * *"),
            vec!["Mon-Fri 08:00-17:00".parse().unwrap()],
            1,
        )
        .unwrap();
        // 04:00 + 4 h = 08:00 is inside the window: the first cron time after it, 20:00.
        assert_eq!(
            cron.next_sync(
                Some(datetime!(2026-11-30 04:00 UTC)),
                datetime!(2026-11-30 05:00 UTC)
            ),
            datetime!(2026-11-30 20:00 UTC)
        );
        assert_eq!(cron.period(now), Duration::from_secs(4 * 3600));
        assert!(
            SyncPolicy::new(Some(Duration::from_secs(1)), Some("* * * * *"), vec![], 1).is_err()
        );
        assert!(SyncPolicy::new(None, None, vec![], 1).is_err());
        assert!(SyncPolicy::new(None, Some("not cron"), vec![], 1).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_period() {
        let p = Duration::from_secs(600);
        assert_eq!(backoff(p, 1), Duration::from_secs(60));
        assert_eq!(backoff(p, 2), Duration::from_secs(120));
        assert_eq!(backoff(p, 10), Duration::from_secs(600));
        assert_eq!(backoff(Duration::from_secs(4), 1), Duration::from_secs(2));
    }
}
