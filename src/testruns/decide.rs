//! The controller's decision, a pure function ([`decide`]): given a TestRun and the Job
//! `test-run-{uid}` as last seen (or none), what to create and what the status should
//! be. The controller creates, then writes the status when it differs from the one the
//! TestRun has; [`refused`] is the status when the apiserver itself refuses the Job.
//!
//! The rules:
//! - A run being deleted, or without a uid, is left alone.
//! - A final phase (`Succeeded`, `Failed`, `TimedOut`) is final: nothing changes, even
//!   once Kubernetes removes the finished Job (`ttlSecondsAfterFinished`).
//! - Not acted on yet and no Job: the spec is checked exactly as `POST /api/test-runs`
//!   checks it ([`super::spec::accept`]). Refused: phase `Failed`, `Accepted=False`
//!   naming the field (reason `InvalidSpec` or `TemplateNotFound`), no Job. Accepted:
//!   create the Job (owned by the TestRun), phase `Pending`.
//! - Its Job exists: the phase follows the Job (`Pending`, `Running`, then `Succeeded`,
//!   `Failed`, or `TimedOut` for `DeadlineExceeded`); a phase never goes back from
//!   `Running` to `Pending` (a retry's next pod is starting). A Job of that name that the
//!   TestRun does not own is never adopted (`Accepted=False`, `JobConflict`).
//! - Accepted before and its Job is gone (or going) before it finished: `Failed`,
//!   `JobDeleted`. The run is not started again.
//! - A spec changed after the run was acted on is not acted on again:
//!   `observedGeneration` keeps the generation the Job was made from.
//!
//! Every time the status carries is the cluster's (the Job's start, completion or
//! failure) or, where the cluster dates nothing, `now` once: a recomputation with
//! nothing new gives the same status, so the controller writes only on change.

use super::resource::{
    Condition, RunJob, TestRun, TestRunStatus, condition as reason, phase, run_owner,
};
use super::spec::accept;
use crate::jobs::status::{Phase, job_state};
use crate::kube::resources::Job;
use crate::names::Namespace;
use crate::state::RunConfig;

/// What the decision needs besides the TestRun and its Job.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The templates, defaults and maxima runs are held to.
    pub runs: &'a RunConfig,
    /// The TestRun's namespace, where its Job is created.
    pub namespace: &'a Namespace,
    /// The current time (RFC 3339): the time of a transition the cluster does not date.
    pub now: &'a str,
}

/// What to do for one TestRun.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The Job to create (its whole body, ownerReference included) before the status
    /// is written.
    pub create: Option<serde_json::Value>,
    /// The status the TestRun should have (once `create`, if any, is done); `None`:
    /// leave the TestRun alone.
    pub status: Option<TestRunStatus>,
    /// The spec was refused here (counted as `invalid`).
    pub refused: bool,
}

impl Decision {
    fn leave() -> Self {
        Self {
            create: None,
            status: None,
            refused: false,
        }
    }

    fn status(status: TestRunStatus) -> Self {
        Self {
            create: None,
            status: Some(status),
            refused: false,
        }
    }

    /// Whether this decision changes nothing for a TestRun with `current` status.
    pub fn is_noop(&self, current: Option<&TestRunStatus>) -> bool {
        self.create.is_none() && self.status.as_ref().is_none_or(|s| Some(s) == current)
    }
}

/// The Job name of a run: `test-run-{uid}`.
pub fn job_name(uid: &str) -> String {
    format!("test-run-{uid}")
}

/// `Complete=False`'s message until the run's pod starts: the same from the creation
/// on, so that a Job seen without a pod yet changes nothing.
const PENDING_MESSAGE: &str = "the Job was created; its pod has not started yet";

/// The longest condition message written (metav1.Condition allows 32768).
const MAX_MESSAGE: usize = 4096;

