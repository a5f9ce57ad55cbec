//! The explorer's HTTP API (JSON in and out) and its routes.
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `/app.js`, `/style.css` | the page (embedded) |
//! | `GET /api/presets` | shipped scenarios, GPU and model presets, version |
//! | `GET /api/presets/{name}` | one shipped scenario's TOML |
//! | `POST /api/run` | `{scenario, set}` → the run (figures, charts as SVG), or 400 `{error, line, column}` |
//! | `GET /api/runs/{id}/{results.json,report.html,summary.csv}` | downloads |
//! | `GET /api/compare?a=ID&b=ID` | two runs compared |
//! | `POST /api/sweep` | `{scenario, set, axes: [{field, values}]}` → `{job}` |
//! | `POST /api/search` | `{scenario, set, zero, top, objective}` → `{job}` |
//! | `GET /api/jobs/{id}/events` | server-sent events: `progress`, then `done` or `failed` |
//! | `GET /api/jobs/{id}/files/{name}` | a job's CSV, JSON Lines and chart files |

use super::{assets, AppState, Job, JobState, StoredRun};
use crate::scenario::{Override, ScenarioError};
use crate::simulation::RunResult;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

type Shared = Arc<AppState>;

/// The routes, with the body limit.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(assets::INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(assets::APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(assets::STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/presets", get(presets))
        .route("/api/presets/{name}", get(preset))
        .route("/api/run", post(run))
        .route("/api/runs/{id}/{file}", get(run_file))
        .route("/api/compare", get(compare))
        .route("/api/sweep", post(sweep))
        .route("/api/search", post(search))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/files/{name}", get(job_file))
        .layer(DefaultBodyLimit::max(super::BODY_LIMIT))
        .with_state(state)
}

fn page(body: &'static str, mime: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A scenario error as the 400 body: the message the CLI prints, and its line and column.
pub fn scenario_error(e: &ScenarioError) -> Response {
    let (line, column) = match e {
        ScenarioError::Parse { line, column, .. } => (Some(*line), Some(*column)),
        ScenarioError::Invalid { location, .. } | ScenarioError::Plan { location, .. } => {
            let mut parts = location.trim_start_matches(':').split(':');
            let l = parts.next().and_then(|x| x.parse::<usize>().ok());
            (l, l.and(parts.next().and_then(|x| x.parse::<usize>().ok())))
        }
        _ => (None, None),
    };
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": e.to_string(), "line": line, "column": column })),
    )
        .into_response()
}

/// The form's overrides: `{"parallel.tp": 4, "parallel.dp": null}` (null: remove).
fn overrides(set: &serde_json::Map<String, Value>) -> Result<Vec<Override>, String> {
    let mut out = Vec::new();
    for (path, v) in set {
        crate::scenario::fields::check_path(path)?;
        let value = match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            other => Some(toml_value(other).ok_or_else(|| format!("{path}: unsupported value {other}"))?),
        };
        out.push((path.clone(), value));
    }
    Ok(out)
}

fn toml_value(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().map(toml_value).collect::<Option<_>>()?),
        _ => return None,
    })
}

async fn presets() -> Json<Value> {
    let scenarios: Vec<Value> = assets::SCENARIOS
        .iter()
        .map(|(name, text)| {
            let description = toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| t.get("description").and_then(|d| d.as_str()).map(str::to_string))
                .unwrap_or_default();
            json!({ "name": name, "description": description })
        })
        .collect();
    Json(json!({
        "version": crate::report::VERSION,
        "scenarios": scenarios,
        "gpus": crate::hardware::presets::GPU_PRESETS,
        "models": crate::model::presets::MODEL_PRESETS,
    }))
}

async fn preset(UrlPath(name): UrlPath<String>) -> Response {
    match assets::SCENARIOS.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => Json(json!({ "name": n, "scenario": text })).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no shipped scenario named {name}")),
    }
}

