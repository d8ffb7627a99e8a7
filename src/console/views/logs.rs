//! Logs: one attempt's lines, scrollable, following the end while the job runs, with search
//! matches highlighted.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Widget as _,
};

use crate::{
    console::{
        app::App,
        text::{self, fit},
    },
    db::entities::LogStream,
};

fn split(body: Rect) -> (Rect, Rect) {
    let [head, lines] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
    (head, lines)
}

pub fn page(body: Rect) -> usize {
    split(body).1.height as usize
}

/// `text` as spans, with every case-insensitive occurrence of `needle` highlighted.
fn highlight(text: String, needle: Option<&str>, base: Style) -> Vec<Span<'static>> {
    let Some(needle) = needle.filter(|n| !n.is_empty()) else {
        return vec![Span::styled(text, base)];
    };
    let lower = text.to_lowercase();
    let needle = needle.to_lowercase();
    // Lower-casing can move byte offsets outside ASCII: highlight only when every match
    // falls on character boundaries of the original text.
    let found: Vec<(usize, usize)> = lower
        .match_indices(&needle)
        .map(|(start, m)| (start, start + m.len()))
        .collect();
    if lower.len() != text.len()
        || found
            .iter()
            .any(|&(s, e)| !text.is_char_boundary(s) || !text.is_char_boundary(e))
    {
        return vec![Span::styled(text, base)];
    }
    let mut spans = Vec::new();
    let mut at = 0;
    for (start, end) in found {
        if start > at {
            spans.push(Span::styled(text[at..start].to_owned(), base));
        }
        spans.push(Span::styled(
            text[start..end].to_owned(),
            Style::new().bg(Color::Yellow).fg(Color::Black),
        ));
        at = end;
    }
    if at < text.len() {
        spans.push(Span::styled(text[at..].to_owned(), base));
    }
    spans
}

pub fn render(app: &App, body: Rect, buf: &mut Buffer) {
    let (head, area) = split(body);
    let logs = &app.logs;
    let Some(target) = &logs.target else {
        text::note(
            "No job selected: pick one in the Run view (3) and press Enter.",
            Style::new(),
            body,
            buf,
        );
        return;
    };
    let attempts = logs.attempts();
    let shown = logs.shown_attempt();
    let attempt = match shown {
        Some(a) if attempts.len() > 1 => format!(
            "attempt {a} ({} with lines; a switches)",
            attempts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(a) => format!("attempt {a}"),
        None => "no lines yet".to_owned(),
    };
    let state = logs
        .job_state
        .map_or_else(|| "?".to_owned(), |s| s.to_string());
    let mut info = format!(
        "run {} · job {} · {state} · {attempt} · follow {}",
        target.run_id,
        target.job,
        if logs.follow { "on" } else { "off" }
    );
    if let Some(search) = &logs.search {
        info.push_str(&format!(" · search `{search}`"));
    }
    if logs.dropped > 0 {
        info.push_str(&format!(" · {} oldest lines dropped", logs.dropped));
    }
    Line::styled(fit(&info, head.width as usize), text::header()).render(head, buf);
    let lines = logs.shown();
    if lines.is_empty() {
        text::note("(no log lines yet)", text::dim(), area, buf);
        return;
    }
    let page = area.height as usize;
    let first = logs.first_line(page);
    let width = area.width as usize;
    for (i, entry) in lines.iter().skip(first).take(page).enumerate() {
        let prefix = format!(
            "{} {:>6} │ ",
            entry.at.format("%H:%M:%S%.3f"),
            entry.stream.to_string()
        );
        let base = match entry.stream {
            LogStream::Stdout => Style::new(),
            LogStream::Stderr => Style::new().fg(Color::LightRed),
            LogStream::Patron => Style::new().fg(Color::Cyan),
        };
        let room = width.saturating_sub(text::width(&prefix));
        let mut spans = vec![Span::styled(fit(&prefix, width), text::dim())];
        spans.extend(highlight(
            fit(&entry.line, room),
            logs.search.as_deref(),
            base,
        ));
        let mut line = Line::from(spans);
        if logs.hit == Some(first + i) {
            line = line.style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        }
        line.render(Rect::new(area.x, area.y + i as u16, area.width, 1), buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_highlights_every_match_and_survives_any_text() {
        let spans = highlight(
            "Disk full; disk gone".to_owned(),
            Some("DISK"),
            Style::new(),
        );
        let lit: Vec<&str> = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(lit, ["Disk", " full; ", "disk", " gone"]);
        for text in ["İstanbul disk", "ẞtraße disk", "客户 disk 画像", ""] {
            let spans = highlight(text.to_owned(), Some("disk"), Style::new());
            let joined: String = spans.iter().map(|s| s.content.as_ref()).collect();
            assert_eq!(joined, text);
        }
    }
}
