//! What frames every view: the tab bar, the lost-connection banner, the status line, the key
//! hint bar, and the overlays (help, confirmation, prompt).

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Widget as _, Wrap},
};

use crate::console::{
    app::{App, Connection, Overlay, PromptFor, View},
    text::{self, fit},
};

pub fn tabs(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let mut spans = Vec::new();
    for v in View::ALL {
        let label = format!(" {} {} ", v.index() + 1, v.title());
        if v == app.view {
            spans.push(Span::styled(
                label,
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(label));
        }
    }
    let right = if app.loading && app.last_load.is_none() {
        "loading…".to_owned()
    } else {
        match app.last_load {
            Some((at, took)) => format!(
                "refreshed {} ago · {} ms ",
                text::age(at, app.now),
                took.as_millis()
            ),
            None => String::new(),
        }
    };
    let left_width: usize = spans.iter().map(|s| s.width()).sum();
    let width = area.width as usize;
    let right_width = text::width(&right);
    let line = if left_width + right_width < width {
        spans.push(Span::raw(" ".repeat(width - left_width - right_width)));
        spans.push(Span::styled(right, text::dim()));
        Line::from(spans)
    } else {
        // Too narrow for every tab: the current one, then as many as fit.
        let plain: String = spans.iter().map(|s| s.content.as_ref()).collect();
        Line::from(fit(&plain, width))
    };
    line.render(area, buf);
}

pub fn banner(app: &App, area: Rect, buf: &mut Buffer) {
    let Connection::Lost {
        error,
        since,
        retries,
        next_try,
    } = &app.connection
    else {
        return;
    };
    let wait = (*next_try - app.now).num_seconds().max(0);
    let msg = format!(
        " ⚠ database unreachable for {} (try {retries}, next in {wait}s): {error}",
        text::age(*since, app.now)
    );
    Paragraph::new(fit(&msg, area.width as usize))
        .style(
            Style::new()
                .bg(Color::Red)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD),
        )
        .render(area, buf);
}

pub fn status(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(status) = &app.status else {
        return;
    };
    let (mark, style) = if status.error {
        ("✗ ", Style::new().fg(Color::Red))
    } else {
        ("› ", Style::new().fg(Color::Green))
    };
    Line::styled(
        fit(&format!("{mark}{}", status.text), area.width as usize),
        style,
    )
    .render(area, buf);
}

/// The one-line key hints of each view.
fn hint(view: View) -> &'static str {
    match view {
        View::Pipelines => {
            "↑↓ select · ⏎ runs · t trigger · p pause/resume · 1-6/⇥ views · ? help · q quit"
        }
        View::Runs => {
            "↑↓ select · ⏎ detail · / filter · r rerun failed · c cancel · t trigger · ? help · q quit"
        }
        View::RunDetail => {
            "↑↓←→ job · ⏎ log · r rerun failed · R rerun from job · c cancel · v layout · Esc back · ? help"
        }
        View::Logs => {
            "↑↓ PgUp/PgDn scroll · f follow · / search · n/N next/prev · a attempt · Esc back · ? help"
        }
        View::Workers => "↑↓ select · 1-6/⇥ views · ? help · q quit",
        View::Loyalty => "↑↓ campaign · L launch · a adjust points · 1-6/⇥ views · ? help · q quit",
    }
}

pub fn hints(app: &App, area: Rect, buf: &mut Buffer) {
    Line::styled(fit(hint(app.view), area.width as usize), text::dim()).render(area, buf);
}

const HELP: &[(&str, &str)] = &[
    ("1 … 6, Tab", "Pipelines, Runs, Run, Logs, Workers, Loyalty"),
    ("↑ ↓ j k", "move; PgUp PgDn page; g G first, last"),
    ("?", "this help; q or Ctrl-C quits"),
    ("", ""),
    (
        "Pipelines",
        "⏎ its runs · t trigger (asks for params) · p pause or resume",
    ),
    (
        "Runs",
        "⏎ run detail · / filter: a state, pipeline=NAME, words · Esc clears",
    ),
    (
        "",
        "r rerun failed jobs · c cancel · t trigger its pipeline",
    ),
    (
        "Run",
        "↑↓←→ move through the DAG · ⏎ the job's log · v columns/rows",
    ),
    (
        "",
        "r rerun failed · R rerun from the selected job · c cancel · Esc back",
    ),
    (
        "Logs",
        "f follow · / search · n N next, previous match · a next attempt",
    ),
    (
        "Loyalty",
        "L launch the selected campaign (a daemon pays it)",
    ),
    (
        "",
        "a adjust a customer's points: CUSTOMER POINTS REASON (big ones ask)",
    ),
    ("", ""),
    (
        "",
        "Actions that change something ask first and go to the audit log.",
    ),
    (
        "",
        "Data refreshes every second from the database the daemons use.",
    ),
];

/// A box of `width` × `height` centred in `area` (shrunk to fit).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn overlay(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(overlay) = &app.overlay else {
        return;
    };
    match overlay {
        Overlay::Help => {
            let lines: Vec<Line> = HELP
                .iter()
                .map(|(k, v)| {
                    Line::from(vec![
                        Span::styled(format!("{k:>12}  "), text::header()),
                        Span::raw(*v),
                    ])
                })
                .collect();
            let rect = centered(area, 90, lines.len() as u16 + 2);
            Clear.render(rect, buf);
            Paragraph::new(lines)
                .block(Block::bordered().title(" help · any key closes "))
                .render(rect, buf);
        }
        Overlay::Confirm { question, .. } => {
            // Room for the question wrapped at 70 columns, the y/n line and the border.
            let lines = question.chars().count().div_ceil(60).max(1) as u16;
            let rect = centered(area, 72, lines + 3);
            Clear.render(rect, buf);
            Paragraph::new(vec![
                Line::from(question.as_str()),
                Line::styled("y: yes · n, Esc: no", text::dim()),
            ])
            .wrap(Wrap { trim: true })
            .block(
                Block::bordered()
                    .title(" confirm ")
                    .border_style(Style::new().fg(Color::Yellow)),
            )
            .render(rect, buf);
        }
        Overlay::Prompt { purpose, input } => {
            let label = match purpose {
                PromptFor::TriggerParams { pipeline } => {
                    format!(
                        "Trigger {pipeline}: params KEY=VALUE … (empty for none), ⏎ run, Esc cancel"
                    )
                }
                PromptFor::RunsFilter => {
                    "Filter runs: a state, pipeline=NAME, or words; ⏎ apply, empty clears"
                        .to_owned()
                }
                PromptFor::LogSearch => "Search the log; ⏎ find, empty clears".to_owned(),
                PromptFor::Adjust => {
                    "Adjust points: CUSTOMER POINTS REASON (e.g. C000123 -50 goodwill), ⏎ adjust, Esc cancel"
                        .to_owned()
                }
            };
            let rect = centered(area, 80, 4);
            Clear.render(rect, buf);
            let inner = rect.width.saturating_sub(4) as usize;
            // Show the end of a long input: that is where the typing happens.
            let shown: String = {
                let chars: Vec<char> = input.chars().collect();
                let keep = inner.saturating_sub(1);
                chars[chars.len().saturating_sub(keep)..].iter().collect()
            };
            Paragraph::new(vec![
                Line::styled(fit(&label, inner), text::dim()),
                Line::from(vec![
                    Span::raw(shown),
                    Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
                ]),
            ])
            .block(Block::bordered().title(" input "))
            .render(rect, buf);
        }
    }
}
