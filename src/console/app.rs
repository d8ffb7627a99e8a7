//! The console's state, and the one place it changes: [`App::update`] takes an event (a key,
//! a tick, a finished load or action) and returns the effects the event loop must carry out
//! (load a snapshot, perform an action, quit). No I/O happens here, so every transition is a
//! plain unit test.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;

use super::{
    actions::Action,
    dag::Dag,
    data::{
        LOG_PAGE, LoadFailure, LoyaltySnapshot, Panel, PipelineRow, Request, RunDetailSnapshot,
        RunQuery, RunsSnapshot, Snapshot, WorkerRow,
    },
    event::{Effect, Event},
    views,
};
use crate::db::{entities::JobState, repo::logs::LogEntry};

/// The screens, switched with the number keys or Tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Pipelines,
    Runs,
    RunDetail,
    Logs,
    Workers,
    Loyalty,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Pipelines,
        View::Runs,
        View::RunDetail,
        View::Logs,
        View::Workers,
        View::Loyalty,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Pipelines => "Pipelines",
            View::Runs => "Runs",
            View::RunDetail => "Run",
            View::Logs => "Logs",
            View::Workers => "Workers",
            View::Loyalty => "Loyalty",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|&v| v == self).unwrap_or(0)
    }

    fn cycle(self, delta: isize) -> View {
        let n = View::ALL.len() as isize;
        View::ALL[(self.index() as isize + delta).rem_euclid(n) as usize]
    }

    /// Loyalty aggregates scan the ledger: refreshed less often than the scheduler views.
    fn refresh_every(self) -> Option<chrono::Duration> {
        (self == View::Loyalty).then(|| chrono::Duration::seconds(10))
    }
}

/// A selection in a list and the first row shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub selected: usize,
    pub offset: usize,
}

impl Cursor {
    /// Moves by `delta` rows within `len`, scrolling so the selection stays in a `page`-row window.
    pub fn move_by(&mut self, delta: isize, len: usize, page: usize) {
        if len == 0 {
            *self = Cursor::default();
            return;
        }
        self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
        self.offset = window(self.selected, self.offset, page, len);
    }

    pub fn clamp(&mut self, len: usize, page: usize) {
        self.move_by(0, len, page);
    }

    pub fn select(&mut self, index: usize, len: usize, page: usize) {
        self.selected = index;
        self.clamp(len, page);
    }
}

/// The first row to show so that `selected` is inside a `page`-row window starting as near
/// `offset` as possible, without leaving blank rows at the end.
pub fn window(selected: usize, offset: usize, page: usize, len: usize) -> usize {
    if page == 0 || len == 0 {
        return 0;
    }
    let mut off = offset;
    if selected < off {
        off = selected;
    } else if selected >= off + page {
        off = selected + 1 - page;
    }
    off.min(len.saturating_sub(page))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// Upstream left, downstream right.
    #[default]
    Columns,
    /// Upstream on top, downstream below.
    Rows,
}

#[derive(Debug, Default)]
pub struct PipelinesState {
    pub rows: Vec<PipelineRow>,
    pub cursor: Cursor,
    pub loaded: bool,
}

impl PipelinesState {
    pub fn selected(&self) -> Option<&PipelineRow> {
        self.rows.get(self.cursor.selected)
    }
}

#[derive(Debug, Default)]
pub struct RunsState {
    pub snapshot: Option<RunsSnapshot>,
    pub cursor: Cursor,
    /// The filter as typed after `/`.
    pub filter: String,
}

impl RunsState {
    pub fn selected(&self) -> Option<&super::data::RunRow> {
        self.snapshot.as_ref()?.rows.get(self.cursor.selected)
    }

    fn len(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| s.rows.len())
    }
}

#[derive(Debug, Default)]
pub struct DetailState {
    pub run_id: Option<i64>,
    pub snapshot: Option<RunDetailSnapshot>,
    pub dag: Option<Dag>,
    /// Index (in the run's job list) of the selected job.
    pub job: usize,
    pub orientation: Orientation,
}

impl DetailState {
    pub fn selected_job(&self) -> Option<&super::data::JobNode> {
        self.snapshot.as_ref()?.jobs.get(self.job)
    }

    fn set(&mut self, snapshot: RunDetailSnapshot) {
        self.dag = Some(Dag::new(&snapshot.jobs));
        if self.job >= snapshot.jobs.len() {
            self.job = self
                .dag
                .as_ref()
                .and_then(|d| d.order.first().copied())
                .unwrap_or(0);
        }
        self.snapshot = Some(snapshot);
    }
}

