use std::process::Command;
use trainsim::network::nccl;

fn cases() -> Vec<(std::path::PathBuf, nccl::NcclCase)> {
    nccl::load_cases(&crate::repo("scenarios/validation/nccl-tests")).expect("cases load")
}

fn trainsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainsim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every published large-message bus bandwidth (scenarios/validation/nccl-tests) within 10%
/// on one node and 13% across nodes, with the committed constants. The multi-node round-1
/// rings (A100/HDR, H100/NDR at 0.95-0.96 of line rate) share `net_efficiency` with the
/// round-2 clusters (0.86-0.92 of line rate), so they come out 9-13% low (docs/network.md).
#[test]
fn nccl_published_busbw_within_10_percent_on_one_node() {
    let all = cases();
    assert!(all.len() >= 10, "{} cases", all.len());
    let mut holdouts = 0;
    for (path, case) in &all {
        assert!(case.source.contains("https://"), "{}: cite the source", path.display());
        assert!(
            case.size_bytes >= 1024.0f64.powi(3) || case.notes.contains("Largest published size"),
            "{}: large messages only",
            path.display()
        );
        let r = nccl::predict(case).unwrap_or_else(|e| panic!("{e}"));
        let bar = if case.num_gpus > case.gpus_per_node { 0.13 } else { 0.10 };
        assert!(
            r.error_fraction.abs() <= bar,
            "{}: published {:.1} GB/s, trainsim {:.1} GB/s ({:+.1}%)",
            r.name,
            r.published_gbyte_per_s,
            r.trainsim_gbyte_per_s,
            r.error_fraction * 100.0
        );
        assert!(
            ["calibration", "holdout"].contains(&case.role.as_str()),
            "{}",
            case.name
        );
        holdouts += (case.role == "holdout") as usize;
    }
    assert!(holdouts * 2 >= all.len(), "at least half of the cases are held out");
}

