use serde_json::json;

use super::*;
use crate::email::EmailId;

fn stored(document: Value) -> StoredEmail {
    StoredEmail {
        id: EmailId::generate(Utc::now()),
        provider: Default::default(),
        received_at: Utc::now(),
        processed: false,
        starred: false,
        trashed: false,
        document: document.as_object().unwrap().clone(),
    }
}

#[test]
fn long_bodies_are_cut_at_a_character_boundary_and_marked() {
    let email = stored(json!({"text": "ñ".repeat(10), "html": "<p>hi</p>"}));
    let item = serde_json::to_value(list_item(email, 9)).unwrap();
    assert_eq!(item["text"], "ññññ");
    assert_eq!(item["html"], "<p>hi</p>");
    assert_eq!(item["truncated"], true);
}

#[test]
fn short_bodies_are_left_whole_and_unmarked() {
    let item = serde_json::to_value(list_item(stored(json!({"text": "hola"})), 5)).unwrap();
    assert_eq!(item["text"], "hola");
    assert!(item.get("truncated").is_none());
}

#[test]
fn absent_fields_stay_absent_odd_ones_take_their_type_and_unknown_ones_stay() {
    let email = stored(json!({
        "subject": 33870, "from": false, "to": [{"name": {}, "email": "a@x.org"}],
        "date": null, "x-custom": {"kept": [1, 2]},
    }));
    let body = serde_json::to_value(email_body(email)).unwrap();
    assert_eq!(body["subject"], "33870");
    assert_eq!(body["from"], Value::Null);
    assert_eq!(body["to"], json!([{"name": null, "email": "a@x.org"}]));
    assert_eq!(body["date"], Value::Null);
    assert_eq!(body["x-custom"], json!({"kept": [1, 2]}));
    for absent in [
        "text",
        "html",
        "headers",
        "attachments",
        "mailboxes",
        "truncated",
    ] {
        assert!(body.get(absent).is_none(), "{absent}");
    }
}

#[test]
fn parts_carry_urls_by_their_place_and_items_that_are_no_part_stay_as_delivered() {
    let hash = "0".repeat(64);
    let email = stored(json!({
        "attachments": ["not a part", {"name": "a.txt", "size": 2, "blake3": hash, "encoding": "base64"}],
    }));
    let id = email.id;
    let body = serde_json::to_value(email_body(email)).unwrap();
    assert_eq!(
        body["attachments"],
        json!(["not a part", {"name": "a.txt", "size": 2, "blake3": hash, "encoding": "base64",
                "url": format!("/emails/{id}/attachments/1")}])
    );
}

#[test]
fn the_part_item_schema_admits_any_item_as_delivered() {
    use utoipa::PartialSchema as _;
    let schema = serde_json::to_value(PartItem::schema()).unwrap();
    assert_eq!(
        schema["anyOf"][0],
        json!({"$ref": "#/components/schemas/PartBody"})
    );
    // Not `{"type": "object"}`: a null or a string in a part list is shown as it came.
    assert_eq!(schema["anyOf"][1], json!({}), "{schema}");
}
