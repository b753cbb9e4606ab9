//! `create_or_get_service` as a small state machine: create the service; when its name
//! is taken, read the one that has it; when that one is deleted between the create and
//! the read, create again — a few times, then give the conflict back. Safe when several
//! callers race: one creates the service, every one gets it.
//!
//! ```
//! use jobwire_core::create_or_get::{CreateOrGet, CreateOrGetStep};
//! use jobwire_core::{Error, Problem, Service};
//!
//! let taken = || Error::from_problem(Problem::new(409, "conflict", "Conflict"), None);
//! let mut plan = CreateOrGet::new();
//! assert!(matches!(plan.next_step(), CreateOrGetStep::Create));
//! plan.observe(Err(taken()));
//! assert!(matches!(plan.next_step(), CreateOrGetStep::Get));
//! plan.observe(Ok(Service::new("svc_1", "resize", serde_json::json!({}), "2026-12-04T00:00:00Z")));
//! assert!(matches!(plan.next_step(), CreateOrGetStep::Done(Ok(s)) if s.name == "resize"));
//! ```

use crate::{Error, Service};

/// Creates in all before the conflict is the answer: a name deleted between each create
/// and read, this many times in a row, is a race the caller should hear of.
const MAX_CREATES: u32 = 3;

/// What the driver does next. Exhaustive.
#[derive(Debug)]
pub enum CreateOrGetStep {
    /// Send the create (`POST /v1/services`) and report the answer.
    Create,
    /// Read the service by its name (`GET /v1/services/{name}`) and report the answer.
    Get,
    /// The service, or why there is none.
    Done(Result<Box<Service>, Error>),
}

#[derive(Debug)]
enum Phase {
    Create,
    /// The create answered 409 (kept, in case the read finds nothing).
    Get(Error),
    Done(Result<Service, Error>),
    Over,
}

/// One `create_or_get_service`; see the module docs.
#[derive(Debug)]
pub struct CreateOrGet {
    creates: u32,
    phase: Phase,
}

impl Default for CreateOrGet {
    fn default() -> Self {
        CreateOrGet::new()
    }
}

impl CreateOrGet {
    /// Starts with a create.
    pub fn new() -> Self {
        CreateOrGet {
            creates: 0,
            phase: Phase::Create,
        }
    }

    /// The next step.
    pub fn next_step(&mut self) -> CreateOrGetStep {
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::Create => {
                self.creates += 1;
                self.phase = Phase::Create;
                CreateOrGetStep::Create
            }
            Phase::Get(conflict) => {
                self.phase = Phase::Get(conflict);
                CreateOrGetStep::Get
            }
            Phase::Done(result) => CreateOrGetStep::Done(result.map(Box::new)),
            Phase::Over => CreateOrGetStep::Done(Err(Error::Protocol(
                "create_or_get asked for a step after its answer".into(),
            ))),
        }
    }

    /// Reports the answer to the last [`CreateOrGetStep::Create`] or
    /// [`CreateOrGetStep::Get`].
    pub fn observe(&mut self, answer: Result<Service, Error>) {
        self.phase = match (std::mem::replace(&mut self.phase, Phase::Over), answer) {
            (Phase::Create, Err(conflict @ Error::Conflict { .. })) => Phase::Get(conflict),
            (Phase::Create, created) => Phase::Done(created),
            // Deleted since the create said it was taken: create again.
            (Phase::Get(_), Err(Error::NotFound { .. })) if self.creates < MAX_CREATES => {
                Phase::Create
            }
            // Not a name clash after all (an idempotency conflict, say).
            (Phase::Get(conflict), Err(Error::NotFound { .. })) => Phase::Done(Err(conflict)),
            (Phase::Get(_), found) => Phase::Done(found),
            (done, _) => done,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;

    fn conflict() -> Result<Service, Error> {
        Err(Error::from_problem(
            Problem::new(409, "conflict", "Conflict"),
            None,
        ))
    }

    fn missing() -> Result<Service, Error> {
        Err(Error::from_problem(
            Problem::new(404, "not_found", "Not Found"),
            None,
        ))
    }

    fn service() -> Result<Service, Error> {
        Ok(Service::new(
            "svc_1",
            "s",
            serde_json::json!({}),
            "2026-12-04T00:00:00Z",
        ))
    }

    /// Each row: the answers in turn, the steps asked for, and how it ends.
    #[test]
    fn the_race_table() {
        type Row = (
            &'static str,
            Vec<Result<Service, Error>>,
            &'static str,
            &'static str,
        );
        let table: Vec<Row> = vec![
            ("created", vec![service()], "C", "ok"),
            (
                "refused",
                vec![Err(Error::Protocol("x".into()))],
                "C",
                "protocol",
            ),
            ("taken, then found", vec![conflict(), service()], "CG", "ok"),
            (
                "taken, then the read fails",
                vec![conflict(), Err(Error::Protocol("x".into()))],
                "CG",
                "protocol",
            ),
            (
                "deleted between, created again",
                vec![conflict(), missing(), service()],
                "CGC",
                "ok",
            ),
            (
                "deleted between, three times: the conflict",
                vec![
                    conflict(),
                    missing(),
                    conflict(),
                    missing(),
                    conflict(),
                    missing(),
                ],
                "CGCGCG",
                "conflict",
            ),
        ];
        for (what, answers, want_steps, want) in table {
            let mut plan = CreateOrGet::new();
            let mut answers = answers.into_iter();
            let mut steps = String::new();
            let ended = loop {
                match plan.next_step() {
                    CreateOrGetStep::Create => steps.push('C'),
                    CreateOrGetStep::Get => steps.push('G'),
                    CreateOrGetStep::Done(result) => break result,
                }
                plan.observe(answers.next().expect("an answer per step"));
            };
            assert_eq!(steps, want_steps, "{what}");
            let got = ended.map(|_| "ok").unwrap_or_else(|e| e.kind_name());
            assert_eq!(got, want, "{what}");
        }
    }
}
