//! Campaigns: a target (every listed condition must hold), a reward (fixed points, or a
//! multiplier on paid spend inside the window), a per-customer cap and a total budget.
//! Parsing reports `line: reason`; allocation is deterministic (by customer id), so a
//! preview and the launch that follows it agree. A file without dates is a monthly template
//! ([`Campaign::for_month`]): the campaign of a month is named `NAME YYYY-MM` and runs for
//! that calendar month.

use std::ops::Range;

use chrono::{Datelike as _, NaiveDate};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{Milli, Rules};

/// A campaign as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub name: String,
    pub starts: NaiveDate,
    pub ends: NaiveDate,
    pub budget_points: i64,
    pub per_customer_cap: Option<i64>,
    pub target: Target,
    pub reward: Reward,
}

/// Who a campaign is for. Empty lists and missing ranges do not restrict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub segments: Vec<String>,
    pub tiers: Vec<String>,
    pub churn_probability: Option<(f64, f64)>,
    pub intent_probability: Option<(f64, f64)>,
    pub days_since_last_order: Option<(f64, f64)>,
    pub regions: Vec<String>,
    pub mean_sentiment: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reward {
    Fixed(i64),
    /// Points on paid spend inside the window times this (2 doubles them); the campaign
    /// pays the part above the base rate.
    Multiplier(Milli),
}

/// What targeting knows of a customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidate {
    pub customer_id: String,
    pub segment: Option<String>,
    pub tier: Option<String>,
    pub churn: Option<f64>,
    pub intent: Option<f64>,
    pub days_since_last_order: Option<f64>,
    pub region: Option<String>,
    pub mean_sentiment: Option<f64>,
    /// Paid spend inside the campaign's window, cents.
    pub window_spend_cents: i64,
}

/// One customer's award and why they qualified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    pub customer_id: String,
    pub points: i64,
    pub why: Vec<String>,
}

/// A problem in a campaign file: 1-based line and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    campaign: Spanned<RawCampaign>,
    #[serde(default)]
    target: Option<RawTarget>,
    reward: Spanned<RawReward>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    name: Spanned<String>,
    #[serde(default)]
    starts: Option<Spanned<String>>,
    #[serde(default)]
    ends: Option<Spanned<String>>,
    budget_points: Spanned<i64>,
    #[serde(default)]
    per_customer_cap: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default)]
    segments: Vec<String>,
    #[serde(default)]
    tiers: Vec<String>,
    #[serde(default)]
    churn_probability: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    intent_probability: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    days_since_last_order: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    mean_sentiment: Option<Spanned<Vec<f64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReward {
    #[serde(default)]
    fixed_points: Option<Spanned<i64>>,
    #[serde(default)]
    multiplier: Option<Spanned<f64>>,
}

/// The segment labels and tiers a campaign's target may name (checked when a campaign is
/// created; a stored campaign is not re-checked, so a later change of tiers leaves it
/// readable).
pub struct KnownNames<'a> {
    /// Whether a segment label is one the segment model gives.
    pub is_segment: &'a dyn Fn(&str) -> bool,
    /// The segment labels listed when one is unknown.
    pub segments: &'a [&'a str],
    /// The configured tiers.
    pub tiers: &'a [String],
}

/// Only the names of a target, with their places in the file.
#[derive(Deserialize)]
struct TargetNamesFile {
    #[serde(default)]
    target: Option<TargetNames>,
}

#[derive(Deserialize)]
struct TargetNames {
    #[serde(default)]
    segments: Vec<Spanned<String>>,
    #[serde(default)]
    tiers: Vec<Spanned<String>>,
}