/// `trainsim collective --validate` prints every case, the summary and the cross-validation.
#[test]
fn nccl_validate_command_prints_every_case() {
    let dir = crate::repo("scenarios/validation/nccl-tests");
    let (code, out, err) = trainsim(&["collective", "--validate", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("h100-8-all-reduce-nvls-azure") && out.contains("mean |error|"),
        "{out}"
    );
    let role = |l: &&str| matches!(l.split_whitespace().nth(1), Some("holdout" | "calibration"));
    assert_eq!(out.lines().filter(role).count(), cases().len(), "{out}");
    // then the leave-one-system-out table of the round-2 file: 10 system x operation rows
    let rows = out
        .lines()
        .filter(|l| l.ends_with("  met") || l.ends_with("  MISSED"))
        .count();
    assert!(out.contains("leave-one-system-out") && rows == 10, "{out}");
}

/// The sample log (t = 30 us + S 2(n-1)/n / 360 GB/s with a 1% ripple, nccl-tests format):
/// the alpha-beta fit recovers both; the NCCL model's fit writes its efficiency and latency
/// scale to a fragment, atomically, that loads into a scenario.
#[test]
fn nccl_fit_recovers_alpha_and_busbw_and_writes_a_loadable_fragment() {
    let log = crate::repo("tests/data/nccl-tests-all-reduce-2x8-h100.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let parsed = trainsim::network::fit::parse_log(&text, "sample").unwrap();
    assert_eq!((parsed.ranks, parsed.hosts, parsed.rows.len()), (Some(16), Some(2), 14));
    let f = trainsim::network::fit::fit_alpha_beta(&parsed.rows, 2.0 * 15.0 / 16.0, "sample").unwrap();
    assert!((f.alpha_s - 30e-6).abs() < 1.5e-6, "alpha {}", f.alpha_s);
    assert!(
        (f.busbw_bytes_per_s / 360e9 - 1.0).abs() < 0.01,
        "busbw {}",
        f.busbw_bytes_per_s
    );
    assert!(f.rms_residual_fraction < 0.01);

    let dir = std::env::temp_dir().join(format!("trainsim-fit-{}", std::process::id()));
    let frag = dir.join("net.toml");
    let (code, out, err) = trainsim(&[
        "collective",
        "--fit",
        log.to_str().unwrap(),
        "--algo",
        "ring",
        "--write-fragment",
        frag.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("16 x H100-SXM (8 per node)") && out.contains("residual"),
        "{out}"
    );
    let toml = std::fs::read_to_string(&frag).unwrap();
    let key = |k: &str| -> f64 {
        toml.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{k}: {toml}"))
    };
    // The NCCL model's fit: its network efficiency (above the alpha-beta 360 / 400 = 0.9, as
    // the model's two-node ring also pays a straggler factor and per-step latency) and its
    // latency scale, with an rms residual under 10% on this alpha-beta-shaped log.
    let (eff, scale) = (key("scale_out_efficiency"), key("latency_scale"));
    assert!(
        toml.contains("[cluster.network]") && eff > 0.9 && eff <= 1.0 && scale > 0.0,
        "{toml}"
    );
    let rms: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("NCCL model rms residual"))
        .and_then(|v| v.trim().trim_end_matches('%').trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(rms < 10.0, "{out}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "net.toml")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    // the fragment is a valid [cluster.network] section of a scenario
    let src = format!(
        "[cluster]\nnum_gpus = 16\n[cluster.gpu]\npreset = \"H100-SXM\"\n{toml}[model]\npreset = \"llama2-7b\"\n[parallel]\ntp = 8\npp = 1\n[training]\nglobal_batch_size = 16\nseq_length = 2048\n"
    );
    let s = crate::scenario(&src);
    assert!((s.input.cluster.scale_out_efficiency - eff).abs() < 1e-9);
    assert_eq!(s.input.cluster.fabric.latency_scale, Some(scale));
}

/// Bad logs and bad fit arguments: exit 2 with the file (and line), never a panic.
#[test]
fn nccl_fit_bad_inputs_exit_2_naming_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("trainsim-fitbad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(crate::repo("tests/data/nccl-tests-all-reduce-2x8-h100.log")).unwrap();
    let truncated = dir.join("truncated.log");
    let lines: Vec<&str> = good.lines().collect();
    let row = lines
        .iter()
        .position(|l| l.trim_start().starts_with("2097152"))
        .unwrap();
    let mut bad = lines.clone();
    bad[row] = "     2097152        524288     float     sum      -1    41.33";
    std::fs::write(&truncated, bad.join("\n")).unwrap();
    let one = dir.join("one-size.log");
    std::fs::write(&one, lines[..=row - 1].join("\n")).unwrap();
    let empty = dir.join("empty.log");
    std::fs::write(&empty, "nothing here\n").unwrap();
    let missing = dir.join("missing.log");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--fit", truncated.to_str().unwrap()],
            format!("truncated.log:{}:", row + 1),
        ),
        (vec!["--fit", one.to_str().unwrap()], "at least 2".into()),
        (vec!["--fit", empty.to_str().unwrap()], "no result rows".into()),
        (
            vec!["--fit", missing.to_str().unwrap()],
            "missing.log: cannot read".into(),
        ),
        (
            vec!["--fit", truncated.to_str().unwrap(), "--gpus", "8"],
            "truncated.log".into(),
        ),
        (
            vec!["--fit", one.to_str().unwrap(), "--gpus", "8"],
            "lists 16 ranks".into(),
        ),
        (vec!["--write-fragment", "x.toml"], "--fit".into()),
    ];
    for (extra, want) in cases {
        let mut args = vec!["collective"];
        args.extend(extra.iter());
        let (code, _, err) = trainsim(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(
            err.contains(&want) && !err.contains("panicked"),
            "{extra:?}: want {want}: {err}"
        );
    }
}