/// Which job's log the Logs view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub run_id: i64,
    pub job: String,
}

/// A view is reloaded no sooner than this many times its last load took.
const LOAD_SHARE: u32 = 5;

/// Lines kept per job; older ones are dropped (and counted) past this.
pub const MAX_LOG_LINES: usize = 200_000;

#[derive(Debug, Default)]
pub struct LogsState {
    pub target: Option<LogTarget>,
    /// Lines per attempt number, oldest first.
    pub lines: BTreeMap<i32, Vec<LogEntry>>,
    /// The id of the last line read: the next read starts after it.
    pub after: i64,
    /// The attempt shown; `None`: the latest.
    pub attempt: Option<i32>,
    /// First line shown (when not following).
    pub top: usize,
    /// Stick to the end as lines arrive.
    pub follow: bool,
    pub search: Option<String>,
    /// Line (in the attempt shown) of the current search match.
    pub hit: Option<usize>,
    pub dropped: usize,
    /// State of the job, from the last read.
    pub job_state: Option<JobState>,
}

impl LogsState {
    /// Attempt numbers with lines, ascending.
    pub fn attempts(&self) -> Vec<i32> {
        self.lines.keys().copied().collect()
    }

    pub fn shown_attempt(&self) -> Option<i32> {
        self.attempt
            .or_else(|| self.lines.keys().next_back().copied())
    }

    pub fn shown(&self) -> &[LogEntry] {
        self.shown_attempt()
            .and_then(|a| self.lines.get(&a))
            .map_or(&[], Vec::as_slice)
    }

    /// The first line shown for a `page`-line window.
    pub fn first_line(&self, page: usize) -> usize {
        let len = self.shown().len();
        let last_page = len.saturating_sub(page);
        if self.follow {
            last_page
        } else {
            self.top.min(last_page)
        }
    }

    fn reset(&mut self, target: LogTarget) {
        *self = LogsState {
            target: Some(target),
            follow: true,
            ..LogsState::default()
        };
    }

    fn append(&mut self, lines: Vec<LogEntry>) {
        for line in lines {
            self.after = self.after.max(line.id);
            self.lines.entry(line.attempt).or_default().push(line);
        }
        let total: usize = self.lines.values().map(Vec::len).sum();
        if total > MAX_LOG_LINES {
            let mut excess = total - MAX_LOG_LINES;
            for lines in self.lines.values_mut() {
                let cut = excess.min(lines.len());
                lines.drain(..cut);
                excess -= cut;
                self.dropped += cut;
                if excess == 0 {
                    break;
                }
            }
        }
    }

    /// The next line after `from` (wrapping) that contains the search text.
    fn find(&self, from: usize, forward: bool) -> Option<usize> {
        let needle = self.search.as_ref()?.to_lowercase();
        let lines = self.shown();
        let n = lines.len();
        (1..=n)
            .map(|i| {
                if forward {
                    (from + i) % n
                } else {
                    (from + n * 2 - i) % n
                }
            })
            .find(|&i| lines[i].line.to_lowercase().contains(&needle))
    }
}

#[derive(Debug, Default)]
pub struct WorkersState {
    pub rows: Vec<WorkerRow>,
    pub cursor: Cursor,
    pub loaded: bool,
}

#[derive(Debug, Default)]
pub struct LoyaltyState {
    pub snapshot: Option<LoyaltySnapshot>,
    pub cursor: Cursor,
}

impl LoyaltyState {
    pub fn campaigns(&self) -> &[super::data::CampaignRow] {
        match self.snapshot.as_ref().map(|s| &s.campaigns) {
            Some(Panel::Data(rows)) => rows,
            _ => &[],
        }
    }
}

/// What a text prompt is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptFor {
    TriggerParams {
        pipeline: String,
    },
    /// `CUSTOMER POINTS REASON` of a manual point adjustment.
    Adjust,
    RunsFilter,
    LogSearch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Confirm { question: String, action: Action },
    Prompt { purpose: PromptFor, input: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Up,
    Lost {
        error: String,
        since: DateTime<Utc>,
        retries: u32,
        next_try: DateTime<Utc>,
    },
}

