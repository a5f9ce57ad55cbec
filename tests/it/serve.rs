//! The explorer's HTTP API, against a real `trainsim serve` process.

use crate::http::{get, post_json, request, Server};
use crate::repo;
use serde_json::json;
use std::time::{Duration, Instant};

fn gpt3() -> String {
    std::fs::read_to_string(repo("scenarios/gpt3-175b-a100-1024.toml")).unwrap()
}

/// The page and its files are served from the binary; presets list the shipped scenarios.
#[test]
fn serves_the_embedded_page_and_presets() {
    let s = Server::start();
    assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);
    let page = get(&s.url);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("trainsim explorer") && page.text().contains("/app.js"));
    assert!(!page.text().contains("https://"), "no CDN");
    for f in ["app.js", "style.css"] {
        assert_eq!(get(&format!("{}{f}", s.url)).status, 200, "{f}");
    }
    let p = get(&format!("{}api/presets", s.url)).json();
    assert_eq!(p["scenarios"][0]["name"], "gpt3-175b-a100-1024");
    assert!(p["gpus"].as_array().unwrap().iter().any(|g| g == "H100-SXM"));
    let one = get(&format!("{}api/presets/llama3-8b-h100-64", s.url)).json();
    assert!(one["scenario"].as_str().unwrap().contains("[parallel]"));
}

/// A 1,024-GPU scenario comes back with figures and SVG charts; a form override changes
/// the plan and the step time; the 1,024-GPU round trip stays near a second on a loaded
/// 2-core machine (the simulation itself takes about 0.3 s).
#[test]
fn runs_a_scenario_with_overrides_quickly() {
    let s = Server::start();
    let url = format!("{}api/run", s.url);
    let r = post_json(&url, &json!({"scenario": gpt3()}));
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!(a["num_gpus"], 1024);
    assert!(a["charts"]["timeline"].as_str().unwrap().contains("<svg"));
    assert!(a["charts"]["breakdown"].as_str().unwrap().contains("<svg"));
    assert_eq!(a["form"]["tp"], 8);
    let started = Instant::now();
    let b = post_json(
        &url,
        &json!({"scenario": gpt3(), "set": {"parallel.tp": 4, "parallel.dp": null}}),
    );
    let took = started.elapsed();
    assert_eq!(b.status, 200, "{}", b.text());
    let b = b.json();
    assert_eq!(b["form"]["tp"], 4);
    assert_eq!(b["form"]["dp"], 32, "dp derived again once removed");
    assert_ne!(a["step_time_s"], b["step_time_s"]);
    assert!(took < Duration::from_secs(3), "1,024-GPU run took {took:?}");
    // downloads and the comparison of the two runs
    let id_a = a["id"].as_u64().unwrap();
    let id_b = b["id"].as_u64().unwrap();
    let j = get(&format!("{}api/runs/{id_b}/results.json", s.url));
    assert_eq!(j.status, 200);
    assert!(j.json()["scenario"]["source"]
        .as_str()
        .unwrap()
        .contains("--set parallel.tp=4"));
    let csv = get(&format!("{}api/runs/{id_b}/summary.csv", s.url)).text();
    assert!(
        csv.starts_with("run,feasible,reason,step_time_s") && csv.lines().count() == 2,
        "{csv}"
    );
    let html = get(&format!("{}api/runs/{id_a}/report.html", s.url)).text();
    assert!(html.contains("<svg") && html.contains("trainsim"));
    let c = get(&format!("{}api/compare?a={id_a}&b={id_b}", s.url)).json();
    let text = c["text"].as_str().unwrap();
    assert!(
        text.contains("parallel.tp") && (text.contains("faster") || text.contains("slower")),
        "{text}"
    );
}

/// A bad scenario is a 400 with the same located message the command line prints; bad
/// overrides and oversized bodies are refused; the server keeps serving.
#[test]
fn bad_input_is_a_located_400_never_a_crash() {
    let s = Server::start();
    let url = format!("{}api/run", s.url);
    let bad = gpt3().replace("recompute = \"selective\"", "recompute = \"most\"");
    let r = post_json(&url, &json!({"scenario": bad}));
    assert_eq!(r.status, 400);
    let e = r.json();
    let line = e["line"].as_u64().expect("a line");
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("parallel.recompute") && msg.contains("\"selective\""),
        "{msg}"
    );
    assert!(msg.starts_with(&format!("scenario.toml:{line}:")), "{msg}");
    // the same text as `trainsim run` prints for the same file
    let dir = std::env::temp_dir().join(format!("trainsim-serve-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scenario.toml"), &bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .current_dir(&dir)
        .args(["run", "scenario.toml", "--no-charts"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), format!("error: {msg}"));
    let r = post_json(&url, &json!({"scenario": "[cluster\nnum_gpus = 8"}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["line"], 1);
    let r = post_json(&url, &json!({"scenario": gpt3(), "set": {"parallel.tq": 2}}));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("did you mean `parallel.tp`"), "{}", r.text());
    let r = post_json(&url, &json!({"scenario": gpt3(), "set": {"parallel.tp": 3}}));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("impossible plan"), "{}", r.text());
    let huge = json!({"scenario": "#".repeat(2 << 20)});
    let r = request("POST", &url, Some(huge.to_string().as_bytes())).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(
        post_json(&url, &json!({"scenario": gpt3()})).status,
        200,
        "still serving"
    );
}