impl Campaign {
    /// Problems with the segment labels and tiers the target of `source` names: each one
    /// that does not exist, at its line, with the known ones.
    pub fn check_names(source: &str, known: &KnownNames) -> Result<(), Vec<Problem>> {
        let line_at =
            |span: Range<usize>| source[..span.start.min(source.len())].matches('\n').count() + 1;
        let file: TargetNamesFile = toml::from_str(source).map_err(|e| {
            vec![Problem {
                line: e.span().map(line_at).unwrap_or(1),
                message: e.message().trim().to_owned(),
            }]
        })?;
        let Some(target) = file.target else {
            return Ok(());
        };
        let mut problems = Vec::new();
        for s in &target.segments {
            if !(known.is_segment)(s.get_ref()) {
                problems.push(Problem {
                    line: line_at(s.span()),
                    message: format!(
                        "unknown segment `{}`{}; the segment labels are {}, or one of them with a qualifier (e.g. `loyal (lower spend)`)",
                        s.get_ref(),
                        crate::suggest::did_you_mean(s.get_ref(), known.segments),
                        known.segments.join(", ")
                    ),
                });
            }
        }
        for t in &target.tiers {
            if !known.tiers.contains(t.get_ref()) {
                let list = if known.tiers.is_empty() {
                    "no tiers are configured".to_owned()
                } else {
                    format!("the [loyalty] tiers are {}", known.tiers.join(", "))
                };
                problems.push(Problem {
                    line: line_at(t.span()),
                    message: format!(
                        "unknown tier `{}`{}; {list}",
                        t.get_ref(),
                        crate::suggest::did_you_mean(t.get_ref(), known.tiers),
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Parses and checks a campaign file's text.
    pub fn parse(source: &str) -> Result<Campaign, Vec<Problem>> {
        Self::parse_with(source, None)
    }

    /// Parses a monthly template (a campaign file without `starts` and `ends`) as the
    /// campaign of the month holding `day`: named `NAME YYYY-MM`, running from the first to
    /// the last day of that month.
    pub fn for_month(source: &str, day: NaiveDate) -> Result<Campaign, Vec<Problem>> {
        Self::parse_with(source, Some(day))
    }

    fn parse_with(source: &str, month: Option<NaiveDate>) -> Result<Campaign, Vec<Problem>> {
        let line_at =
            |span: Range<usize>| source[..span.start.min(source.len())].matches('\n').count() + 1;
        let raw: RawFile = toml::from_str(source).map_err(|e| {
            vec![Problem {
                line: e.span().map(line_at).unwrap_or(1),
                message: e.message().trim().to_owned(),
            }]
        })?;
        let mut problems = Vec::new();
        let mut problem = |span: Range<usize>, message: String| {
            problems.push(Problem {
                line: line_at(span),
                message,
            })
        };
        let c = raw.campaign.get_ref();
        let name = c.name.get_ref().trim().to_owned();
        if name.is_empty() {
            problem(c.name.span(), "campaign name must not be empty".to_owned());
        }
        let mut date = |s: &Spanned<String>, what: &str| {
            NaiveDate::parse_from_str(s.get_ref().trim(), "%Y-%m-%d")
                .map_err(|_| {
                    problem(
                        s.span(),
                        format!("{what} `{}`: expected a date like 2026-07-01", s.get_ref()),
                    )
                })
                .ok()
        };
        let (starts, ends) = match (month, &c.starts, &c.ends) {
            (None, Some(s), Some(e)) => {
                let (starts, ends) = (date(s, "starts"), date(e, "ends"));
                if let (Some(s), Some(e)) = (starts, ends)
                    && e < s
                {
                    problem(
                        c.ends.as_ref().map_or(0..0, Spanned::span),
                        format!("ends {e} is before starts {s}"),
                    );
                }
                (starts, ends)
            }
            (None, s, _) => {
                let what = if s.is_none() { "starts" } else { "ends" };
                problem(
                    raw.campaign.span(),
                    format!(
                        "missing field `{what}` (a file without dates is a monthly template: `patron campaign create FILE --month YYYY-MM`, or the `points` job's `campaign_file`)"
                    ),
                );
                (None, None)
            }
            (Some(day), None, None) => {
                let (starts, ends) = month_of(day);
                if starts.is_none() || ends.is_none() {
                    problem(
                        raw.campaign.span(),
                        format!(
                            "the month of {day} is the calendar's last: no campaign can run in it"
                        ),
                    );
                }
                (starts, ends)
            }
            (Some(_), s, e) => {
                let span = s.as_ref().or(e.as_ref()).map_or(0..0, Spanned::span);
                problem(
                    span,
                    "a monthly campaign takes its dates from the month: remove starts and ends"
                        .to_owned(),
                );
                (None, None)
            }
        };
        let name = match month {
            Some(day) => format!("{name} {}", day.format("%Y-%m")),
            None => name,
        };
        if *c.budget_points.get_ref() <= 0 {
            problem(
                c.budget_points.span(),
                "budget_points must be positive".to_owned(),
            );
        }
        if let Some(cap) = &c.per_customer_cap
            && *cap.get_ref() <= 0
        {
            problem(cap.span(), "per_customer_cap must be positive".to_owned());
        }
        let t = raw.target.unwrap_or_default();
        let mut range = |r: &Option<Spanned<Vec<f64>>>, what: &str| -> Option<(f64, f64)> {
            let r = r.as_ref()?;
            match r.get_ref().as_slice() {
                [lo, hi] if lo <= hi && lo.is_finite() && hi.is_finite() => Some((*lo, *hi)),
                _ => {
                    problem(
                        r.span(),
                        format!("{what} must be [low, high] with low <= high"),
                    );
                    None
                }
            }
        };
        let target = Target {
            churn_probability: range(&t.churn_probability, "churn_probability"),
            intent_probability: range(&t.intent_probability, "intent_probability"),
            days_since_last_order: range(&t.days_since_last_order, "days_since_last_order"),
            mean_sentiment: range(&t.mean_sentiment, "mean_sentiment"),
            segments: t.segments,
            tiers: t.tiers,
            regions: t.regions,
        };
        let r = raw.reward.get_ref();
        let reward = match (&r.fixed_points, &r.multiplier) {
            (Some(p), None) if *p.get_ref() > 0 => Some(Reward::Fixed(*p.get_ref())),
            (Some(p), None) => {
                problem(p.span(), "fixed_points must be positive".to_owned());
                None
            }
            (None, Some(m)) => match Milli::from_f64(*m.get_ref()) {
                // At most 1000: a stored campaign (`to_toml`, a float) reads back exactly.
                Ok(x) if x > Milli::ONE && x <= Milli(1_000_000) => Some(Reward::Multiplier(x)),
                Ok(_) => {
                    problem(
                        m.span(),
                        "multiplier must be above 1 and at most 1000".to_owned(),
                    );
                    None
                }
                Err(e) => {
                    problem(m.span(), format!("multiplier: {e}"));
                    None
                }
            },
            _ => {
                problem(
                    raw.reward.span(),
                    "[reward] needs exactly one of fixed_points or multiplier".to_owned(),
                );
                None
            }
        };
        match (starts, ends, reward) {
            (Some(starts), Some(ends), Some(reward)) if problems.is_empty() => Ok(Campaign {
                name,
                starts,
                ends,
                budget_points: *c.budget_points.get_ref(),
                per_customer_cap: c.per_customer_cap.as_ref().map(|x| *x.get_ref()),
                target,
                reward,
            }),
            _ => Err(problems),
        }
    }

    /// The campaign as a file: what [`Campaign::parse`] reads back as this campaign (how a
    /// monthly campaign is stored, with its name and dates written out).
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            campaign: Head<'a>,
            target: &'a Target,
            reward: Pay,
        }
        #[derive(Serialize)]
        struct Head<'a> {
            name: &'a str,
            starts: String,
            ends: String,
            budget_points: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            per_customer_cap: Option<i64>,
        }
        #[derive(Serialize)]
        struct Pay {
            #[serde(skip_serializing_if = "Option::is_none")]
            fixed_points: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            multiplier: Option<f64>,
        }
        let file = File {
            campaign: Head {
                name: &self.name,
                starts: self.starts.to_string(),
                ends: self.ends.to_string(),
                budget_points: self.budget_points,
                per_customer_cap: self.per_customer_cap,
            },
            target: &self.target,
            reward: match self.reward {
                Reward::Fixed(p) => Pay {
                    fixed_points: Some(p),
                    multiplier: None,
                },
                Reward::Multiplier(m) => Pay {
                    fixed_points: None,
                    multiplier: Some(m.0 as f64 / 1000.0),
                },
            },
        };
        // Plain data (strings, numbers, arrays): serialising it cannot fail.
        toml::to_string(&file).unwrap_or_default()
    }

    /// Epoch seconds of the window: `[starts 00:00, day after ends 00:00)` UTC.
    pub fn window(&self) -> (i64, i64) {
        let at = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp())
        };
        (
            at(self.starts),
            at(self.ends.succ_opt().unwrap_or(self.ends)),
        )
    }

    /// Awards in customer-id order until the budget is spent (the last award is cut to
    /// what is left).
    pub fn allocate(&self, rules: &Rules, candidates: &[Candidate]) -> Vec<Allocation> {
        let mut sorted: Vec<&Candidate> = candidates.iter().collect();
        sorted.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        let mut left = self.budget_points;
        let mut out = Vec::new();
        for c in sorted {
            if left <= 0 {
                break;
            }
            let Some(why) = self.target.matches(c) else {
                continue;
            };
            let mut points = match self.reward {
                Reward::Fixed(p) => p,
                Reward::Multiplier(m) => rules.bonus_for(c.window_spend_cents, m),
            };
            if let Some(cap) = self.per_customer_cap {
                points = points.min(cap);
            }
            points = points.min(left);
            if points <= 0 {
                continue;
            }
            left -= points;
            out.push(Allocation {
                customer_id: c.customer_id.clone(),
                points,
                why,
            });
        }
        out
    }
}

/// The first and last day of the month holding `day`.
fn month_of(day: NaiveDate) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let first = day.with_day(1);
    let next = first.and_then(|f| f.checked_add_months(chrono::Months::new(1)));
    (first, next.and_then(|n| n.pred_opt()))
}

