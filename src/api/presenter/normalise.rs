//! Stored fields as the API shows them: a payload may hold anything (a `name: {}`, a
//! `from: false`), which is stored as delivered and given back by `GET …/raw`; what the
//! email body presents always has the documented type.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A sender or recipient.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Address {
    pub name: Option<String>,
    #[schema(example = "ana@example.org")]
    pub email: Option<String>,
}

/// A field that should hold text: numbers and booleans are shown as text, anything else
/// (an object, an array, null) as null.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// An address: `{name, email}`, or a bare string taken as the address.
pub fn address(value: &Value) -> Option<Address> {
    match value {
        Value::Object(fields) => Some(Address {
            name: fields.get("name").and_then(text),
            email: fields.get("email").and_then(text),
        }),
        Value::String(email) => Some(Address {
            name: None,
            email: Some(email.clone()),
        }),
        _ => None,
    }
}

/// A list of addresses; one address alone is a list of one, and items that are no
/// address are left out.
pub fn addresses(value: &Value) -> Option<Vec<Address>> {
    match value {
        Value::Array(items) => Some(items.iter().filter_map(address).collect()),
        Value::Object(_) | Value::String(_) => address(value).map(|one| vec![one]),
        _ => None,
    }
}

/// Headers: each value a string or a list of strings.
pub fn headers(value: &Value) -> Option<Map<String, Value>> {
    let Value::Object(fields) = value else {
        return None;
    };
    let header = |value: &Value| match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| text(item).unwrap_or_else(|| item.to_string()).into())
                .collect(),
        ),
        other => text(other).unwrap_or_else(|| other.to_string()).into(),
    };
    Some(
        fields
            .iter()
            .map(|(name, value)| (name.clone(), header(value)))
            .collect(),
    )
}

/// A number; text that holds one counts too.
pub fn number(value: &Value) -> Option<serde_json::Number> {
    match value {
        Value::Number(number) => Some(number.clone()),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn odd_shapes_become_the_documented_types() {
        assert_eq!(text(&json!(33870)).as_deref(), Some("33870"));
        assert_eq!(text(&json!({})), None);
        assert_eq!(
            address(&json!({"name": {}, "email": "a@x.org"})),
            Some(Address {
                name: None,
                email: Some("a@x.org".into())
            })
        );
        assert_eq!(address(&json!(false)), None);
        assert_eq!(addresses(&json!({"email": "a@x.org"})).unwrap().len(), 1);
        assert_eq!(addresses(&json!([1, "b@x.org", null])).unwrap().len(), 1);
        assert_eq!(
            headers(&json!({"A": ["x", 1], "B": {"c": 2}})),
            json!({"A": ["x", "1"], "B": "{\"c\":2}"})
                .as_object()
                .cloned()
        );
        assert_eq!(number(&json!("17")), Some(17.into()));
    }
}
