//! Serde helpers for optional limits, where `-1` (Kafka's convention) or `"unlimited"` means none.

macro_rules! optional_limit {
    ($name:ident, $ty:ty) => {
        /// (De)serializes an optional limit; `-1`, `"-1"` and `"unlimited"` mean no limit.
        pub mod $name {
            use serde::{de, Deserialize, Deserializer, Serializer};

            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Raw {
                Number(i64),
                Text(String),
            }

            /// Deserializes the limit.
            pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<$ty>, D::Error> {
                match Raw::deserialize(deserializer)? {
                    Raw::Number(n) if n < 0 => Ok(None),
                    Raw::Number(n) => Ok(Some(<$ty>::from_u64(n as u64))),
                    Raw::Text(t) if t.trim() == "-1" || t.trim().eq_ignore_ascii_case("unlimited") => Ok(None),
                    Raw::Text(t) => <$ty>::parse(&t).map(Some).map_err(de::Error::custom),
                }
            }

            /// Serializes the limit, `-1` for none.
            pub fn serialize<S: Serializer>(value: &Option<$ty>, serializer: S) -> Result<S::Ok, S::Error> {
                match value {
                    Some(v) => serializer.serialize_i64(v.0 as i64),
                    None => serializer.serialize_i64(-1),
                }
            }
        }
    };
}

optional_limit!(duration, crate::units::DurationMs);
optional_limit!(size, crate::units::ByteSize);

impl crate::units::DurationMs {
    fn from_u64(n: u64) -> Self {
        crate::units::DurationMs(n)
    }
}

impl crate::units::ByteSize {
    fn from_u64(n: u64) -> Self {
        crate::units::ByteSize(n)
    }
}
