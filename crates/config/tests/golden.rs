//! Golden tests: every `tests/ui/*.toml` is loaded and its errors compared
//! with `*.err` next to it. `BLESS=1 cargo test -p stratus-config` rewrites them.

use std::path::Path;

#[test]
fn config_errors_match_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for toml in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        count += 1;
        let text = std::fs::read_to_string(&toml).unwrap();
        let shown = Path::new("tests/ui").join(toml.file_name().unwrap());
        let got = match stratus_config::load_str(&text, &shown, &dir) {
            Ok(_) => "ok\n".to_owned(),
            Err(e) => format!("{e}\n"),
        };
        let err_file = toml.with_extension("err");
        if bless {
            std::fs::write(&err_file, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&err_file).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{}:\n--- want\n{want}--- got\n{got}",
                toml.display()
            ));
        }
    }
    assert!(count >= 5, "expected golden files in {}", dir.display());
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}