impl Target {
    /// Why `c` qualifies (one line per condition), or `None` if a condition fails. A
    /// condition on a value the customer lacks (no score yet) fails.
    pub fn matches(&self, c: &Candidate) -> Option<Vec<String>> {
        let mut why = Vec::new();
        let among = |list: &[String], v: &Option<String>, what: &str, why: &mut Vec<String>| {
            if list.is_empty() {
                return true;
            }
            match v {
                Some(v) if list.iter().any(|x| x == v) => {
                    why.push(format!("{what} {v}"));
                    true
                }
                _ => false,
            }
        };
        let within =
            |r: Option<(f64, f64)>, v: Option<f64>, what: &str, why: &mut Vec<String>| match r {
                None => true,
                Some((lo, hi)) => match v {
                    Some(v) if (lo..=hi).contains(&v) => {
                        why.push(format!("{what} {v:.2}"));
                        true
                    }
                    _ => false,
                },
            };
        let ok = among(&self.segments, &c.segment, "segment", &mut why)
            && among(&self.tiers, &c.tier, "tier", &mut why)
            && among(&self.regions, &c.region, "region", &mut why)
            && within(self.churn_probability, c.churn, "churn", &mut why)
            && within(self.intent_probability, c.intent, "intent", &mut why)
            && within(
                self.days_since_last_order,
                c.days_since_last_order,
                "days since last order",
                &mut why,
            )
            && within(self.mean_sentiment, c.mean_sentiment, "sentiment", &mut why);
        if !ok {
            return None;
        }
        if why.is_empty() {
            why.push("every customer".to_owned());
        }
        Some(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIN_BACK: &str = r#"
[campaign]
name = "win-back"
starts = "2026-07-01"
ends = "2026-07-31"
budget_points = 500
per_customer_cap = 300
[target]
segments = ["at risk", "hibernating"]
churn_probability = [0.6, 1.0]
[reward]
fixed_points = 200
"#;

    fn candidate(id: &str, segment: &str, churn: f64) -> Candidate {
        Candidate {
            customer_id: id.to_owned(),
            segment: Some(segment.to_owned()),
            churn: Some(churn),
            ..Candidate::default()
        }
    }

    #[test]
    fn a_campaign_file_parses() {
        let c = Campaign::parse(WIN_BACK).unwrap();
        assert_eq!(c.name, "win-back");
        assert_eq!(c.reward, Reward::Fixed(200));
        assert_eq!(c.target.churn_probability, Some((0.6, 1.0)));
        assert_eq!(c.per_customer_cap, Some(300));
        let (from, to) = c.window();
        assert_eq!(to - from, 31 * 86_400);
    }

    #[test]
    fn problems_name_their_line() {
        let bad = WIN_BACK.replace("ends = \"2026-07-31\"", "ends = \"2026-06-31\"");
        let p = Campaign::parse(&bad).unwrap_err();
        assert_eq!(p[0].line, 5, "{p:?}");
        assert!(p[0].message.contains("ends"), "{p:?}");
        let bad = WIN_BACK.replace(
            "churn_probability = [0.6, 1.0]",
            "churn_probability = [0.9, 0.1]",
        );
        let p = Campaign::parse(&bad).unwrap_err();
        assert_eq!(p[0].line, 10, "{p:?}");
        let bad = WIN_BACK.replace("fixed_points = 200", "fixed_points = 200\nmultiplier = 2.0");
        assert!(
            Campaign::parse(&bad).unwrap_err()[0]
                .message
                .contains("exactly one")
        );
        let bad = WIN_BACK.replace("segments", "segmnets");
        let p = Campaign::parse(&bad).unwrap_err();
        assert_eq!(p[0].line, 9, "{p:?}");
        assert!(p[0].message.contains("segmnets"), "{p:?}");
    }

    #[test]
    fn every_condition_must_hold_and_the_budget_stops_allocation() {
        let c = Campaign::parse(WIN_BACK).unwrap();
        let candidates = vec![
            candidate("c4", "at risk", 0.9),
            candidate("c1", "at risk", 0.7),
            candidate("c2", "champions", 0.9),   // wrong segment
            candidate("c3", "hibernating", 0.5), // churn too low
            candidate("c5", "hibernating", 0.65),
            Candidate {
                churn: None, // no score: does not qualify
                ..candidate("c0", "at risk", 0.0)
            },
        ];
        let plan = c.allocate(&Rules::default(), &candidates);
        // In id order: c1 200, c4 200, c5 gets the 100 left.
        let got: Vec<(&str, i64)> = plan
            .iter()
            .map(|a| (a.customer_id.as_str(), a.points))
            .collect();
        assert_eq!(got, [("c1", 200), ("c4", 200), ("c5", 100)]);
        assert_eq!(plan[0].why, ["segment at risk", "churn 0.70"]);
        assert_eq!(plan.iter().map(|a| a.points).sum::<i64>(), 500);
    }

    #[test]
    fn a_multiplier_pays_the_extra_on_window_spend_up_to_the_cap() {
        let text = WIN_BACK
            .replace("fixed_points = 200", "multiplier = 3.0")
            .replace("budget_points = 500", "budget_points = 100000");
        let c = Campaign::parse(&text).unwrap();
        let mut a = candidate("a", "at risk", 0.9);
        a.window_spend_cents = 5_000; // 50 points base, ×3: 100 extra
        let mut b = candidate("b", "at risk", 0.9);
        b.window_spend_cents = 1_000_000; // 10,000 base: 20,000 extra, capped at 300
        let plan = c.allocate(&Rules::default(), &[a, b]);
        assert_eq!(
            plan.iter().map(|x| x.points).collect::<Vec<_>>(),
            [100, 300]
        );
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// WIN_BACK without its dates: a monthly template.
    fn template() -> String {
        WIN_BACK
            .replace("starts = \"2026-07-01\"\n", "")
            .replace("ends = \"2026-07-31\"\n", "")
    }

    #[test]
    fn a_monthly_template_names_and_dates_the_month_of_its_day() {
        let c = Campaign::for_month(&template(), day("2026-07-15")).unwrap();
        assert_eq!(c.name, "win-back 2026-07");
        assert_eq!((c.starts, c.ends), (day("2026-07-01"), day("2026-07-31")));
        // Any day of the month gives the same campaign: a retry or a rerun finds it by name.
        assert_eq!(
            Campaign::for_month(&template(), day("2026-07-01")).unwrap(),
            c
        );
        assert_eq!(
            Campaign::for_month(&template(), day("2026-07-31")).unwrap(),
            c
        );
        let feb = Campaign::for_month(&template(), day("2028-02-01")).unwrap();
        assert_eq!(feb.name, "win-back 2028-02");
        assert_eq!(feb.ends, day("2028-02-29"));
        let (from, to) = feb.window();
        assert_eq!(to - from, 29 * 86_400);
        let dec = Campaign::for_month(&template(), day("2026-12-09")).unwrap();
        assert_eq!(
            (dec.starts, dec.ends),
            (day("2026-12-01"), day("2026-12-31"))
        );
        // Everything else is the file's.
        assert_eq!(c.target, Campaign::parse(WIN_BACK).unwrap().target);
        // A multiplier past 1000 is refused: a float could not store it exactly.
        let big = WIN_BACK.replace("fixed_points = 200", "multiplier = 314486900791442.4");
        let p = Campaign::parse(&big).unwrap_err();
        assert!(p[0].message.contains("at most 1000"), "{p:?}");
        let most = Campaign::parse(&WIN_BACK.replace("fixed_points = 200", "multiplier = 999.999"))
            .unwrap();
        assert_eq!(Campaign::parse(&most.to_toml()), Ok(most));
        // The calendar's last month has no end to run to: refused, at `[campaign]`.
        let p = Campaign::for_month(&template(), NaiveDate::MAX).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, 2, "{p:?}");
        assert!(p[0].message.contains("calendar"), "{p:?}");
    }

    #[test]
    fn dates_belong_either_to_the_file_or_to_the_month() {
        let p = Campaign::for_month(WIN_BACK, day("2026-07-01")).unwrap_err();
        assert!(p[0].message.contains("remove starts and ends"), "{p:?}");
        assert_eq!(p[0].line, 4, "{p:?}");
        let p = Campaign::parse(&template()).unwrap_err();
        assert!(p[0].message.contains("missing field `starts`"), "{p:?}");
        assert!(p[0].message.contains("--month"), "{p:?}");
    }

    #[test]
    fn the_shipped_win_back_template_parses() {
        let source = include_str!("../../campaigns/win-back.toml");
        let c = Campaign::for_month(source, day("2026-07-01")).unwrap();
        assert_eq!(c.name, "win-back 2026-07");
        assert_eq!(c.reward, Reward::Fixed(200));
        assert_eq!(c.per_customer_cap, Some(200));
        assert_eq!(c.target.segments, ["at risk", "hibernating"]);
        assert_eq!(c.target.churn_probability, Some((0.6, 1.0)));
        assert!(c.budget_points > 0);
    }

    #[test]
    fn a_campaign_written_out_reads_back_the_same() {
        let mut c = Campaign::for_month(&template(), day("2026-07-01")).unwrap();
        assert_eq!(Campaign::parse(&c.to_toml()).unwrap(), c);
        c.reward = Reward::Multiplier(Milli(2_125));
        c.per_customer_cap = None;
        c.name = "quote \" and ' apostrophe".to_owned();
        c.target = Target {
            segments: vec![],
            tiers: vec!["gold".to_owned()],
            churn_probability: None,
            intent_probability: Some((0.25, 0.75)),
            days_since_last_order: Some((30.0, 365.0)),
            regions: vec!["east".to_owned(), "west".to_owned()],
            mean_sentiment: Some((-1.0, 0.1)),
        };
        let text = c.to_toml();
        assert_eq!(Campaign::parse(&text).unwrap(), c, "{text}");
    }

    #[test]
    fn no_target_means_everyone() {
        let text = "[campaign]\nname = \"all\"\nstarts = \"2026-01-01\"\nends = \"2026-01-02\"\nbudget_points = 10\n[reward]\nfixed_points = 1\n";
        let c = Campaign::parse(text).unwrap();
        let plan = c.allocate(
            &Rules::default(),
            &[Candidate {
                customer_id: "x".to_owned(),
                ..Candidate::default()
            }],
        );
        assert_eq!(plan[0].why, ["every customer"]);
    }

    #[test]
    fn unknown_segments_and_tiers_are_named_with_the_known_ones() {
        let is_segment = |s: &str| ["at risk", "hibernating", "champions"].contains(&s);
        let tiers = vec!["silver".to_owned(), "gold".to_owned()];
        let known = KnownNames {
            is_segment: &is_segment,
            segments: &["at risk", "hibernating", "champions"],
            tiers: &tiers,
        };
        assert_eq!(Campaign::check_names(WIN_BACK, &known), Ok(()));
        let bad = WIN_BACK.replace(
            "segments = [\"at risk\", \"hibernating\"]",
            "segments = [\"at risk\", \"champs\"]\ntiers = [\"gold\", \"goldd\"]",
        );
        Campaign::parse(&bad).unwrap();
        let p = Campaign::check_names(&bad, &known).unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].line, 9);
        assert!(
            p[0].message.starts_with(
                "unknown segment `champs`; the segment labels are at risk, hibernating, champions"
            ),
            "{p:?}"
        );
        assert_eq!(p[1].line, 10);
        assert_eq!(
            p[1].message,
            "unknown tier `goldd` (did you mean `gold`?); the [loyalty] tiers are silver, gold"
        );
        let none = KnownNames {
            tiers: &[],
            ..known
        };
        let p = Campaign::check_names(&bad, &none).unwrap_err();
        assert!(p[2].message.ends_with("no tiers are configured"), "{p:?}");
    }
}
