//! What an operator does by hand, checked and audited in one place so that the CLI and the
//! console behave alike (DESIGN.md: `cli` and `console` → `admin` → `db`). So far: manual
//! point adjustments.

use serde_json::json;

use crate::{
    config::LoyaltySettings,
    db::{
        Db, RepoError,
        repo::{self, loyalty::Balance},
    },
    loyalty::EntryKind,
};

/// A manual change of a customer's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub customer: String,
    /// Added, or with a negative number, removed.
    pub points: i64,
    pub reason: String,
    /// The operator has confirmed it (`--yes`, or `y` in the console).
    pub confirmed: bool,
    /// Where it came from, for the audit log: `cli` or `console`.
    pub via: &'static str,
}

/// What [`adjust`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Adjusted {
    /// Written and audited.
    Done {
        key: String,
        balance: Balance,
        /// Why it needed the confirmation it had, if it needed one.
        confirmed_because: Option<String>,
    },
    /// Nothing written: it needs confirmation first, for this reason.
    NeedsConfirmation(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Writes a manual adjustment to the ledger and the audit log, unless it is beyond
/// `loyalty.adjust_confirm_points` or would overdraw the spendable balance and is not
/// confirmed; then nothing is written and the reason comes back.
pub async fn adjust(
    db: &Db,
    lake: Option<&crate::lake::Lake>,
    loyalty: &LoyaltySettings,
    a: &Adjustment,
) -> Result<Adjusted, AdjustError> {
    if a.points == 0 {
        return Err(AdjustError::Invalid(
            "an adjustment needs a non-zero number of points".to_owned(),
        ));
    }
    if a.reason.trim().is_empty() {
        return Err(AdjustError::Invalid(
            "an adjustment needs a reason (--reason)".to_owned(),
        ));
    }
    let rules = loyalty.rules().map_err(AdjustError::Invalid)?;
    crate::lake::read::known_customer(db, lake, &a.customer).await?;
    let now = crate::db::now().timestamp();
    let before = repo::loyalty::balance(db, &a.customer, now).await?;
    let needs = crate::loyalty::adjustment_needs_confirmation(
        a.points,
        before.balance,
        loyalty.adjust_confirm_points,
    );
    if let Some(why) = &needs
        && !a.confirmed
    {
        return Ok(Adjusted::NeedsConfirmation(why.clone()));
    }
    let key = format!("adjust:{}", uuid::Uuid::new_v4());
    repo::loyalty::append(
        db,
        vec![repo::loyalty::NewEntry {
            key: key.clone(),
            customer_id: a.customer.clone(),
            kind: EntryKind::Adjust,
            points: a.points,
            at: now,
            available_at: now,
            expires_at: (a.points > 0).then(|| rules.expires_at(now)).flatten(),
            order_id: None,
            basis_cents: None,
            campaign_id: None,
            reason: Some(a.reason.clone()),
            run_id: None,
        }],
    )
    .await?;
    let mut details = json!({
        "points": a.points,
        "reason": a.reason,
        "key": key,
        "balance_before": before.balance,
        "via": a.via,
    });
    if let Some(why) = &needs {
        details["confirmed"] = json!(true);
        details["confirmed_because"] = json!(why);
    }
    repo::audit::record(
        db,
        "points adjust",
        &format!("customer {}", a.customer),
        details,
    )
    .await?;
    let balance = repo::loyalty::balance(db, &a.customer, now).await?;
    Ok(Adjusted::Done {
        key,
        balance,
        confirmed_because: needs,
    })
}