/// Decides for `run`, whose Job `test-run-{uid}` is `job` (`None`: it does not exist).
pub fn decide(run: &TestRun, job: Option<&Job>, ctx: &Context<'_>) -> Decision {
    if run.metadata.deletion_timestamp.is_some() {
        return Decision::leave();
    }
    let Some(uid) = run.metadata.uid.as_deref() else {
        return Decision::leave();
    };
    let current = run.status.clone().unwrap_or_default();
    if current.is_final() {
        return Decision::status(current);
    }
    let accepted_before = current
        .condition(reason::ACCEPTED)
        .is_some_and(|c| c.status == "True");
    let acted = if accepted_before {
        current.observed_generation.or(run.metadata.generation)
    } else {
        run.metadata.generation
    };
    match job {
        Some(job) if !job.is_owned_by(uid) => {
            let message = format!(
                "Job {} exists and this TestRun does not own it (a run created through POST /api/test-runs with this run id?): it is not adopted",
                job_name(uid)
            );
            refuse(run, uid, ctx, reason::JOB_CONFLICT, &message)
        }
        Some(job) => Decision::status(from_job(current, uid, job, acted, ctx)),
        None if accepted_before => {
            let message = format!("Job {} was deleted before it finished", job_name(uid));
            let mut status = current;
            status.phase = Some(phase::FAILED.into());
            let finished = status.finished_at.clone().unwrap_or(ctx.now.to_string());
            status.finished_at = Some(finished.clone());
            set(
                &mut status,
                condition(reason::COMPLETE, true, reason::JOB_DELETED, &message, acted),
                &finished,
            );
            Decision::status(status)
        }
        None => match accept(uid, &run.spec, ctx.runs) {
            Err(refusal) => refuse(run, uid, ctx, refusal.reason(), &refusal.to_string()),
            Ok(accepted) => {
                let mut body =
                    crate::runs::job_body(&accepted.identity, ctx.namespace, &accepted.resolved);
                body["metadata"]["ownerReferences"] =
                    serde_json::json!([run_owner(&run.metadata.name, uid)]);
                let mut status = current;
                status.phase = Some(phase::PENDING.into());
                status.run_id = Some(uid.into());
                status.job_name = Some(job_name(uid));
                status.observed_generation = acted;
                accepted_condition(&mut status, uid, acted, ctx.now);
                set(
                    &mut status,
                    condition(reason::COMPLETE, false, "Pending", PENDING_MESSAGE, acted),
                    ctx.now,
                );
                Decision {
                    create: Some(body),
                    status: Some(status),
                    refused: false,
                }
            }
        },
    }
}

/// The status of a run the apiserver refused to create a Job for (its `422 Invalid`):
/// like a refused spec, with the apiserver's message.
pub fn refused(run: &TestRun, ctx: &Context<'_>, message: &str) -> Decision {
    let uid = run.metadata.uid.as_deref().unwrap_or_default();
    refuse(
        run,
        uid,
        ctx,
        reason::INVALID_SPEC,
        &format!("the apiserver refused the Job: {message}"),
    )
}

fn refuse(run: &TestRun, uid: &str, ctx: &Context<'_>, why: &str, message: &str) -> Decision {
    let generation = run.metadata.generation;
    let mut status = run.status.clone().unwrap_or_default();
    status.phase = Some(phase::FAILED.into());
    status.run_id = Some(uid.into());
    status.job_name = None;
    status.observed_generation = generation;
    let finished = status.finished_at.clone().unwrap_or(ctx.now.to_string());
    status.finished_at = Some(finished.clone());
    set(
        &mut status,
        condition(reason::ACCEPTED, false, why, message, generation),
        ctx.now,
    );
    set(
        &mut status,
        condition(
            reason::COMPLETE,
            true,
            why,
            "the run did not start: see the Accepted condition",
            generation,
        ),
        &finished,
    );
    Decision {
        create: None,
        status: Some(status),
        refused: true,
    }
}

/// The status while (or once) the run's own Job runs.
fn from_job(
    mut status: TestRunStatus,
    uid: &str,
    job: &Job,
    acted: Option<i64>,
    ctx: &Context<'_>,
) -> TestRunStatus {
    let state = job_state(job, None);
    status.run_id = Some(uid.into());
    status.job_name = Some(job.metadata.name.clone());
    status.observed_generation = acted;
    if let Some(started) = &job.status.start_time {
        status.started_at = Some(started.clone());
    }
    accepted_condition(&mut status, uid, acted, ctx.now);
    let message = |default: &str| state.message.clone().unwrap_or_else(|| default.to_string());
    let (new_phase, complete) = match state.phase {
        Phase::Completed => (
            phase::SUCCEEDED,
            Some((reason::SUCCEEDED, message("the Job completed"))),
        ),
        Phase::Failed => {
            let why = state
                .reason
                .as_deref()
                .filter(|r| is_reason(r))
                .unwrap_or(reason::FAILED);
            let new_phase = if why == reason::DEADLINE_EXCEEDED {
                phase::TIMED_OUT
            } else {
                phase::FAILED
            };
            (new_phase, Some((why, message("the Job failed"))))
        }
        Phase::Terminating | Phase::Cancelled => (
            phase::FAILED,
            Some((
                reason::JOB_DELETED,
                format!("Job {} was deleted before it finished", job.metadata.name),
            )),
        ),
        Phase::Running => (phase::RUNNING, None),
        Phase::Pending | Phase::Suspended => {
            if status.phase.as_deref() == Some(phase::RUNNING) {
                (phase::RUNNING, None)
            } else {
                (phase::PENDING, None)
            }
        }
    };
    status.phase = Some(new_phase.into());
    match complete {
        Some((why, message)) => {
            let finished = finished_at(job)
                .or(status.finished_at.clone())
                .unwrap_or(ctx.now.to_string());
            status.finished_at = Some(finished.clone());
            set(
                &mut status,
                condition(reason::COMPLETE, true, why, &message, acted),
                &finished,
            );
        }
        None => {
            let message = if new_phase == phase::RUNNING {
                "the run's pod is running"
            } else {
                PENDING_MESSAGE
            };
            set(
                &mut status,
                condition(reason::COMPLETE, false, new_phase, message, acted),
                ctx.now,
            );
        }
    }
    status
}

