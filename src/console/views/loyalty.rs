//! Loyalty: campaigns and their state, points issued per day (a bar chart), the tier
//! distribution, and the latest segments with their sizes and churn distribution.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Style},
    text::{Line, Span},
    widgets::{Bar, BarChart, Block, Widget as _},
};

use super::table::{self, Cell, Col, fixed, flex};
use crate::{
    console::{
        app::{App, window},
        data::{CampaignRow, LoyaltySnapshot, Panel},
        text::{self, fit},
    },
    db::repo::console::CHURN_BUCKETS,
};

const COLS: [Col; 5] = [
    fixed("ID", 5),
    flex("CAMPAIGN", 12),
    fixed("STATE", 10),
    fixed("CUSTOMERS", 9),
    fixed("POINTS", 11),
];

struct Areas {
    campaigns: Rect,
    points: Rect,
    tiers: Rect,
    segments: Rect,
    churn: Rect,
}

fn split(body: Rect) -> Areas {
    let bottom_h = if body.height >= 16 {
        body.height * 2 / 5
    } else {
        0
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(bottom_h)]).areas(body);
    let [campaigns, points] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let [tiers, segments, churn] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(bottom);
    Areas {
        campaigns,
        points,
        tiers,
        segments,
        churn,
    }
}

pub fn page(body: Rect) -> usize {
    let inner = Block::bordered().inner(split(body).campaigns);
    table::page(inner)
}

/// Renders a panel's block and returns the area inside it, or draws why it has no data.
fn framed<T>(panel: &Panel<T>, title: &str, area: Rect, buf: &mut Buffer) -> Option<Rect> {
    let title = fit(&format!(" {title} "), area.width.saturating_sub(2) as usize);
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let why = match panel {
        Panel::Data(_) => return Some(inner),
        Panel::NoTable => "not in this database (an older schema)".to_owned(),
        Panel::Error(e) => format!("cannot read: {e}"),
    };
    Line::styled(fit(&why, inner.width as usize), text::dim()).render(inner, buf);
    None
}

/// Horizontal bars: label, bar scaled to the largest value, count and share.
fn bars(items: &[(String, i64)], area: Rect, buf: &mut Buffer) {
    let total: i64 = items.iter().map(|(_, n)| *n).sum();
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let width = area.width as usize;
    let label_w = 12.min(width / 3);
    for (i, (label, n)) in items.iter().take(area.height as usize).enumerate() {
        let count = format!(
            " {} {:>3}%",
            text::thousands(*n),
            if total > 0 { n * 100 / total } else { 0 }
        );
        let room = width.saturating_sub(label_w + 1 + text::width(&count));
        let len = ((*n).max(0) as usize * room) / max as usize;
        let line = Line::from(vec![
            Span::raw(text::pad(label, label_w)),
            Span::raw(" "),
            Span::styled("█".repeat(len), Style::new().fg(Color::Magenta)),
            Span::raw(count),
        ]);
        line.render(Rect::new(area.x, area.y + i as u16, area.width, 1), buf);
    }
}

fn campaigns(app: &App, rows: &[CampaignRow], area: Rect, buf: &mut Buffer) {
    if rows.is_empty() {
        text::note(
            "No campaigns: `patron campaign create FILE` adds one.",
            Style::new(),
            area,
            buf,
        );
        return;
    }
    let page = table::page(area);
    let cursor = app.loyalty.cursor;
    let offset = window(cursor.selected, cursor.offset, page, rows.len());
    let shown = rows[offset..(offset + page).min(rows.len())]
        .iter()
        .map(|c| {
            let state_color = match c.state.as_str() {
                "launched" => Color::Green,
                "launching" | "planned" => Color::Cyan,
                "cancelled" => Color::Yellow,
                _ => Color::Gray,
            };
            vec![
                Cell::new(c.id.to_string()),
                Cell::new(c.name.clone()),
                Cell::styled(c.state.clone(), Style::new().fg(state_color)),
                Cell::new(c.customers.map_or_else(|| "-".to_owned(), text::thousands)),
                Cell::new(c.points.map_or_else(|| "-".to_owned(), text::thousands)),
            ]
        });
    table::render(area, buf, &COLS, shown, cursor.selected.checked_sub(offset));
}

