//! Scheduler tables: pipelines and their versions, runs, job runs, attempts (each holding its
//! lease), attempt logs, workers and the audit log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Pipelines::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Pipelines::Id))
                    .col(string_uniq(Pipelines::Name))
                    .col(boolean(Pipelines::Paused).default(false))
                    .col(big_integer_null(Pipelines::CurrentVersionId))
                    .col(timestamp_with_time_zone_null(Pipelines::NextFireAt))
                    .col(timestamp_with_time_zone(Pipelines::CreatedAt))
                    .col(timestamp_with_time_zone(Pipelines::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PipelineVersions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(PipelineVersions::Id))
                    .col(big_integer(PipelineVersions::PipelineId))
                    .col(integer(PipelineVersions::Version))
                    .col(string(PipelineVersions::Checksum))
                    .col(string(PipelineVersions::SourcePath))
                    .col(text(PipelineVersions::Source))
                    .col(text(PipelineVersions::Spec))
                    .col(timestamp_with_time_zone(PipelineVersions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PipelineVersions::Table, PipelineVersions::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ux_pipeline_versions_pipeline_version")
                    .table(PipelineVersions::Table)
                    .col(PipelineVersions::PipelineId)
                    .col(PipelineVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Runs::Id))
                    .col(big_integer(Runs::PipelineId))
                    .col(big_integer(Runs::PipelineVersionId))
                    .col(string(Runs::RunKey))
                    .col(string(Runs::Trigger))
                    .col(timestamp_with_time_zone(Runs::LogicalTime))
                    .col(text(Runs::Params))
                    .col(string(Runs::State))
                    .col(boolean(Runs::CancelRequested).default(false))
                    .col(integer(Runs::Reruns).default(0))
                    .col(timestamp_with_time_zone(Runs::CreatedAt))
                    .col(timestamp_with_time_zone_null(Runs::StartedAt))
                    .col(timestamp_with_time_zone_null(Runs::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Runs::Table, Runs::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Runs::Table, Runs::PipelineVersionId)
                            .to(PipelineVersions::Table, PipelineVersions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ux_runs_pipeline_run_key")
                    .table(Runs::Table)
                    .col(Runs::PipelineId)
                    .col(Runs::RunKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_runs_state")
                    .table(Runs::Table)
                    .col(Runs::State)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobRuns::Table)
                    .if_not_exists()
                    .col(big_pk_auto(JobRuns::Id))
                    .col(big_integer(JobRuns::RunId))
                    .col(string(JobRuns::JobName))
                    .col(string(JobRuns::Kind))
                    .col(string(JobRuns::State))
                    .col(integer(JobRuns::Attempts).default(0))
                    .col(integer(JobRuns::Failures).default(0))
                    .col(integer(JobRuns::Losses).default(0))
                    .col(integer(JobRuns::PendingUpstreams).default(0))
                    .col(timestamp_with_time_zone_null(JobRuns::NotBefore))
                    .col(timestamp_with_time_zone_null(JobRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(JobRuns::FinishedAt))
                    .col(text_null(JobRuns::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .from(JobRuns::Table, JobRuns::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ux_job_runs_run_job")
                    .table(JobRuns::Table)
                    .col(JobRuns::RunId)
                    .col(JobRuns::JobName)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_job_runs_state_not_before")
                    .table(JobRuns::Table)
                    .col(JobRuns::State)
                    .col(JobRuns::NotBefore)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Attempts::Id))
                    .col(big_integer(Attempts::JobRunId))
                    .col(integer(Attempts::Number))
                    .col(string(Attempts::State))
                    .col(string(Attempts::WorkerId))
                    .col(timestamp_with_time_zone(Attempts::StartedAt))
                    .col(timestamp_with_time_zone_null(Attempts::FinishedAt))
                    .col(timestamp_with_time_zone_null(Attempts::LeaseExpiresAt))
                    .col(text_null(Attempts::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attempts::Table, Attempts::JobRunId)
                            .to(JobRuns::Table, JobRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ux_attempts_job_run_number")
                    .table(Attempts::Table)
                    .col(Attempts::JobRunId)
                    .col(Attempts::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_attempts_state_lease")
                    .table(Attempts::Table)
                    .col(Attempts::State)
                    .col(Attempts::LeaseExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AttemptLogs::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AttemptLogs::Id))
                    .col(big_integer(AttemptLogs::AttemptId))
                    .col(string(AttemptLogs::Stream))
                    .col(text(AttemptLogs::Line))
                    .col(timestamp_with_time_zone(AttemptLogs::At))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AttemptLogs::Table, AttemptLogs::AttemptId)
                            .to(Attempts::Table, Attempts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ix_attempt_logs_attempt")
                    .table(AttemptLogs::Table)
                    .col(AttemptLogs::AttemptId)
                    .col(AttemptLogs::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Workers::Table)
                    .if_not_exists()
                    .col(string(Workers::Id).primary_key())
                    .col(string(Workers::Host))
                    .col(integer(Workers::Pid))
                    .col(string(Workers::Version))
                    .col(string(Workers::State))
                    .col(timestamp_with_time_zone(Workers::StartedAt))
                    .col(timestamp_with_time_zone(Workers::HeartbeatAt))
                    .col(timestamp_with_time_zone_null(Workers::StoppedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(string(AuditLog::Actor))
                    .col(string(AuditLog::Action))
                    .col(string(AuditLog::Target))
                    .col(text(AuditLog::Details))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            Workers::Table.into_iden(),
            AttemptLogs::Table.into_iden(),
            Attempts::Table.into_iden(),
            JobRuns::Table.into_iden(),
            Runs::Table.into_iden(),
            PipelineVersions::Table.into_iden(),
            Pipelines::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Id,
    Name,
    Paused,
    CurrentVersionId,
    NextFireAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PipelineVersions {
    Table,
    Id,
    PipelineId,
    Version,
    Checksum,
    SourcePath,
    Source,
    Spec,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    PipelineId,
    PipelineVersionId,
    RunKey,
    Trigger,
    LogicalTime,
    Params,
    State,
    CancelRequested,
    Reruns,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Id,
    RunId,
    JobName,
    Kind,
    State,
    Attempts,
    Failures,
    Losses,
    PendingUpstreams,
    NotBefore,
    StartedAt,
    FinishedAt,
    Error,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    JobRunId,
    Number,
    State,
    WorkerId,
    StartedAt,
    FinishedAt,
    LeaseExpiresAt,
    Error,
}

#[derive(DeriveIden)]
enum AttemptLogs {
    Table,
    Id,
    AttemptId,
    Stream,
    Line,
    At,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    Host,
    Pid,
    Version,
    State,
    StartedAt,
    HeartbeatAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Target,
    Details,
}
