//! Request bodies that handlers read by hand rather than through these types (the
//! webhook's payload is parsed in one pass by `inbound`), and the raw download, for the
//! OpenAPI document only: they exist for their `ToSchema` derive.
#![allow(dead_code)]

use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

/// What ImprovMX POSTs: any JSON object is stored as it came (DESIGN §3: a genuine
/// delivery is never refused for its shape), so no field is constrained; these are the
/// usual ones and what they usually hold.
#[derive(ToSchema)]
pub struct ImprovMxPayload {
    /// Header name → a string, or an array of strings.
    #[schema(value_type = Value, required = false)]
    pub headers: Option<Value>,
    /// `[{"name", "email"}]`.
    #[schema(value_type = Value, required = false)]
    pub to: Option<Value>,
    /// `{"name", "email"}`.
    #[schema(value_type = Value, required = false)]
    pub from: Option<Value>,
    #[schema(value_type = Value, required = false)]
    pub subject: Option<Value>,
    #[schema(rename = "message-id", value_type = Value, required = false)]
    pub message_id: Option<Value>,
    #[schema(value_type = Value, required = false)]
    pub date: Option<Value>,
    #[schema(rename = "return-path", value_type = Value, required = false)]
    pub return_path: Option<Value>,
    /// ImprovMX's delivery time (Unix seconds); mail sorts by the server's receive time.
    #[schema(value_type = Value, required = false)]
    pub timestamp: Option<Value>,
    #[schema(value_type = Value, required = false)]
    pub text: Option<Value>,
    #[schema(value_type = Value, required = false)]
    pub html: Option<Value>,
    /// `[{"type", "name", "cid", "content": base64}]` (wrapped or unpadded is fine).
    #[schema(value_type = Value, required = false)]
    pub inlines: Option<Value>,
    /// `[{"type", "name", "content": base64}]`.
    #[schema(value_type = Value, required = false)]
    pub attachments: Option<Value>,
}

/// Raw bytes of a part.
pub struct Download;

impl utoipa::PartialSchema for Download {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("The part's bytes"))
            .into()
    }
}

impl ToSchema for Download {}
