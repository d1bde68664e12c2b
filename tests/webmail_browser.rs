//! The webmail in a real headless Chromium (Debian's `chromium`): a reader's session
//! from login to logout, HTML mail that must never run script or load anything remote
//! before the reader asks, and the phone layout.

use crate::common;
use crate::webmail_support;

use chromiumoxide::cdp::browser_protocol::emulation::MediaFeature;
use common::{Engine, TestApp};
use mailroom::store::Role;
use serde_json::{Value, json};
use webmail_support::browser::{
    Canary, Chromium, click_and_wait, count_dialogs, current_path, eval, eval_in_body, log_in,
    mark_document, open, phone_screen, press, type_into, wait_for_new_document,
};
use webmail_support::hostile::HOSTILE;
use webmail_support::{PASSWORD, add_user};

/// A 1×1 PNG, base64.
const PIXEL_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

fn payload(subject: &str, from: &str, html: &str, inlines: Value, attachments: Value) -> String {
    json!({
        "headers": {
            "Authentication-Results": ["mx1.improvmx.com; spf=pass smtp.mailfrom=x.org; dkim=pass header.d=x.org; dmarc=pass"]
        },
        "to": [{"name": "Ventas", "email": "ventas@puntoa.ar"}],
        "from": {"name": "Sender", "email": from},
        "subject": subject,
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": format!("The text of {subject}."),
        "html": html,
        "inlines": inlines,
        "attachments": attachments,
    })
    .to_string()
}

async fn webmail_with_ana() -> (TestApp, String) {
    let app = TestApp::spawn(Engine::Sqlite).await;
    add_user(&app, "ana@puntoa.ar", Role::User, &["ventas@puntoa.ar"]).await;
    let base = app.webmail_address.clone().unwrap();
    (app, base)
}

