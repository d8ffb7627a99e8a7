//! `patron console`: a full-screen view of the scheduler that refreshes every second from the
//! database the daemons use, so it works wherever that database is reachable.
//!
//! State, events and rendering are apart: [`app::App`] holds the state and changes only in
//! `update`; [`event`] carries keys, ticks and finished loads; [`views`] draws `&App`; the loop
//! here runs loads and actions in tasks and feeds their results back as events. The terminal
//! is restored on every way out: normal exit, error, signal and panic.

pub mod actions;
pub mod app;
pub mod dag;
pub mod data;
pub mod event;
mod keys;
#[cfg(test)]
mod tests;
pub mod text;
pub mod views;

use std::{
    io::IsTerminal as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::Utc;
use futures::FutureExt as _;
use ratatui::{DefaultTerminal, layout::Rect};
use tokio::sync::mpsc::{self, UnboundedSender};

use self::{
    actions::Action,
    app::App,
    data::{LoadFailure, Request},
    event::{Effect, Event},
};
use crate::db::{Db, repo::pipelines::SpecCache};

/// A load that takes longer than this counts as a lost database (banner, retry).
const LOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// An action that takes longer than this is reported as failed (it may still complete).
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Options {
    /// How often the current view is reloaded.
    pub refresh: Duration,
    /// Where log output goes while the console owns the terminal.
    pub log_file: PathBuf,
    /// `scheduler.lease_ttl`: a daemon silent for longer is shown as stale.
    pub lease_ttl: Duration,
    /// The loyalty rules, for point adjustments (and when they must be confirmed).
    pub loyalty: crate::config::LoyaltySettings,
    /// The lake, to know customers by their rows (point adjustments); `None`: the ledger
    /// alone says who is known.
    pub lake: Option<crate::lake::Lake>,
}

/// Fails with a one-line reason unless stdin and stdout are a terminal.
pub fn ensure_terminal() -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "patron console needs an interactive terminal, and stdout is not one (for scripts, use `patron runs list --json`)"
        );
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("patron console needs an interactive terminal, and stdin is not one");
    }
    Ok(())
}

/// Runs the console until the user quits.
pub async fn run(db: Db, options: Options) -> anyhow::Result<()> {
    ensure_terminal()?;
    let stderr = restore::StderrToFile::open(&options.log_file).with_context(|| {
        format!(
            "sending log output to {} while the console runs",
            options.log_file.display()
        )
    })?;
    let mut terminal = restore::TerminalGuard::enter().context("setting up the terminal")?;
    let result = event_loop(terminal.terminal(), db, &options).await;
    drop(terminal);
    drop(stderr);
    result
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    db: Db,
    options: &Options,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    event::spawn_reader(tx.clone()).context("starting the key reader")?;
    let size = terminal.size()?;
    let mut app = App::new(Utc::now(), Rect::new(0, 0, size.width, size.height));
    let specs = SpecCache::default();
    let mut tick = tokio::time::interval(options.refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = signals::Stop::new()?;
    let mut effects = app.start();
    loop {
        for effect in effects.drain(..) {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::Load(request) => spawn_load(
                    &db,
                    options.lake.as_ref(),
                    &specs,
                    &tx,
                    request,
                    options.lease_ttl,
                ),
                Effect::Perform(action) => spawn_action(
                    &db,
                    &specs,
                    &options.loyalty,
                    options.lake.as_ref(),
                    &tx,
                    action,
                ),
            }
        }
        terminal.draw(|frame| views::render(&app, frame))?;
        let mut event = tokio::select! {
            Some(event) = rx.recv() => event,
            _ = tick.tick() => Event::Tick(Utc::now()),
            _ = stop.recv() => Event::Quit,
        };
        // Keys arrive faster than frames when held down: handle what is queued, then draw once.
        loop {
            if let Event::Crashed(what) = &event {
                anyhow::bail!("the console stopped on an internal error: {what}");
            }
            effects = app.update(event);
            if !effects.is_empty() {
                break;
            }
            match rx.try_recv() {
                Ok(next) => event = next,
                Err(_) => break,
            }
        }
    }
}

/// Runs `work` in a task. A panic inside (a bug) has already restored the terminal through
/// the panic hook, so it ends the console with the panic's message instead of hanging.
fn spawn_guarded<F>(tx: &UnboundedSender<Event>, work: F)
where
    F: std::future::Future<Output = Event> + Send + 'static,
{
    let tx = tx.clone();
    tokio::spawn(async move {
        let event = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
            Ok(event) => event,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Event::Crashed(what)
            }
        };
        // The loop may have stopped meanwhile; then nobody needs the result.
        let _ = tx.send(event);
    });
}

