//! Workers: each daemon, where it runs, how long since its heartbeat, and what it runs now.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Style},
};

use super::table::{self, Cell, Col, fixed, flex};
use crate::{
    console::{
        app::{App, window},
        data::WorkerRow,
        text,
    },
    pipeline::recovery::Liveness,
};

const COLS: [Col; 7] = [
    flex("WORKER", 10),
    flex("HOST", 10),
    fixed("PID", 7),
    fixed("STATE", 8),
    fixed("HEARTBEAT", 12),
    fixed("STARTED (UTC)", 14),
    flex("RUNNING JOBS", 16),
];

fn row(w: &WorkerRow, now: chrono::DateTime<chrono::Utc>) -> Vec<Cell> {
    // Stale: silent for longer than a lease (`scheduler.lease_ttl`), so probably gone; the
    // reaper takes its jobs back once their leases expire.
    let state_style = match w.liveness {
        Liveness::Stale => Style::new().fg(Color::Red),
        Liveness::Running => Style::new().fg(Color::Green),
        Liveness::Stopped => text::dim(),
    };
    let heartbeat_style = if w.liveness == Liveness::Stale {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    let state = w.liveness.to_string();
    let running = if w.running.is_empty() {
        "-".to_owned()
    } else {
        let list: Vec<String> = w
            .running
            .iter()
            .map(|(run, job)| format!("{run}/{job}"))
            .collect();
        format!("{}: {}", w.running.len(), list.join(", "))
    };
    vec![
        Cell::new(w.id.clone()),
        Cell::new(w.host.clone()),
        Cell::new(w.pid.to_string()),
        Cell::styled(state, state_style),
        Cell::styled(
            format!("{} ago", text::age(w.heartbeat_at, now)),
            heartbeat_style,
        ),
        Cell::new(text::short_time(Some(w.started_at))),
        Cell::new(running),
    ]
}

pub fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let state = &app.workers;
    if !state.loaded {
        text::note("loading workers…", Style::new(), body, buf);
        return;
    }
    if state.rows.is_empty() {
        text::note(
            "No daemon has registered: start one with `patron daemon`.",
            Style::new(),
            body,
            buf,
        );
        return;
    }
    let page = table::page(body);
    let len = state.rows.len();
    let offset = window(state.cursor.selected, state.cursor.offset, page, len);
    let rows = state.rows[offset..(offset + page).min(len)]
        .iter()
        .map(|w| row(w, app.now));
    table::render(
        body,
        buf,
        &COLS,
        rows,
        state.cursor.selected.checked_sub(offset),
    );
}
