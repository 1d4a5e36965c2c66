//! The full-screen view of `hotkey top`, like `top`: refreshed every interval, keys to sort,
//! pause, change the count and quit.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};

use crate::discover::Seeds;
use crate::render::{COLUMNS, cells, header, right_aligned, widths};
use crate::top::{Query, Snapshot};
use crate::{By, Discovery};

/// The help line at the bottom of the screen.
pub const KEYS_HELP: &str = "q quit  p/space pause  t/r/w sort by total/reads/writes  +/- count";
/// The most keys `+` asks for (as `--count` allows).
const MAX_COUNT: u32 = 100_000;

pub fn run(seeds: &Seeds, how: &Discovery, query: Query, interval: Duration) -> Result<(), String> {
    let mut terminal = ratatui::try_init().map_err(|e| format!("the terminal: {e}"))?;
    let result = View {
        seeds,
        how,
        query,
        interval,
        paused: false,
    }
    .run(&mut terminal);
    ratatui::restore();
    result
}

struct View<'a> {
    seeds: &'a Seeds,
    how: &'a Discovery,
    query: Query,
    interval: Duration,
    paused: bool,
}

impl View<'_> {
    fn run(&mut self, terminal: &mut DefaultTerminal) -> Result<(), String> {
        let mut snapshot = Snapshot::take(self.seeds, self.how, &self.query);
        let mut next = Instant::now() + self.interval;
        loop {
            terminal
                .draw(|frame| self.draw(frame, &snapshot))
                .map_err(|e| format!("the terminal: {e}"))?;
            let wait = next.saturating_duration_since(Instant::now());
            let pressed = event::poll(wait).map_err(|e| format!("the terminal: {e}"))?;
            let mut refresh = !pressed;
            if pressed {
                match event::read().map_err(|e| format!("the terminal: {e}"))? {
                    Event::Key(key) if key.kind == KeyEventKind::Press => {
                        let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
                            && key.code == KeyCode::Char('c');
                        match key.code {
                            KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                            _ if ctrl_c => return Ok(()),
                            KeyCode::Char('p' | ' ') => self.paused = !self.paused,
                            KeyCode::Char('t') => refresh = self.sort(By::Total),
                            KeyCode::Char('r') => refresh = self.sort(By::Reads),
                            KeyCode::Char('w') => refresh = self.sort(By::Writes),
                            KeyCode::Char('+' | '=') => {
                                self.query.count = (self.query.count + 1).min(MAX_COUNT);
                                refresh = true;
                            }
                            KeyCode::Char('-') => {
                                self.query.count = self.query.count.saturating_sub(1).max(1);
                                refresh = true;
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            if refresh && !self.paused {
                snapshot = Snapshot::take(self.seeds, self.how, &self.query);
                next = Instant::now() + self.interval;
            } else if refresh {
                next = Instant::now() + self.interval;
            }
        }
    }

    /// Sets the order; true, so the view refreshes at once (each node's TOP is by this order).
    fn sort(&mut self, by: By) -> bool {
        self.query.by = by;
        true
    }

    fn draw(&self, frame: &mut Frame, snapshot: &Snapshot) {
        let errors = snapshot.errors();
        let [top, table, bottom] = Layout::vertical([
            Constraint::Length(1 + errors.len() as u16),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let mut head = header(snapshot, &self.query);
        head.push_str(&format!(" — count {}", self.query.count));
        if self.paused {
            head.push_str(" — PAUSED");
        }
        let mut lines = vec![Line::styled(
            head,
            Style::new().add_modifier(Modifier::BOLD),
        )];
        lines.extend(errors.into_iter().map(|e| Line::from(format!("DOWN {e}"))));
        frame.render_widget(Paragraph::new(lines), top);

        // The order's column is marked; by total, the header says so.
        let sorted = match self.query.by {
            By::Total => None,
            By::Reads => Some(3),
            By::Writes => Some(4),
        };
        let titles = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| match Some(i) == sorted {
                true => format!("{c}*"),
                false => c.to_string(),
            });
        let cells: Vec<[String; 9]> = snapshot.keys.iter().map(cells).collect();
        let widths = widths(&cells).map(|w| Constraint::Length(w as u16));
        let align = |i: usize, text: String| match right_aligned(i) {
            true => Line::from(text).right_aligned(),
            false => Line::from(text),
        };
        let titles = titles.enumerate().map(|(i, t)| align(i, t));
        let rows = cells
            .into_iter()
            .map(|row| Row::new(row.into_iter().enumerate().map(|(i, c)| align(i, c))));
        let table_widget = Table::new(rows, widths)
            .column_spacing(2)
            .header(Row::new(titles).style(Style::new().add_modifier(Modifier::REVERSED)));
        frame.render_widget(table_widget, table);
        frame.render_widget(Paragraph::new(KEYS_HELP), bottom);
    }
}
