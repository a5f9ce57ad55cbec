use crate::repo;
use trainsim::cli::validate::{compare, mape_pct};

/// The published runs in scenarios/validation: MAPE of step time at most 10%, no run off by
/// more than 20% (the foundation issue's bar). Prints the table on failure.
#[test]
fn validation_set_meets_its_error_bars() {
    let rows = compare(&repo("scenarios/validation")).expect("validation scenarios run");
    assert!(
        rows.len() >= 17,
        "expected the Korthikanti and Megatron-Core sets at least, got {}",
        rows.len()
    );
    let table: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{:<48} {:>9.3} {:>9.3} {:>+7.1}%",
                r.name, r.predicted_s, r.measured_s, r.error_pct
            )
        })
        .collect();
    let mape = mape_pct(&rows);
    let worst = rows.iter().map(|r| r.error_pct.abs()).fold(0.0, f64::max);
    assert!(
        mape <= 10.0 && worst <= 20.0,
        "MAPE {mape:.1}%, worst {worst:.1}%\n{}",
        table.join("\n")
    );
}