/// Body of `/api/run`, `/api/sweep` and `/api/search`.
#[derive(Debug, Deserialize)]
pub struct RunRequest {
    /// Scenario TOML.
    pub scenario: String,
    /// Overrides by dotted path.
    #[serde(default)]
    pub set: serde_json::Map<String, Value>,
    /// Sweep axes.
    #[serde(default)]
    pub axes: Vec<AxisRequest>,
    /// Search: ZeRO stages.
    #[serde(default)]
    pub zero: Vec<u32>,
    /// Search: plans to make certain.
    #[serde(default)]
    pub top: Option<usize>,
    /// Search: objective name.
    #[serde(default)]
    pub objective: Option<String>,
}

/// One sweep axis from the page.
#[derive(Debug, Deserialize)]
pub struct AxisRequest {
    /// Dotted field.
    pub field: String,
    /// Values.
    pub values: Vec<Value>,
}

/// The page's view of a run.
pub fn run_view(id: u64, r: &RunResult, wall_s: f64) -> Result<Value, String> {
    let charts: serde_json::Map<String, Value> = crate::report::charts::svg_all(r)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    let m = &r.memory;
    Ok(json!({
        "id": id,
        "name": r.name,
        "model": r.model,
        "gpu": r.gpu,
        "num_gpus": r.num_gpus,
        "plan": r.plan,
        "step_time_s": r.step_time_s,
        "step_spread": crate::report::summary::step_spread(r),
        "tokens_per_s": r.tokens_per_s,
        "tokens_per_s_per_gpu": r.tokens_per_s_per_gpu,
        "mfu_pct": 100.0 * r.mfu_fraction,
        "hfu_pct": 100.0 * r.hfu_fraction,
        "bubble_pct": 100.0 * r.bubble_fraction,
        "memory": {
            "total_gib": m.total_gib,
            "capacity_gib": m.capacity_gib,
            "fits": m.fits,
            "verdict": crate::report::summary::memory_verdict(m),
        },
        "breakdown": r.breakdown.categories().into_iter().filter(|(_, s)| *s > 0.0).collect::<Vec<_>>(),
        "summary": crate::report::summary::summary(r),
        "charts": charts,
        "wall_s": wall_s,
    }))
}

/// The resolved plan and cluster, for the form controls.
fn form_view(s: &crate::scenario::Scenario) -> Value {
    let i = &s.input;
    let p = &i.plan;
    let stage_layers = Some(p.layers_per_chunk(i.model.num_layers)).filter(|l| l.iter().any(|&n| n != l[0]));
    json!({
        "tp": p.tp, "pp": p.pp, "dp": p.dp, "ep": p.ep, "cp": p.cp, "expert_tp": p.expert_tp,
        "schedules": crate::parallel::Schedule::names(),
        "virtual_stages": p.virtual_stages,
        "micro_batch_size": p.micro_batch_size,
        "recompute": crate::parallel::Recompute::NAMES[p.recompute as usize],
        "zero_stage": p.zero_stage,
        "schedule": p.schedule.name(),
        "sequence_parallel": p.sequence_parallel,
        "num_gpus": i.cluster.num_gpus,
        "gpus_per_node": i.cluster.gpus_per_node,
        "gpu": i.cluster.gpu.name,
        // a cluster of GPU groups: their label, e.g. "(32 H100-SXM + 32 A100-80GB)"
        "gpu_groups": i.cluster.is_heterogeneous().then(|| i.cluster.gpu_label()),
        "ranks": i.ranks.name(),
        // uneven splits as resolved (a list per chunk and per replica; null: even)
        "stage_layers": stage_layers,
        "replica_micro_batches": p.replica_micro_batches,
        "rank_modes": crate::simulation::replicas::RankMode::NAMES,
        "global_batch_size": i.training.global_batch_size,
        "seq_length": i.training.seq_length,
        "num_layers": i.model.num_layers,
        "num_heads": i.model.num_heads,
        "num_experts": i.model.moe.as_ref().map(|m| m.num_experts),
        "expert_ffn_hidden_size": i.model.moe.as_ref().map(|m| m.expert_ffn_hidden_size),
    })
}

