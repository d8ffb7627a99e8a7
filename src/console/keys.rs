//! Key handling: overlays first (prompt, confirmation, help), then keys every view shares,
//! then the current view's own. Each key is a state transition plus, at most, effects.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{
    actions::{self, Action},
    app::{App, Orientation, Overlay, PromptFor, View},
    event::Effect,
};

/// A list movement, as read from a key.
enum Move {
    By(isize),
    Page(isize),
    Start,
    End,
}

fn movement(key: &KeyEvent) -> Option<Move> {
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Move::By(-1),
        KeyCode::Down | KeyCode::Char('j') => Move::By(1),
        KeyCode::PageUp => Move::Page(-1),
        KeyCode::PageDown => Move::Page(1),
        KeyCode::Char('b') if key.modifiers.contains(KeyModifiers::CONTROL) => Move::Page(-1),
        KeyCode::Char('f') if key.modifiers.contains(KeyModifiers::CONTROL) => Move::Page(1),
        KeyCode::Home | KeyCode::Char('g') => Move::Start,
        KeyCode::End | KeyCode::Char('G') => Move::End,
        _ => return None,
    })
}

/// The row delta of a movement, for a list of `len` rows shown `page` at a time.
fn delta(m: &Move, selected: usize, len: usize, page: usize) -> isize {
    let page = page.max(1) as isize;
    match m {
        Move::By(d) => *d,
        Move::Page(d) => d * page,
        Move::Start => -(selected as isize),
        Move::End => len as isize,
    }
}

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind != KeyEventKind::Press {
            return Vec::new();
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Effect::Quit];
        }
        if let Some(overlay) = self.overlay.take() {
            return self.on_overlay_key(overlay, key);
        }
        match key.code {
            KeyCode::Char('q') => return vec![Effect::Quit],
            KeyCode::Char('?') => {
                self.overlay = Some(Overlay::Help);
                return Vec::new();
            }
            KeyCode::Char(c @ '1'..='6') => {
                let i = c as usize - '1' as usize;
                return self.switch_to(View::ALL[i]);
            }
            KeyCode::Tab => return self.cycle_view(1),
            KeyCode::BackTab => return self.cycle_view(-1),
            _ => {}
        }
        match self.view {
            View::Pipelines => self.pipelines_key(key),
            View::Runs => self.runs_key(key),
            View::RunDetail => self.detail_key(key),
            View::Logs => self.logs_key(key),
            View::Workers => {
                if let Some(m) = movement(&key) {
                    let (len, page) = (self.workers.rows.len(), self.page());
                    let d = delta(&m, self.workers.cursor.selected, len, page);
                    self.workers.cursor.move_by(d, len, page);
                }
                Vec::new()
            }
            View::Loyalty => self.loyalty_key(key),
        }
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Effect> {
        match overlay {
            // Any key closes help.
            Overlay::Help => Vec::new(),
            Overlay::Confirm { question, action } => match key.code {
                KeyCode::Char('y' | 'Y') => self.perform(action),
                KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc | KeyCode::Enter => {
                    self.say("nothing done");
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Confirm { question, action });
                    Vec::new()
                }
            },
            Overlay::Prompt { purpose, mut input } => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => self.submit(purpose, input),
                KeyCode::Backspace => {
                    input.pop();
                    self.overlay = Some(Overlay::Prompt { purpose, input });
                    Vec::new()
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.overlay = Some(Overlay::Prompt {
                        purpose,
                        input: String::new(),
                    });
                    Vec::new()
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    // Prompts are one line; a paste of a huge text is cut.
                    if input.chars().count() < 500 {
                        input.push(c);
                    }
                    self.overlay = Some(Overlay::Prompt { purpose, input });
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Prompt { purpose, input });
                    Vec::new()
                }
            },
        }
    }

    fn submit(&mut self, purpose: PromptFor, input: String) -> Vec<Effect> {
        match purpose {
            PromptFor::TriggerParams { pipeline } => match actions::parse_params(&input) {
                Ok(params) => self.propose(Action::Trigger { pipeline, params }),
                Err(e) => {
                    self.refuse(format!("{e}; parameters are KEY=VALUE separated by spaces"));
                    self.overlay = Some(Overlay::Prompt {
                        purpose: PromptFor::TriggerParams { pipeline },
                        input,
                    });
                    Vec::new()
                }
            },
            PromptFor::Adjust => match actions::parse_adjustment(&input) {
                Ok(action) => self.propose(action),
                Err(e) => {
                    self.refuse(e);
                    self.overlay = Some(Overlay::Prompt {
                        purpose: PromptFor::Adjust,
                        input,
                    });
                    Vec::new()
                }
            },
            PromptFor::RunsFilter => {
                self.runs.filter = input.trim().to_owned();
                self.runs.cursor = Default::default();
                self.load_now()
            }
            PromptFor::LogSearch => {
                let text = input.trim().to_owned();
                self.logs.hit = None;
                if text.is_empty() {
                    self.logs.search = None;
                } else {
                    self.logs.search = Some(text);
                    self.logs_search(true);
                }
                Vec::new()
            }
        }
    }

    fn prompt(&mut self, purpose: PromptFor, input: String) -> Vec<Effect> {
        self.overlay = Some(Overlay::Prompt { purpose, input });
        Vec::new()
    }

    fn trigger_prompt(&mut self, pipeline: Option<String>) -> Vec<Effect> {
        match pipeline {
            Some(pipeline) => self.prompt(PromptFor::TriggerParams { pipeline }, String::new()),
            None => {
                self.refuse("no pipeline selected");
                Vec::new()
            }
        }
    }

    fn pipelines_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(m) = movement(&key) {
            let (len, page) = (self.pipelines.rows.len(), self.page());
            let d = delta(&m, self.pipelines.cursor.selected, len, page);
            self.pipelines.cursor.move_by(d, len, page);
            return Vec::new();
        }
        let selected = self
            .pipelines
            .selected()
            .map(|p| (p.name.clone(), p.paused));
        match key.code {
            KeyCode::Enter => match selected {
                Some((name, _)) => {
                    self.runs.filter = format!("pipeline={name}");
                    self.runs.cursor = Default::default();
                    self.switch_to(View::Runs)
                }
                None => Vec::new(),
            },
            KeyCode::Char('t') => self.trigger_prompt(selected.map(|s| s.0)),
            KeyCode::Char('p') => match selected {
                Some((pipeline, paused)) => self.propose(Action::SetPaused {
                    pipeline,
                    paused: !paused,
                }),
                None => {
                    self.refuse("no pipeline selected");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        }
    }

    fn runs_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(m) = movement(&key) {
            let page = self.page();
            let len = self.runs.snapshot.as_ref().map_or(0, |s| s.rows.len());
            let d = delta(&m, self.runs.cursor.selected, len, page);
            self.runs.cursor.move_by(d, len, page);
            return Vec::new();
        }
        let selected = self.runs.selected().map(|r| (r.id, r.pipeline.clone()));
        match key.code {
            KeyCode::Char('/') => self.prompt(PromptFor::RunsFilter, self.runs.filter.clone()),
            KeyCode::Esc if !self.runs.filter.is_empty() => {
                self.runs.filter.clear();
                self.runs.cursor = Default::default();
                self.load_now()
            }
            KeyCode::Enter => match selected {
                Some((id, _)) => self.open_run(id),
                None => Vec::new(),
            },
            KeyCode::Char('t') => self.trigger_prompt(selected.map(|s| s.1)),
            KeyCode::Char('r') => self.run_action(selected.map(|s| s.0), |run_id| {
                Action::RerunFailed { run_id }
            }),
            KeyCode::Char('c') => {
                self.run_action(selected.map(|s| s.0), |run_id| Action::Cancel { run_id })
            }
            _ => Vec::new(),
        }
    }

    fn run_action(&mut self, run: Option<i64>, make: impl FnOnce(i64) -> Action) -> Vec<Effect> {
        match run {
            Some(id) => self.propose(make(id)),
            None => {
                self.refuse("no run selected");
                Vec::new()
            }
        }
    }

    fn detail_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let run = self.detail.snapshot.as_ref().map(|s| s.run.clone());
        let job = self.detail.selected_job().map(|j| j.name.clone());
        if let Some(dag) = &self.detail.dag {
            let len = dag.order.len();
            let next = match key.code {
                KeyCode::Up | KeyCode::Char('k') => dag.step(self.detail.job, -1),
                KeyCode::Down | KeyCode::Char('j') => dag.step(self.detail.job, 1),
                KeyCode::Home | KeyCode::Char('g') => dag.order.first().copied(),
                KeyCode::End | KeyCode::Char('G') => dag.order.last().copied(),
                KeyCode::PageUp => dag.step(self.detail.job, -10),
                KeyCode::PageDown => dag.step(self.detail.job, 10),
                KeyCode::Left | KeyCode::Char('h') => Some(dag.across(self.detail.job, -1)),
                KeyCode::Right | KeyCode::Char('l') => Some(dag.across(self.detail.job, 1)),
                _ => None,
            };
            if let Some(next) = next {
                if next < len {
                    self.detail.job = next;
                }
                return Vec::new();
            }
        }
        match key.code {
            KeyCode::Esc => self.switch_to(View::Runs),
            KeyCode::Enter => {
                if job.is_some() {
                    self.open_logs()
                } else {
                    Vec::new()
                }
            }
            KeyCode::Char('v') => {
                self.detail.orientation = match self.detail.orientation {
                    Orientation::Columns => Orientation::Rows,
                    Orientation::Rows => Orientation::Columns,
                };
                Vec::new()
            }
            KeyCode::Char('t') => self.trigger_prompt(run.map(|r| r.pipeline)),
            KeyCode::Char('r') => {
                self.run_action(run.map(|r| r.id), |run_id| Action::RerunFailed { run_id })
            }
            KeyCode::Char('c') => {
                self.run_action(run.map(|r| r.id), |run_id| Action::Cancel { run_id })
            }
            KeyCode::Char('R') => match (run, job) {
                (Some(run), Some(job)) => {
                    if !run.state.is_terminal() {
                        self.refuse(format!(
                            "run {} is still {}; wait for it or cancel it (c) first",
                            run.id, run.state
                        ));
                        return Vec::new();
                    }
                    self.propose(Action::RerunFrom {
                        run_id: run.id,
                        job,
                    })
                }
                _ => {
                    self.refuse("no job selected");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        }
    }

    fn logs_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let page = self.page();
        if let Some(m) = movement(&key) {
            let len = self.logs.shown().len();
            let top = self.logs.first_line(page);
            match m {
                Move::End => {
                    self.logs.follow = true;
                }
                m => {
                    let d = delta(&m, top, len, page);
                    self.logs.follow = false;
                    self.logs.top = top.saturating_add_signed(d).min(len.saturating_sub(page));
                }
            }
            return Vec::new();
        }
        match key.code {
            KeyCode::Esc => self.switch_to(View::RunDetail),
            KeyCode::Char('f') => {
                self.logs.follow = !self.logs.follow;
                if !self.logs.follow {
                    self.logs.top = self.logs.shown().len().saturating_sub(page);
                }
                Vec::new()
            }
            KeyCode::Char('/') => {
                let input = self.logs.search.clone().unwrap_or_default();
                self.prompt(PromptFor::LogSearch, input)
            }
            KeyCode::Char('n') => {
                self.logs_search(true);
                Vec::new()
            }
            KeyCode::Char('N') => {
                self.logs_search(false);
                Vec::new()
            }
            KeyCode::Char('a') => {
                let attempts = self.logs.attempts();
                if attempts.len() > 1 {
                    let current = self.logs.shown_attempt().unwrap_or(0);
                    let pos = attempts.iter().position(|&a| a == current).unwrap_or(0);
                    self.logs.attempt = Some(attempts[(pos + 1) % attempts.len()]);
                    self.logs.hit = None;
                    self.logs.top = 0;
                    self.logs.follow = true;
                } else {
                    self.say("this job has one attempt with log lines");
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn loyalty_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(m) = movement(&key) {
            let (len, page) = (self.loyalty.campaigns().len(), self.page());
            let d = delta(&m, self.loyalty.cursor.selected, len, page);
            self.loyalty.cursor.move_by(d, len, page);
            return Vec::new();
        }
        if key.code == KeyCode::Char('a') {
            return self.prompt(PromptFor::Adjust, String::new());
        }
        if key.code != KeyCode::Char('L') {
            return Vec::new();
        }
        let Some(c) = self
            .loyalty
            .campaigns()
            .get(self.loyalty.cursor.selected)
            .cloned()
        else {
            self.refuse("no campaign selected");
            return Vec::new();
        };
        match c.state.as_str() {
            "launched" => {
                self.refuse(format!(
                    "campaign {} was already launched (run {}): nothing more is paid",
                    c.id,
                    c.run_id.map_or_else(|| "-".to_owned(), |r| r.to_string())
                ));
                Vec::new()
            }
            "cancelled" => {
                self.refuse(format!("campaign {} was cancelled: nothing is paid", c.id));
                Vec::new()
            }
            _ => self.propose(Action::Launch {
                campaign_id: c.id,
                name: c.name,
            }),
        }
    }
}
