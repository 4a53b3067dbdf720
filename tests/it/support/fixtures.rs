//! The files under `tests/fixtures/`: documented webhook events (and their
//! shapes in `shapes/`), and documented REST bodies in `rest/`.

use std::path::PathBuf;

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The bytes of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every event fixture (the `.json` files directly under `tests/fixtures/`),
/// as (file name, bytes), sorted by name.
pub fn event_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|entry| entry.expect("a fixtures directory entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

/// A documented REST body, `tests/fixtures/rest/<name>`, as text.
pub fn rest_fixture(name: &str) -> String {
    let bytes = fixture(&format!("rest/{name}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("rest/{name} is not UTF-8: {e}"))
}

/// A documented REST body, parsed.
pub fn rest_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&rest_fixture(name))
        .unwrap_or_else(|e| panic!("rest/{name} is not JSON: {e}"))
}
