//! Text helpers shared by the views: fitting text into a width with an ellipsis, durations
//! and ages that read well, and the colour and symbol of each state.

use chrono::{DateTime, Utc};
use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Widget as _,
};

use crate::db::entities::{AttemptState, JobState, RunState};

/// Display width of `s` in terminal cells (wide CJK characters count two).
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// `s` cut to at most `max` cells, ending in `…` when something was cut.
pub fn fit(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    // Fast path: ASCII is one cell per byte.
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_control()) {
        if s.len() <= max {
            return s.to_owned();
        }
        let mut out = String::with_capacity(max + 2);
        out.push_str(&s[..max - 1]);
        out.push('…');
        return out;
    }
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if width(&clean) <= max {
        return clean;
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in clean.chars() {
        let w = width(c.encode_utf8(&mut buf));
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// A one-line message in the first row of `area`, cut to its width.
pub fn note(msg: &str, style: Style, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    Line::styled(fit(msg, area.width as usize), style).render(Rect { height: 1, ..area }, buf);
}

/// `s` fitted into `max` cells and padded with spaces to exactly `max` cells.
pub fn pad(s: &str, max: usize) -> String {
    let mut out = fit(s, max);
    let w = width(&out);
    out.extend(std::iter::repeat_n(' ', max.saturating_sub(w)));
    out
}

/// `250ms`, `1.2s`, `3m04s`, `2h05m`.
/// (The same shapes as the CLI's tables.)
pub fn human_ms(ms: i64) -> String {
    match ms.max(0) {
        ms if ms < 1_000 => format!("{ms}ms"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        ms => format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// How long something ran (or has been running, measured to `now`); `-` if it has not started.
pub fn duration(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    match start {
        Some(s) => human_ms((end.unwrap_or(now) - s).num_milliseconds()),
        None => "-".to_owned(),
    }
}

/// `4s`, `3m`, `2h`, `5d`: a short age.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - at).num_seconds().max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// `in 3h` or `5m ago`.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at >= now {
        format!("in {}", age(now, at))
    } else {
        format!("{} ago", age(at, now))
    }
}

/// A UTC time as `MM-DD HH:MM:SS`, `-` when absent.
pub fn short_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%m-%d %H:%M:%S").to_string(),
    )
}

pub fn run_color(state: RunState) -> Color {
    match state {
        RunState::Queued => Color::Gray,
        RunState::Running => Color::Cyan,
        RunState::Succeeded => Color::Green,
        RunState::Failed => Color::Red,
        RunState::Cancelled => Color::Yellow,
    }
}

pub fn job_color(state: JobState) -> Color {
    match state {
        JobState::Waiting => Color::DarkGray,
        JobState::Ready => Color::Gray,
        JobState::Running => Color::Cyan,
        JobState::Succeeded => Color::Green,
        JobState::Failed | JobState::UpstreamFailed => Color::Red,
        JobState::Skipped => Color::Blue,
        JobState::Cancelled => Color::Yellow,
    }
}

pub fn attempt_color(state: AttemptState) -> Color {
    match state {
        AttemptState::Running => Color::Cyan,
        AttemptState::Succeeded => Color::Green,
        AttemptState::Failed | AttemptState::TimedOut => Color::Red,
        AttemptState::Lost | AttemptState::Interrupted => Color::Magenta,
        AttemptState::Cancelled => Color::Yellow,
    }
}

/// One character for a job's state, readable without colour.
pub fn job_symbol(state: JobState) -> &'static str {
    match state {
        JobState::Waiting => "·",
        JobState::Ready => "○",
        JobState::Running => "●",
        JobState::Succeeded => "✓",
        JobState::Failed => "✗",
        JobState::UpstreamFailed => "⊘",
        JobState::Skipped => "»",
        JobState::Cancelled => "■",
    }
}

/// The style of the selected row.
pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn header() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// A sparkline of `values` in block characters, one per value, scaled to their maximum.
pub fn sparkline(values: &[u64], max_cells: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(max_cells)..];
    let top = shown.iter().copied().max().unwrap_or(0).max(1);
    shown
        .iter()
        .map(|&v| BARS[((v.saturating_mul(7)) / top).min(7) as usize])
        .collect()
}

/// `1 run`, `1,204 runs`.
pub fn count(n: usize, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", thousands(n as i64))
}

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_with_an_ellipsis_and_counts_wide_characters() {
        assert_eq!(fit("nightly", 10), "nightly");
        assert_eq!(fit("nightly-orders", 8), "nightly…");
        assert_eq!(fit("abc", 1), "…");
        assert_eq!(fit("abc", 0), "");
        assert_eq!(fit("客户画像刷新", 7), "客户画…");
        assert!(width(&fit("客户画像刷新", 7)) <= 7);
        assert_eq!(fit("a\tb", 5), "a b");
        assert_eq!(pad("ab", 4), "ab  ");
    }

    #[test]
    fn numbers_and_ages_read_well() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_000), "-1,000");
        assert_eq!(thousands(12), "12");
        let now = Utc::now();
        assert_eq!(age(now - chrono::Duration::seconds(75), now), "1m");
        assert_eq!(relative(now + chrono::Duration::hours(3), now), "in 3h");
        assert_eq!(sparkline(&[1, 2, 4, 8], 3), "▂▄█");
        assert_eq!(sparkline(&[], 3), "");
    }
}
