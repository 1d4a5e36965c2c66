//! The book (`docs/src/`, built by `make docs`) and the READMEs cannot drift from the code:
//! every internal link and anchor resolves, every page is in the book's table of contents,
//! every config is on the configuration page and every event field on the events page, both
//! ways. The checks read the markdown, so `make test` needs no mdbook. The commands, their
//! `COMMAND DOCS` summaries, the `INFO` fields and the reply fields come from a real server:
//! `tests/module/docs.rs`. The Rust router's examples compile as doc tests of `hotkey-router`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use hotkey::config::CONFIGS;
use hotkey_protocol::{
    Advice, Event, Heartbeat, KeyEvent, Message, ReadsTo, Replica, ReplicasEvent, Role,
};
use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn book() -> PathBuf {
    root().join("docs/src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn page(name: &str) -> String {
    read(&book().join(name))
}

/// The book's pages, then the READMEs.
fn documents() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(book())
        .expect("docs/src")
        .map(|entry| entry.expect("docs/src entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages.push(root().join("README.md"));
    pages.push(root().join("python/README.md"));
    pages
}

/// What a markdown document offers and points to.
struct Document {
    /// The anchors of its headings, as mdBook and GitHub make them.
    anchors: BTreeSet<String>,
    /// The destinations of its links and images.
    links: Vec<String>,
}

/// A heading's anchor: lower case, letters, digits, `-` and `_` kept, white space as `-`,
/// everything else dropped (mdBook's `normalize_id`, GitHub's rule).
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

fn parse(text: &str) -> Document {
    let mut anchors = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut links = Vec::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Md::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Md::Text(t) | Md::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Md::End(TagEnd::Heading(_)) => {
                let id = anchor(&heading.take().unwrap_or_default());
                // A repeated heading gets `-1`, `-2`, … in both renderers.
                let n = seen.entry(id.clone()).or_insert(0);
                anchors.insert(if *n == 0 {
                    id.clone()
                } else {
                    format!("{id}-{n}")
                });
                *n += 1;
            }
            Md::Start(Tag::Link { dest_url, .. }) | Md::Start(Tag::Image { dest_url, .. }) => {
                links.push(dest_url.into_string());
            }
            _ => {}
        }
    }
    Document { anchors, links }
}

#[test]
fn every_internal_link_and_anchor_of_the_book_and_the_readmes_resolves() {
    let documents: Vec<(PathBuf, Document)> = documents()
        .into_iter()
        .map(|path| {
            let doc = parse(&read(&path));
            (path, doc)
        })
        .collect();
    let book = book().canonicalize().expect("docs/src");
    let mut broken = Vec::new();
    let mut checked = 0;
    for (path, doc) in &documents {
        let dir = path.parent().expect("a document's directory");
        let in_book = dir.canonicalize().expect("directory") == book;
        for link in &doc.links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            let Ok(target) = target.canonicalize() else {
                broken.push(format!("{}: {link}: no such file", path.display()));
                continue;
            };
            if in_book && !target.starts_with(&book) {
                broken.push(format!(
                    "{}: {link}: a page may link only inside docs/src (mdBook copies nothing else)",
                    path.display()
                ));
            }
            if fragment.is_empty() {
                continue;
            }
            let anchors = match documents
                .iter()
                .find(|(p, _)| p.canonicalize().is_ok_and(|p| p == target))
            {
                Some((_, d)) => &d.anchors,
                None => {
                    broken.push(format!(
                        "{}: {link}: an anchor into a file that is not a checked document",
                        path.display()
                    ));
                    continue;
                }
            };
            if !anchors.contains(fragment) {
                broken.push(format!(
                    "{}: {link}: no heading #{fragment} there (it has: {})",
                    path.display(),
                    anchors.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 20,
        "only {checked} internal links found: the parser missed them"
    );
}

#[test]
fn every_page_of_the_book_is_in_its_table_of_contents() {
    let summary = parse(&page("SUMMARY.md"));
    let listed: BTreeSet<String> = summary.links.into_iter().collect();
    for path in documents() {
        if path.parent() != Some(book().as_path()) {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        if name != "SUMMARY.md" {
            assert!(listed.contains(name), "SUMMARY.md does not list {name}");
        }
    }
}

/// The backquoted names in the first column of the page's tables whose first header is
/// `header`.
fn first_column(text: &str, header: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_table = false;
    for line in text.lines() {
        let Some(row) = line.strip_prefix('|') else {
            in_table = false;
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        if first == header {
            in_table = true;
            continue;
        }
        if !in_table || first.starts_with("---") {
            continue;
        }
        names.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    names
}

#[test]
fn the_configuration_page_lists_every_config_and_no_other() {
    let listed = first_column(&page("configuration.md"), "config");
    let configs: BTreeSet<String> = CONFIGS
        .iter()
        .map(|spec| format!("hotkey.{}", spec.name))
        .collect();
    assert_eq!(listed, configs, "the configuration table against CONFIGS");
}

/// One message of each kind the module publishes, with every optional field present.
fn every_message() -> Vec<Message> {
    let advice = Advice::new(ReadsTo::Replicas, 100)
        .read_hot(true)
        .pinned(true);
    [
        Event::Hot(KeyEvent::new(0, b"k", 1.0, 2.0, Some(advice))),
        Event::Update(KeyEvent::new(0, b"k", 1.0, 2.0, Some(advice))),
        Event::Cold(KeyEvent::new(0, b"\xff\x00bin", 1.0, 0.0, None)),
        Event::Heartbeat(Heartbeat::new(1, 2)),
        Event::Replicas(ReplicasEvent::new(vec![Replica::new("127.0.0.1", 7380, 0)])),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, event)| {
        Message::new(i as u64 + 1, "0".repeat(40), 1, event).from_node("n1", Role::Master)
    })
    .collect()
}

fn json_fields(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (name, v) in map {
                out.insert(name.clone());
                json_fields(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| json_fields(v, out)),
        _ => {}
    }
}

#[test]
fn the_events_page_names_every_event_and_field_and_no_other() {
    let text = page("events.md");
    let mut fields = BTreeSet::new();
    let mut events = BTreeSet::new();
    for message in every_message() {
        let json: Value = serde_json::from_str(&message.to_json()).expect("the message's JSON");
        json_fields(&json, &mut fields);
        events.insert(json["event"].as_str().expect("event").to_owned());
    }
    for name in fields.iter().chain(&events) {
        assert!(
            text.contains(&format!("`{name}`")),
            "the events page does not name `{name}`"
        );
    }
    let listed = first_column(&text, "field");
    let extra: Vec<&String> = listed.difference(&fields).collect();
    assert!(
        extra.is_empty(),
        "the events page lists fields no message has: {extra:?}"
    );
}