/// Everything the console shows. Rendering reads it; only [`App::update`] changes it.
#[derive(Debug)]
pub struct App {
    pub view: View,
    pub pipelines: PipelinesState,
    pub runs: RunsState,
    pub detail: DetailState,
    pub logs: LogsState,
    pub workers: WorkersState,
    pub loyalty: LoyaltyState,
    pub overlay: Option<Overlay>,
    pub status: Option<Status>,
    pub connection: Connection,
    pub now: DateTime<Utc>,
    /// The terminal's size, for page sizes.
    pub size: Rect,
    /// A load is in flight (one at a time).
    pub loading: bool,
    reload_wanted: bool,
    /// An action is in flight.
    pub acting: bool,
    /// When each view's data was last loaded, and how long the last load took.
    fresh_at: [Option<DateTime<Utc>>; 6],
    pub last_load: Option<(DateTime<Utc>, Duration)>,
}

impl App {
    pub fn new(now: DateTime<Utc>, size: Rect) -> Self {
        Self {
            view: View::Pipelines,
            pipelines: PipelinesState::default(),
            runs: RunsState::default(),
            detail: DetailState::default(),
            logs: LogsState::default(),
            workers: WorkersState::default(),
            loyalty: LoyaltyState::default(),
            overlay: None,
            status: None,
            connection: Connection::Up,
            now,
            size,
            loading: false,
            reload_wanted: false,
            acting: false,
            fresh_at: [None; 6],
            last_load: None,
        }
    }