/// A sweep runs in the background and reports progress as server-sent events, then its
/// rows, CSV and heatmap; a search offers its best plans as overrides.
#[test]
fn sweeps_and_searches_stream_progress() {
    let s = Server::start();
    let src = std::fs::read_to_string(repo("scenarios/llama3-8b-h100-64.toml")).unwrap();
    let r = post_json(
        &format!("{}api/sweep", s.url),
        &json!({"scenario": src, "axes": [
            {"field": "parallel.tp", "values": [1, 2, 4]},
            {"field": "parallel.pp", "values": [1, 2]}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let job = r.json()["job"].as_u64().unwrap();
    let ev = get(&format!("{}api/jobs/{job}/events", s.url));
    assert!(ev.header("content-type").unwrap_or("").contains("text/event-stream"));
    let text = ev.text();
    assert!(
        text.contains("event: progress") && text.contains("event: done"),
        "{text}"
    );
    let done = text
        .split("event: done\ndata: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(done).unwrap();
    assert_eq!(v["points"], 6);
    assert!(v["charts"].as_array().unwrap().iter().any(|c| c == "heatmap.png"));
    let png = get(&format!("{}api/jobs/{job}/files/heatmap.png", s.url));
    assert!(png.body.starts_with(b"\x89PNG"));
    let csv = get(&format!("{}api/jobs/{job}/files/sweep.csv", s.url)).text();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    let r = post_json(
        &format!("{}api/sweep", s.url),
        &json!({"scenario": src, "axes": [{"field": "parallel.micro_batch_sizes", "values": [1, 2]}]}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("did you mean `parallel.micro_batch_size`"),
        "{}",
        r.text()
    );
    let r = post_json(
        &format!("{}api/search", s.url),
        &json!({"scenario": src, "zero": [1], "top": 2}),
    );
    let job = r.json()["job"].as_u64().unwrap();
    let text = get(&format!("{}api/jobs/{job}/events", s.url)).text();
    let done = text
        .split("event: done\ndata: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let v: serde_json::Value = serde_json::from_str(done.lines().next().unwrap()).unwrap();
    assert_eq!(v["top"].as_array().unwrap().len(), 2);
    assert!(v["top"][0]["set"]["parallel.tp"].is_u64());
}

/// A cluster of GPU groups: the form names its groups (the one-GPU picker does not apply)
/// and offers the rank modes; every replica is what it runs, and the representative mode
/// is refused with the field named. The layer and micro-batch split controls see the
/// resolved splits and their values are accepted.
#[test]
fn the_form_knows_gpu_groups_and_rank_modes() {
    let s = Server::start();
    let url = format!("{}api/run", s.url);
    let split = std::fs::read_to_string(repo("scenarios/llama3-8b-h100-a100-32-split.toml")).unwrap();
    let r = post_json(&url, &json!({"scenario": split}));
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!(a["form"]["gpu_groups"], "(16 H100-SXM + 16 A100-80GB)");
    assert_eq!(a["form"]["ranks"], "auto");
    assert_eq!(
        a["form"]["rank_modes"],
        json!(["auto", "representative", "every_replica"])
    );
    let b = post_json(
        &url,
        &json!({"scenario": split, "set": {"simulation.ranks": "representative"}}),
    );
    assert_eq!(b.status, 400, "{}", b.text());
    assert!(b.text().contains("simulation.ranks"), "{}", b.text());
    let c = post_json(&url, &json!({"scenario": gpt3()})).json();
    assert_eq!(c["form"]["gpu_groups"], serde_json::Value::Null);
    // the split controls: the resolved uneven splits, null where even; the rules and lists
    // the controls send are accepted
    assert_eq!(a["form"]["stage_layers"], serde_json::Value::Null);
    let batches = a["form"]["replica_micro_batches"].as_array().unwrap().clone();
    assert_eq!(batches.len(), 8);
    assert!(batches.iter().any(|b| b != &batches[0]), "{batches:?}");
    assert_eq!(c["form"]["replica_micro_batches"], serde_json::Value::Null);
    for set in [
        json!({"parallel.stage_layers": "balanced"}),
        json!({"parallel.stage_layers": [20, 12]}),
        json!({"parallel.replica_micro_batches": null}),
        json!({"parallel.replica_micro_batches": batches}),
    ] {
        let r = post_json(&url, &json!({"scenario": split, "set": set}));
        assert_eq!(r.status, 200, "{set}: {}", r.text());
    }
    let d = post_json(
        &url,
        &json!({"scenario": split, "set": {"parallel.stage_layers": [20, 12]}}),
    )
    .json();
    assert_eq!(d["form"]["stage_layers"], json!([20, 12]));
}
