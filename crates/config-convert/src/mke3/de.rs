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

/// An array of tables, which an export may also write as an empty table
/// (`[custom_api_server_headers]`) or as a single table. Elements are deserialised in place so
/// that an error inside one keeps its line and column.
pub fn opt_tables<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<Vec<T>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of tables")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<T>()? {
                out.push(item);
            }
            Ok(Some(out))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            // An empty table is an empty array; a single table is one element.
            let table = toml::Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
            if table.is_empty() {
                return Ok(Some(Vec::new()));
            }
            T::deserialize(toml::Value::Table(table).into_deserializer())
                .map(|t| Some(vec![t]))
                .map_err(de::Error::custom)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}
