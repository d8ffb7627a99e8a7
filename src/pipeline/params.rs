//! Which run params (`patron trigger PIPELINE --param KEY=VALUE`) a pipeline takes, so a
//! misspelt one is refused instead of silently doing nothing.
//!
//! A run param reaches a job in two ways: it replaces the same-named param the job sets in
//! its file (`jobs::apply_run_params`; a param the file does not set is not added), and some
//! kinds read run params themselves ([`RunParamUse`]): `as_of` for the kinds that compute as
//! of a date, `campaign` for `points`, and every param for `command` (as `PATRON_PARAM_*`
//! variables).

use std::collections::BTreeSet;

use super::{KindCatalog, PipelineSpec};

/// What a kind does with run params, beyond the replacement of same-named job params.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunParamUse {
    /// Reads these run params itself.
    Reads(&'static [&'static str]),
    /// Takes every run param.
    Any,
}

/// The run params a pipeline takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Any name, because this job (of a kind that takes every run param) receives them.
    Any { job: String },
    /// Only these names.
    Only(BTreeSet<String>),
}

/// The run params the jobs of `spec` take: the params each job sets, and the run params its
/// kind reads.
pub fn accepted_run_params(spec: &PipelineSpec, kinds: &dyn KindCatalog) -> Accepted {
    let mut names = BTreeSet::new();
    for job in &spec.jobs {
        match kinds.run_params(&job.kind) {
            RunParamUse::Any => {
                return Accepted::Any {
                    job: super::shard::base_name(&job.name).to_owned(),
                };
            }
            RunParamUse::Reads(read) => names.extend(read.iter().map(|n| (*n).to_owned())),
        }
        names.extend(job.params.keys().cloned());
    }
    Accepted::Only(names)
}

/// Refuses run params no job of `spec` takes, naming the first such param and the ones that
/// are taken.
pub fn check_run_params<'a>(
    spec: &PipelineSpec,
    kinds: &dyn KindCatalog,
    given: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    let Accepted::Only(accepted) = accepted_run_params(spec, kinds) else {
        return Ok(());
    };
    let Some(unknown) = given.into_iter().find(|k| !accepted.contains(*k)) else {
        return Ok(());
    };
    let hint = crate::suggest::did_you_mean(unknown, &accepted);
    if accepted.is_empty() {
        Err(format!(
            "no job of pipeline `{}` takes param `{unknown}`: it takes no params",
            spec.name
        ))
    } else {
        Err(format!(
            "no job of pipeline `{}` takes param `{unknown}`{hint}; it takes: {}",
            spec.name,
            accepted.iter().cloned().collect::<Vec<_>>().join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::pipeline::{KindProblem, parse_source};

    /// `noop` reads nothing, `dated` reads `as_of`, `command` takes everything.
    struct Kinds;

    impl KindCatalog for Kinds {
        fn check(&self, kind: &str, _params: &Value) -> Result<(), KindProblem> {
            match kind {
                "noop" | "dated" | "command" => Ok(()),
                other => Err(KindProblem::Unknown(other.to_owned())),
            }
        }

        fn shardable(&self, _kind: &str) -> bool {
            true
        }

        fn run_params(&self, kind: &str) -> RunParamUse {
            match kind {
                "dated" => RunParamUse::Reads(&["as_of"]),
                "command" => RunParamUse::Any,
                _ => RunParamUse::Reads(&[]),
            }
        }
    }

    fn spec(jobs: &str) -> PipelineSpec {
        parse_source(
            "p.toml",
            &format!("[pipeline]\nname = \"p\"\n{jobs}"),
            &Kinds,
        )
        .unwrap()
    }

    fn given(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_pipeline_takes_what_its_kinds_read_and_its_jobs_set() {
        let s = spec(
            "[[job]]\nname = \"a\"\nkind = \"dated\"\n\
             [[job]]\nname = \"b\"\nkind = \"noop\"\nparams = { limit = 5 }\n",
        );
        assert_eq!(
            accepted_run_params(&s, &Kinds),
            Accepted::Only(BTreeSet::from(["as_of".to_owned(), "limit".to_owned()]))
        );
        assert!(check_run_params(&s, &Kinds, &given(&["as_of", "limit"])).is_ok());
        assert_eq!(
            check_run_params(&s, &Kinds, &given(&["as_of", "as_off"])).unwrap_err(),
            "no job of pipeline `p` takes param `as_off` (did you mean `as_of`?); it takes: as_of, limit"
        );
    }

    #[test]
    fn a_pipeline_of_kinds_that_read_nothing_takes_nothing() {
        let s = spec("[[job]]\nname = \"a\"\nkind = \"noop\"\n");
        assert!(check_run_params(&s, &Kinds, &given(&[])).is_ok());
        assert_eq!(
            check_run_params(&s, &Kinds, &given(&["as_of"])).unwrap_err(),
            "no job of pipeline `p` takes param `as_of`: it takes no params"
        );
    }

    #[test]
    fn a_job_that_takes_every_param_opens_the_pipeline() {
        let s = spec(
            "[[job]]\nname = \"a\"\nkind = \"noop\"\n\
             [[job]]\nname = \"export\"\nkind = \"command\"\nshards = 2\n",
        );
        assert_eq!(
            accepted_run_params(&s, &Kinds),
            Accepted::Any {
                job: "export".to_owned()
            }
        );
        assert!(check_run_params(&s, &Kinds, &given(&["anything"])).is_ok());
    }
}