fn spawn_load(
    db: &Db,
    lake: Option<&crate::lake::Lake>,
    specs: &SpecCache,
    tx: &UnboundedSender<Event>,
    request: Request,
    lease_ttl: Duration,
) {
    let (db, lake, specs) = (db.clone(), lake.cloned(), specs.clone());
    spawn_guarded(tx, async move {
        let start = Instant::now();
        let load = data::load(&db, lake.as_ref(), &specs, &request, Utc::now(), lease_ttl);
        let result = match tokio::time::timeout(LOAD_TIMEOUT, load).await {
            Ok(result) => result,
            Err(_) => Err(LoadFailure::Database(format!(
                "no answer within {} s",
                LOAD_TIMEOUT.as_secs()
            ))),
        };
        Event::Loaded {
            request,
            result,
            took: start.elapsed(),
        }
    });
}

fn spawn_action(
    db: &Db,
    specs: &SpecCache,
    loyalty: &crate::config::LoyaltySettings,
    lake: Option<&crate::lake::Lake>,
    tx: &UnboundedSender<Event>,
    action: Action,
) {
    let (db, specs, loyalty, lake) = (db.clone(), specs.clone(), loyalty.clone(), lake.cloned());
    spawn_guarded(tx, async move {
        let result = match tokio::time::timeout(
            ACTION_TIMEOUT,
            actions::perform_with(&db, &specs, &loyalty, lake.as_ref(), &action),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer from the database within {} s; check `patron audit list` before retrying",
                ACTION_TIMEOUT.as_secs()
            )),
        };
        match result {
            Ok(actions::Reply::Done(text)) => Event::ActionDone(Ok(text)),
            Ok(actions::Reply::Confirm { question, action }) => {
                Event::ConfirmFirst { question, action }
            }
            Err(e) => Event::ActionDone(Err(e)),
        }
    });
}

mod signals {
    //! SIGTERM, SIGHUP and SIGINT end the console like `q` does, so the terminal is restored.
    //! (In raw mode Ctrl-C arrives as a key, not as SIGINT.)

    use tokio::signal::unix::{Signal, SignalKind, signal};

    pub struct Stop {
        term: Signal,
        hup: Signal,
        int: Signal,
    }

    impl Stop {
        pub fn new() -> std::io::Result<Self> {
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
                int: signal(SignalKind::interrupt())?,
            })
        }

        pub async fn recv(&mut self) {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.hup.recv() => {}
                _ = self.int.recv() => {}
            }
        }
    }
}

mod restore {
    //! Guards that give the terminal and stderr back, on drop and on panic.

    use std::{
        fs::OpenOptions,
        os::fd::AsRawFd as _,
        path::Path,
        sync::atomic::{AtomicI32, Ordering},
    };

    use ratatui::DefaultTerminal;

    /// The real stderr while it points at the log file; -1 otherwise.
    static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

    /// Points fd 2 at a file while the console runs: tracing (and anything else) writing to
    /// stderr would otherwise draw over the screen.
    pub struct StderrToFile;

    impl StderrToFile {
        pub fn open(path: &Path) -> std::io::Result<Self> {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            // SAFETY: plain descriptor calls on descriptors this process owns.
            let saved = unsafe { libc::dup(2) };
            if saved < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: as above; on failure the duplicate is closed again.
            if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
                let err = std::io::Error::last_os_error();
                unsafe { libc::close(saved) };
                return Err(err);
            }
            SAVED_STDERR.store(saved, Ordering::SeqCst);
            // A panic must print where the user can see it: give stderr back first, then
            // let the next hook (ratatui's: restore the terminal, then print) run.
            let next = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                give_back();
                next(info);
            }));
            Ok(Self)
        }
    }

    fn give_back() {
        let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
        if saved >= 0 {
            // SAFETY: `saved` is the duplicate made in `open`, used once.
            unsafe {
                libc::dup2(saved, 2);
                libc::close(saved);
            }
        }
    }

    impl Drop for StderrToFile {
        fn drop(&mut self) {
            give_back();
        }
    }

    /// Raw mode and the alternate screen, left again on drop. `ratatui::try_init` also
    /// installs a panic hook that restores the terminal before the panic is printed.
    pub struct TerminalGuard(DefaultTerminal);

    impl TerminalGuard {
        pub fn enter() -> std::io::Result<Self> {
            match ratatui::try_init() {
                Ok(terminal) => Ok(Self(terminal)),
                Err(e) => {
                    // Raw mode may be on even though a later step failed.
                    ratatui::restore();
                    Err(e)
                }
            }
        }

        pub fn terminal(&mut self) -> &mut DefaultTerminal {
            &mut self.0
        }
    }

    impl Drop for TerminalGuard {
        fn drop(&mut self) {
            ratatui::restore();
        }
    }
}
