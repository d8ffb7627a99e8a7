//! `points`: the loyalty ledger's nightly work, or a campaign's launch.
//!
//! Nightly (no `campaign` or `campaign_file` param), as of the run's logical time: earn for paid orders that
//! have not earned (key `earn:ORDER`, at the customer's tier multiplier, pending for
//! `pending_days`), reverse what refunded or cancelled lines took back (key
//! `reverse:ORDER:PAID_CENTS`, one per state of the order), expire what is due (FIFO, key
//! `expire:LOT`), and recompute tiers from the last 12 months.
//!
//! Each step remembers what it covered (watermarks, per shard), so a nightly pass at a
//! million customers reads a day's changes, not the whole history: earning and reversal
//! look only at orders in loads since the last pass, orders timed since, orders of
//! customers loaded since and the orders `clean` marks; tiers only at customers with new
//! earn or reversal rows and those whose `recheck_at` came (a row leaving the 12-month
//! window, a held-back downgrade becoming allowed). The first pass, and a tier pass under
//! changed tier rules or moved back in time, looks at everything.
//!
//! `campaign = ID`: plan the allocation once (stored in the same transaction that marks the
//! campaign `planned`, so a retry, or an attempt running alongside after a lost lease, pays
//! the same customers the same points), then pay it in one statement (key
//! `campaign:ID:CUSTOMER`), then mark the campaign launched. Any step may be cut short by a
//! crash and redone: the ledger's unique key decides what was paid.
//!
//! `campaign_file = PATH` (relative to the daemon's working directory, like `ingest`'s
//! `mapping`): a monthly template (a campaign file without dates). The run's logical date
//! (or an `as_of` run param) picks the month; the campaign `NAME YYYY-MM` is found, or made
//! for that calendar month, and launched the same way. A retry, a rerun or another run in
//! the same month finds the same campaign, so a month pays once; a campaign of that name
//! cancelled beforehand (`patron campaign create FILE --month YYYY-MM`, then `cancel`)
//! skips the month.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobContext, JobError, JobResult, failed, parse_params};
use crate::{
    db::repo::{
        self,
        loyalty::{NewEntry, TierRow},
    },
    lake::read::{self, Orders},
    loyalty::{
        Campaign, EntryKind, Milli, Rules, Standing, due_expiries, next_tier,
        rules::kept_after_refund, tiers,
    },
};

pub struct Points;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Launch this campaign instead of the nightly work.
    #[serde(default)]
    campaign: Option<i64>,
    /// Launch the campaign of the run's month from this template instead.
    #[serde(default)]
    campaign_file: Option<String>,
}

#[async_trait::async_trait]
impl Job for Points {
    fn kind(&self) -> &'static str {
        "points"
    }

    /// The run's `as_of` picks the month; `campaign` names the campaign a launch pays.
    fn run_params(&self) -> crate::pipeline::RunParamUse {
        crate::pipeline::RunParamUse::Reads(&["as_of", "campaign"])
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        let p: Params = parse_params(params)?;
        if let Some(path) = &p.campaign_file {
            if p.campaign.is_some() {
                return Err("give `campaign` or `campaign_file`, not both".to_owned());
            }
            // Checked when present; the daemon may run elsewhere (like `ingest`'s mapping).
            if let Ok(source) = std::fs::read_to_string(path) {
                let day = chrono::Utc::now().date_naive();
                Campaign::for_month(&source, day).map_err(|problems| describe(path, &problems))?;
            }
        }
        Ok(())
    }

    fn shardable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &JobContext) -> JobResult {
        let p: Params = parse_params(&ctx.params_value()).map_err(JobError::Fatal)?;
        let rules = ctx.settings.loyalty.rules().map_err(JobError::Fatal)?;
        // A run param `campaign=ID` (how `patron campaign launch` starts it) also counts.
        let campaign = match p.campaign {
            Some(id) => Some(id),
            None => match ctx.run_params.get("campaign") {
                Some(v) => Some(v.parse::<i64>().map_err(|_| {
                    JobError::Fatal(format!("run param campaign={v}: expected a campaign id"))
                })?),
                None => None,
            },
        };
        match (campaign, p.campaign_file) {
            (Some(_), Some(_)) => Err(JobError::Fatal(
                "give `campaign` or `campaign_file`, not both".to_owned(),
            )),
            (Some(_), _) | (_, Some(_)) if ctx.shard.is_some() => Err(JobError::Fatal(
                "a campaign is paid in one statement and cannot be sharded; remove `shards` from this job".to_owned(),
            )),
            (Some(id), None) => launch(ctx, &rules, id).await,
            (None, Some(path)) => monthly(ctx, &rules, &path).await,
            (None, None) => nightly(ctx, &rules).await,
        }
    }
}

