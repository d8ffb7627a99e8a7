//! Run detail: the run's header, its DAG drawn as layers (upstream left and downstream right,
//! or top to bottom with `v`) with each job's state, attempts and duration, and the selected
//! job's upstreams, downstreams, error and attempts.

use chrono::{DateTime, Utc};
use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Widget as _},
};

use super::table::{self, Cell, Col, fixed, flex};
use crate::console::{
    app::{App, Orientation, window},
    dag::Dag,
    data::{JobNode, RunDetailSnapshot},
    text::{self, fit},
};

pub fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let detail = &app.detail;
    let (Some(snapshot), Some(dag)) = (&detail.snapshot, &detail.dag) else {
        let msg = match detail.run_id {
            Some(id) => format!("loading run {id}…"),
            None => "No run selected: pick one in Runs (2) and press Enter.".to_owned(),
        };
        Line::from(msg).render(body, buf);
        return;
    };
    let [head, main] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(body);
    header(snapshot, app.now, head, buf);
    let (graph, panel) = if main.width >= 110 {
        let [g, p] = Layout::horizontal([Constraint::Min(0), Constraint::Length(50)]).areas(main);
        (g, p)
    } else {
        let panel_h = (main.height / 2).min(10);
        let [g, p] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(panel_h)]).areas(main);
        (g, p)
    };
    match detail.orientation {
        Orientation::Columns => columns(snapshot, dag, detail.job, app.now, graph, buf),
        Orientation::Rows => rows(snapshot, dag, detail.job, app.now, graph, buf),
    }
    job_panel(snapshot, detail.job, app.now, panel, buf);
}

