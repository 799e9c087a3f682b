//! A minimal W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! chromedriver (the explorer and subscription-page tests share it).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::process::{free_port, KillOnDrop};

/// WebDriver's key for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium and its driver, or `None` (with a message) where they are not installed; CI
/// sets `REQUIRE_CHROMIUM=1` so that a missing browser fails instead.
pub fn chromium() -> Option<(String, String)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
                    .map(|found| found.display().to_string())
            })
        })
    };
    let browser = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver", "chromium-driver"]);
    match (browser, driver) {
        (Some(browser), Some(driver)) => Some((browser, driver)),
        _ => {
            assert!(
                std::env::var("REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "REQUIRE_CHROMIUM=1 but chromium/chromedriver are not installed"
            );
            eprintln!("skipped: install chromium and chromium-driver to run the explorer test");
            None
        }
    }
}

/// A minimal W3C WebDriver client (the few commands this test needs).
pub struct Browser {
    client: reqwest::Client,
    session: String,
    _driver: KillOnDrop,
}

impl Browser {
    /// A browser session; downloads go to `downloads` when given.
    pub async fn start(browser: &str, driver: &str, downloads: Option<&Path>) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("chromedriver-{port}.log"));
        let process = std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver_process = KillOnDrop(process);
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut options = json!({
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"]
        });
        if let Some(directory) = downloads {
            options["prefs"] = json!({
                "download.default_directory": directory.display().to_string(),
                "download.prompt_for_download": false,
            });
        }
        let capabilities =
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}});
        let reply: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_string();
        Self {
            client,
            session: format!("{base}/session/{session}"),
            _driver: driver_process,
        }
    }

    pub async fn command(&self, path: &str, body: Value) -> Value {
        let reply: Value = self
            .client
            .post(format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        reply["value"].clone()
    }

    pub async fn script(&self, source: &str, args: Value) -> Value {
        self.command("/execute/sync", json!({"script": source, "args": args}))
            .await
    }

    pub async fn get(&self, path: &str) -> Value {
        let reply: Value = self
            .client
            .get(format!("{}{path}", self.session))
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        reply["value"].clone()
    }

    pub async fn visit(&self, url: &str) {
        self.command("/url", json!({ "url": url })).await;
    }

    /// The first element matching a CSS selector (panics when there is none).
    pub async fn find(&self, selector: &str) -> String {
        let found = self
            .command(
                "/element",
                json!({"using": "css selector", "value": selector}),
            )
            .await;
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_string()
    }

    /// Types into an element (for a file input: the file's path), as a user would.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        let reply = self
            .command(
                &format!("/element/{element}/value"),
                json!({ "text": text }),
            )
            .await;
        assert!(reply.is_null(), "typing into {selector}: {reply}");
    }

    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        let reply = self
            .command(&format!("/element/{element}/click"), json!({}))
            .await;
        assert!(reply.is_null(), "clicking {selector}: {reply}");
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.command("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let encoded = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("artifact directory");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Polls `source` until it returns something other than null/false.
    pub async fn wait_for(&self, source: &str, args: Value, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(source, args.clone()).await;
            if !value.is_null() && value != json!(false) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Browser {
    /// Ends the session, which closes the browser, even when the test failed; then the
    /// driver is killed. Plain blocking HTTP: `Drop` cannot await.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let Some((address, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request =
                format!("DELETE /{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                // The driver answers once the browser is closed; the status line is enough.
                let _ = stream.read(&mut [0u8; 512]);
            }
        }
    }
}
