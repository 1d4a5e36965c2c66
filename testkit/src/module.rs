//! Where the module under test is.

use std::path::PathBuf;

/// The module under test (see `hotkey_servers::module_path`); panics with what to build or set
/// when it is missing.
pub fn module_path() -> PathBuf {
    hotkey_servers::module_path().unwrap_or_else(|e| panic!("{e}"))
}
