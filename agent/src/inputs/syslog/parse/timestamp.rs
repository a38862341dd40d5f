//! Timestamps: RFC 3339 / ISO 8601, BSD `Mmm dd hh:mm:ss`, the zone assumed when they carry no
//! UTC offset ([`TimeZoneHint`]) and the year inferred when they carry none.

use super::cursor::Cursor;
use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};

const MONTHS: [&[u8; 3]; 12] =
    [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];

/// The time zone assumed for timestamps that carry no UTC offset: RFC 3164's `Mmm dd hh:mm:ss`
/// (in the sender's local time, which the receiver cannot know) and ISO 8601 timestamps without
/// an offset. The year such timestamps lack is inferred in this zone too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZoneHint {
    /// The agent's local zone, as rsyslog and most receivers assume: senders and receiver are
    /// usually configured alike.
    #[default]
    Local,
    /// UTC.
    Utc,
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

impl TimeZoneHint {
    /// The instant at which the wall clock of this zone showed `naive`.
    pub(super) fn to_utc(self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            TimeZoneHint::Utc => Some(naive.and_utc()),
            TimeZoneHint::Fixed(offset) => offset.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc)),
            TimeZoneHint::Local => match Local.from_local_datetime(&naive).earliest() {
                Some(t) => Some(t.with_timezone(&Utc)),
                None => {
                    // The wall-clock time was skipped by a daylight-saving change; reading it with
                    // the offset of that moment is off by at most the size of the jump.
                    let offset = Local.offset_from_utc_datetime(&naive);
                    naive.checked_sub_signed(TimeDelta::seconds(offset.local_minus_utc().into())).map(|t| t.and_utc())
                }
            },
        }
    }
}

/// `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]`, RFC 3339 as RFC 5424 restricts it, read leniently
/// (lower-case `t`/`z`, any number of fraction digits, `±hhmm`, no offset at all). The offset is
/// None when absent.
pub(super) fn parse_iso(token: &[u8]) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let mut c = Cursor::new(token);
    let year = c.number(4)?;
    let month = c.eat(b'-').then(|| c.number(2)).flatten()?;
    let day = c.eat(b'-').then(|| c.number(2)).flatten()?;
    if !(c.eat(b'T') || c.eat(b't')) {
        return None;
    }
    let time = parse_clock(&mut c)?;
    let offset = match c.peek() {
        None => None,
        Some(b'Z' | b'z') => {
            c.pos += 1;
            Some(FixedOffset::east_opt(0)?)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let hours = c.number(2)?;
            c.eat(b':');
            let minutes = c.number(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i32::try_from(hours * 3600 + minutes * 60).ok()?;
            Some(FixedOffset::east_opt(if sign == b'-' { -seconds } else { seconds })?)
        }
        Some(_) => return None,
    };
    if !c.at_end() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date.and_time(time), offset))
}

/// `hh:mm:ss[.frac]`; a leap second (`:60`) is kept as chrono represents it.
fn parse_clock(c: &mut Cursor<'_>) -> Option<NaiveTime> {
    let hour = c.number(2)?;
    let minute = c.eat(b':').then(|| c.number(2)).flatten()?;
    let mut second = c.eat(b':').then(|| c.number(2)).flatten()?;
    let mut nanos = 0;
    if c.peek() == Some(b'.') && c.rest().get(1).is_some_and(u8::is_ascii_digit) {
        c.pos += 1;
        let digits = c.take_while(|b| b.is_ascii_digit());
        // Nanoseconds are all chrono keeps; further digits are dropped.
        for i in 0..9 {
            nanos = nanos * 10 + digits.get(i).map_or(0, |b| u32::from(b - b'0'));
        }
    }
    if second == 60 {
        second = 59;
        nanos += 1_000_000_000;
    }
    NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
}

/// A BSD timestamp as written: a wall-clock time, maybe without a year, in an unstated zone.
pub(super) struct WallClock {
    year: Option<i32>,
    month: u32,
    day: u32,
    time: NaiveTime,
}

impl WallClock {
    /// The instant, reading the wall clock in `zone`; without a year, the year that puts it
    /// nearest to `received`.
    pub(super) fn resolve(&self, received: DateTime<Utc>, zone: TimeZoneHint) -> Option<DateTime<Utc>> {
        match self.year {
            Some(year) => zone.to_utc(NaiveDate::from_ymd_opt(year, self.month, self.day)?.and_time(self.time)),
            None => nearest_year(self.month, self.day, self.time, received, zone),
        }
    }
}

/// `Mmm dd [yyyy ]hh:mm:ss[.frac]`, optionally preceded by Cisco's `*` (clock not set) or `.`
/// (clock not synchronised).
pub(super) fn parse_bsd_timestamp(c: &mut Cursor<'_>) -> Option<WallClock> {
    let _ = c.eat(b'*') || c.eat(b'.');
    let name = c.rest().get(..3)?;
    let month = MONTHS.iter().position(|m| name.eq_ignore_ascii_case(&m[..]))?;
    c.pos += 3;
    if c.take_while(|b| b == b' ').is_empty() {
        return None;
    }
    let day = c.take_while(|b| b.is_ascii_digit());
    if day.is_empty() || day.len() > 2 || !c.eat(b' ') {
        return None;
    }
    let day = day.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    let month = u32::try_from(month + 1).ok()?;
    // Cisco's `service timestamps … year`: `Mar  1 2024 18:48:50`.
    let year = match c.rest() {
        [y1, y2, y3, y4, b' ', ..] if [y1, y2, y3, y4].iter().all(|b| b.is_ascii_digit()) => {
            let year = c.number(4)?;
            c.pos += 1;
            Some(i32::try_from(year).ok()?)
        }
        _ => None,
    };
    let time = parse_clock(c)?;
    Some(WallClock { year, month, day, time })
}

/// The timestamp `month`/`day` `time` in the year before, of or after `received` that is nearest
/// to it: a message stamped `Dec 31 23:59:59` that arrives just after New Year is last year's.
fn nearest_year(
    month: u32,
    day: u32,
    time: NaiveTime,
    received: DateTime<Utc>,
    zone: TimeZoneHint,
) -> Option<DateTime<Utc>> {
    let year = received.year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .filter_map(|date| zone.to_utc(date.and_time(time)))
        .min_by_key(|t| (*t - received).abs())
}
