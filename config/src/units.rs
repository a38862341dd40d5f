//! Human-friendly units for configuration values: byte sizes ("64MiB", "1GB", 4096) and
//! durations ("500ms", "7d", "1h30m"). Plain integers mean bytes and milliseconds, the units
//! Kafka's own configuration keys use.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A size in bytes, written as an integer or a string with a unit (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A duration, written as integer milliseconds or a string such as "250ms", "30s", "15m", "6h", "7d" or "1h30m".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationMs(pub u64);

impl ByteSize {
    /// Parses "64MiB", "1 GB", "4096".
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 =
            number.parse().map_err(|_| format!("`{text}` is not a size; write e.g. 4096, \"64MiB\" or \"1GB\""))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1_000,
            "kib" => 1 << 10,
            "mb" | "m" => 1_000_000,
            "mib" => 1 << 20,
            "gb" | "g" => 1_000_000_000,
            "gib" => 1 << 30,
            "tb" | "t" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{text}`; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
                ))
            }
        };
        Ok(ByteSize((number * multiplier as f64).round() as u64))
    }
}

impl DurationMs {
    /// Parses "250ms", "30s", "1h30m", "7d", "60000".
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(ms) = text.parse::<u64>() {
            return Ok(DurationMs(ms));
        }
        let bad =
            || format!("`{text}` is not a duration; write e.g. 500, \"250ms\", \"30s\", \"15m\", \"6h\" or \"7d\"");
        let mut total: u64 = 0;
        let mut rest = text;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let factor = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 7 * 86_400_000,
                _ => return Err(bad()),
            };
            total = total.saturating_add(value.saturating_mul(factor));
            rest = &rest[unit_len..];
        }
        Ok(DurationMs(total))
    }

    /// As a `std::time::Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(n) => Ok(ByteSize(n)),
            NumberOrText::Text(t) => ByteSize::parse(&t).map_err(de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(n) => Ok(DurationMs(n)),
            NumberOrText::Text(t) => DurationMs::parse(&t).map_err(de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl Serialize for DurationMs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("4096").unwrap().0, 4096);
        assert_eq!(ByteSize::parse("64MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("1 GB").unwrap().0, 1_000_000_000);
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("MiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(DurationMs::parse("250ms").unwrap().0, 250);
        assert_eq!(DurationMs::parse("1h30m").unwrap().0, 5_400_000);
        assert_eq!(DurationMs::parse("7d").unwrap().0, 604_800_000);
        assert_eq!(DurationMs::parse("60000").unwrap().0, 60_000);
        assert!(DurationMs::parse("soon").is_err());
        assert!(DurationMs::parse("10x").is_err());
        assert!(DurationMs::parse("").is_err());
    }
}
