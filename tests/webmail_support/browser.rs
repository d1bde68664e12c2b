//! A real headless Chromium driven over CDP, and a canary HTTP listener that counts
//! every request a page sends it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::page::EventJavascriptDialogOpening;
use chromiumoxide::{Handler, Page};
use futures::StreamExt as _;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The browser, the task driving its connection, and its profile directory.
pub struct Chromium {
    pub browser: Browser,
    driver: tokio::task::JoinHandle<()>,
    _profile: TempDir,
}

impl Chromium {
    pub async fn launch() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(chromium_path())
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1280, 900)
            .arg("disable-gpu")
            .arg("disable-dev-shm-usage")
            // Keeps the sandboxed body frame in the page's process, so the test sees its
            // requests and can look inside it; the sandbox itself is enforced all the same.
            .arg((
                "disable-features",
                &["TranslateUI", "IsolateSandboxedIframes", "SitePerProcess"][..],
            ))
            .arg("disable-site-isolation-trials")
            .build()
            .unwrap();
        let (browser, handler) = Browser::launch(config).await.expect("Chromium starts");
        let driver = tokio::spawn(drive(handler));
        Self {
            browser,
            driver,
            _profile: profile,
        }
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.driver.abort();
    }
}

async fn drive(mut handler: Handler) {
    // Messages this crate does not know (a newer Chromium) are errors to skip, not to stop on.
    while handler.next().await.is_some() {}
}

/// `CHROMIUM` when set, else Debian's.
fn chromium_path() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Counts the JavaScript dialogs (`alert`, `confirm`, `prompt`) a page opens.
pub async fn count_dialogs(page: &Page) -> Arc<Mutex<u32>> {
    let count = Arc::new(Mutex::new(0));
    let mut events = page
        .event_listener::<EventJavascriptDialogOpening>()
        .await
        .unwrap();
    let seen = count.clone();
    tokio::spawn(async move {
        while events.next().await.is_some() {
            *seen.lock().unwrap() += 1;
        }
    });
    count
}

/// Goes to `url` and waits until it has loaded, and a little more for late requests.
pub async fn open(page: &Page, url: &str) {
    page.goto(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    settle().await;
}

pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Clicks the element and waits until a new document has loaded.
pub async fn click_and_wait(page: &Page, selector: &str) {
    let element = page
        .find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    mark_document(page).await;
    element.click().await.unwrap();
    wait_for_new_document(page).await;
}

/// Marks the current document, so `wait_for_new_document` can tell it from the next.
pub async fn mark_document(page: &Page) {
    page.evaluate("window.__oldDocument = true").await.unwrap();
}

/// Waits (15 s at most) until the marked document is replaced and the new one has loaded.
pub async fn wait_for_new_document(page: &Page) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let state = page
            .evaluate("[window.__oldDocument === true, document.readyState]")
            .await
            .ok()
            .and_then(|result| result.into_value::<(bool, String)>().ok());
        if matches!(&state, Some((false, ready)) if ready == "complete") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new document: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle().await;
}

/// The page's path and query.
pub async fn current_path(page: &Page) -> String {
    eval(page, "location.pathname + location.search").await
}

/// Waits (15 s at most) until the page's path and query satisfy `done`, and it has loaded.
pub async fn wait_for_path(page: &Page, done: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        // While a navigation is under way the page has no context to evaluate in.
        let state = page
            .evaluate("[location.pathname + location.search, document.readyState]")
            .await
            .ok()
            .and_then(|result| result.into_value::<(String, String)>().ok());
        let seen = format!("{state:?}");
        if state.is_some_and(|(path, ready)| done(&path) && ready == "complete") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still at {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settle().await;
}

/// Evaluates a JavaScript expression on the page (CDP runs it whatever the page's CSP).
pub async fn eval<T: serde::de::DeserializeOwned>(page: &Page, expression: &str) -> T {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .into_value()
        .unwrap()
}

/// Logs in through the real form.
pub async fn log_in(page: &Page, base: &str, login: &str, password: &str) {
    open(page, &format!("{base}/login")).await;
    type_into(page, "input[name=email]", login).await;
    type_into(page, "input[name=password]", password).await;
    let typed: String = eval(page, "document.querySelector('input[name=email]').value").await;
    assert_eq!(typed, login, "typed into the login form");
    page.find_element("input[name=password]")
        .await
        .unwrap()
        .press_key("Enter")
        .await
        .unwrap();
    wait_for_path(page, |path| !path.starts_with("/login")).await;
}

pub async fn type_into(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(text)
        .await
        .unwrap();
}

/// A local HTTP listener that records the path of every request and answers a 1×1 PNG.
pub struct Canary {
    pub origin: String,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

impl Canary {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let recorded = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 8192];
                    let read = stream.read(&mut buffer).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buffer[..read]);
                    let path = head.split_whitespace().nth(1).unwrap_or("?").to_owned();
                    recorded.lock().unwrap().push(path);
                    let header = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\
                         Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
                        PIXEL.len()
                    );
                    let _ = stream.write_all(header.as_bytes()).await;
                    let _ = stream.write_all(PIXEL).await;
                });
            }
        });
        Self { origin, hits, task }
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Evaluates `expression` inside the reading view's body frame (its main world), and
/// answers its JSON value; `None` when the page has no body frame.
pub async fn eval_in_body(page: &Page, expression: &str) -> Option<serde_json::Value> {
    use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
    let main = page.mainframe().await.unwrap()?;
    let frame = page
        .frames()
        .await
        .unwrap()
        .into_iter()
        .find(|f| *f != main)?;
    let context = page.frame_execution_context(frame).await.unwrap()?;
    let params = EvaluateParams::builder()
        .expression(format!("JSON.stringify({expression})"))
        .context_id(context)
        .return_by_value(true)
        .build()
        .unwrap();
    let result = page.evaluate_expression(params).await.unwrap();
    let text: String = result.into_value().unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

/// Emulates a phone screen of this width.
pub async fn phone_screen(page: &Page, width: i64) {
    use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
    let params = SetDeviceMetricsOverrideParams::new(width, 812, 2.0, true);
    page.execute(params).await.unwrap();
}

/// Presses a key on the page (the shortcut handler listens on the document).
pub async fn press(page: &Page, key: &str) {
    page.find_element("body")
        .await
        .unwrap()
        .press_key(key)
        .await
        .unwrap();
}
