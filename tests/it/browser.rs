//! The explorer in a real headless Chromium, driven over WebDriver (chromedriver): load the
//! page, change TP and see the step time change, submit a bad scenario and see the error.
//!
//! Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the
//! test fails when `CI` is set and otherwise prints why it skipped. With
//! `TRAINSIM_SCREENSHOTS=DIR` it saves screenshots of the page there (docs/ holds them).

use crate::http::{request, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for n in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

struct Driver {
    child: Child,
    base: String,
    session: String,
    profile: PathBuf,
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let b = body.map(|v| v.to_string());
        let r =
            request(method, &url, b.as_deref().map(str::as_bytes)).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v = r.json();
        assert!(r.status < 300, "WebDriver {method} {path}: {} {}", r.status, r.text());
        v["value"].clone()
    }

    fn start(chromium: &Path, chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = request("GET", &format!("{base}/status"), None) {
                if r.status == 200 && r.json()["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < until, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = std::env::temp_dir().join(format!("trainsim-chromium-{}-{port}", std::process::id()));
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1800",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args}
        }}});
        let r = request("POST", &format!("{base}/session"), Some(caps.to_string().as_bytes())).expect("new session");
        assert_eq!(r.status, 200, "new session: {}", r.text());
        let session = r.json()["value"]["sessionId"].as_str().expect("session id").to_string();
        Driver {
            child,
            base,
            session,
            profile,
        }
    }

    fn element(&self, css: &str) -> String {
        let v = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_string()
    }

    fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.call("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn script(&self, js: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": js, "args": []})))
    }

    fn wait(&self, what: &str, mut ok: impl FnMut(&Driver) -> bool) {
        let until = Instant::now() + Duration::from_secs(60);
        while !ok(self) {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn screenshot(&self, dir: Option<&Path>, name: &str) {
        let Some(dir) = dir else { return };
        let b64 = self.call("GET", "/screenshot", None);
        let bytes = base64(b64.as_str().expect("base64 PNG"));
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = request("DELETE", &format!("{}/session/{}", self.base, self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn explorer_in_headless_chromium() {
    let (Some(chromium), Some(driver)) = (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver"]),
    ) else {
        let msg = "chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver): \
                   the browser test of the explorer did not run";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED explorer_in_headless_chromium: {msg}");
        return;
    };
    let shots = std::env::var_os("TRAINSIM_SCREENSHOTS").map(PathBuf::from);
    let server = Server::start();
    let d = Driver::start(&chromium, &driver);
    d.call("POST", "/url", Some(json!({"url": server.url})));
    // the first shipped scenario (GPT-3 175B on 1,024 A100) loads and runs
    d.wait("the first result", |d| d.text("#step-time").ends_with(" s"));
    let first = d.text("#step-time");
    assert!(d.text("#plan-label").contains("TP8"), "{}", d.text("#plan-label"));
    assert!(d.text("#memory").contains("GiB"));
    assert_eq!(
        d.script("return document.querySelectorAll('#charts img').length"),
        json!(3)
    );
    d.screenshot(shots.as_deref(), "explorer.png");
    // the plan form offers what trainsim models: CP for a dense model (ETP only for MoE),
    // every pipeline schedule
    assert_eq!(
        d.script(
            "return [document.querySelector('#cp').disabled, !!document.querySelector('#cp option[value=\"2\"]'), \
             document.querySelector('#expert_tp').disabled, \
             !!document.querySelector('#schedule option[value=\"dualpipe_v\"]'), \
             !!document.querySelector('#schedule option[value=\"zero_bubble_h1\"]')]"
        ),
        json!([false, true, true, true, true])
    );
    // the split controls: even on this cluster of one GPU type, balanced offered
    assert_eq!(
        d.script(
            "return [document.querySelector('#stage_layers').value, \
             !!document.querySelector('#stage_layers option[value=\"balanced\"]'), \
             document.querySelector('#replica_micro_batches').value]"
        ),
        json!(["even", true, "even"])
    );
    // change TP with the form: the step time changes
    let opt = d.element("#tp option[value='4']");
    d.call("POST", &format!("/element/{opt}/click"), Some(json!({})));
    d.wait("the TP4 result", |d| d.text("#plan-label").contains("TP4"));
    let second = d.text("#step-time");
    assert_ne!(first, second, "TP 8 -> 4 changes the step time");
    // pin it, change the micro-batch, compare side by side
    let pin = d.element("#pin");
    d.call("POST", &format!("/element/{pin}/click"), Some(json!({})));
    let opt = d.element("#recompute option[value='full']");
    d.call("POST", &format!("/element/{opt}/click"), Some(json!({})));
    d.wait("the comparison", |d| d.text("#compare-text").contains("recompute"));
    d.screenshot(shots.as_deref(), "explorer-compare.png");
    // a bad scenario typed in the editor: the located error shows, the line is marked
    let ed = d.element("#editor");
    d.call("POST", &format!("/element/{ed}/clear"), Some(json!({})));
    let bad = "[cluster]\nnum_gpus = 64\n[cluster.gpu]\npreset = \"H100-SXM\"\n[model]\npreset = \"llama3-8b\"\n[parallel]\ntp = 2\nrecompute = \"some\"\n[training]\nglobal_batch_size = 64\nseq_length = 4096\n";
    d.call("POST", &format!("/element/{ed}/value"), Some(json!({"text": bad})));
    let run = d.element("#run-editor");
    d.call("POST", &format!("/element/{run}/click"), Some(json!({})));
    d.wait("the error", |d| d.text("#error").contains("parallel.recompute"));
    let err = d.text("#error");
    assert!(
        err.contains("scenario.toml:9:1") && err.contains("allowed values are"),
        "{err}"
    );
    assert_eq!(
        d.script("return document.querySelector('#gutter .err').textContent"),
        json!("9")
    );
    d.call(
        "POST",
        "/execute/sync",
        Some(json!({"script": "window.scrollTo(0, 0)", "args": []})),
    );
    d.screenshot(shots.as_deref(), "explorer-error.png");
}
