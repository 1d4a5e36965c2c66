//! Where the module is.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// The module to load: `$HOTKEY_MODULE`, or the newest `libhotkey.so` in
/// `target/<profile>/` or `target/<profile>/deps/`, the profile directory being the first one
/// above the running executable that holds `deps/`. That covers test binaries
/// (`target/<profile>/deps/<test>`), examples (`target/<profile>/examples/<example>`) and
/// benches of every crate in the workspace.
pub fn module_path() -> Result<PathBuf, Error> {
    if let Ok(path) = std::env::var("HOTKEY_MODULE") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::new(format!(
                "HOTKEY_MODULE={} does not exist: build it or unset HOTKEY_MODULE",
                path.display()
            )));
        }
        return Ok(path);
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(format!("path of the running executable: {e}")))?;
    let profile = profile_dir(&exe).ok_or_else(|| {
        Error::new(format!(
            "{} is not inside a cargo target/<profile>/ directory: set HOTKEY_MODULE to the .so",
            exe.display()
        ))
    })?;
    let deps = profile.join("deps");
    let candidates = [profile.join("libhotkey.so"), deps.join("libhotkey.so")];
    // Both may exist (a `cargo build` uplifts a copy); the newer one is the current build.
    candidates
        .iter()
        .filter_map(|p| Some((fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .ok_or_else(|| {
            let build = match profile.file_name().and_then(|n| n.to_str()) {
                Some("release") => "cargo build -p hotkey --release",
                _ => "cargo build -p hotkey",
            };
            Error::new(format!(
                "the module is not built: neither {} nor {} exists (run `{build}`, \
                 or set HOTKEY_MODULE to the .so)",
                candidates[0].display(),
                candidates[1].display()
            ))
        })
}

/// `target/<profile>`: the nearest directory above `exe` that holds `deps/`.
fn profile_dir(exe: &Path) -> Option<&Path> {
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("deps").is_dir())
}

/// Sets `name` to `value` in `args` (the module's `<name> <value>` arguments), in place when it
/// is there already, so that the last setting wins without repeating the name.
pub(crate) fn set_module_arg(args: &mut Vec<(String, String)>, name: &str, value: &str) {
    match args.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => args.push((name.to_string(), value.to_string())),
    }
}