fn points_chart(s: &LoyaltySnapshot, area: Rect, buf: &mut Buffer) {
    let Some(inner) = framed(&s.points_per_day, "points earned per day (UTC)", area, buf) else {
        return;
    };
    let Panel::Data(days) = &s.points_per_day else {
        return;
    };
    if days.iter().all(|(_, p)| *p == 0) {
        text::note(
            "no points earned in the last two weeks",
            text::dim(),
            inner,
            buf,
        );
        return;
    }
    let n = days.len().max(1) as u16;
    let bar_width = ((inner.width + 1) / n).saturating_sub(1).max(1);
    let data: Vec<Bar> = days
        .iter()
        .map(|(day, p)| {
            Bar::with_label(day.format("%d").to_string(), (*p).max(0) as u64)
                .text_value(compact(*p))
        })
        .collect();
    BarChart::new(data)
        .bar_width(bar_width)
        .bar_gap(1)
        .bar_style(Style::new().fg(Color::Green))
        .render(inner, buf);
}

/// `950`, `12k`, `3.4M`: values that fit a narrow bar.
fn compact(n: i64) -> String {
    match n.unsigned_abs() {
        v if v < 1_000 => n.to_string(),
        v if v < 1_000_000 => format!("{}k", n / 1_000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

pub fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let Some(s) = &app.loyalty.snapshot else {
        text::note("loading loyalty figures…", Style::new(), body, buf);
        return;
    };
    let a = split(body);
    if let Some(inner) = framed(
        &s.campaigns,
        "campaigns · L launches the selected",
        a.campaigns,
        buf,
    ) && let Panel::Data(rows) = &s.campaigns
    {
        campaigns(app, rows, inner, buf);
    }
    if a.points.width > 0 && a.points.height > 0 {
        points_chart(s, a.points, buf);
    }
    if a.tiers.height == 0 {
        return;
    }
    if let Some(inner) = framed(&s.tiers, "tiers", a.tiers, buf)
        && let Panel::Data(tiers) = &s.tiers
    {
        if tiers.is_empty() {
            text::note(
                "no tiers yet (the points job sets them)",
                text::dim(),
                inner,
                buf,
            );
        } else {
            bars(tiers, inner, buf);
        }
    }
    if let Some(inner) = framed(&s.segments, "segments", a.segments, buf)
        && let Panel::Data(segments) = &s.segments
    {
        match segments {
            Some((as_of, sizes)) => {
                let [head, rest] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
                Line::styled(
                    fit(&format!("as of {as_of}"), head.width as usize),
                    text::dim(),
                )
                .render(head, buf);
                bars(sizes, rest, buf);
            }
            None => text::note(
                "no profiles yet (the profile job makes them)",
                text::dim(),
                inner,
                buf,
            ),
        }
    }
    if let Some(inner) = framed(&s.churn, "churn probability", a.churn, buf)
        && let Panel::Data(churn) = &s.churn
    {
        match churn {
            Some((as_of, buckets)) => {
                let [head, rest] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
                Line::styled(
                    fit(&format!("as of {as_of}"), head.width as usize),
                    text::dim(),
                )
                .render(head, buf);
                let items: Vec<(String, i64)> = (0..CHURN_BUCKETS)
                    .map(|b| {
                        (
                            format!(
                                "{:.1}–{:.1}",
                                b as f64 / CHURN_BUCKETS as f64,
                                (b + 1) as f64 / CHURN_BUCKETS as f64
                            ),
                            buckets[b],
                        )
                    })
                    .collect();
                bars(&items, rest, buf);
            }
            None => Line::styled(
                "no churn scores yet (the retrain job makes them)",
                text::dim(),
            )
            .render(inner, buf),
        }
    }
}