async fn page_text(page: &chromiumoxide::Page) -> String {
    eval(page, "document.body.innerText").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_logs_in_reads_flags_searches_and_logs_out() {
    let (app, base) = webmail_with_ana().await;
    let invoice = app
        .deliver(payload(
            "Factura de noviembre",
            "ana@example.org",
            "<p>Hola, <b>adjunto la factura</b>.</p><img src=\"cid:logo@x\" alt=\"logo\">",
            json!([{"type": "image/png", "name": "logo.png", "cid": "logo@x", "content": PIXEL_B64}]),
            json!([
                {"type": "application/pdf", "name": "factura.pdf", "content": "JVBERi0xLjQK"},
                {"type": "image/png", "name": "foto.png", "content": PIXEL_B64}
            ]),
        ))
        .await;
    app.deliver(payload(
        "Pedido 42",
        "luis@example.org",
        "",
        json!([]),
        json!([]),
    ))
    .await;
    let chromium = Chromium::launch().await;
    let page = chromium.browser.new_page("about:blank").await.unwrap();
    log_in(&page, &base, "ana@puntoa.ar", PASSWORD).await;
    assert_eq!(current_path(&page).await, "/");
    let list = page_text(&page).await;
    assert!(
        list.contains("Factura de noviembre") && list.contains("Pedido 42"),
        "{list}"
    );
    let unread: u32 = eval(&page, "document.querySelectorAll('.row.unread').length").await;
    assert_eq!(unread, 2, "new mail is bold");

    // j selects the newest row, j again the next, o opens it: the invoice.
    press(&page, "j").await;
    press(&page, "j").await;
    mark_document(&page).await;
    press(&page, "o").await;
    wait_for_new_document(&page).await;
    assert!(
        current_path(&page)
            .await
            .starts_with(&format!("/view/{invoice}"))
    );
    let view = page_text(&page).await;
    assert!(
        view.contains("SPF: pass") && view.contains("factura.pdf"),
        "{view}"
    );
    let body = eval_in_body(
        &page,
        "[document.body.innerText, [...document.images].map(i => i.naturalWidth)]",
    )
    .await
    .expect("an HTML body frame");
    assert_eq!(
        body,
        json!(["Hola, adjunto la factura.", [1]]),
        "text and the inline image"
    );

    // An image attachment has a thumbnail; the PDF has none.
    let thumbnails: Vec<u32> = eval(
        &page,
        "[...document.querySelectorAll('.thumbnail')].map(i => i.naturalWidth)",
    )
    .await;
    assert_eq!(thumbnails, [1]);

    // The attachment downloads with the API's disposition.
    let href: String = eval(
        &page,
        "document.querySelector('.attachments a').getAttribute('href')",
    )
    .await;
    let download: Value = eval(
        &page,
        &format!("fetch('{href}').then(r => [r.status, r.headers.get('content-disposition')])"),
    )
    .await;
    assert_eq!(
        download,
        json!([200, "attachment; filename=\"factura.pdf\""])
    );

    // Star with the button, unstar with `s`.
    click_and_wait(&page, "#star").await;
    assert_eq!(
        eval::<String>(&page, "document.querySelector('#star').innerText").await,
        "Unstar"
    );
    mark_document(&page).await;
    press(&page, "s").await;
    wait_for_new_document(&page).await;
    assert_eq!(
        eval::<String>(&page, "document.querySelector('#star').innerText").await,
        "Star"
    );

    // Mark unread: back to the list, bold again.
    click_and_wait(&page, "button[value=unread]").await;
    let unread: u32 = eval(&page, "document.querySelectorAll('.row.unread').length").await;
    assert_eq!(
        unread, 2,
        "the invoice is unread again; the order was never opened"
    );

    // Search with the query language.
    press(&page, "/").await;
    type_into(&page, "#search", "subject:pedido").await;
    mark_document(&page).await;
    page.find_element("#search")
        .await
        .unwrap()
        .press_key("Enter")
        .await
        .unwrap();
    wait_for_new_document(&page).await;
    assert!(current_path(&page).await.contains("q=subject"));
    let found = page_text(&page).await;
    assert!(
        found.contains("Pedido 42") && !found.contains("Factura"),
        "{found}"
    );

    // Trash it with `#` from the reading view.
    click_and_wait(&page, ".row a").await;
    mark_document(&page).await;
    press(&page, "#").await;
    wait_for_new_document(&page).await;
    assert!(!current_path(&page).await.starts_with("/view/"));
    open(&page, &format!("{base}/?folder=trash")).await;
    assert!(page_text(&page).await.contains("Pedido 42"));
    open(&page, &format!("{base}/")).await;
    assert!(!page_text(&page).await.contains("Pedido 42"));

    // k and j walk to the newer and the older message of the list, u goes back to it.
    open(&page, &format!("{base}/view/{invoice}?folder=all")).await;
    for (key, subject) in [("k", "Pedido 42"), ("j", "Factura de noviembre")] {
        mark_document(&page).await;
        press(&page, key).await;
        wait_for_new_document(&page).await;
        let heading: String = eval(&page, "document.querySelector('h1').innerText").await;
        assert_eq!(heading, subject, "after {key}");
    }
    mark_document(&page).await;
    press(&page, "u").await;
    wait_for_new_document(&page).await;
    assert_eq!(
        current_path(&page).await,
        "/?folder=all&mailbox=ventas%40puntoa.ar"
    );

    // Log out; the back button does not bring the mail back.
    open(&page, &format!("{base}/view/{invoice}")).await;
    click_and_wait(&page, "nav.account button").await;
    assert!(current_path(&page).await.starts_with("/login"));
    mark_document(&page).await;
    page.evaluate("history.back()").await.unwrap();
    wait_for_new_document(&page).await;
    let after = page_text(&page).await;
    assert!(
        !after.contains("Factura de noviembre") && after.contains("Log in"),
        "{after}"
    );
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_html_mail_runs_no_script_and_loads_nothing_remote_until_allowed() {
    let (app, base) = webmail_with_ana().await;
    let canary = Canary::start().await;
    let mut ids = Vec::new();
    for (n, html) in HOSTILE.iter().enumerate() {
        let html = html.replace("{C}", &canary.origin);
        let subject = format!("Hostile {n:02}");
        ids.push(
            app.deliver(payload(
                &subject,
                "attacker@evil.example",
                &html,
                json!([]),
                json!([]),
            ))
            .await,
        );
    }
    // An HTML attachment (the Roundcube 2024 attachment XSS): it downloads, never renders.
    let script = "<script>fetch('{C}/attachment-script')</script>".replace("{C}", &canary.origin);
    let attachment =
        json!([{"type": "text/html", "name": "invoice.html", "content": base64(&script)}]);
    let with_attachment = app
        .deliver(payload(
            "Hostile attachment",
            "attacker@evil.example",
            "<p>see attached</p>",
            json!([]),
            attachment,
        ))
        .await;

    let chromium = Chromium::launch().await;
    let page = chromium.browser.new_page("about:blank").await.unwrap();
    let dialogs = count_dialogs(&page).await;
    log_in(&page, &base, "ana@puntoa.ar", PASSWORD).await;
    for (n, id) in ids.iter().enumerate() {
        open(&page, &format!("{base}/view/{id}")).await;
        let title: String = eval(&page, "document.title").await;
        assert_eq!(title, format!("Hostile {n:02} · mailroom"), "payload {n}");
        if let Some(flag) =
            eval_in_body(&page, "[window.__pwned === undefined, document.title]").await
        {
            assert_eq!(
                flag[0],
                json!(true),
                "payload {n} ran script: {}",
                HOSTILE[n]
            );
        }
        // Links in the body are inert until clicked; clicking one must run nothing either.
        let pwned: bool = eval(&page, "window.__pwned !== undefined").await;
        assert!(!pwned, "payload {n} reached the page");
        assert!(
            canary.hits().is_empty(),
            "payload {n} reached the canary: {:?}",
            canary.hits()
        );
    }
    open(&page, &format!("{base}/view/{with_attachment}")).await;
    let href: String = eval(
        &page,
        "document.querySelector('.attachments a').getAttribute('href')",
    )
    .await;
    let _ = page.goto(format!("{base}{href}")).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        canary.hits().is_empty(),
        "the attachment rendered: {:?}",
        canary.hits()
    );
    assert_eq!(*dialogs.lock().unwrap(), 0, "no dialog opened");

    // "Show images" loads remote images for that message only, after the click.
    let pixel = ids[15].clone();
    open(&page, &format!("{base}/view/{pixel}")).await;
    assert!(canary.hits().is_empty());
    click_and_wait(&page, "#show-images").await;
    assert_eq!(canary.hits(), ["/tracking-pixel.png"], "loaded once asked");
    open(&page, &format!("{base}/view/{}", ids[11])).await;
    assert_eq!(canary.hits().len(), 1, "another message still blocks");

    // "Always show images from" this sender: their next message loads at once.
    click_and_wait(&page, "#always-show").await;
    assert!(
        canary.hits().contains(&"/css-background.png".to_owned()),
        "{:?}",
        canary.hits()
    );
    chromium.close().await;
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Elements whose right edge passes the viewport, as `tag.class` names.
const OVERFLOWING: &str = "[...document.querySelectorAll('body *')]\
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)\
    .map(e => e.tagName.toLowerCase() + '.' + e.className)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_fit_a_375_pixel_phone() {
    let (app, base) = webmail_with_ana().await;
    let long =
        "Presupuesto_de_obra_con_un_nombre_larguísimo_sin_espacios_que_no_debe_desbordar.pdf";
    let id = app
        .deliver(payload(
            "Una factura con un asunto muy largo que en un teléfono tiene que cortarse bien",
            "alguien.con.una.direccion.larga@un-dominio-muy-largo.example.org",
            "<table width=\"900\"><tr><td>Una tabla ancha de 900 px</td></tr></table>",
            json!([]),
            json!([{"type": "application/pdf", "name": long, "content": "JVBERi0xLjQK"}]),
        ))
        .await;
    let chromium = Chromium::launch().await;
    let page = chromium.browser.new_page("about:blank").await.unwrap();
    phone_screen(&page, 375).await;
    log_in(&page, &base, "ana@puntoa.ar", PASSWORD).await;
    for path in [
        "/".to_owned(),
        format!("/view/{id}"),
        "/change-password".into(),
        "/login".into(),
    ] {
        open(&page, &format!("{base}{path}")).await;
        let width: u32 = eval(&page, "document.documentElement.scrollWidth").await;
        let overflowing: Vec<String> = eval(&page, OVERFLOWING).await;
        assert!(
            width <= 375 && overflowing.is_empty(),
            "{path}: {width} px, {overflowing:?}"
        );
    }
    // `?` shows the shortcuts.
    press(&page, "?").await;
    let help_open: bool = eval(&page, "document.querySelector('#help').open").await;
    assert!(help_open, "? opens the help");

    // The system's dark mode is followed.
    let background = "getComputedStyle(document.body).backgroundColor";
    let light: String = eval(&page, background).await;
    let dark_mode = MediaFeature::builder()
        .name("prefers-color-scheme")
        .value("dark")
        .build()
        .unwrap();
    page.emulate_media_features(vec![dark_mode]).await.unwrap();
    let dark: String = eval(&page, background).await;
    assert_eq!(
        (light.as_str(), dark.as_str()),
        ("rgb(247, 247, 245)", "rgb(20, 20, 22)")
    );
    let light_mode = MediaFeature::builder()
        .name("prefers-color-scheme")
        .value("light")
        .build()
        .unwrap();
    page.emulate_media_features(vec![light_mode]).await.unwrap();

    // Last: a full-page screenshot resets the emulated screen.
    open(&page, &format!("{base}/")).await;
    save_screenshot(&page, "webmail-phone.png").await;
    chromium.close().await;
}

/// Saves a screenshot under `target/`, or into `docs/` when `MAILROOM_SCREENSHOTS=docs`
/// (how the README's screenshot is refreshed).
async fn save_screenshot(page: &chromiumoxide::Page, name: &str) {
    use chromiumoxide::page::ScreenshotParams;
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir = match std::env::var("MAILROOM_SCREENSHOTS").as_deref() {
        Ok("docs") => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs"),
        _ => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}
