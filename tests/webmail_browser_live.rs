//! In a real headless Chromium: new mail appears on the open mailbox list without a
//! reload, as text (a subject is never markup), with the unread count updated.

use crate::common;
use crate::webmail_support;

use std::time::{Duration, Instant};

use common::{Engine, TestApp};
use mailroom::store::Role;
use serde_json::json;
use webmail_support::browser::{Chromium, click_and_wait, eval, log_in, mark_document, open};
use webmail_support::{PASSWORD, add_user, email_to};

/// Waits (15 s at most) until `expression` evaluates to a string containing `wanted`.
async fn wait_for_text(page: &chromiumoxide::Page, expression: &str, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text: String = eval(page, expression).await;
        if text.contains(wanted) {
            return text;
        }
        assert!(Instant::now() < deadline, "{expression} is still {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_shows_up_on_the_open_list_without_a_reload() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let mailboxes = ["ventas@puntoa.ar", "ana@puntoa.ar"];
    add_user(&app, "ana@puntoa.ar", Role::User, &mailboxes).await;
    for mailbox in mailboxes {
        app.deliver(email_to(mailbox, "earlier", "", json!([])))
            .await;
    }
    let base = app.webmail_address.clone().unwrap();
    let chromium = Chromium::launch().await;
    let page = chromium.browser.new_page("about:blank").await.unwrap();
    log_in(&page, &base, "ana@puntoa.ar", PASSWORD).await;
    open(&page, &format!("{base}/")).await;
    let ventas_count = "document.querySelector('[data-mailbox=\"ventas@puntoa.ar\"] .count')";
    let count: String = eval(&page, &format!("{ventas_count}.textContent")).await;
    assert_eq!(count, "1");
    mark_document(&page).await;

    let subject = "<img src=x id=injected>Hola en vivo";
    app.deliver(email_to("ventas@puntoa.ar", subject, "", json!([])))
        .await;
    let notice = "(document.getElementById('show-new') || {}).textContent || ''";
    let shown = wait_for_text(&page, notice, "Hola en vivo").await;
    assert!(
        shown.contains(subject),
        "the subject shows as text: {shown}"
    );
    let injected: u32 = eval(&page, "document.querySelectorAll('#injected').length").await;
    assert_eq!(injected, 0, "nothing from mail became markup");
    wait_for_text(&page, &format!("{ventas_count}.textContent"), "2").await;
    let same_document: bool = eval(&page, "window.__oldDocument === true").await;
    assert!(same_document, "the page was not reloaded");

    click_and_wait(&page, "#show-new").await;
    let list: String = eval(&page, "document.querySelector('#rows').innerText").await;
    assert!(list.contains("Hola en vivo"), "{list}");
    chromium.close().await;
}
