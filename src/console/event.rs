//! Events the console reacts to, and the thread that reads the terminal.
//!
//! Reading the terminal blocks, so it happens on a plain thread that polls with a timeout and
//! stops as soon as the event loop has gone (its channel closed); the async runtime never waits
//! on the terminal.

use std::{thread, time::Duration};

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{self as term, KeyEvent};
use tokio::sync::mpsc::UnboundedSender;

use super::{
    actions::Action,
    data::{LoadFailure, Request, Snapshot},
};

#[derive(Debug, Clone)]
pub enum Event {
    /// Time to refresh; carries the time so that state updates stay deterministic in tests.
    Tick(DateTime<Utc>),
    Key(KeyEvent),
    Resize(u16, u16),
    Loaded {
        request: Request,
        result: Result<Snapshot, LoadFailure>,
        took: Duration,
    },
    /// An action finished: the status line's text, or the error.
    ActionDone(Result<String, String>),
    /// An action was not carried out: it must be confirmed first (a big point adjustment).
    ConfirmFirst {
        question: String,
        action: Action,
    },
    /// A signal, or the terminal went away.
    Quit,
    /// A background task panicked (a bug): the console stops with this message.
    Crashed(String),
}

/// What the event loop must do after an update: the state never does I/O itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Load(Request),
    Perform(Action),
    Quit,
}

/// How often the reader checks whether the console has stopped.
const POLL: Duration = Duration::from_millis(100);

/// Starts the thread that forwards keys and resizes to `tx` until `tx` is closed.
pub fn spawn_reader(tx: UnboundedSender<Event>) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("console-input".to_owned())
        .spawn(move || {
            while !tx.is_closed() {
                match term::poll(POLL) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(_) => {
                        // The terminal is gone: nothing more can be read. The send fails only
                        // if the loop has already stopped, which is what we want anyway.
                        let _ = tx.send(Event::Quit);
                        return;
                    }
                }
                let event = match term::read() {
                    Ok(term::Event::Key(key)) => Event::Key(key),
                    Ok(term::Event::Resize(w, h)) => Event::Resize(w, h),
                    Ok(_) => continue,
                    Err(_) => Event::Quit,
                };
                // A failed send means the event loop has stopped; the loop condition ends us.
                let _ = tx.send(event);
            }
        })
}
