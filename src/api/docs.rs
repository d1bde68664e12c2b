//! `GET /docs` (Swagger UI, bundled in the binary: no internet needed; see `ui`) and
//! `GET /openapi.json` (OpenAPI 3.1), both generated from the handlers' annotations.
//!
//! To document a new route: annotate its handler with `#[utoipa::path]` and list it in
//! `ApiDoc`'s `paths(…)`. The `every_route_is_documented` test fails until you do.

pub(super) mod schemas;
mod ui;

use axum::Router;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDocument, Ref};
use utoipa::{Modify, OpenApi};

pub use crate::error::ErrorBody;

use super::{attachments, emails, events, health, liveness, mail_state, raw, send, webhook};
use crate::api::AppState;

/// The OpenAPI document: every route, in one list.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailroom",
        description = "Self-hosted mail hub for ImprovMX: the webhook ImprovMX delivers to, \
and a read API for the stored mail.\n\n\
Protected routes take `Authorization: Bearer <API key>`. Every error body is \
`{\"success\":false,\"error\":\"<short>\",\"message\":\"<detail>\"}`. Limits are per client IP \
and configurable (`RATE_LIMIT_*`); a 429 carries `Retry-After` in seconds. Five failed \
authentications in five minutes lock a client IP out for fifteen minutes (429)."
    ),
    paths(
        webhook::receive,
        webhook::receive_with_secret,
        health::status,
        liveness::live,
        liveness::ready,
        emails::list,
        emails::show,
        mail_state::patch,
        mail_state::delete,
        mail_state::bulk,
        mail_state::mailboxes,
        events::follow,
        raw::raw,
        attachments::by_name,
        attachments::attachment_by_index,
        attachments::inline_by_index,
        send::send,
        send::stats,
        send::list,
        send::show,
        ui::page,
        ui::to_page,
        ui::asset,
        ui::openapi_json,
    ),
    // PartBody is named only inside PartItem's hand-written schema.
    components(schemas(ErrorBody, super::presenter::PartBody)),
    modifiers(&CommonResponses),
    tags(
        (name = "webhook", description = "Deliveries from ImprovMX"),
        (name = "emails", description = "Stored mail"),
        (name = "send", description = "Outbound mail through the SMTP relay"),
        (name = "health", description = "Status and probes"),
        (name = "docs", description = "This reference"),
    )
)]
pub struct ApiDoc;

/// `/docs` (and its assets) and `/openapi.json`.
pub fn router() -> Router<AppState> {
    ui::router(ApiDoc::openapi())
}

/// Default per-client-IP limits, by route, as in DESIGN.md §2: (method, path, limit, variable).
const RATE_LIMITS: &[(&str, &str, &str, &str)] = &[
    ("post", "/webhook", "200/minute", "RATE_LIMIT_WEBHOOK"),
    ("get", "/", "30/minute", "RATE_LIMIT_HEALTH"),
    ("get", "/docs", "60/minute", "RATE_LIMIT_DOCS"),
    ("get", "/docs/", "60/minute", "RATE_LIMIT_DOCS"),
    ("get", "/docs/{file}", "60/minute", "RATE_LIMIT_DOCS"),
    ("get", "/openapi.json", "60/minute", "RATE_LIMIT_DOCS"),
    ("get", "/emails", "20/minute", "RATE_LIMIT_LIST"),
    ("get", "/emails/{id}", "30/minute", "RATE_LIMIT_GET"),
    ("get", "/mailboxes", "20/minute", "RATE_LIMIT_LIST"),
    ("get", "/emails/{id}/raw", "30/minute", "RATE_LIMIT_GET"),
    ("patch", "/emails/{id}", "60/minute", "RATE_LIMIT_MODIFY"),
    ("delete", "/emails/{id}", "60/minute", "RATE_LIMIT_MODIFY"),
    ("post", "/emails/bulk", "60/minute", "RATE_LIMIT_MODIFY"),
    (
        "get",
        "/emails/{id}/attachment/{name}",
        "10/minute",
        "RATE_LIMIT_ATTACHMENT",
    ),
    (
        "get",
        "/emails/{id}/attachments/{index}",
        "10/minute",
        "RATE_LIMIT_ATTACHMENT",
    ),
    (
        "get",
        "/emails/{id}/inlines/{index}",
        "10/minute",
        "RATE_LIMIT_ATTACHMENT",
    ),
];

/// Probes that monitors call often: no limit, no storage error to report.
const PROBES: &[&str] = &["/healthz", "/readyz"];

/// Adds the Bearer scheme and the answers every route shares: 401/403 on protected
/// routes, 429 with `Retry-After` where limits apply, 500 where storage is involved.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("The API key (API_KEY or one of API_KEYS)"))
                        .build(),
                ),
            );
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                add_common_responses(method, path, operation);
            }
        }
    }
}

fn add_common_responses(method: &str, path: &str, operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, response: ResponseBuilder| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| response.build().into());
    };
    let protected = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if protected {
        add(
            "401",
            error("Missing `Authorization: Bearer <API key>`").header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(string_schema()))
                    .description(Some("`Bearer`"))
                    .build(),
            ),
        );
        add("403", error("Invalid API key"));
    }
    if method == "post" && path.starts_with("/webhook") {
        add(
            "415",
            error("The body is not `Content-Type: application/json`"),
        );
    }
    if PROBES.contains(&path) {
        return;
    }
    let limit = RATE_LIMITS
        .iter()
        .find(|(m, p, ..)| *m == method && *p == path)
        .map(|(_, _, limit, var)| format!("{limit} per client IP by default ({var})"))
        .unwrap_or_else(|| {
            "the global limit, 50/hour and 200/day per client IP by default (RATE_LIMIT_GLOBAL)"
                .into()
        });
    let mut too_many = format!("Rate limit exceeded: {limit}");
    if protected {
        too_many.push_str(", or too many failed authentications from this client IP");
    }
    add(
        "429",
        error(&too_many).header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait before trying again"))
                .build(),
        ),
    );
    add(
        "500",
        error("Internal server error (details are logged, never sent)"),
    );
}

fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("put", item.put.as_mut()),
        ("patch", item.patch.as_mut()),
        ("delete", item.delete.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|op| (method, op)))
    .collect()
}