/// When the Job ended: its `completionTime`, else the time its final condition was set.
fn finished_at(job: &Job) -> Option<String> {
    if let Some(t) = &job.status.completion_time {
        return Some(t.clone());
    }
    ["Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"]
        .iter()
        .find_map(|t| {
            job.status
                .conditions
                .iter()
                .find(|c| c.type_ == *t && c.status == "True")
        })
        .and_then(|c| c.last_transition_time.clone())
}

fn accepted_condition(status: &mut TestRunStatus, uid: &str, acted: Option<i64>, now: &str) {
    set(
        status,
        condition(
            reason::ACCEPTED,
            true,
            reason::JOB_CREATED,
            &format!("Job {} runs the spec", job_name(uid)),
            acted,
        ),
        now,
    );
}

fn condition(
    type_: &str,
    value: bool,
    why: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    let mut message = message.to_string();
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    Condition {
        type_: type_.into(),
        status: if value { "True" } else { "False" }.into(),
        observed_generation: generation,
        last_transition_time: String::new(),
        reason: why.into(),
        message,
    }
}

/// Sets a condition as `meta.SetStatusCondition` does: its `lastTransitionTime` moves
/// (to `at`) only when its status changes.
fn set(status: &mut TestRunStatus, mut new: Condition, at: &str) {
    match status.conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            new.last_transition_time =
                if old.status == new.status && !old.last_transition_time.is_empty() {
                    old.last_transition_time.clone()
                } else {
                    at.to_string()
                };
            *old = new;
        }
        None => {
            new.last_transition_time = at.to_string();
            status.conditions.push(new);
        }
    }
}

