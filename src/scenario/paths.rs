//! Dotted paths into a scenario's TOML table (`parallel.tp`): set, remove, read. What
//! `--set` overrides and sweep axes are made of.

/// Sets `a.b.c = v`, creating tables on the way.
pub fn set_path(t: &mut toml::Table, path: &str, v: toml::Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = t;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), v);
            return;
        }
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
}

/// Removes `a.b.c`; false when it was not there.
pub fn remove_path(t: &mut toml::Table, path: &str) -> bool {
    match path.split_once('.') {
        None => t.remove(path).is_some(),
        Some((head, rest)) => match t.get_mut(head).and_then(|v| v.as_table_mut()) {
            Some(sub) => remove_path(sub, rest),
            None => false,
        },
    }
}

/// Reads a number (or boolean as 0/1) at a dotted path.
pub fn get_number(t: &toml::Table, path: &str) -> Option<f64> {
    let mut cur: &toml::Value = t.get(path.split('.').next()?)?;
    for p in path.split('.').skip(1) {
        cur = cur.as_table()?.get(p)?;
    }
    match cur {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        toml::Value::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}
