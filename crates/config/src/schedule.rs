//! Schedule expressions as EventBridge and EventBridge Scheduler take
//! them: `rate(5 minutes)`, `cron(0 12 * * ? *)` (AWS's six fields:
//! minutes, hours, day of month, month, day of week with 1 = Sunday, year;
//! `?`, `L`, `W` and `#`), and the Scheduler's one-time `at(...)`; the next
//! run after an instant, in the schedule's time zone.
//!
//! Cron fields are evaluated by `croner` (Quartz-style weekdays, a year
//! field); what AWS adds to it is checked here: six fields, and `?` in
//! one of the two day fields.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum ScheduleExpr {
    /// Every this long from the start.
    Rate(std::time::Duration),
    Cron(Box<croner::Cron>),
    /// Once, at this local time.
    At(NaiveDateTime),
}

impl PartialEq for ScheduleExpr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ScheduleExpr::Rate(a), ScheduleExpr::Rate(b)) => a == b,
            (ScheduleExpr::Cron(a), ScheduleExpr::Cron(b)) => {
                a.pattern.to_string() == b.pattern.to_string()
            }
            (ScheduleExpr::At(a), ScheduleExpr::At(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for ScheduleExpr {}

/// Parses `rate(...)`, `cron(...)` or `at(...)`; the message says what is
/// wrong, as EventBridge's validation does.
pub fn parse_expression(s: &str) -> Result<ScheduleExpr, String> {
    let s = s.trim();
    let inner = |prefix: &str| s.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
    if let Some(r) = inner("rate(") {
        let (n, unit) = r
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("{s:?}: a rate is rate(VALUE UNIT), e.g. rate(5 minutes)"))?;
        let n: u64 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{s:?}: the rate's value is a positive whole number"))?;
        let unit = unit.trim();
        let secs = match unit {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => {
                return Err(format!(
                    "{s:?}: the rate's unit is minute(s), hour(s) or day(s)"
                ))
            }
        };
        // As EventBridge: `1 minute`, `5 minutes`, never `1 minutes`.
        if (n == 1) == unit.ends_with('s') {
            return Err(format!(
                "{s:?}: a rate of 1 takes a singular unit (rate(1 minute)), any other value a plural one"
            ));
        }
        return Ok(ScheduleExpr::Rate(std::time::Duration::from_secs(n * secs)));
    }
    if let Some(r) = inner("cron(") {
        let fields: Vec<&str> = r.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "{s:?}: a cron expression has six fields (minutes hours day-of-month month day-of-week year)"
            ));
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return Err(format!(
                "{s:?}: one of day-of-month and day-of-week is ? (AWS takes one of them, not both)"
            ));
        }
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .year(croner::parser::Year::Required)
            .alternative_weekdays(true)
            // AWS's `0/15` (from 0, every 15).
            .sloppy_ranges(true)
            .build();
        let cron = parser
            .parse(&format!("0 {}", fields.join(" ")))
            .map_err(|e| format!("{s:?}: {e}"))?;
        return Ok(ScheduleExpr::Cron(Box::new(cron)));
    }
    if let Some(r) = inner("at(") {
        let at = NaiveDateTime::parse_from_str(r.trim(), "%Y-%m-%dT%H:%M:%S")
            .map_err(|_| format!("{s:?}: a one-time schedule is at(yyyy-mm-ddThh:mm:ss)"))?;
        return Ok(ScheduleExpr::At(at));
    }
    Err(format!("{s:?} is not rate(...), cron(...) or at(...)"))
}

