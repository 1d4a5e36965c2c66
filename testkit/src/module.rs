//! Where the module under test is.

use std::fs;
use std::path::{Path, PathBuf};

/// The module under test: `$HOTKEY_MODULE`, or the newest `libhotkey.so` in
/// `target/<profile>/` or `target/<profile>/deps/`, the profile directory being the first one
/// above the running executable that holds `deps/`. That covers test binaries
/// (`target/<profile>/deps/<test>`), examples (`target/<profile>/examples/<example>`) and
/// benches of every crate in the workspace.
pub fn module_path() -> PathBuf {
    if let Ok(path) = std::env::var("HOTKEY_MODULE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "HOTKEY_MODULE={} does not exist: build it or unset HOTKEY_MODULE",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("path of the running executable");
    let profile = profile_dir(&exe).unwrap_or_else(|| {
        panic!(
            "{} is not inside a cargo target/<profile>/ directory: set HOTKEY_MODULE to the .so",
            exe.display()
        )
    });
    let deps = profile.join("deps");
    let candidates = [profile.join("libhotkey.so"), deps.join("libhotkey.so")];
    // Both may exist (a `cargo build` uplifts a copy); the newer one is the current build.
    candidates
        .iter()
        .filter_map(|p| Some((fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            let build = match profile.file_name().and_then(|n| n.to_str()) {
                Some("release") => "cargo build -p hotkey --release",
                _ => "cargo build -p hotkey",
            };
            panic!(
                "the module is not built: neither {} nor {} exists (run `{build}`, \
                 or set HOTKEY_MODULE to the .so)",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// `target/<profile>`: the nearest directory above `exe` that holds `deps/`.
fn profile_dir(exe: &Path) -> Option<&Path> {
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("deps").is_dir())
}
