//! Following an execution to its end: the state names as they are entered (on stderr,
//! for the operator), and how long each state took (for the report).

use std::time::Duration;

use anyhow::Result;
use ferry_aws::sfn::{Described, Event, ExecutionInfo, Sfn};
use serde::Serialize;

/// How long one visit of a state took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateTiming {
    pub name: String,
    pub duration_s: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Finished {
    pub info: ExecutionInfo,
    pub described: Described,
    pub states: Vec<StateTiming>,
    /// The last step error in the history (error name, cause): why a run failed, where
    /// the Fail state itself only says that it did.
    pub step_error: Option<(String, String)>,
}

impl Finished {
    /// Why the run failed, as (error, cause): the execution's own error first (what its
    /// Fail state names), else the last step's; nothing for a run that succeeded.
    pub fn failure(&self) -> (Option<String>, Option<String>) {
        match (&self.step_error, &self.described.error) {
            (_, None) if self.info.status == "SUCCEEDED" => (None, None),
            (_, Some(e)) => (Some(e.clone()), self.described.cause.clone()),
            (Some((e, c)), None) => (Some(e.clone()), Some(c.clone())),
            (None, None) => (None, None),
        }
    }
}

/// The last task or Lambda failure of the history.
pub fn last_step_error(events: &[Event]) -> Option<(String, String)> {
    events.iter().rev().find_map(|e| match e {
        Event::StepFailed { error, cause } => Some((error.clone(), cause.clone())),
        _ => None,
    })
}

/// A history event reduced to what timing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub entered: bool,
    pub name: String,
    pub at: f64,
}

pub fn steps(events: &[Event]) -> Vec<Step> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Entered { name, at } => Some(Step {
                entered: true,
                name: name.clone(),
                at: *at,
            }),
            // A Fail state ends the execution without an exit event.
            Event::Exited { name, at } => Some(Step {
                entered: false,
                name: name.clone(),
                at: *at,
            }),
            _ => None,
        })
        .collect()
}

/// Visits in the order entered, each with its time to the matching exit.
pub fn timings(steps: &[Step]) -> Vec<StateTiming> {
    let mut out: Vec<(StateTiming, f64)> = Vec::new();
    for s in steps {
        if s.entered {
            out.push((
                StateTiming {
                    name: s.name.clone(),
                    duration_s: None,
                },
                s.at,
            ));
        } else if let Some((t, start)) = out
            .iter_mut()
            .rev()
            .find(|(t, _)| t.name == s.name && t.duration_s.is_none())
        {
            t.duration_s = Some(((s.at - *start) * 1000.0).round() / 1000.0);
        }
    }
    out.into_iter().map(|(t, _)| t).collect()
}

/// Polls until the execution ends; with `show`, prints each state as it is entered.
pub async fn follow(sfn: &Sfn, arn: &str, show: bool) -> Result<Finished> {
    let mut shown = 0usize;
    loop {
        let (info, described) = sfn.describe(arn).await?;
        let events = sfn.history(arn).await?;
        let entered: Vec<Step> = steps(&events).into_iter().filter(|s| s.entered).collect();
        if show {
            for s in entered.iter().skip(shown) {
                eprintln!("  {:<24} {}", s.name, info.name);
            }
        }
        shown = entered.len();
        if !described.running {
            let states = timings(&steps(&events));
            return Ok(Finished {
                info,
                described,
                states,
                step_error: last_step_error(&events),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(entered: bool, name: &str, at: f64) -> Step {
        Step {
            entered,
            name: name.into(),
            at,
        }
    }

    #[test]
    fn loops_and_unfinished_states_are_timed_per_visit() {
        let s = [
            step(true, "Build", 0.0),
            step(false, "Build", 10.0),
            step(true, "Wait", 10.0),
            step(false, "Wait", 11.0),
            step(true, "Wait", 12.0),
            step(false, "Wait", 13.5),
            step(true, "Failed", 14.0),
        ];
        let t = timings(&s);
        let got: Vec<(&str, Option<f64>)> =
            t.iter().map(|t| (t.name.as_str(), t.duration_s)).collect();
        assert_eq!(
            got,
            vec![
                ("Build", Some(10.0)),
                ("Wait", Some(1.0)),
                ("Wait", Some(1.5)),
                ("Failed", None)
            ]
        );
    }
}
