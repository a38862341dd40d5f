//! `@timestamp` as both encoders read it: RFC 3339, the agent's own UTC form read directly (it is
//! on every record), anything else by chrono.

use chrono::DateTime;

/// Milliseconds since the epoch of an RFC 3339 timestamp. The agent's own form
/// (`2026-11-23T11:00:00.123Z`) is read directly, anything else by chrono.
pub(crate) fn epoch_millis(timestamp: &str) -> Result<i64, String> {
    if let Some(ms) = utc_millis(timestamp.as_bytes()) {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(timestamp)
        .map(|at| at.timestamp_millis())
        .map_err(|e| format!("`@timestamp` {timestamp:?}: {e}"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as milliseconds since the epoch (the fraction truncated),
/// or None for any other form, an impossible date or a leap second (chrono decides those).
pub(crate) fn utc_millis(t: &[u8]) -> Option<i64> {
    let digits = |from: usize, to: usize| -> Option<i64> {
        t.get(from..to)?.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    };
    if t.len() < 20 || t[4] != b'-' || t[7] != b'-' || t[10] != b'T' || t[13] != b':' || t[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    let mut millis = 0;
    let zone = match t[19] {
        b'.' => {
            let fraction = t[20..].iter().take_while(|b| b.is_ascii_digit()).count();
            if fraction == 0 {
                return None;
            }
            let kept = fraction.min(3);
            millis = digits(20, 20 + kept)? * [100, 10, 1][kept - 1];
            20 + fraction
        }
        _ => 19,
    };
    if t.get(zone..) != Some(b"Z") {
        return None;
    }
    if second > 59 {
        return None; // a leap second: chrono's parser decides
    }
    // chrono checks the calendar (month lengths, leap years) and counts the days; only its text
    // parsing is skipped. Every value has at most four digits, so the casts are exact.
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    let at = date.and_hms_milli_opt(hour as u32, minute as u32, second as u32, millis as u32)?;
    Some(at.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timestamps_read_directly_agree_with_chrono() {
        let chrono_millis = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|at| at.timestamp_millis());
        let mut cases: Vec<String> = [
            "2026-11-23T11:00:00Z",
            "2026-11-23T11:00:00.1Z",
            "2026-11-23T11:00:00.12Z",
            "2026-11-23T11:00:00.123456789Z",
            "1969-12-31T23:59:59.9995Z",
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "2024-02-29T12:00:00Z",
            "2000-02-29T12:00:00Z",
            // Not read directly (chrono decides, or refuses):
            "2023-02-29T12:00:00Z",
            "1900-02-29T12:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2016-12-31T23:59:60Z",
            "2026-11-23T11:00:00.Z",
            "2026-11-23T11:00:00+01:00",
            "2026-11-23 11:00:00Z",
            "2026-11-23t11:00:00z",
            "2026-11-23T11:00:00Zjunk",
            "+2026-11-23T11:00:00Z",
            "2026-11-23",
        ]
        .map(String::from)
        .to_vec();
        // Every day of four years (a leap year, a century) at a few times of day.
        for day in 0..(4 * 366) {
            let base = chrono::NaiveDate::from_ymd_opt(1999, 1, 1).unwrap() + chrono::Days::new(day);
            cases.push(format!("{}T{:02}:{:02}:{:02}.{:03}Z", base, day % 24, day % 60, (day * 7) % 60, day % 1000));
        }
        for case in &cases {
            let direct = utc_millis(case.as_bytes());
            if let Some(ms) = direct {
                assert_eq!(Some(ms), chrono_millis(case), "{case}");
            }
            assert_eq!(epoch_millis(case).ok(), chrono_millis(case), "{case}");
        }
        assert!(utc_millis(b"2026-11-23T11:00:00.123Z").is_some(), "the agent's form is read directly");
    }
}