    /// The first load, for the start-up view.
    pub fn start(&mut self) -> Vec<Effect> {
        self.load_now()
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Tick(now) => {
                self.now = now;
                self.on_tick()
            }
            Event::Resize(w, h) => {
                self.size = Rect::new(0, 0, w, h);
                self.clamp_cursors();
                Vec::new()
            }
            Event::Key(key) => self.on_key(key),
            Event::Loaded {
                request,
                result,
                took,
            } => self.on_loaded(request, result, took),
            Event::ActionDone(result) => {
                self.acting = false;
                self.status = Some(match result {
                    Ok(text) => Status { text, error: false },
                    Err(text) => Status { text, error: true },
                });
                self.load_now()
            }
            Event::ConfirmFirst { question, action } => {
                self.acting = false;
                self.say("confirm first: y goes ahead, n leaves it");
                self.overlay = Some(Overlay::Confirm { question, action });
                Vec::new()
            }
            Event::Quit | Event::Crashed(_) => vec![Effect::Quit],
        }
    }

    /// Rows a list of the current view shows at the current size.
    pub fn page(&self) -> usize {
        views::page(self.view, self.size, self.banner_shown())
    }

    pub fn banner_shown(&self) -> bool {
        matches!(self.connection, Connection::Lost { .. })
    }

    /// What the current view needs loaded; `None` when it has nothing to show yet.
    pub fn request(&self) -> Option<Request> {
        Some(match self.view {
            View::Pipelines => Request::Pipelines,
            View::Runs => Request::Runs(RunQuery::parse(&self.runs.filter)),
            View::RunDetail => Request::RunDetail(self.detail.run_id?),
            View::Logs => {
                let t = self.logs.target.as_ref()?;
                Request::Logs {
                    run_id: t.run_id,
                    job: t.job.clone(),
                    after: self.logs.after,
                }
            }
            View::Workers => Request::Workers,
            View::Loyalty => Request::Loyalty,
        })
    }

    fn on_tick(&mut self) -> Vec<Effect> {
        if self.loading {
            return Vec::new();
        }
        if let Connection::Lost { next_try, .. } = &self.connection
            && self.now < *next_try
        {
            return Vec::new();
        }
        let Some(at) = self.fresh_at[self.view.index()] else {
            return self.load_now();
        };
        // A slow load (a big database, a far server) is repeated less often, so the console
        // never keeps the database busy more than about a fifth of the time.
        let slow = self
            .last_load
            .and_then(|(_, took)| chrono::Duration::from_std(took * LOAD_SHARE).ok())
            .unwrap_or_default();
        let every = self.view.refresh_every().unwrap_or_default().max(slow);
        if self.now - at >= every {
            self.load_now()
        } else {
            Vec::new()
        }
    }

    pub(super) fn load_now(&mut self) -> Vec<Effect> {
        let Some(request) = self.request() else {
            return Vec::new();
        };
        if self.loading {
            self.reload_wanted = true;
            return Vec::new();
        }
        self.loading = true;
        vec![Effect::Load(request)]
    }

    fn on_loaded(
        &mut self,
        request: Request,
        result: Result<Snapshot, LoadFailure>,
        took: Duration,
    ) -> Vec<Effect> {
        self.loading = false;
        match result {
            Ok(snapshot) => {
                if let Connection::Lost { .. } = self.connection {
                    self.connection = Connection::Up;
                    self.status = Some(Status {
                        text: "database connection is back".to_owned(),
                        error: false,
                    });
                }
                self.last_load = Some((self.now, took));
                self.apply(request, snapshot);
            }
            Err(LoadFailure::Database(error)) => {
                let (since, retries) = match &self.connection {
                    Connection::Lost { since, retries, .. } => (*since, retries + 1),
                    Connection::Up => (self.now, 1),
                };
                // 1 s, 2 s, 4 s, then every 8 s: a dead server is not hammered.
                let wait = 1i64 << retries.saturating_sub(1).min(3);
                self.connection = Connection::Lost {
                    error: one_line(&error),
                    since,
                    retries,
                    next_try: self.now + chrono::Duration::seconds(wait),
                };
                self.reload_wanted = false;
                return Vec::new();
            }
            Err(LoadFailure::Request(error)) => {
                self.status = Some(Status {
                    text: one_line(&error),
                    error: true,
                });
                // Do not retry a request that cannot succeed every second.
                self.fresh_at[self.view.index()] = Some(self.now);
                if matches!(request, Request::RunDetail(_) | Request::Logs { .. }) {
                    self.reload_wanted = false;
                    return Vec::new();
                }
            }
        }
        if std::mem::take(&mut self.reload_wanted) {
            return self.load_now();
        }
        Vec::new()
    }

    fn apply(&mut self, request: Request, snapshot: Snapshot) {
        let page = self.page();
        match snapshot {
            Snapshot::Pipelines(rows) => {
                let keep = self.pipelines.selected().map(|p| p.name.clone());
                self.pipelines.rows = rows;
                self.pipelines.loaded = true;
                let len = self.pipelines.rows.len();
                let at = keep
                    .and_then(|name| self.pipelines.rows.iter().position(|p| p.name == name))
                    .unwrap_or(self.pipelines.cursor.selected);
                self.pipelines.cursor.select(at, len, page);
                self.fresh_at[View::Pipelines.index()] = Some(self.now);
            }
            Snapshot::Runs(snapshot) => {
                // A load for an older filter: the one for the current filter follows.
                if request != Request::Runs(RunQuery::parse(&self.runs.filter)) {
                    self.reload_wanted = true;
                    return;
                }
                let keep = self.runs.selected().map(|r| r.id);
                let at = keep
                    .and_then(|id| snapshot.rows.iter().position(|r| r.id == id))
                    .unwrap_or(self.runs.cursor.selected);
                let len = snapshot.rows.len();
                self.runs.snapshot = Some(snapshot);
                self.runs.cursor.select(at, len, page);
                self.fresh_at[View::Runs.index()] = Some(self.now);
            }
            Snapshot::RunDetail(snapshot) => {
                if self.detail.run_id == Some(snapshot.run.id) {
                    self.detail.set(*snapshot);
                    self.fresh_at[View::RunDetail.index()] = Some(self.now);
                }
            }
            Snapshot::Logs(chunk) => {
                let same = self.logs.target.as_ref().is_some_and(|t| {
                    t.run_id == chunk.run_id && t.job == chunk.job && chunk.after == self.logs.after
                });
                if !same {
                    return;
                }
                let full = chunk.lines.len() as u64 >= LOG_PAGE;
                self.logs.job_state = chunk
                    .detail
                    .jobs
                    .iter()
                    .find(|j| j.name == chunk.job)
                    .map(|j| j.state);
                self.logs.append(chunk.lines);
                if self.detail.run_id == Some(chunk.run_id) {
                    self.detail.set(chunk.detail);
                }
                self.fresh_at[View::Logs.index()] = Some(self.now);
                // More lines are waiting: read them now rather than a page per second.
                if full {
                    self.reload_wanted = true;
                }
            }
            Snapshot::Workers(rows) => {
                let keep = self
                    .workers
                    .rows
                    .get(self.workers.cursor.selected)
                    .map(|w| w.id.clone());
                self.workers.rows = rows;
                self.workers.loaded = true;
                let at = keep
                    .and_then(|id| self.workers.rows.iter().position(|w| w.id == id))
                    .unwrap_or(self.workers.cursor.selected);
                let len = self.workers.rows.len();
                self.workers.cursor.select(at, len, page);
                self.fresh_at[View::Workers.index()] = Some(self.now);
            }
            Snapshot::Loyalty(snapshot) => {
                let keep = self
                    .loyalty
                    .campaigns()
                    .get(self.loyalty.cursor.selected)
                    .map(|c| c.id);
                self.loyalty.snapshot = Some(*snapshot);
                let campaigns = self.loyalty.campaigns();
                let at = keep
                    .and_then(|id| campaigns.iter().position(|c| c.id == id))
                    .unwrap_or(self.loyalty.cursor.selected);
                let len = campaigns.len();
                self.loyalty.cursor.select(at, len, page);
                self.fresh_at[View::Loyalty.index()] = Some(self.now);
            }
        }
    }

    pub(super) fn clamp_cursors(&mut self) {
        let banner = self.banner_shown();
        let page = |v| views::page(v, self.size, banner);
        self.pipelines
            .cursor
            .clamp(self.pipelines.rows.len(), page(View::Pipelines));
        let runs = self.runs.len();
        self.runs.cursor.clamp(runs, page(View::Runs));
        self.workers
            .cursor
            .clamp(self.workers.rows.len(), page(View::Workers));
        let campaigns = self.loyalty.campaigns().len();
        self.loyalty.cursor.clamp(campaigns, page(View::Loyalty));
    }

    pub(super) fn switch_to(&mut self, view: View) -> Vec<Effect> {
        match view {
            View::RunDetail if self.detail.run_id.is_none() => {
                let Some(run) = self.runs.selected().map(|r| r.id) else {
                    self.say("pick a run in Runs (2) and press Enter to see it here");
                    self.view = view;
                    return Vec::new();
                };
                return self.open_run(run);
            }
            View::Logs if self.logs.target.is_none() => {
                self.view = view;
                return self.open_logs();
            }
            _ => {}
        }
        self.view = view;
        self.clamp_cursors();
        self.load_now()
    }

    pub(super) fn cycle_view(&mut self, delta: isize) -> Vec<Effect> {
        let next = self.view.cycle(delta);
        self.switch_to(next)
    }

    /// Shows run `id` in the Run detail view.
    pub(super) fn open_run(&mut self, id: i64) -> Vec<Effect> {
        if self.detail.run_id != Some(id) {
            self.detail = DetailState {
                run_id: Some(id),
                orientation: self.detail.orientation,
                ..DetailState::default()
            };
        }
        self.view = View::RunDetail;
        self.load_now()
    }

    /// Shows the log of the job selected in Run detail.
    pub(super) fn open_logs(&mut self) -> Vec<Effect> {
        let (Some(run_id), Some(job)) = (self.detail.run_id, self.detail.selected_job()) else {
            self.say("pick a job in the Run view (3) and press Enter to see its log");
            self.view = View::Logs;
            return Vec::new();
        };
        let target = LogTarget {
            run_id,
            job: job.name.clone(),
        };
        if self.logs.target.as_ref() != Some(&target) {
            self.logs.reset(target);
            self.logs.job_state = Some(job.state);
        }
        self.view = View::Logs;
        self.load_now()
    }

    /// A neutral status line.
    pub(super) fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    pub(super) fn refuse(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// Asks to confirm `action` (or performs it at once when it needs no confirmation).
    pub(super) fn propose(&mut self, action: Action) -> Vec<Effect> {
        if self.acting {
            self.refuse("an action is still running; wait for its result");
            return Vec::new();
        }
        match action.question() {
            Some(question) => {
                self.overlay = Some(Overlay::Confirm { question, action });
                Vec::new()
            }
            None => self.perform(action),
        }
    }

    pub(super) fn perform(&mut self, action: Action) -> Vec<Effect> {
        self.acting = true;
        self.say("working…");
        vec![Effect::Perform(action)]
    }

    pub(super) fn logs_search(&mut self, forward: bool) {
        let page = self.page();
        let from = self
            .logs
            .hit
            .unwrap_or_else(|| self.logs.first_line(page).saturating_sub(1));
        match self.logs.find(from, forward) {
            Some(line) => {
                self.logs.hit = Some(line);
                self.logs.follow = false;
                self.logs.top = line.saturating_sub(page / 2);
            }
            None => {
                let text = self.logs.search.clone().unwrap_or_default();
                self.refuse(format!("`{text}` is not in this log"));
            }
        }
    }
}

/// The first line of an error, for one-line banners and status lines.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}