async fn run(State(st): State<Shared>, Json(req): Json<RunRequest>) -> Response {
    let set = match overrides(&req.set) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Ok(_permit) = st.sims.clone().acquire_owned().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let state = st.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let sc = match super::load(&req.scenario, &set) {
            Ok(s) => s,
            Err(e) => return Err(Box::new(scenario_error(&e))),
        };
        let started = Instant::now();
        let r = super::simulate(&sc).map_err(|e| Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, e)))?;
        let wall_s = started.elapsed().as_secs_f64();
        let record = crate::report::ScenarioRecord::of(&sc);
        let form = form_view(&sc);
        let id = state.keep_run(StoredRun {
            result: r.clone(),
            record,
        });
        let mut view = run_view(id, &r, wall_s).map_err(|e| Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, e)))?;
        view["form"] = form;
        Ok(Json(view).into_response())
    })
    .await;
    match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(r)) => *r,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the simulation failed: {e}")),
    }
}

async fn run_file(State(st): State<Shared>, UrlPath((id, file)): UrlPath<(u64, String)>) -> Response {
    let Some(run) = st.run(id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no run {id} (the explorer keeps the last {})", super::KEPT_RUNS),
        );
    };
    let r = &run.result;
    let attach = |name: &str| {
        format!(
            "attachment; filename=\"{}-{name}\"",
            r.name.replace(['"', '/', '\\'], "_")
        )
    };
    match file.as_str() {
        "results.json" => (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::CONTENT_DISPOSITION, attach("results.json")),
            ],
            crate::report::results_json_for(r, Some(&run.record)),
        )
            .into_response(),
        "report.html" => match crate::report::html::report_html(r, Some(&run.record)) {
            Ok(h) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8".to_string())], h).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        "summary.csv" => {
            let row = crate::sweep::run::Row {
                index: 0,
                axis_values: Vec::new(),
                result: Ok(Box::new(r.clone())),
            };
            let mut csv = String::from("run,");
            csv.push_str(&crate::sweep::columns::METRIC_COLUMNS.join(","));
            csv.push('\n');
            let cells: Vec<String> = row
                .csv_cells()
                .into_iter()
                .map(|c| {
                    if c.contains([',', '"', '\n']) {
                        format!("\"{}\"", c.replace('"', "\"\""))
                    } else {
                        c
                    }
                })
                .collect();
            csv.push_str(&cells.join(","));
            csv.push('\n');
            (
                [
                    (header::CONTENT_TYPE, "text/csv".to_string()),
                    (header::CONTENT_DISPOSITION, attach("summary.csv")),
                ],
                csv,
            )
                .into_response()
        }
        other => error(
            StatusCode::NOT_FOUND,
            format!("no file {other}: results.json, report.html or summary.csv"),
        ),
    }
}

/// `?a=ID&b=ID`.
#[derive(Debug, Deserialize)]
pub struct ComparePair {
    /// Baseline run.
    pub a: u64,
    /// Compared run.
    pub b: u64,
}

async fn compare(State(st): State<Shared>, Query(q): Query<ComparePair>) -> Response {
    let (Some(a), Some(b)) = (st.run(q.a), st.run(q.b)) else {
        return error(StatusCode::NOT_FOUND, "one of the runs is no longer kept");
    };
    let c = crate::report::diff::compare(&a.result, &b.result, Some(&a.record.resolved), Some(&b.record.resolved));
    let text = crate::report::diff::text(
        &c,
        &format!("run {} ({}, {})", q.a, a.result.name, a.result.plan),
        &format!("run {} ({}, {})", q.b, b.result.name, b.result.plan),
    );
    Json(json!({ "comparison": c, "text": text })).into_response()
}