fn header(s: &RunDetailSnapshot, now: DateTime<Utc>, area: Rect, buf: &mut Buffer) {
    let r = &s.run;
    let state = if r.cancel_requested && !r.state.is_terminal() {
        "cancelling".to_owned()
    } else {
        r.state.to_string()
    };
    let first = Line::from(vec![
        Span::styled(format!("run {}", r.id), text::header()),
        Span::raw(format!(" · {} · ", r.pipeline)),
        Span::styled(state, Style::new().fg(text::run_color(r.state))),
        Span::raw(format!(
            " · {} · started {} · {}",
            r.trigger_label(),
            text::short_time(r.started_at),
            text::duration(r.started_at, r.finished_at, now)
        )),
    ]);
    let params = if s.params.is_empty() {
        "no params".to_owned()
    } else {
        s.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let second = format!("key {} · {} jobs · {params}", r.run_key, s.jobs.len());
    let [a, b] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    first.render(a, buf);
    Line::styled(fit(&second, b.width as usize), text::dim()).render(b, buf);
}

/// `✓ name ×2 3.1s` fitted into `width` cells.
fn node_text(job: &JobNode, now: DateTime<Utc>, width: usize) -> String {
    let mut right = text::duration(job.started_at, job.finished_at, now);
    if right == "-" {
        right.clear();
    }
    if job.attempts.len() > 1 {
        right = format!("×{} {right}", job.attempts.len());
    }
    let sym = text::job_symbol(job.state);
    let room = width.saturating_sub(text::width(&right) + 3);
    let left = format!("{sym} {}", fit(&job.name, room.max(1)));
    let gap = width.saturating_sub(text::width(&left) + text::width(&right));
    fit(&format!("{left}{}{right}", " ".repeat(gap)), width)
}

fn node_style(job: &JobNode, selected: bool, neighbour: bool) -> Style {
    let mut style = Style::new().fg(text::job_color(job.state));
    if selected {
        style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
    } else if neighbour {
        style = style.add_modifier(Modifier::UNDERLINED);
    }
    style
}

/// Whether `job` is a direct upstream or downstream of `selected`.
fn neighbour(jobs: &[JobNode], selected: usize, job: usize) -> bool {
    jobs.get(selected).is_some_and(|s| s.after.contains(&job))
        || jobs.get(job).is_some_and(|j| j.after.contains(&selected))
}

fn columns(
    s: &RunDetailSnapshot,
    dag: &Dag,
    selected: usize,
    now: DateTime<Utc>,
    area: Rect,
    buf: &mut Buffer,
) {
    let layers = dag.layers.len();
    if layers == 0 || area.height < 2 || area.width < 4 {
        return;
    }
    let width = area.width as usize;
    let col_w = (width / layers).clamp(18.min(width), 34);
    let visible = (width / col_w).max(1);
    let (sel_layer, sel_row) = dag.place.get(selected).copied().unwrap_or((0, 0));
    let first = window(sel_layer, 0, visible, layers);
    let tallest = dag.layers.iter().map(Vec::len).max().unwrap_or(0);
    let rows = area.height as usize - 1;
    let top = window(sel_row, 0, rows, tallest);
    let scrolled = visible < layers;
    for (c, layer) in (first..layers.min(first + visible)).enumerate() {
        let x = area.x + (c * col_w) as u16;
        let w = col_w.min(width - c * col_w);
        let arrow = if layer + 1 < layers { " →" } else { "" };
        let title = if scrolled {
            format!("stage {}/{layers}{arrow}", layer + 1)
        } else {
            format!("stage {}{arrow}", layer + 1)
        };
        let head = Rect::new(x, area.y, w as u16, 1);
        Line::styled(fit(&title, w), text::dim()).render(head, buf);
        for (r, &job) in dag.layers[layer].iter().skip(top).take(rows).enumerate() {
            let node = &s.jobs[job];
            let cell = Rect::new(x, area.y + 1 + r as u16, w as u16, 1);
            let style = node_style(node, job == selected, neighbour(&s.jobs, selected, job));
            Line::styled(node_text(node, now, w.saturating_sub(2)), style).render(cell, buf);
        }
    }
}

fn rows(
    s: &RunDetailSnapshot,
    dag: &Dag,
    selected: usize,
    now: DateTime<Utc>,
    area: Rect,
    buf: &mut Buffer,
) {
    if area.height == 0 || area.width < 4 {
        return;
    }
    let width = area.width as usize;
    let chip_w = 28.min(width);
    let per_line = (width / (chip_w + 1)).max(1);
    // Each line: the jobs on it (or a stage title), and whether the selection is on it.
    let mut lines: Vec<Line> = Vec::new();
    let mut sel_line = 0;
    for (l, layer) in dag.layers.iter().enumerate() {
        let arrow = if l > 0 { "↓ " } else { "" };
        lines.push(Line::styled(format!("{arrow}stage {}", l + 1), text::dim()));
        for chunk in layer.chunks(per_line) {
            let mut spans = Vec::new();
            for &job in chunk {
                if job == selected {
                    sel_line = lines.len();
                }
                let node = &s.jobs[job];
                spans.push(Span::styled(
                    node_text(node, now, chip_w),
                    node_style(node, job == selected, neighbour(&s.jobs, selected, job)),
                ));
                spans.push(Span::raw(" "));
            }
            lines.push(Line::from(spans));
        }
    }
    let page = area.height as usize;
    let top = window(sel_line, 0, page, lines.len());
    for (i, line) in lines.into_iter().skip(top).take(page).enumerate() {
        line.render(Rect::new(area.x, area.y + i as u16, area.width, 1), buf);
    }
}

const ATTEMPT_COLS: [Col; 6] = [
    fixed("#", 2),
    fixed("STATE", 10),
    flex("WORKER", 6),
    fixed("STARTED", 8),
    fixed("TOOK", 6),
    flex("ERROR", 8),
];

fn job_panel(s: &RunDetailSnapshot, me: usize, now: DateTime<Utc>, area: Rect, buf: &mut Buffer) {
    let Some(job) = s.jobs.get(me) else {
        return;
    };
    if area.height < 3 || area.width < 6 {
        return;
    }
    let title = fit(
        &format!(" job {} ", job.name),
        area.width.saturating_sub(2) as usize,
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let names = |idx: &mut dyn Iterator<Item = usize>| -> String {
        let v: Vec<&str> = idx
            .filter_map(|i| s.jobs.get(i))
            .map(|j| j.name.as_str())
            .collect();
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(", ")
        }
    };
    let downstream = names(
        &mut s
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.after.contains(&me))
            .map(|(i, _)| i),
    );
    let upstream = names(&mut job.after.iter().copied());
    let w = inner.width as usize;
    let mut lines = vec![
        Line::from(vec![
            Span::raw(format!("{} · ", job.kind)),
            Span::styled(
                job.state.to_string(),
                Style::new().fg(text::job_color(job.state)),
            ),
            Span::raw(format!(
                " · {} attempt{} · {}",
                job.attempts.len(),
                if job.attempts.len() == 1 { "" } else { "s" },
                text::duration(job.started_at, job.finished_at, now)
            )),
        ]),
        Line::from(fit(&format!("after: {upstream}"), w)),
        Line::from(fit(&format!("before: {downstream}"), w)),
    ];
    if let Some(error) = &job.error {
        lines.push(Line::styled(
            fit(&format!("error: {}", error.replace('\n', " ")), w),
            Style::new().fg(Color::Red),
        ));
    }
    let used = lines.len().min(inner.height as usize);
    for (i, line) in lines.into_iter().take(used).enumerate() {
        line.render(Rect::new(inner.x, inner.y + i as u16, inner.width, 1), buf);
    }
    let rest = Rect {
        y: inner.y + used as u16,
        height: inner.height.saturating_sub(used as u16),
        ..inner
    };
    if job.attempts.is_empty() {
        text::note("no attempts yet", text::dim(), rest, buf);
        return;
    }
    // The latest attempts matter most: show the last ones that fit.
    let fit_rows = table::page(rest);
    let from = job.attempts.len().saturating_sub(fit_rows);
    let rows = job.attempts[from..].iter().map(|a| {
        vec![
            Cell::new(a.number.to_string()),
            Cell::styled(
                a.state.to_string(),
                Style::new().fg(text::attempt_color(a.state)),
            ),
            Cell::new(a.worker_id.clone()),
            Cell::new(a.started_at.format("%H:%M:%S").to_string()),
            Cell::new(text::duration(Some(a.started_at), a.finished_at, now)),
            Cell::styled(
                a.error.clone().unwrap_or_default().replace('\n', " "),
                Style::new().fg(Color::Red),
            ),
        ]
    });
    table::render(rest, buf, &ATTEMPT_COLS, rows, None);
}
