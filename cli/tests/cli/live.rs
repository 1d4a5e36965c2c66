//! The live view in a real terminal: `hotkey top` in a detached tmux session of a fixed size,
//! read with `capture-pane`, driven with `send-keys`.

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hotkey_testkit::Server;

use crate::run::{reads, wait_for, writes};

/// A tmux server of its own (`-L`), killed on drop with everything in it.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("hotkey-cli-test-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "hk"]).stdout).into_owned()
    }

    fn wait_for_screen(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        wait_for(what, || {
            let screen = self.screen();
            test(&screen).then_some(screen)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The first table row (the line after the column titles).
fn first_row(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines
        .iter()
        .position(|l| l.trim_start().starts_with("KEY"))
        .and_then(|i| lines.get(i + 1))
        .map(|l| l.to_string())
        .unwrap_or_default()
}

#[test]
fn the_live_view_shows_keys_sorts_on_w_and_quits_on_q() {
    let server = Server::start();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = Arc::clone(&stop);
        let mut conn = server.conn();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                reads(&mut conn, b"leaderboard", 200);
                writes(&mut conn, b"counter", 20);
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let tmux = Tmux::new();
    let command = format!(
        "{} top -p {} --interval 0.2; echo \"hotkey exited $?\"; sleep 60",
        env!("CARGO_BIN_EXE_hotkey"),
        server.port
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "hk",
        "-x",
        "150",
        "-y",
        "20",
        "sh",
        "-c",
        &command,
    ]);

    let screen = tmux.wait_for_screen("the hot key on screen", |s| {
        first_row(s).contains("\"leaderboard\"")
    });
    assert!(screen.contains("nodes: 1 up, 0 down"), "{screen}");
    assert!(screen.contains("by total"), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");

    tmux.run(&["send-keys", "-t", "hk", "w"]);
    let screen = tmux.wait_for_screen("sorted by writes", |s| {
        s.contains("by writes") && first_row(s).contains("\"counter\"")
    });
    assert!(screen.contains("WRITES/S*"), "{screen}");

    tmux.run(&["send-keys", "-t", "hk", "p"]);
    tmux.wait_for_screen("paused", |s| s.contains("PAUSED"));

    tmux.run(&["send-keys", "-t", "hk", "q"]);
    let screen = tmux.wait_for_screen("hotkey exits", |s| s.contains("hotkey exited"));
    assert!(screen.contains("hotkey exited 0"), "{screen}");
    stop.store(true, Ordering::Relaxed);
    traffic.join().expect("the traffic thread");
}