/// A condition reason as metav1.Condition allows it: `[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?`.
fn is_reason(r: &str) -> bool {
    let b = r.as_bytes();
    !b.is_empty()
        && b.len() <= 1024
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':'))
        && !matches!(b[b.len() - 1], b',' | b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::RunDefaults;
    use crate::runs::templates::Templates;

    const UID: &str = "0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11";
    const JOB: &str = "test-run-0b6f3a52-3d2c-4c3e-9d8a-5b1f6f0e2a11";
    const NOW: &str = "2026-03-01T12:00:00Z";
    const EARLIER: &str = "2026-03-01T11:00:00Z";

    fn config() -> RunConfig {
        RunConfig {
            defaults: RunDefaults::default(),
            templates: Templates::parse(
                std::path::Path::new("t.yaml"),
                "templates:\n  pytest:\n    image: python:3.12\n    commands: [pytest -q]\n",
                &RunDefaults::default(),
            )
            .unwrap(),
        }
    }

    fn run(spec: serde_json::Value, generation: i64, status: serde_json::Value) -> TestRun {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nightly", "namespace": "default", "uid": UID,
                         "generation": generation, "resourceVersion": "7"},
            "spec": spec,
            "status": status,
        }))
        .unwrap()
    }

    fn job(owner_uid: &str, status: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": JOB, "namespace": "default", "uid": "job-uid",
                "ownerReferences": [run_owner("nightly", owner_uid)]},
            "status": status,
        }))
        .unwrap()
    }

    fn decide_at(run: &TestRun, job: Option<&Job>, now: &str) -> Decision {
        let config = config();
        let ns: Namespace = "default".parse().unwrap();
        decide(
            run,
            job,
            &Context {
                runs: &config,
                namespace: &ns,
                now,
            },
        )
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({"image": "busybox:1.36", "commands": ["echo hi"]})
    }

    /// The status an accepted run has after its Job was created at EARLIER.
    fn accepted(phase: &str) -> serde_json::Value {
        serde_json::json!({
            "phase": phase, "runId": UID, "jobName": JOB, "observedGeneration": 1,
            "conditions": [
                {"type": "Accepted", "status": "True", "observedGeneration": 1,
                 "lastTransitionTime": EARLIER, "reason": "JobCreated",
                 "message": format!("Job {JOB} runs the spec")},
                {"type": "Complete", "status": "False", "observedGeneration": 1,
                 "lastTransitionTime": EARLIER, "reason": "Pending",
                 "message": "the Job was created; its pod has not started yet"}]
        })
    }

    fn cond<'a>(s: &'a TestRunStatus, t: &str) -> &'a Condition {
        s.condition(t).unwrap_or_else(|| panic!("no {t} in {s:?}"))
    }

    #[test]
    fn a_new_valid_run_creates_its_owned_job_and_is_pending() {
        let d = decide_at(&run(valid(), 1, serde_json::Value::Null), None, NOW);
        let body = d.create.expect("a Job to create");
        assert_eq!(body["metadata"]["name"], JOB);
        assert_eq!(body["metadata"]["namespace"], "default");
        assert_eq!(body["metadata"]["labels"]["sparktest.dev/run-id"], UID);
        assert_eq!(
            body["metadata"]["ownerReferences"],
            serde_json::json!([{"apiVersion": "sparktest.dev/v1alpha1", "kind": "TestRun",
                "name": "nightly", "uid": UID, "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(
            body["spec"]["template"]["spec"]["containers"][0]["command"],
            serde_json::json!(["sh", "-c", "echo hi"])
        );
        let s = d.status.unwrap();
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(s.run_id.as_deref(), Some(UID));
        assert_eq!(s.job_name.as_deref(), Some(JOB));
        assert_eq!(s.observed_generation, Some(1));
        let a = cond(&s, "Accepted");
        assert_eq!(
            (a.status.as_str(), a.reason.as_str()),
            ("True", "JobCreated")
        );
        assert_eq!(a.last_transition_time, NOW);
        assert_eq!(cond(&s, "Complete").status, "False");
        assert!(!d.refused);
    }

    /// The table: an accepted run (status `accepted(Pending)` unless given) and its
    /// Job's status → phase, Complete's status and reason, startedAt, finishedAt.
    #[test]
    fn the_phase_follows_the_job() {
        type Row<'a> = (
            &'a str,
            &'a str,
            serde_json::Value,
            &'a str,
            (&'a str, &'a str),
            Option<&'a str>,
            Option<&'a str>,
        );
        let t0 = "2026-03-01T11:00:05Z";
        let t1 = "2026-03-01T11:04:00Z";
        let rows: Vec<Row> = vec![
            (
                "no pod yet",
                "Pending",
                serde_json::json!({}),
                "Pending",
                ("False", "Pending"),
                None,
                None,
            ),
            (
                "a pod active",
                "Pending",
                serde_json::json!({"active": 1, "startTime": t0}),
                "Running",
                ("False", "Running"),
                Some(t0),
                None,
            ),
            (
                "a retry's next pod starting does not go back to Pending",
                "Running",
                serde_json::json!({"active": 0, "failed": 1, "startTime": t0}),
                "Running",
                ("False", "Running"),
                Some(t0),
                None,
            ),
            (
                "complete",
                "Running",
                serde_json::json!({"succeeded": 1, "startTime": t0, "completionTime": t1,
                    "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": t1}]}),
                "Succeeded",
                ("True", "Succeeded"),
                Some(t0),
                Some(t1),
            ),
            (
                "success decided (1.31+), pods finishing",
                "Running",
                serde_json::json!({"succeeded": 1, "startTime": t0,
                    "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": t1}]}),
                "Succeeded",
                ("True", "Succeeded"),
                Some(t0),
                Some(t1),
            ),
            (
                "past its deadline",
                "Running",
                serde_json::json!({"failed": 1, "startTime": t0,
                    "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                        "message": "Job was active longer than specified deadline", "lastTransitionTime": t1}]}),
                "TimedOut",
                ("True", "DeadlineExceeded"),
                Some(t0),
                Some(t1),
            ),
            (
                "out of retries",
                "Running",
                serde_json::json!({"failed": 1, "startTime": t0,
                    "conditions": [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit", "lastTransitionTime": t1}]}),
                "Failed",
                ("True", "BackoffLimitExceeded"),
                Some(t0),
                Some(t1),
            ),
            (
                "a failure reason that is no condition reason",
                "Running",
                serde_json::json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                    "reason": "not a reason!", "lastTransitionTime": t1}]}),
                "Failed",
                ("True", "Failed"),
                None,
                Some(t1),
            ),
            (
                "its Job deleted while running",
                "Running",
                serde_json::json!({"active": 1, "startTime": t0}),
                "Failed",
                ("True", "JobDeleted"),
                Some(t0),
                Some(NOW),
            ),
        ];
        for (what, before, job_status, phase, (complete, why), started, finished) in rows {
            let mut j = job(UID, job_status);
            if what.contains("deleted") {
                j.metadata.deletion_timestamp = Some(NOW.into());
            }
            let d = decide_at(&run(valid(), 1, accepted(before)), Some(&j), NOW);
            assert!(d.create.is_none(), "{what}");
            let s = d.status.unwrap();
            assert_eq!(s.phase.as_deref(), Some(phase), "{what}");
            let c = cond(&s, "Complete");
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                (complete, why),
                "{what}"
            );
            assert_eq!(s.started_at.as_deref(), started, "{what}");
            assert_eq!(s.finished_at.as_deref(), finished, "{what}");
            // Accepted stays as it was, from EARLIER.
            assert_eq!(cond(&s, "Accepted").last_transition_time, EARLIER, "{what}");
            assert_eq!(s.observed_generation, Some(1), "{what}");
            if complete == "True" {
                assert_eq!(c.last_transition_time, finished.unwrap(), "{what}");
            } else {
                assert_eq!(c.last_transition_time, EARLIER, "{what}: no transition");
            }
        }
    }

    #[test]
    fn nothing_new_is_no_change_and_a_final_phase_is_final() {
        // The status written with the Job's creation, then the Job seen without a pod:
        // nothing to write.
        let created = decide_at(&run(valid(), 1, serde_json::Value::Null), None, EARLIER);
        let pending = run(
            valid(),
            1,
            serde_json::to_value(created.status.unwrap()).unwrap(),
        );
        let d = decide_at(&pending, Some(&job(UID, serde_json::json!({}))), NOW);
        assert!(d.is_noop(pending.status.as_ref()), "{d:?}");
        // Recomputed later with the same Job: the same status, so nothing is written.
        let j = job(UID, serde_json::json!({"active": 1, "startTime": EARLIER}));
        let first = decide_at(&run(valid(), 1, accepted("Pending")), Some(&j), NOW)
            .status
            .unwrap();
        let again = run(valid(), 1, serde_json::to_value(&first).unwrap());
        let d = decide_at(&again, Some(&j), "2026-03-01T13:00:00Z");
        assert!(d.is_noop(again.status.as_ref()), "{d:?}");
        // Succeeded, then the Job is removed by its TTL: still Succeeded, no new Job.
        let done = serde_json::json!({"phase": "Succeeded", "runId": UID, "jobName": JOB,
            "finishedAt": EARLIER, "observedGeneration": 1});
        for job in [None, Some(&j)] {
            let r = run(valid(), 1, done.clone());
            let d = decide_at(&r, job, NOW);
            assert!(d.is_noop(r.status.as_ref()), "{d:?}");
        }
        let r = run(valid(), 1, serde_json::json!({"phase": "TimedOut"}));
        assert!(decide_at(&r, None, NOW).is_noop(r.status.as_ref()));
    }

    #[test]
    fn a_refused_spec_is_failed_with_accepted_false_naming_the_field_and_no_job() {
        for (spec, why, field) in [
            (
                serde_json::json!({"image": "busybox", "commands": ["true"],
                    "resources": {"limits": {"memory": "64Gi"}}}),
                "InvalidSpec",
                "spec.resources.limits.memory",
            ),
            (
                serde_json::json!({"commands": ["true"]}),
                "InvalidSpec",
                "spec.image",
            ),
            (
                serde_json::json!({"image": "busybox", "commands": ["true"], "timeoutSeconds": 0}),
                "InvalidSpec",
                "spec.timeoutSeconds",
            ),
            (
                serde_json::json!({"template": "k6"}),
                "TemplateNotFound",
                "spec.template",
            ),
        ] {
            let d = decide_at(&run(spec.clone(), 2, serde_json::Value::Null), None, NOW);
            assert!(d.create.is_none(), "{spec}");
            assert!(d.refused);
            let s = d.status.unwrap();
            assert_eq!(s.phase.as_deref(), Some("Failed"), "{spec}");
            assert_eq!(s.job_name, None);
            assert_eq!(s.run_id.as_deref(), Some(UID));
            assert_eq!(s.observed_generation, Some(2));
            assert_eq!(s.finished_at.as_deref(), Some(NOW));
            let a = cond(&s, "Accepted");
            assert_eq!(
                (a.status.as_str(), a.reason.as_str()),
                ("False", why),
                "{spec}"
            );
            assert!(a.message.starts_with(field), "{spec}: {}", a.message);
            let c = cond(&s, "Complete");
            assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", why));
            // Written once: afterwards it is final.
            let again = run(spec, 2, serde_json::to_value(&s).unwrap());
            assert!(decide_at(&again, None, "2026-03-02T00:00:00Z").is_noop(again.status.as_ref()));
        }
    }

    #[test]
    fn a_job_of_that_name_not_owned_is_never_adopted() {
        let theirs = job("someone-else", serde_json::json!({"active": 1}));
        let d = decide_at(
            &run(valid(), 1, serde_json::Value::Null),
            Some(&theirs),
            NOW,
        );
        assert!(d.create.is_none());
        let s = d.status.unwrap();
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(cond(&s, "Accepted").reason, "JobConflict");
        assert_eq!(s.job_name, None);
    }

    #[test]
    fn an_owned_job_without_a_status_yet_is_adopted_not_created_again() {
        // The Job was created, then the status write was lost (a restart in between).
        let ours = job(UID, serde_json::json!({"active": 1, "startTime": EARLIER}));
        let d = decide_at(&run(valid(), 3, serde_json::Value::Null), Some(&ours), NOW);
        assert!(d.create.is_none());
        let s = d.status.unwrap();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Accepted").status, "True");
        assert_eq!(s.observed_generation, Some(3));
    }

    #[test]
    fn an_accepted_run_whose_job_is_gone_before_it_finished_failed_and_is_not_restarted() {
        let d = decide_at(&run(valid(), 1, accepted("Running")), None, NOW);
        assert!(d.create.is_none(), "never started again");
        let s = d.status.unwrap();
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(cond(&s, "Complete").reason, "JobDeleted");
        assert_eq!(s.finished_at.as_deref(), Some(NOW));
        assert_eq!(s.job_name.as_deref(), Some(JOB));
    }

    #[test]
    fn a_changed_spec_does_not_restart_a_started_run() {
        // Generation 2 changed the image (even to an invalid one): the run goes on from
        // its Job, and observedGeneration still says 1.
        let changed = serde_json::json!({"image": "a b", "commands": ["other"]});
        let j = job(UID, serde_json::json!({"active": 1, "startTime": EARLIER}));
        let d = decide_at(&run(changed.clone(), 2, accepted("Pending")), Some(&j), NOW);
        assert!(d.create.is_none() && !d.refused);
        let s = d.status.unwrap();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.observed_generation, Some(1));
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(1))
        );
    }

    #[test]
    fn runs_being_deleted_or_without_uid_are_left_alone() {
        let mut r = run(valid(), 1, serde_json::Value::Null);
        r.metadata.deletion_timestamp = Some(NOW.into());
        assert_eq!(decide_at(&r, None, NOW), Decision::leave());
        let mut r = run(valid(), 1, serde_json::Value::Null);
        r.metadata.uid = None;
        assert_eq!(decide_at(&r, None, NOW), Decision::leave());
    }

    #[test]
    fn the_apiservers_refusal_is_an_invalid_spec() {
        let config = config();
        let ns: Namespace = "default".parse().unwrap();
        let ctx = Context {
            runs: &config,
            namespace: &ns,
            now: NOW,
        };
        let d = refused(
            &run(valid(), 1, serde_json::Value::Null),
            &ctx,
            "spec.template.spec.containers[0].image: Required value",
        );
        let s = d.status.unwrap();
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let a = cond(&s, "Accepted");
        assert_eq!(a.reason, "InvalidSpec");
        assert!(a.message.contains("containers[0].image"), "{}", a.message);
    }

    #[test]
    fn condition_reasons_follow_metav1() {
        for ok in ["DeadlineExceeded", "A", "a_b:c,d"] {
            assert!(is_reason(ok), "{ok}");
        }
        for bad in ["", "1A", "A B", "A:", "Ä"] {
            assert!(!is_reason(bad), "{bad}");
        }
    }
}