impl ScheduleExpr {
    /// The first run strictly after `after`: a rate counts from `since`
    /// (the schedule's start), cron and at are read in `tz`.
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        since: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> Option<DateTime<Utc>> {
        match self {
            ScheduleExpr::Rate(every) => {
                let every = chrono::Duration::from_std(*every).ok()?;
                let elapsed = after.signed_duration_since(since);
                let periods = if elapsed < chrono::Duration::zero() {
                    0
                } else {
                    elapsed.num_seconds() / every.num_seconds()
                };
                Some(since + every * (periods as i32 + 1))
            }
            // On the wall clock of `tz`, as the Scheduler does across
            // daylight saving time: a time the spring change skips is not
            // run, a time the autumn change repeats is run once.
            ScheduleExpr::Cron(cron) => {
                let mut local = after.with_timezone(&tz).naive_local();
                for _ in 0..10_000 {
                    let next = cron.find_next_occurrence(&local, false).ok()?;
                    local = next;
                    let Some(at) = tz.from_local_datetime(&next).earliest() else {
                        continue;
                    };
                    let at = at.with_timezone(&Utc);
                    if at > after {
                        return Some(at);
                    }
                }
                None
            }
            ScheduleExpr::At(local) => {
                let at = tz
                    .from_local_datetime(local)
                    .earliest()?
                    .with_timezone(&Utc);
                (at > after).then_some(at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Next runs of AWS expressions, against answers worked out by hand
    /// from EventBridge's documented meaning of each field.
    #[test]
    fn cron_expressions_run_when_aws_runs_them() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // 12:00 UTC every day.
            (
                "cron(0 12 * * ? *)",
                "UTC",
                "2026-12-04T12:00:00Z",
                "2026-12-05T12:00:00Z",
            ),
            // 10:15 every Monday to Friday (2026-12-04 is a Friday).
            (
                "cron(15 10 ? * MON-FRI *)",
                "UTC",
                "2026-12-04T11:00:00Z",
                "2026-12-07T10:15:00Z",
            ),
            // Day of week 1 is Sunday, as on AWS.
            (
                "cron(0 8 ? * 1 *)",
                "UTC",
                "2026-12-04T00:00:00Z",
                "2026-12-06T08:00:00Z",
            ),
            // The last day of the month.
            (
                "cron(0 18 L * ? *)",
                "UTC",
                "2026-02-01T00:00:00Z",
                "2026-02-28T18:00:00Z",
            ),
            // The weekday nearest the 15th (2026-11-15 is a Sunday → Monday 16th).
            (
                "cron(0 9 15W * ? *)",
                "UTC",
                "2026-11-01T00:00:00Z",
                "2026-11-16T09:00:00Z",
            ),
            // The second Tuesday (3 = TUE): 2026-12-08.
            (
                "cron(30 7 ? * 3#2 *)",
                "UTC",
                "2026-12-01T00:00:00Z",
                "2026-12-08T07:30:00Z",
            ),
            // The last Friday (6L): 2026-12-25.
            (
                "cron(0 17 ? * 6L *)",
                "UTC",
                "2026-12-01T00:00:00Z",
                "2026-12-25T17:00:00Z",
            ),
            // Every 15 minutes.
            (
                "cron(0/15 * * * ? *)",
                "UTC",
                "2026-12-04T10:07:00Z",
                "2026-12-04T10:15:00Z",
            ),
            // A year field.
            (
                "cron(0 0 1 1 ? 2028)",
                "UTC",
                "2026-12-04T00:00:00Z",
                "2028-01-01T00:00:00Z",
            ),
            // A time zone: 09:00 in Paris is 08:00 UTC in winter...
            (
                "cron(0 9 * * ? *)",
                "Europe/Paris",
                "2026-12-04T09:00:00Z",
                "2026-12-05T08:00:00Z",
            ),
            // ...and 07:00 UTC in summer.
            (
                "cron(0 9 * * ? *)",
                "Europe/Paris",
                "2026-07-01T00:00:00Z",
                "2026-07-01T07:00:00Z",
            ),
            // New York: 02:30 does not exist on 2026-03-08 (clocks go from
            // 02:00 to 03:00), so that run is skipped, as the Scheduler does.
            (
                "cron(30 2 ? * SUN *)",
                "America/New_York",
                "2026-03-01T08:00:00Z",
                "2026-03-15T06:30:00Z",
            ),
            // 01:30 happens twice on 2026-11-01: it runs once, at the first.
            (
                "cron(30 1 * * ? *)",
                "America/New_York",
                "2026-11-01T04:00:00Z",
                "2026-11-01T05:30:00Z",
            ),
            (
                "cron(30 1 * * ? *)",
                "America/New_York",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00Z",
            ),
        ];
        for (expr, tz, after, want) in cases {
            let e = parse_expression(expr).unwrap_or_else(|m| panic!("{m}"));
            let tz: chrono_tz::Tz = tz.parse().unwrap();
            let got = e.next_after(utc(after), utc(after), tz).unwrap();
            assert_eq!(got, utc(want), "{expr} in {tz} after {after}");
        }
    }

    #[test]
    fn rates_count_from_the_start_and_at_runs_once() {
        let since = utc("2026-12-04T10:00:00Z");
        let e = parse_expression("rate(5 minutes)").unwrap();
        let tz = chrono_tz::UTC;
        assert_eq!(
            e.next_after(since, since, tz),
            Some(utc("2026-12-04T10:05:00Z"))
        );
        assert_eq!(
            e.next_after(utc("2026-12-04T10:07:30Z"), since, tz),
            Some(utc("2026-12-04T10:10:00Z"))
        );
        let once = parse_expression("at(2026-12-24T18:00:00)").unwrap();
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            once.next_after(since, since, paris),
            Some(utc("2026-12-24T17:00:00Z"))
        );
        assert_eq!(
            once.next_after(utc("2026-12-25T00:00:00Z"), since, paris),
            None
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("rate(1 minutes)", "singular"),
            ("rate(5 minute)", "plural"),
            ("rate(0 hours)", "positive"),
            ("rate(5 weeks)", "unit"),
            ("cron(0 12 * * *)", "six fields"),
            (
                "cron(0 12 * * * *)",
                "one of day-of-month and day-of-week is ?",
            ),
            (
                "cron(0 12 ? * ? *)",
                "one of day-of-month and day-of-week is ?",
            ),
            ("cron(0 25 * * ? *)", "cron("),
            ("at(tomorrow)", "at(yyyy"),
            ("every day", "is not rate"),
        ] {
            let err = parse_expression(expr).unwrap_err();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }
}