async fn nightly(ctx: &JobContext, rules: &Rules) -> JobResult {
    let db = &ctx.db;
    let started = std::time::Instant::now();
    let mut steps = super::steps::Steps::default();
    let now = ctx.logical_time.timestamp();
    let run_id = Some(ctx.run_id);

    // Earn. A pass after another looks only at the orders that can have changed since
    // (`orders_to_recheck`); the first looks at every order, less those that earned.
    // Loads up to `settled` have ended: what this pass covers once it is done.
    let settled = repo::feedback::settled(db).await.map_err(failed)?;
    let covered = repo::loyalty::earn_seen(db, ctx.shard)
        .await
        .map_err(failed)?;
    let lake = ctx.lake()?;
    let first = covered.load == 0;
    let mut earned = 0;
    let mut earned_points = 0;
    let looked_at = if first {
        // Every order but those that earned, a batch at a time, at the tiers stored. The
        // reversal step looks at the orders that earned before: this pass's earnings are
        // on what is paid now, so nothing of them is taken back.
        let earned_ids = repo::loyalty::earned_order_ids(db).await.map_err(failed)?;
        let standings = repo::loyalty::standings(db, None).await.map_err(failed)?;
        let mut payable = read::unearned_orders(&lake, now, Orders::AllBut(&earned_ids))
            .await
            .map_err(failed)?;
        steps.mark("find unearned orders");
        while let Some(orders) = payable.next().await.map_err(failed)? {
            let earn = earn_entries(ctx, rules, &standings, orders);
            earned_points += earn.iter().map(|e| e.points).sum::<i64>();
            earned += repo::loyalty::append(db, earn).await.map_err(failed)?;
        }
        earned_ids
    } else {
        let among = read::orders_to_recheck(&lake, covered.load, covered.before, now)
            .await
            .map_err(failed)?;
        let done = repo::loyalty::earned_among(db, &among)
            .await
            .map_err(failed)?;
        let mut payable = read::unearned_orders(&lake, now, Orders::Only(&among))
            .await
            .map_err(failed)?;
        let mut orders = Vec::new();
        while let Some(batch) = payable.next().await.map_err(failed)? {
            orders.extend(batch.into_iter().filter(|(o, ..)| !done.contains(o)));
        }
        // The tiers that set the multipliers: of the customers earning now.
        let mut earning: Vec<String> = orders.iter().map(|(_, c, ..)| c.clone()).collect();
        earning.sort_unstable();
        earning.dedup();
        let standings = repo::loyalty::standings(db, Some(&earning))
            .await
            .map_err(failed)?;
        steps.mark("find unearned orders");
        let earn = earn_entries(ctx, rules, &standings, orders);
        earned_points = earn.iter().map(|e| e.points).sum();
        earned = repo::loyalty::append(db, earn).await.map_err(failed)?;
        among
    };
    steps.mark("earn");

    // Reverse.
    // Orders looked at with a line no longer paid, or marked by `clean`, that earned.
    let changed = read::changed_orders(&lake, &looked_at)
        .await
        .map_err(failed)?;
    drop(looked_at);
    let refunded = repo::loyalty::refunded_orders(db, &changed)
        .await
        .map_err(failed)?;
    let reverse: Vec<NewEntry> = refunded
        .into_iter()
        .filter(|r| ctx.owns(&r.customer_id))
        .filter_map(|r| {
            let keep = kept_after_refund(r.earned, r.basis_cents, r.paid_cents);
            let delta = keep - (r.earned + r.reversed);
            (delta < 0).then(|| NewEntry {
                key: format!("reverse:{}:{}", r.order_id, r.paid_cents),
                customer_id: r.customer_id,
                kind: EntryKind::Reverse,
                points: delta,
                at: now,
                available_at: now,
                expires_at: None,
                order_id: Some(r.order_id),
                basis_cents: Some(r.paid_cents),
                campaign_id: None,
                reason: Some("order refunded or cancelled".to_owned()),
                run_id,
            })
        })
        .collect();
    let reversed = repo::loyalty::append(db, reverse).await.map_err(failed)?;
    // Recorded only now: a pass cut short before is redone from the same marks.
    repo::loyalty::set_earn_seen(
        db,
        ctx.shard,
        repo::loyalty::EarnSeen {
            load: settled,
            before: now,
        },
    )
    .await
    .map_err(failed)?;
    steps.mark("reverse");

    // Expire. Rows written before this point are covered by this pass; rows written
    // during it (another run) are looked at by the next.
    let seen = repo::loyalty::expiry_seen(db, ctx.shard)
        .await
        .map_err(failed)?;
    let last_id = repo::loyalty::last_ledger_id(db).await.map_err(failed)?;
    let mut due = repo::loyalty::with_due_lots(db, now, seen)
        .await
        .map_err(failed)?;
    due.retain(|customer, _| ctx.owns(customer));
    steps.mark("expire: read due customers' rows");
    // FIFO over every affected customer's ledger: at scale, millions of rows, so off the
    // async runtime.
    let expire = tokio::task::spawn_blocking(move || {
        let mut expire = Vec::new();
        for (customer, entries) in due {
            for e in due_expiries(&entries, now) {
                expire.push(NewEntry {
                    key: e.key,
                    customer_id: customer.clone(),
                    kind: EntryKind::Expire,
                    points: -e.points,
                    at: e.at,
                    available_at: e.at,
                    expires_at: None,
                    order_id: None,
                    basis_cents: None,
                    campaign_id: None,
                    reason: Some(format!("lot {} expired", e.lot)),
                    run_id,
                });
            }
        }
        // In key order: the key index takes them in sequence, not at random pages.
        expire.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        expire
    })
    .await
    .map_err(|e| JobError::Failed(format!("expiry thread: {e}")))?;
    steps.mark("expire: FIFO");
    let expired_points: i64 = expire.iter().map(|e| -e.points).sum();
    let expired = repo::loyalty::append(db, expire).await.map_err(failed)?;
    repo::loyalty::set_expiry_seen(
        db,
        ctx.shard,
        repo::loyalty::ExpirySeen {
            at: now,
            id: last_id,
        },
    )
    .await
    .map_err(failed)?;
    steps.mark("expire: write");

    // Tiers: a pass after another under the same tier rules looks only at the customers
    // with new earn or reversal rows and those due a recheck (`tiers::recheck_at`).
    let fingerprint = tiers::fingerprint(rules);
    let tiered = repo::loyalty::tiers_seen(db, ctx.shard, fingerprint)
        .await
        .map_err(failed)?;
    let last_id = repo::loyalty::last_ledger_id(db).await.map_err(failed)?;
    let since = now - tiers::YEAR;
    // Backwards in time (a backfill), the rechecks stored are not the ones that matter.
    let every = tiered.id == 0 || now < tiered.at;
    let (windows, customers, standings) = if every {
        let standings = repo::loyalty::standings(db, None).await.map_err(failed)?;
        let windows = repo::loyalty::earned_since(db, since, None)
            .await
            .map_err(failed)?;
        let mut customers: Vec<String> = windows.keys().chain(standings.keys()).cloned().collect();
        customers.retain(|c| ctx.owns(c));
        customers.sort_unstable();
        customers.dedup();
        (windows, customers, standings)
    } else {
        let mut customers = repo::loyalty::tier_customers_since(db, tiered.id)
            .await
            .map_err(failed)?;
        customers.extend(
            repo::loyalty::tier_rechecks_due(db, now)
                .await
                .map_err(failed)?,
        );
        customers.retain(|c| ctx.owns(c));
        customers.sort_unstable();
        customers.dedup();
        let windows = repo::loyalty::earned_since(db, since, Some(&customers))
            .await
            .map_err(failed)?;
        let standings = repo::loyalty::standings(db, Some(&customers))
            .await
            .map_err(failed)?;
        (windows, customers, standings)
    };
    let looked_at = customers.len();
    let mut rows = Vec::with_capacity(customers.len());
    for c in customers {
        let window = windows.get(&c).copied().unwrap_or_default();
        let current = standings.get(&c);
        let next = next_tier(rules, current, window.points, now);
        let downgraded_at = if next.downgraded {
            Some(now)
        } else {
            current.and_then(|s| s.downgraded_at)
        };
        let after = Standing {
            tier: next.tier,
            downgraded_at,
        };
        rows.push(TierRow {
            recheck_at: tiers::recheck_at(rules, &after, window.points, window.oldest, now),
            customer_id: c,
            tier: after.tier,
            earned_12m: window.points,
            changed: next.changed,
            changed_at: now,
            downgraded_at,
        });
    }
    let tier_changes = rows.iter().filter(|r| r.changed).count();
    repo::loyalty::store_tiers(db, &rows)
        .await
        .map_err(failed)?;
    repo::loyalty::set_tiers_seen(
        db,
        ctx.shard,
        fingerprint,
        repo::loyalty::TiersSeen {
            id: last_id,
            at: now,
        },
    )
    .await
    .map_err(failed)?;
    steps.mark("tiers");
    ctx.log.info(format!("steps: {steps}"));
    ctx.log.info(format!(
        "{}earned {earned} orders ({earned_points} points offered), reversed {reversed}, expired {expired} lots ({expired_points} points), {tier_changes} tier changes among {looked_at} customers looked at in {:.2}s",
        ctx.shard.map(|s| format!("{s}: ")).unwrap_or_default(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The earn rows of `orders` (those of the job's customers, worth a point or more), at
/// each customer's stored tier multiplier (the lowest tier's without one).
fn earn_entries(
    ctx: &JobContext,
    rules: &Rules,
    standings: &HashMap<String, Standing>,
    orders: Vec<read::Payable>,
) -> Vec<NewEntry> {
    let lowest = rules.tiers.first().map_or(Milli::ONE, |t| t.multiplier);
    orders
        .into_iter()
        // A sharded job deals with its own customers only, in every step.
        .filter(|(_, customer_id, ..)| ctx.owns(customer_id))
        .filter_map(|(order_id, customer_id, paid_cents, at)| {
            let multiplier = standings
                .get(&customer_id)
                .and_then(|s| rules.tier(&s.tier))
                .map_or(lowest, |t| t.multiplier);
            let points = rules.points_for(paid_cents, multiplier);
            (points > 0).then(|| {
                let available_at = rules.available_at(at);
                NewEntry {
                    key: format!("earn:{order_id}"),
                    customer_id,
                    kind: EntryKind::Earn,
                    points,
                    at,
                    available_at,
                    expires_at: rules.expires_at(available_at),
                    order_id: Some(order_id),
                    basis_cents: Some(paid_cents),
                    campaign_id: None,
                    reason: None,
                    run_id: Some(ctx.run_id),
                }
            })
        })
        .collect()
}

fn describe(path: &str, problems: &[crate::loyalty::campaign::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{path}:{}: {}", p.line, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The campaign of the run's month from a template file, launched exactly once.
async fn monthly(ctx: &JobContext, rules: &Rules, path: &str) -> JobResult {
    let db = &ctx.db;
    let source = std::fs::read_to_string(path)
        .map_err(|e| JobError::Fatal(format!("{path}: cannot read: {e}")))?;
    // The run's logical date (or an `as_of` run param) picks the month.
    let day = ctx.as_of()?;
    let campaign = Campaign::for_month(&source, day)
        .map_err(|problems| JobError::Fatal(describe(path, &problems)))?;
    let stored = format!(
        "# Made from {path} for {} by run {}.\n{}",
        day.format("%Y-%m"),
        ctx.run_id,
        campaign.to_toml()
    );
    let spec = serde_json::to_value(&campaign).map_err(failed)?;
    let (id, created) = repo::loyalty::find_or_create_campaign(db, &campaign.name, &stored, &spec)
        .await
        .map_err(failed)?;
    if created {
        repo::audit::record(
            db,
            "campaign create",
            &format!("campaign {id}"),
            serde_json::json!({ "name": campaign.name, "file": path, "run_id": ctx.run_id }),
        )
        .await
        .map_err(failed)?;
        ctx.log.info(format!(
            "campaign {id} `{}` created from {path}",
            campaign.name
        ));
    }
    let found = repo::loyalty::campaign(db, id).await.map_err(failed)?;
    match found.state.as_str() {
        "cancelled" => {
            ctx.log.info(format!(
                "campaign {id} `{}` was cancelled: this month pays nothing",
                found.name
            ));
            return Ok(());
        }
        "launched" => {}
        _ => {
            if found.run_id.is_none() {
                repo::loyalty::set_campaign_run(db, id, ctx.run_id)
                    .await
                    .map_err(failed)?;
            }
            repo::loyalty::set_campaign_state(db, id, &["draft"], "launching")
                .await
                .map_err(failed)?;
        }
    }
    launch(ctx, rules, id).await
}

async fn launch(ctx: &JobContext, rules: &Rules, id: i64) -> JobResult {
    let db = &ctx.db;
    let started = std::time::Instant::now();
    let stored = repo::loyalty::campaign(db, id).await.map_err(failed)?;
    match stored.state.as_str() {
        "launched" => {
            ctx.log.info(format!(
                "campaign {id} was launched already: nothing more is paid"
            ));
            return Ok(());
        }
        "cancelled" => {
            return Err(JobError::Fatal(format!(
                "campaign {id} was cancelled: nothing is paid"
            )));
        }
        _ => {}
    }
    let campaign = Campaign::parse(&stored.source).map_err(|p| {
        JobError::Fatal(format!(
            "campaign {id}: {}",
            p.iter()
                .map(|p| format!("line {}: {}", p.line, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    if stored.state != "planned" {
        // The plan is stored whole, with the move to `planned`, or not at all; nothing is
        // paid before. An attempt that finds it planned by another keeps that plan.
        let candidates = crate::lake::read::candidates(&ctx.lake()?, &campaign)
            .await
            .map_err(failed)?;
        let plan_rules = rules.clone();
        let plan = tokio::task::spawn_blocking(move || campaign.allocate(&plan_rules, &candidates))
            .await
            .map_err(|e| JobError::Failed(format!("allocation thread: {e}")))?;
        if repo::loyalty::plan_once(db, id, &plan)
            .await
            .map_err(failed)?
        {
            ctx.log.info(format!(
                "campaign {id}: planned {} customers, {} points",
                plan.len(),
                plan.iter().map(|a| a.points).sum::<i64>()
            ));
        } else {
            let current = repo::loyalty::campaign(db, id).await.map_err(failed)?;
            match current.state.as_str() {
                "planned" | "launched" => ctx.log.info(format!(
                    "campaign {id} was planned by another attempt: paying that plan"
                )),
                state => {
                    return Err(JobError::Fatal(format!(
                        "campaign {id} is {state}: nothing is paid"
                    )));
                }
            }
        }
    }
    let now = ctx.logical_time.timestamp();
    let paid_now =
        repo::loyalty::pay_plan(db, id, &stored.name, now, rules.expires_at(now), ctx.run_id)
            .await
            .map_err(failed)?;
    let (customers, points) = repo::loyalty::paid(db, id).await.map_err(failed)?;
    let (planned_customers, planned_points) =
        repo::loyalty::planned(db, id).await.map_err(failed)?;
    if (customers, points) != (planned_customers, planned_points) {
        return Err(JobError::Failed(format!(
            "campaign {id}: the ledger holds {customers} customers / {points} points against a plan of {planned_customers} / {planned_points}"
        )));
    }
    if !repo::loyalty::finish_campaign(db, id, customers, points)
        .await
        .map_err(failed)?
    {
        let current = repo::loyalty::campaign(db, id).await.map_err(failed)?;
        if current.state != "launched" {
            return Err(JobError::Failed(format!(
                "campaign {id} is {} after paying: expected planned",
                current.state
            )));
        }
    }
    ctx.log.info(format!(
        "campaign {id} `{}`: {customers} customers, {points} points ({paid_now} rows written by this attempt) in {:.2}s",
        stored.name,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
