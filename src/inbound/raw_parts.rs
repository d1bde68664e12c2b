//! The part lists of a payload (`attachments`, `inlines`), read in the same pass as the
//! rest of the body: each part's `content` is borrowed from the body when it holds no
//! JSON escapes, so megabytes of base64 are scanned once and never copied before they
//! are decoded. Any other shape (a list that is not an array, a part that is not an
//! object, a `content` that is not a string) is kept as the `Value` it is.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// A part list as it arrived.
pub enum RawParts<'a> {
    List(Vec<RawPart<'a>>),
    Other(Value),
}

/// One element of a part list.
pub enum RawPart<'a> {
    Object {
        /// Every field but `content`, in key order.
        fields: BTreeMap<String, Value>,
        content: Option<Content<'a>>,
    },
    Other(Value),
}

/// A part's `content`.
pub enum Content<'a> {
    Text(Cow<'a, str>),
    Other(Value),
}

impl<'de> Deserialize<'de> for RawParts<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ShapeSeed::<RawParts<'de>>::new().deserialize(deserializer)
    }
}

/// How one kind of raw value is built: arrays, objects and strings may get their own
/// treatment; anything else becomes `Self::value`.
trait Shape<'de>: Sized {
    fn value(value: Value) -> Self;

    fn seq<A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Self::value)
    }

    fn map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Self::value)
    }

    fn text(text: Cow<'de, str>) -> Self {
        Self::value(Value::String(text.into_owned()))
    }
}

impl<'de> Shape<'de> for RawParts<'de> {
    fn value(value: Value) -> Self {
        RawParts::Other(value)
    }

    fn seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(part) = seq.next_element_seed(ShapeSeed::<RawPart<'de>>::new())? {
            parts.push(part);
        }
        Ok(RawParts::List(parts))
    }
}

impl<'de> Shape<'de> for RawPart<'de> {
    fn value(value: Value) -> Self {
        RawPart::Other(value)
    }

    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut fields = BTreeMap::new();
        let mut content = None;
        // A later duplicate key wins, as it does everywhere else in the payload.
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "content" {
                content = Some(map.next_value_seed(ShapeSeed::<Content<'de>>::new())?);
            } else {
                fields.insert(key.into_owned(), map.next_value()?);
            }
        }
        Ok(RawPart::Object { fields, content })
    }
}

impl<'de> Shape<'de> for Content<'de> {
    fn value(value: Value) -> Self {
        Content::Other(value)
    }

    fn text(text: Cow<'de, str>) -> Self {
        Content::Text(text)
    }
}

/// Deserializes any JSON value into the `Shape` `S`.
struct ShapeSeed<S>(PhantomData<S>);

impl<S> ShapeSeed<S> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for ShapeSeed<S> {
    type Value = S;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeSeed<S> {
    type Value = S;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<S, E> {
        Ok(S::value(Value::Null))
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<S, E> {
        Ok(S::value(Value::Bool(v)))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<S, E> {
        Ok(S::value(Value::Number(v.into())))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<S, E> {
        Ok(S::value(Value::Number(v.into())))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<S, E> {
        // As serde_json's own `Value` does: a non-finite number is null.
        Ok(S::value(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<S, E> {
        Ok(S::text(Cow::Borrowed(v)))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<S, E> {
        Ok(S::text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<S, E> {
        Ok(S::text(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S, A::Error> {
        S::seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::map(map)
    }
}
