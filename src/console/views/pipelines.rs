//! Pipelines: name, schedule in its time zone, next fire time (in that zone), last run,
//! paused, and the durations of recent runs, inline and as a sparkline of the selected one.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Style},
    widgets::{Block, Sparkline, Widget as _},
};

use super::table::{self, Cell, Col, fixed, flex};
use crate::console::{
    app::{App, window},
    data::PipelineRow,
    text,
};

const COLS: [Col; 6] = [
    flex("PIPELINE", 12),
    flex("SCHEDULE", 14),
    fixed("NEXT FIRE", 26),
    fixed("LAST RUN", 24),
    fixed("PAUSED", 6),
    fixed("RECENT", 12),
];

/// Height of the sparkline panel under the table, when there is room.
fn split(body: Rect) -> (Rect, Rect) {
    let panel = if body.height >= 14 { 5 } else { 0 };
    let [table, spark] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(panel)]).areas(body);
    (table, spark)
}

pub fn page(body: Rect) -> usize {
    table::page(split(body).0)
}

/// The next fire time in the pipeline's own zone, with how far away it is.
fn next_fire(p: &PipelineRow, now: DateTime<Utc>) -> String {
    if p.paused {
        return "- (paused)".to_owned();
    }
    let Some(at) = p.next_fire else {
        return if p.cron.is_some() {
            "- (planned when a daemon runs)".to_owned()
        } else {
            "- (manual)".to_owned()
        };
    };
    let local = match p.timezone.as_deref().map(Tz::from_str) {
        Some(Ok(tz)) => at.with_timezone(&tz).format("%m-%d %H:%M %Z").to_string(),
        _ => at.format("%m-%d %H:%M UTC").to_string(),
    };
    format!("{local} {}", text::relative(at, now))
}

fn row(p: &PipelineRow, now: DateTime<Utc>) -> Vec<Cell> {
    let schedule = match (&p.cron, &p.timezone) {
        (Some(cron), Some(tz)) => format!("{cron} {tz}"),
        (Some(cron), None) => cron.clone(),
        _ => "manual".to_owned(),
    };
    let last = match &p.last_run {
        Some(r) => Cell::styled(
            format!(
                "#{} {} {}",
                r.id,
                r.state,
                text::duration(r.started_at, r.finished_at, now)
            ),
            Style::new().fg(text::run_color(r.state)),
        ),
        None => Cell::styled("never run", text::dim()),
    };
    vec![
        Cell::new(p.name.clone()),
        Cell::new(schedule),
        Cell::new(next_fire(p, now)),
        last,
        if p.paused {
            Cell::styled("paused", Style::new().fg(Color::Yellow))
        } else {
            Cell::styled("no", text::dim())
        },
        Cell::styled(
            text::sparkline(&p.recent_ms, 12),
            Style::new().fg(Color::Cyan),
        ),
    ]
}

pub fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let state = &app.pipelines;
    if !state.loaded {
        text::note("loading pipelines…", Style::new(), body, buf);
        return;
    }
    if state.rows.is_empty() {
        text::note(
            "No pipelines applied yet: `patron pipelines apply jobs/` stores them.",
            Style::new(),
            body,
            buf,
        );
        return;
    }
    let (table_area, spark_area) = split(body);
    let page = table::page(table_area);
    let len = state.rows.len();
    let offset = window(state.cursor.selected, state.cursor.offset, page, len);
    let rows = state.rows[offset..(offset + page).min(len)]
        .iter()
        .map(|p| row(p, app.now));
    table::render(
        table_area,
        buf,
        &COLS,
        rows,
        state.cursor.selected.checked_sub(offset),
    );
    if spark_area.height == 0 {
        return;
    }
    let Some(p) = state.selected() else {
        return;
    };
    let max = p.recent_ms.iter().copied().max().unwrap_or(0);
    let title = if p.recent_ms.is_empty() {
        format!(" {} · no finished runs yet ", text::fit(&p.name, 40))
    } else {
        format!(
            " {} · durations of the last {} runs · longest {} ",
            text::fit(&p.name, 40),
            p.recent_ms.len(),
            text::human_ms(max as i64)
        )
    };
    let title = text::fit(&title, spark_area.width.saturating_sub(2) as usize);
    Sparkline::default()
        .block(Block::bordered().title(title))
        .data(p.recent_ms.iter().copied())
        .style(Style::new().fg(Color::Cyan))
        .render(spark_area, buf);
}
