//! MongoDB Extended JSON (relaxed or canonical, as `mongoexport` writes it) → plain JSON.
//!
//! Only single-key wrappers with the exact shape of a BSON type are unwrapped; any other
//! object, even one whose keys start with `$`, is kept as it is.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use crate::email::EmailId;

/// The value with every Extended JSON wrapper replaced by its plain JSON form:
/// `$oid` → hex string, `$date` → ISO 8601 string, `$numberInt`/`$numberLong` → integer,
/// `$numberDouble` → number (`NaN`, `Infinity` stay strings), `$numberDecimal` → string
/// (no precision lost), `$binary` → base64 string, `$undefined` → null.
pub fn simplify(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(simplify).collect()),
        Value::Object(fields) => match unwrap_scalar(&fields) {
            Some(plain) => plain,
            None => Value::Object(
                fields
                    .into_iter()
                    .map(|(key, value)| (key, simplify(value)))
                    .collect(),
            ),
        },
        scalar => scalar,
    }
}

/// An `_id`: `{"$oid": "<24 hex>"}`, or the bare 24-hex string of a relaxed hand edit.
pub fn object_id(value: &Value) -> Option<EmailId> {
    let text = match value {
        Value::Object(fields) if fields.len() == 1 => fields.get("$oid")?.as_str()?,
        Value::String(text) => text,
        _ => return None,
    };
    text.parse().ok()
}

/// A date: `{"$date": "<ISO 8601>"}`, `{"$date": {"$numberLong": "<ms>"}}`,
/// `{"$date": <ms>}` (old mongoexport), or a bare ISO 8601 string.
pub fn date(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Object(fields) if fields.len() == 1 => match fields.get("$date")? {
            Value::String(text) => iso_date(text),
            Value::Number(ms) => DateTime::from_timestamp_millis(ms.as_i64()?),
            wrapped @ Value::Object(_) => {
                DateTime::from_timestamp_millis(integer(wrapped, "$numberLong")?)
            }
            _ => None,
        },
        Value::String(text) => iso_date(text),
        _ => None,
    }
}

fn iso_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// `{"<key>": "<integer>"}` → the integer.
fn integer(value: &Value, key: &str) -> Option<i64> {
    match value {
        Value::Object(fields) if fields.len() == 1 => fields.get(key)?.as_str()?.parse().ok(),
        _ => None,
    }
}

fn unwrap_scalar(fields: &Map<String, Value>) -> Option<Value> {
    let (key, inner) = match fields.len() {
        1 => fields.iter().next()?,
        2 if fields.contains_key("$binary") && fields.contains_key("$type") => {
            // Legacy binary: {"$binary": "<base64>", "$type": "00"}.
            return fields.get("$binary").filter(|v| v.is_string()).cloned();
        }
        _ => return None,
    };
    let as_str = || inner.as_str();
    match key.as_str() {
        "$oid" => as_str().map(|hex| Value::String(hex.to_owned())),
        "$date" => date(&Value::Object(fields.clone()))
            .map(|at| Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))),
        "$numberInt" | "$numberLong" => as_str()?.trim().parse::<i64>().ok().map(Value::from),
        "$numberDouble" => {
            let text = as_str()?;
            Some(
                text.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map_or_else(|| Value::String(text.to_owned()), Value::Number),
            )
        }
        "$numberDecimal" => as_str().map(|text| Value::String(text.to_owned())),
        "$binary" => match inner {
            Value::Object(binary) => binary.get("base64").filter(|v| v.is_string()).cloned(),
            _ => None,
        },
        "$undefined" => Some(Value::Null),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn relaxed_and_canonical_forms_simplify_alike() {
        let relaxed = json!({
            "when": {"$date": "2024-11-14T12:12:45.123Z"},
            "n": 1731586364,
            "ratio": 0.5,
        });
        let canonical = json!({
            "when": {"$date": {"$numberLong": "1731586365123"}},
            "n": {"$numberInt": "1731586364"},
            "ratio": {"$numberDouble": "0.5"},
        });
        let plain = json!({"when": "2024-11-14T12:12:45.123Z", "n": 1731586364, "ratio": 0.5});
        assert_eq!(simplify(relaxed), plain);
        assert_eq!(simplify(canonical), plain);
    }

    #[test]
    fn wrappers_nested_in_arrays_are_unwrapped() {
        let value = json!([{"a": {"$numberLong": "9007199254740993"}}, {"$oid": "6735f1a08c1e4b2a9f0a1b2c"}]);
        assert_eq!(
            simplify(value),
            json!([{"a": 9007199254740993_i64}, "6735f1a08c1e4b2a9f0a1b2c"])
        );
    }

    #[test]
    fn binary_becomes_base64() {
        let v2 = json!({"$binary": {"base64": "aGk=", "subType": "00"}});
        let v1 = json!({"$binary": "aGk=", "$type": "00"});
        assert_eq!(simplify(v2), json!("aGk="));
        assert_eq!(simplify(v1), json!("aGk="));
    }

    #[test]
    fn lookalikes_and_odd_numbers_are_kept() {
        let value = json!({
            "$where": "x",
            "two": {"$oid": "a", "$extra": 1},
            "nan": {"$numberDouble": "NaN"},
            "money": {"$numberDecimal": "12.30"},
        });
        assert_eq!(
            simplify(value),
            json!({"$where": "x", "two": {"$oid": "a", "$extra": 1}, "nan": "NaN", "money": "12.30"})
        );
    }

    #[test]
    fn ids_and_dates_parse_in_every_form() {
        let id = object_id(&json!({"$oid": "6735F1A08C1E4B2A9F0A1B2C"})).unwrap();
        assert_eq!(id.to_string(), "6735f1a08c1e4b2a9f0a1b2c");
        assert!(object_id(&json!({"$oid": "nope"})).is_none());
        assert!(object_id(&json!(42)).is_none());

        let expected = DateTime::from_timestamp_millis(1_731_586_365_123).unwrap();
        for form in [
            json!({"$date": "2024-11-14T12:12:45.123Z"}),
            json!({"$date": "2024-11-14T09:12:45.123-03:00"}),
            json!({"$date": {"$numberLong": "1731586365123"}}),
            json!({"$date": 1731586365123_i64}),
            json!("2024-11-14T12:12:45.123Z"),
        ] {
            assert_eq!(date(&form), Some(expected), "{form}");
        }
        assert!(date(&json!({"$date": "yesterday"})).is_none());
    }
}