/// Registers a job of `kind` and runs `work` on the blocking pool once a job slot is
/// free; its result (or panic) becomes the job's state. Returns the job's id.
fn start_job(
    st: &Shared,
    kind: &'static str,
    work: impl FnOnce(&Job) -> Result<Value, String> + Send + 'static,
) -> u64 {
    let id = st.id();
    let (tx, _) = tokio::sync::watch::channel(JobState::Queued);
    let job = Arc::new(Job {
        kind,
        state: tx,
        dir: st.work_dir.join(format!("job-{id}")),
    });
    st.jobs.lock().expect("jobs lock").insert(id, job.clone());
    let gate = st.jobs_gate.clone();
    tokio::spawn(async move {
        let Ok(_permit) = gate.acquire_owned().await else {
            return;
        };
        let j = job.clone();
        let out = tokio::task::spawn_blocking(move || work(&j)).await;
        let state = match out {
            Ok(Ok(v)) => JobState::Done(v),
            Ok(Err(e)) => JobState::Failed(e),
            Err(e) => JobState::Failed(format!("the {kind} failed: {e}")),
        };
        job.state.send_replace(state);
    });
    id
}

async fn sweep(State(st): State<Shared>, Json(req): Json<RunRequest>) -> Response {
    use crate::sweep::spec::{Axis, SweepSpec};
    let set = match overrides(&req.set) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let sc = match super::load(&req.scenario, &set) {
        Ok(s) => s,
        Err(e) => return scenario_error(&e),
    };
    if req.axes.is_empty() || req.axes.len() > 2 {
        return error(StatusCode::BAD_REQUEST, "give one or two axes");
    }
    let mut axes = Vec::new();
    for a in &req.axes {
        if let Err(m) = crate::scenario::fields::check_path(&a.field) {
            return error(StatusCode::BAD_REQUEST, format!("axis: {m}"));
        }
        let values: Option<Vec<toml::Value>> = a.values.iter().map(toml_value).collect();
        match values {
            Some(v) if !v.is_empty() => axes.push(Axis {
                field: a.field.clone(),
                values: v,
                zip: None,
            }),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("axis {}: give a list of values", a.field),
                )
            }
        }
    }
    let base: toml::Table = match toml::from_str(&sc.source) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let spec = SweepSpec {
        path: super::EDITOR_FILE.into(),
        name: format!("{} sweep", sc.input.name),
        description: String::new(),
        base_path: super::EDITOR_FILE.into(),
        base,
        axes,
        filters: Vec::new(),
    };
    let points = match spec.points() {
        Ok(p) if p.len() <= super::MAX_SWEEP_POINTS => p,
        Ok(p) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} points: the explorer runs at most {}; use trainsim sweep",
                    p.len(),
                    super::MAX_SWEEP_POINTS
                ),
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = start_job(&st, "sweep", move |j| run_sweep_job(&spec, &points, j));
    Json(json!({ "job": id })).into_response()
}

