//! Execution windows: when changes may run, in an IANA time zone. A
//! request runs when the global schedule and its resource's own window
//! (tag) are both open; otherwise it waits for the next opening.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The tag that gives one resource its own window.
pub const WINDOW_TAG: &str = "finops:window";

/// Days, hours and zone: `Mon-Fri 22:00-06:00 Europe/Paris`, `Sat,Sun
/// 02:00-05:00 UTC`, `daily 00:00-00:00 UTC` (all day). An end before the
/// start runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("window '{text}': {problem} (expected e.g. 'Mon-Fri 22:00-06:00 Europe/Paris')")]
pub struct WindowError {
    pub text: String,
    pub problem: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Option<usize> {
    let s = s.to_ascii_lowercase();
    DAYS.iter().position(|d| s.starts_with(d) && s.len() <= 9)
}

impl FromStr for Window {
    type Err = WindowError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |p: &str| WindowError {
            text: text.chars().take(100).collect(),
            problem: p.into(),
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days_s, hours_s, tz_s] = parts[..] else {
            return Err(err("three parts: days, hours, time zone"));
        };
        let mut days = [false; 7];
        if matches!(days_s.to_ascii_lowercase().as_str(), "daily" | "*") {
            days = [true; 7];
        } else {
            for item in days_s.split(',') {
                match item.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (
                            day(a).ok_or_else(|| err("unknown day"))?,
                            day(b).ok_or_else(|| err("unknown day"))?,
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
                    None => days[day(item).ok_or_else(|| err("unknown day"))?] = true,
                }
            }
        }
        let (a, b) = hours_s
            .split_once('-')
            .ok_or_else(|| err("hours as HH:MM-HH:MM"))?;
        let time = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| err("hours as HH:MM-HH:MM"))
        };
        let tz: Tz = tz_s.parse().map_err(|_| err("unknown IANA time zone"))?;
        Ok(Window {
            days,
            start: time(a)?,
            end: time(b)?,
            tz,
            text: parts.join(" "),
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn index(w: Weekday) -> usize {
    w.num_days_from_monday() as usize
}

impl Window {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let (today, tod) = (index(local.weekday()), local.time());
        let yesterday = (today + 6) % 7;
        if self.start == self.end {
            return self.days[today];
        }
        if self.start < self.end {
            self.days[today] && tod >= self.start && tod < self.end
        } else {
            (self.days[today] && tod >= self.start) || (self.days[yesterday] && tod < self.end)
        }
    }

    /// The instants this window opens within `[from, from + 8 days)`.
    fn openings(&self, from: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let first = from.with_timezone(&self.tz).date_naive() - Duration::days(1);
        (0..10)
            .filter_map(|i| {
                let date = first + Duration::days(i);
                if !self.days[index(date.weekday())] {
                    return None;
                }
                let naive = date.and_time(self.start);
                // A start inside a DST gap opens when the gap ends.
                (0..3)
                    .find_map(|h| {
                        self.tz
                            .from_local_datetime(&(naive + Duration::hours(h)))
                            .earliest()
                    })
                    .map(|t| t.with_timezone(&Utc))
            })
            .filter(|t| *t >= from && *t < from + Duration::days(8))
            .collect()
    }
}

/// A set of windows; open when any is. Empty means always open.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Schedule(pub Vec<Window>);

impl Schedule {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.0.is_empty() || self.0.iter().any(|w| w.contains(at))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "decision",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum WindowDecision {
    Open,
    /// Closed now; every schedule is open together at `opens_at`.
    Wait {
        opens_at: DateTime<Utc>,
    },
    /// The schedules never overlap within a week.
    Never,
}

/// Whether a change may run at `now` under every schedule in `all` (the
/// global one and the resource's), and if not, when it may. The joint
/// opening is always an instant where one of the windows opens.
pub fn decide(all: &[&Schedule], now: DateTime<Utc>) -> WindowDecision {
    let open_at = |t: DateTime<Utc>| all.iter().all(|s| s.contains(t));
    if open_at(now) {
        return WindowDecision::Open;
    }
    let mut candidates: Vec<DateTime<Utc>> = all
        .iter()
        .flat_map(|s| s.0.iter())
        .flat_map(|w| w.openings(now))
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .find(|t| open_at(*t))
        .map_or(WindowDecision::Never, |opens_at| WindowDecision::Wait {
            opens_at,
        })
}

/// The resource's own window from its tags; a tag that does not parse is
/// an error, never "always open".
pub fn from_tags(
    tags: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<Schedule, WindowError> {
    match tags.get(key) {
        None => Ok(Schedule::default()),
        Some(v) => v
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Schedule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn w(s: &str) -> Window {
        s.parse().unwrap()
    }

    #[test]
    fn windows_parse_and_refuse() {
        assert_eq!(
            w("Mon-Fri 22:00-06:00 Europe/Paris").to_string(),
            "Mon-Fri 22:00-06:00 Europe/Paris"
        );
        assert!("Mon-Fri 22:00-06:00 Mars/Olympus"
            .parse::<Window>()
            .is_err());
        assert!("Funday 22:00-06:00 UTC".parse::<Window>().is_err());
        assert!("Mon 25:00-06:00 UTC".parse::<Window>().is_err());
        assert!("Mon".parse::<Window>().is_err());
        assert_eq!(
            w("Fri-Mon 01:00-02:00 UTC").days,
            [true, false, false, false, true, true, true]
        );
    }

    #[test]
    fn a_window_past_midnight_in_its_own_zone() {
        let win = w("Mon-Fri 22:00-06:00 Europe/Paris");
        // 2026-12-01 is a Tuesday; Paris is UTC+1 in winter.
        assert!(win.contains(t("2026-12-01T21:30:00Z")));
        assert!(win.contains(t("2026-12-02T04:59:00Z")));
        assert!(!win.contains(t("2026-12-02T05:00:00Z")));
        assert!(!win.contains(t("2026-12-01T12:00:00Z")));
        // Saturday 03:00 Paris: Friday's window, still open.
        assert!(win.contains(t("2026-12-05T02:00:00Z")));
        // Sunday 03:00 Paris: Saturday has no window.
        assert!(!win.contains(t("2026-12-06T02:00:00Z")));
    }

    #[test]
    fn outside_the_window_the_next_opening_is_named() {
        let global = Schedule(vec![w("Mon-Fri 22:00-06:00 Europe/Paris")]);
        let now = t("2026-12-01T12:00:00Z");
        assert_eq!(
            decide(&[&global], now),
            WindowDecision::Wait {
                opens_at: t("2026-12-01T21:00:00Z")
            }
        );
        // The resource's own window narrows it: Saturdays only, UTC.
        let own = Schedule(vec![w("Sat 01:00-03:00 UTC")]);
        assert_eq!(
            decide(&[&global, &own], now),
            WindowDecision::Wait {
                opens_at: t("2026-12-05T01:00:00Z")
            }
        );
        let never = Schedule(vec![w("Sun 10:00-11:00 UTC")]);
        assert_eq!(decide(&[&global, &never], now), WindowDecision::Never);
        assert_eq!(decide(&[&Schedule::default()], now), WindowDecision::Open);
    }

    #[test]
    fn a_start_inside_a_dst_gap_opens_when_the_gap_ends() {
        // Europe/Paris skips 02:00-03:00 on 2027-03-28.
        let win = Schedule(vec![w("Sun 02:30-04:00 Europe/Paris")]);
        let d = decide(&[&win], t("2027-03-27T12:00:00Z"));
        assert_eq!(
            d,
            WindowDecision::Wait {
                opens_at: t("2027-03-28T01:30:00Z")
            }
        );
    }

    #[test]
    fn tags_give_a_resource_its_window() {
        let mut tags = std::collections::BTreeMap::new();
        assert_eq!(from_tags(&tags, WINDOW_TAG).unwrap(), Schedule::default());
        tags.insert(
            WINDOW_TAG.into(),
            "Sat 01:00-03:00 UTC;Sun 01:00-03:00 UTC".into(),
        );
        assert_eq!(from_tags(&tags, WINDOW_TAG).unwrap().0.len(), 2);
        tags.insert(WINDOW_TAG.into(), "whenever".into());
        assert!(from_tags(&tags, WINDOW_TAG).is_err());
    }

    proptest! {
        #[test]
        fn the_opening_named_is_open_and_nothing_earlier_is(
            start_h in 0u32..24, len_h in 1u32..23, day_mask in 1u8..128, minutes in 0i64..(14 * 24 * 60),
            zone in proptest::sample::select(vec!["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]),
        ) {
            let days: Vec<&str> = (0..7).filter(|i| day_mask & (1 << i) != 0).map(|i| DAYS[i]).collect();
            let end_h = (start_h + len_h) % 24;
            let win: Window = format!("{} {start_h:02}:00-{end_h:02}:00 {zone}", days.join(",")).parse().unwrap();
            let s = Schedule(vec![win]);
            let now = t("2026-12-01T00:00:00Z") + Duration::minutes(minutes);
            match decide(&[&s], now) {
                WindowDecision::Open => prop_assert!(s.contains(now)),
                WindowDecision::Wait { opens_at } => {
                    prop_assert!(!s.contains(now));
                    prop_assert!(opens_at > now);
                    prop_assert!(s.contains(opens_at));
                    // Sampled every 15 minutes, nothing before it is open.
                    let mut probe = now;
                    while probe < opens_at {
                        prop_assert!(!s.contains(probe), "open at {probe} before {opens_at}");
                        probe += Duration::minutes(15);
                    }
                }
                WindowDecision::Never => prop_assert!(false, "a weekly window always opens"),
            }
        }
    }
}
