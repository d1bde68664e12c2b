//! The part lists of a payload (`attachments`, `inlines`), read in the same pass as the
//! rest of the body: each part's `content` is borrowed from the body when it holds no
//! JSON escapes, so megabytes of base64 are scanned once and never copied before they
//! are decoded. Any other shape (a list that is not an array, a part that is not an
//! object, a `content` that is not a string) is kept as the `Value` it is.
//!
//! Every value is read through a `Budget` that counts parts, object keys and array
//! elements as they are read: a hostile body stops at its cap, before it costs memory.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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

/// Caps on what one payload may hold, far above any real email. They are counted while
/// the body is read, so a hostile body is refused before it costs memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Attachments plus inlines.
    pub max_parts: usize,
    /// Object keys plus array elements, anywhere in the payload.
    pub max_json_items: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self {
            max_parts: 1_000,
            max_json_items: 100_000,
        }
    }
}

/// Which cap a payload went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Parts,
    JsonItems,
}

/// What is left of the limits while one body is read.
pub struct Budget {
    limits: PayloadLimits,
    parts: Cell<usize>,
    items: Cell<usize>,
    exceeded: Cell<Option<Exceeded>>,
}

impl Budget {
    pub fn new(limits: PayloadLimits) -> Self {
        Self {
            limits,
            parts: Cell::new(0),
            items: Cell::new(0),
            exceeded: Cell::new(None),
        }
    }

    /// The cap that stopped the read, if one did.
    pub fn exceeded(&self) -> Option<Exceeded> {
        self.exceeded.get()
    }

    pub fn limits(&self) -> PayloadLimits {
        self.limits
    }

    /// Counts one object key or array element.
    pub fn item<E: Error>(&self) -> Result<(), E> {
        self.charge(&self.items, self.limits.max_json_items, Exceeded::JsonItems)
    }

    fn part<E: Error>(&self) -> Result<(), E> {
        self.charge(&self.parts, self.limits.max_parts, Exceeded::Parts)
    }

    fn charge<E: Error>(&self, used: &Cell<usize>, max: usize, what: Exceeded) -> Result<(), E> {
        used.set(used.get() + 1);
        if used.get() > max {
            self.exceeded.set(Some(what));
            return Err(E::custom("a payload limit was exceeded"));
        }
        Ok(())
    }
}

/// Reads a part list (`attachments` or `inlines`) within `budget`.
pub fn parts_seed<'b, 'de>(budget: &'b Budget) -> ShapeSeed<'b, RawParts<'de>> {
    ShapeSeed::new(budget)
}

/// Reads any JSON value within `budget`.
pub fn value_seed(budget: &Budget) -> ShapeSeed<'_, Value> {
    ShapeSeed::new(budget)
}

/// How one kind of raw value is built: arrays, objects and strings may get their own
/// treatment; anything else becomes `Self::value`. Every array element and object key
/// is charged to the budget.
trait Shape<'de>: Sized {
    fn value(value: Value) -> Self;

    fn seq<A: SeqAccess<'de>>(mut seq: A, budget: &Budget) -> Result<Self, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ShapeSeed::<Value>::new(budget))? {
            budget.item()?;
            items.push(item);
        }
        Ok(Self::value(Value::Array(items)))
    }

    fn map<A: MapAccess<'de>>(mut map: A, budget: &Budget) -> Result<Self, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            budget.item()?;
            fields.insert(key, map.next_value_seed(ShapeSeed::<Value>::new(budget))?);
        }
        Ok(Self::value(Value::Object(fields)))
    }

    fn text(text: Cow<'de, str>) -> Self {
        Self::value(Value::String(text.into_owned()))
    }
}

impl<'de> Shape<'de> for Value {
    fn value(value: Value) -> Self {
        value
    }
}

impl<'de> Shape<'de> for RawParts<'de> {
    fn value(value: Value) -> Self {
        RawParts::Other(value)
    }

    fn seq<A: SeqAccess<'de>>(mut seq: A, budget: &Budget) -> Result<Self, A::Error> {
        let mut parts = Vec::new();
        while let Some(part) = seq.next_element_seed(ShapeSeed::<RawPart<'de>>::new(budget))? {
            budget.item()?;
            if matches!(part, RawPart::Object { .. }) {
                budget.part()?;
            }
            parts.push(part);
        }
        Ok(RawParts::List(parts))
    }
}

impl<'de> Shape<'de> for RawPart<'de> {
    fn value(value: Value) -> Self {
        RawPart::Other(value)
    }

    fn map<A: MapAccess<'de>>(mut map: A, budget: &Budget) -> Result<Self, A::Error> {
        let mut fields = BTreeMap::new();
        let mut content = None;
        // A later duplicate key wins, as it does everywhere else in the payload.
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            budget.item()?;
            if key == "content" {
                content = Some(map.next_value_seed(ShapeSeed::<Content<'de>>::new(budget))?);
            } else {
                let value = map.next_value_seed(ShapeSeed::<Value>::new(budget))?;
                fields.insert(key.into_owned(), value);
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

/// Deserializes any JSON value into the `Shape` `S`, within a budget.
pub struct ShapeSeed<'b, S> {
    budget: &'b Budget,
    shape: PhantomData<S>,
}

impl<'b, S> ShapeSeed<'b, S> {
    fn new(budget: &'b Budget) -> Self {
        Self {
            budget,
            shape: PhantomData,
        }
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for ShapeSeed<'_, S> {
    type Value = S;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeSeed<'_, S> {
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
        S::seq(seq, self.budget)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::map(map, self.budget)
    }
}