fn run_sweep_job(
    spec: &crate::sweep::spec::SweepSpec,
    points: &[crate::sweep::spec::Point],
    job: &Job,
) -> Result<Value, String> {
    use rayon::prelude::*;
    let total = points.len();
    job.state.send_replace(JobState::Running { done: 0, total });
    std::fs::create_dir_all(&job.dir).map_err(|e| e.to_string())?;
    let axes: Vec<String> = spec.axes.iter().map(|a| a.field.clone()).collect();
    let mut csv = crate::sweep::run::csv_header(spec);
    csv.push('\n');
    let mut jsonl = String::new();
    let mut rows = Vec::new();
    for part in points.chunks(rayon::current_num_threads().max(1) * 2) {
        let done: Vec<crate::sweep::run::Row> =
            part.par_iter().map(|p| crate::sweep::run::run_point(spec, p)).collect();
        for r in done {
            let cells: Vec<String> = r
                .csv_cells()
                .into_iter()
                .map(|c| {
                    if c.contains([',', '"', '\n']) {
                        format!("\"{}\"", c.replace('"', "\"\""))
                    } else {
                        c
                    }
                })
                .collect();
            csv.push_str(&cells.join(","));
            csv.push('\n');
            jsonl.push_str(&r.json_line(&axes));
            jsonl.push('\n');
            rows.push(r);
        }
        job.state.send_replace(JobState::Running {
            done: rows.len(),
            total,
        });
    }
    let csv_path = job.dir.join("sweep.csv");
    std::fs::write(&csv_path, &csv).map_err(|e| e.to_string())?;
    std::fs::write(job.dir.join("sweep.jsonl"), &jsonl).map_err(|e| e.to_string())?;
    let charts = crate::sweep::charts::draw(spec, &csv_path, &Default::default()).map_err(|e| e.to_string())?;
    let mut table: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({ "axes": r.axis_values, "feasible": r.feasible() });
            match &r.result {
                Ok(x) => {
                    v["step_time_s"] = json!(x.step_time_s);
                    v["tokens_per_s_per_gpu"] = json!(x.tokens_per_s_per_gpu);
                    v["mfu_pct"] = json!(100.0 * x.mfu_fraction);
                    v["memory_gib"] = json!(x.memory.total_gib);
                    v["plan"] = json!(x.plan);
                }
                Err(e) => v["reason"] = json!(e),
            }
            if let Ok(x) = &r.result {
                if !x.memory.fits {
                    v["reason"] = json!(format!("out of memory: {:.1} GiB", x.memory.total_gib));
                }
            }
            v
        })
        .collect();
    table.sort_by(|a, b| {
        let key = |v: &Value| {
            if v["feasible"].as_bool() == Some(true) {
                v["step_time_s"].as_f64().unwrap_or(f64::INFINITY)
            } else {
                f64::INFINITY
            }
        };
        key(a).total_cmp(&key(b))
    });
    Ok(json!({
        "kind": "sweep",
        "axes": axes,
        "points": total,
        "feasible": rows.iter().filter(|r| r.feasible()).count(),
        "rows": table,
        "charts": charts.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "files": ["sweep.csv", "sweep.jsonl"],
    }))
}

async fn search(State(st): State<Shared>, Json(req): Json<RunRequest>) -> Response {
    use crate::sweep::search::{Objective, SearchOptions};
    let set = match overrides(&req.set) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let sc = match super::load(&req.scenario, &set) {
        Ok(s) => s,
        Err(e) => return scenario_error(&e),
    };
    let objective = match req.objective.as_deref().unwrap_or("throughput") {
        "throughput" => Objective::Throughput,
        "time_to_target" => Objective::TimeToTarget,
        "cost" => Objective::Cost,
        "energy" => Objective::Energy,
        o => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("objective {o}: throughput, time_to_target, cost or energy"),
            )
        }
    };
    let zero = if req.zero.is_empty() { vec![1] } else { req.zero.clone() };
    if zero.iter().any(|z| *z > 3) {
        return error(StatusCode::BAD_REQUEST, "ZeRO stages are 0, 1, 2 or 3");
    }
    let opts = SearchOptions {
        top: req.top.unwrap_or(5).clamp(1, 20),
        zero_stages: zero,
        objective,
        ..SearchOptions::default()
    };
    let id = start_job(&st, "search", move |j| run_search_job(&sc, &opts, j));
    Json(json!({ "job": id })).into_response()
}

