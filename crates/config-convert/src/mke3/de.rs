//! serde helpers for the encodings real MKE 3 exports use.

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use std::fmt;

/// An integer written either as a TOML integer or as a string of digits (`"1480"`). An empty
/// string means unset.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or a string of digits")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("integer {v} is too large")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_int_str(v).map_err(|()| {
                E::invalid_value(de::Unexpected::Str(v), &"an integer or a string of digits")
            })
        }
    }
    d.deserialize_any(V)
}

/// Parses a string-encoded integer; `""` (after trimming) is unset.
pub fn parse_int_str(v: &str) -> Result<Option<i64>, ()> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>().map(Some).map_err(|_| ())
}

/// An array of tables, which an export may also write as an empty table (`[custom_api_server_headers]`)
/// or as a single table.
pub fn opt_tables<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<toml::Value>),
        One(toml::Table),
    }
    let items: Vec<toml::Value> = match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(t) if t.is_empty() => Vec::new(),
        OneOrMany::One(t) => vec![toml::Value::Table(t)],
    };
    items
        .into_iter()
        .map(|v| T::deserialize(v.into_deserializer()).map_err(de::Error::custom))
        .collect::<Result<Vec<T>, _>>()
        .map(Some)
}
