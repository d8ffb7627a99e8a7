//! Query functions per aggregate. Each takes a connection (or opens its own write
//! transaction), so the CLI, the console and the daemon share one way to read and change rows.

pub mod audit;
pub mod console;
pub mod demo;
pub mod dispatch;
pub mod feedback;
pub mod intelligence;
pub mod lake;
pub mod legacy;
pub mod logs;
pub mod loyalty;
pub mod models;
pub mod pipelines;
pub mod processes;
pub mod recommend;
pub mod runs;
pub mod shards;
pub mod sources;
pub mod watermarks;
pub mod workers;

/// Rows per statement for bulk inserts and `IN (...)` lists: far below both backends'
/// bind-parameter limits (see DEPENDENCIES.md).
pub(crate) const CHUNK: usize = 500;

/// A `LIKE` pattern for text starting with `prefix` exactly: `%` and `_` in it (and `!`, the
/// escape character) match only themselves, on SQLite and PostgreSQL alike (PostgreSQL's
/// default escape, a backslash, would otherwise make `\` in a user's filter an error).
pub(crate) fn starts_with(prefix: &str) -> sea_orm::sea_query::LikeExpr {
    let mut pattern = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    sea_orm::sea_query::LikeExpr::new(pattern).escape('!')
}

#[cfg(test)]
mod tests {
    use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryTrait};

    use crate::db::entities::quarantine;

    #[test]
    fn a_prefix_pattern_escapes_every_wildcard() {
        let sql = |prefix: &str, backend| {
            quarantine::Entity::find()
                .filter(quarantine::Column::Reason.like(super::starts_with(prefix)))
                .build(backend)
                .to_string()
        };
        let q = sql("50%_off!\\", DbBackend::Sqlite);
        assert!(q.ends_with(r#"LIKE '50!%!_off!!\%' ESCAPE '!'"#), "{q}");
        let q = sql("it's", DbBackend::Postgres);
        assert!(q.ends_with(r#"LIKE E'it\'s%' ESCAPE '!'"#), "{q}");
    }
}