fn run_search_job(
    sc: &crate::scenario::Scenario,
    opts: &crate::sweep::search::SearchOptions,
    job: &Job,
) -> Result<Value, String> {
    use crate::sweep::search::{search, Status};
    use crate::sweep::search_table::{table_csv, why};
    job.state.send_replace(JobState::Running { done: 0, total: 1 });
    std::fs::create_dir_all(&job.dir).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let o = search(&sc.input, opts).map_err(|e| e.0)?;
    let wall_s = started.elapsed().as_secs_f64();
    std::fs::write(job.dir.join("search.csv"), table_csv(&o)).map_err(|e| e.to_string())?;
    let chart = crate::sweep::charts::draw_search_pareto(&o, &sc.input.name, &job.dir).map_err(|e| e.to_string())?;
    let sims: Vec<(&crate::parallel::ParallelPlan, &RunResultRef)> = o
        .candidates
        .iter()
        .filter_map(|c| match &c.status {
            Status::Simulated(r) => Some((&c.plan, r.as_ref())),
            _ => None,
        })
        .collect();
    let top: Vec<Value> = sims
        .iter()
        .take(opts.top)
        .enumerate()
        .map(|(i, (p, r))| {
            json!({
                "rank": i + 1,
                "plan": r.plan,
                "objective": o.objective.value(r),
                "step_time_s": r.step_time_s,
                "mfu_pct": 100.0 * r.mfu_fraction,
                "memory_gib": r.memory.total_gib,
                "why": why(r, sims.get(i + 1).map(|n| (i + 2, n.1))),
                "set": {
                    "parallel.tp": p.tp, "parallel.pp": p.pp, "parallel.dp": p.dp, "parallel.ep": p.ep,
                    "parallel.virtual_stages": p.virtual_stages,
                    "parallel.micro_batch_size": p.micro_batch_size,
                    "parallel.zero_stage": p.zero_stage,
                    "parallel.recompute": crate::parallel::Recompute::NAMES[p.recompute as usize],
                    "parallel.schedule": p.schedule.name(),
                },
            })
        })
        .collect();
    Ok(json!({
        "kind": "search",
        "objective": o.objective.column(),
        "enumerated": o.enumerated,
        "feasible": o.feasible,
        "simulated": o.simulated,
        "wall_s": wall_s,
        "top": top,
        "charts": chart.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "files": ["search.csv"],
    }))
}

type RunResultRef = RunResult;

fn state_event(s: &JobState) -> Event {
    match s {
        JobState::Queued => Event::default()
            .event("progress")
            .data(json!({"queued": true}).to_string()),
        JobState::Running { done, total } => Event::default()
            .event("progress")
            .data(json!({"done": done, "total": total}).to_string()),
        JobState::Done(v) => Event::default().event("done").data(v.to_string()),
        JobState::Failed(e) => Event::default().event("failed").data(json!({"error": e}).to_string()),
    }
}

async fn events(State(st): State<Shared>, UrlPath(id): UrlPath<u64>) -> Response {
    let Some(job) = st.job(id) else {
        return error(StatusCode::NOT_FOUND, format!("no job {id}"));
    };
    let rx = job.state.subscribe();
    // first the current state, then every change, until done or failed
    let stream = futures_util::stream::unfold((rx, true, false), |(mut rx, first, finished)| async move {
        if finished {
            return None;
        }
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let s = rx.borrow_and_update().clone();
        let end = matches!(s, JobState::Done(_) | JobState::Failed(_));
        Some((Ok::<Event, Infallible>(state_event(&s)), (rx, false, end)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

async fn job_file(State(st): State<Shared>, UrlPath((id, name)): UrlPath<(u64, String)>) -> Response {
    let Some(job) = st.job(id) else {
        return error(StatusCode::NOT_FOUND, format!("no job {id}"));
    };
    let allowed = [
        ("sweep.csv", "text/csv"),
        ("sweep.jsonl", "application/jsonl"),
        ("search.csv", "text/csv"),
        ("heatmap.png", "image/png"),
        ("pareto.png", "image/png"),
        ("scaling.png", "image/png"),
    ];
    let Some((_, mime)) = allowed.iter().find(|(n, _)| *n == name) else {
        return error(StatusCode::NOT_FOUND, format!("no file {name}"));
    };
    match std::fs::read(job.dir.join(&name)) {
        Ok(bytes) => {
            let disp = if mime.starts_with("image/") {
                "inline".to_string()
            } else {
                format!("attachment; filename=\"{}-{name}\"", job.kind)
            };
            (
                [
                    (header::CONTENT_TYPE, mime.to_string()),
                    (header::CONTENT_DISPOSITION, disp),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => error(StatusCode::NOT_FOUND, format!("{name} is not there (yet)")),
    }
}
