//! A plain table: column widths from the area, cells cut with `…`, only the visible rows
//! drawn. (ratatui's `Table` cuts cells silently; ours says that it did.)

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::Style,
    text::{Line, Span},
    widgets::Widget as _,
};

use crate::console::text::{self, pad};

/// A column: its title, the cells it needs, and whether it takes a share of spare width.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub title: &'static str,
    pub min: usize,
    pub flex: bool,
}

pub const fn fixed(title: &'static str, width: usize) -> Col {
    Col {
        title,
        min: width,
        flex: false,
    }
}

pub const fn flex(title: &'static str, min: usize) -> Col {
    Col {
        title,
        min,
        flex: true,
    }
}

/// One cell: its text and style.
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            style: Style::new(),
        }
    }

    pub fn styled(text: impl Into<String>, style: impl Into<Style>) -> Self {
        Self {
            text: text.into(),
            style: style.into(),
        }
    }
}

/// Widths of `cols` in `total` cells (one space between columns). Flexible columns share
/// what is left over; when even the minimums do not fit, columns from the left get theirs and
/// the rest get what remains (possibly nothing).
pub fn widths(cols: &[Col], total: usize) -> Vec<usize> {
    let gaps = cols.len().saturating_sub(1);
    let need: usize = cols.iter().map(|c| c.min).sum::<usize>() + gaps;
    if need <= total {
        let flexible = cols.iter().filter(|c| c.flex).count();
        let spare = total - need;
        let mut extra_left = spare;
        let mut seen = 0;
        return cols
            .iter()
            .map(|c| {
                if !c.flex {
                    return c.min;
                }
                seen += 1;
                let share = if seen == flexible {
                    extra_left
                } else {
                    spare / flexible
                };
                extra_left -= share;
                c.min + share
            })
            .collect();
    }
    let mut left = total;
    cols.iter()
        .map(|c| {
            let w = c.min.min(left);
            left = left.saturating_sub(w + 1);
            w
        })
        .collect()
}

fn line(cells: &[Cell], widths: &[usize]) -> Line<'static> {
    let mut spans = Vec::with_capacity(cells.len() * 2);
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if w == 0 {
            continue;
        }
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(pad(&cell.text, w), cell.style));
    }
    Line::from(spans)
}

/// Draws the header and `rows` (already cut to what fits) into `area`; `selected` is the
/// index within `rows` of the highlighted row.
pub fn render(
    area: Rect,
    buf: &mut Buffer,
    cols: &[Col],
    rows: impl IntoIterator<Item = Vec<Cell>>,
    selected: Option<usize>,
) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let widths = widths(cols, area.width as usize);
    let header: Vec<Cell> = cols
        .iter()
        .map(|c| Cell::styled(c.title, text::header()))
        .collect();
    line(&header, &widths).render(Rect { height: 1, ..area }, buf);
    for (i, row) in rows
        .into_iter()
        .take(area.height.saturating_sub(1) as usize)
        .enumerate()
    {
        let y = area.y + 1 + i as u16;
        let rect = Rect {
            y,
            height: 1,
            ..area
        };
        let mut l = line(&row, &widths);
        if selected == Some(i) {
            l = l.style(text::selected());
            // Fill the whole row, so the selection reads as a bar.
            buf.set_style(rect, text::selected());
        }
        l.render(rect, buf);
    }
}

/// Rows of a table in `area` (the header takes one).
pub fn page(area: Rect) -> usize {
    area.height.saturating_sub(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_share_spare_room_and_shrink_from_the_right() {
        let cols = [fixed("a", 4), flex("b", 6), flex("c", 6)];
        assert_eq!(widths(&cols, 20), vec![4, 7, 7]);
        assert_eq!(widths(&cols, 21), vec![4, 7, 8]);
        assert_eq!(widths(&cols, 10), vec![4, 5, 0]);
        assert_eq!(widths(&cols, 0), vec![0, 0, 0]);
    }
}
