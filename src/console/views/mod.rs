//! Rendering: pure functions from `&App` to a frame. Nothing here loads data or changes
//! state, so the views render the same from fixtures in tests as from the database.

mod chrome;
mod detail;
mod logs;
mod loyalty;
mod pipelines;
mod runs;
pub mod table;
mod workers;

use ratatui::{
    Frame,
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
};

use super::app::{App, View};

/// The screen's parts, top to bottom.
pub struct Areas {
    pub tabs: Rect,
    pub banner: Rect,
    pub body: Rect,
    pub status: Rect,
    pub hints: Rect,
}

pub fn areas(area: Rect, banner: bool) -> Areas {
    let [tabs, banner, body, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(banner)),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        tabs,
        banner,
        body,
        status,
        hints,
    }
}

/// Rows a list of `view` shows on a screen of `size`.
pub fn page(view: View, size: Rect, banner: bool) -> usize {
    let body = areas(size, banner).body;
    match view {
        View::Pipelines => pipelines::page(body),
        View::Runs => runs::page(body),
        View::RunDetail => body.height as usize,
        View::Logs => logs::page(body),
        View::Workers => table::page(body),
        View::Loyalty => loyalty::page(body),
    }
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    render_into(app, area, frame.buffer_mut());
}

/// Draws the whole screen into `buf` (what [`render`] does, usable without a terminal).
pub fn render_into(app: &App, area: Rect, buf: &mut Buffer) {
    let a = areas(area, app.banner_shown());
    chrome::tabs(app, a.tabs, buf);
    chrome::banner(app, a.banner, buf);
    match app.view {
        View::Pipelines => pipelines::render(app, a.body, buf),
        View::Runs => runs::render(app, a.body, buf),
        View::RunDetail => detail::render(app, a.body, buf),
        View::Logs => logs::render(app, a.body, buf),
        View::Workers => workers::render(app, a.body, buf),
        View::Loyalty => loyalty::render(app, a.body, buf),
    }
    chrome::status(app, a.status, buf);
    chrome::hints(app, a.hints, buf);
    chrome::overlay(app, area, buf);
}
