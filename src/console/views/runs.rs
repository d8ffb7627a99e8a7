//! Runs: the newest runs across pipelines, state in colour, when started, how long, what
//! triggered them; `/` filters.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::Widget as _,
};

use super::table::{self, Cell, Col, fixed, flex};
use crate::console::{
    app::{App, window},
    data::{RUNS_LIMIT, RunRow},
    text,
};

const COLS: [Col; 7] = [
    fixed("RUN", 7),
    flex("PIPELINE", 14),
    fixed("STATE", 10),
    fixed("TRIGGER", 18),
    fixed("STARTED (UTC)", 14),
    fixed("DURATION", 8),
    flex("KEY", 10),
];

fn split(body: Rect) -> (Rect, Rect) {
    let [info, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
    (info, table)
}

pub fn page(body: Rect) -> usize {
    table::page(split(body).1)
}

fn row(r: &RunRow, now: chrono::DateTime<chrono::Utc>) -> Vec<Cell> {
    let state = if r.cancel_requested && !r.state.is_terminal() {
        "cancelling".to_owned()
    } else {
        r.state.to_string()
    };
    let mut state_style = Style::new().fg(text::run_color(r.state));
    if r.state == crate::db::entities::RunState::Failed {
        state_style = state_style.add_modifier(Modifier::BOLD);
    }
    vec![
        Cell::new(r.id.to_string()),
        Cell::new(r.pipeline.clone()),
        Cell::styled(state, state_style),
        Cell::new(r.trigger_label()),
        Cell::new(text::short_time(r.started_at)),
        Cell::new(text::duration(r.started_at, r.finished_at, now)),
        Cell::styled(r.run_key.clone(), text::dim()),
    ]
}

pub fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let (info, table_area) = split(body);
    let state = &app.runs;
    let Some(snapshot) = &state.snapshot else {
        text::note("loading runs…", Style::new(), info, buf);
        return;
    };
    let filter = if state.filter.is_empty() {
        "none (/ to filter)".to_owned()
    } else {
        state.filter.clone()
    };
    let summary = format!(
        "{} shown · newest {} read (at most {RUNS_LIMIT}) · filter: ",
        text::count(snapshot.rows.len(), "run"),
        text::thousands(snapshot.scanned as i64),
    );
    let room = (info.width as usize).saturating_sub(text::width(&summary));
    Line::from(vec![
        Span::styled(summary, text::dim()),
        Span::raw(text::fit(&filter, room)),
    ])
    .render(info, buf);
    if snapshot.rows.is_empty() {
        let msg = if state.filter.is_empty() {
            "No runs yet: press 1, pick a pipeline and t to trigger one."
        } else {
            "No run matches the filter (Esc clears it)."
        };
        Line::from(msg).render(table_area, buf);
        return;
    }
    let page = table::page(table_area);
    let len = snapshot.rows.len();
    let offset = window(state.cursor.selected, state.cursor.offset, page, len);
    let rows = snapshot.rows[offset..(offset + page).min(len)]
        .iter()
        .map(|r| row(r, app.now));
    table::render(
        table_area,
        buf,
        &COLS,
        rows,
        state.cursor.selected.checked_sub(offset),
    );
}
