//! Live streams shared by their viewers, through the real server against the scripted
//! apiserver: many followers of one job make one upstream log follow; a late joiner
//! gets the same lines as the first, from the start of its tail, with no gap and nothing
//! twice; a retry (the second pod) reaches every follower; many watchers share one
//! watch. (The slow follower and the linger are pinned in `jobs::hub`'s unit tests.)

mod common;
#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "common/streams.rs"]
mod streams;

use std::time::Duration;

use fake_apiserver::{Answer, FakeApiserver};
use serde_json::Value;
use streams::*;

const PATH: &str = "/api/k8s/jobs/test-job-running/logs/stream";

/// The text of the next `count` log events (other events skipped).
async fn lines(events: &mut Events, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let event = next_event(events).await.expect("another event");
        if event.event == "log" {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            seen.push(data["line"].as_str().unwrap().to_string());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_followers_of_one_job_make_one_upstream_follow() {
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    let endless = Answer::endless(200, "text/plain", SCALED_SECOND, Some(more_batches()));
    running_job_scenario(&api, (follow.clone(), endless));
    let service = start_service(&api, 64).await;

    let mut followers = Vec::new();
    for _ in 0..20 {
        followers.push(open_sse(service.addr, PATH, &[]).await);
    }
    let first_line = String::from_utf8(more_batches()(0)).unwrap();
    let first_line = first_line.split_once(' ').unwrap().1.trim_end().to_string();
    for events in &mut followers {
        expect_event(events, "pod").await;
        assert_eq!(lines(events, 1).await, std::slice::from_ref(&first_line));
    }
    assert_eq!(
        api.count(&follow),
        1,
        "one upstream follow for 20 followers"
    );
    drop(followers);
    assert!(
        api.wait_for(Duration::from_secs(5), |api| api.closed().contains(&follow))
            .await,
        "the upstream follow is closed after the last follower left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_what_it_would_alone_with_no_gap_and_nothing_twice() {
    let api = FakeApiserver::start().await;
    let follow = follow_tail("test-job-running-dvhw8", 100);
    let endless = Answer::endless(200, "text/plain", SCALED_SECOND, Some(more_batches()));
    running_job_scenario(&api, (follow.clone(), endless));
    let service = start_service(&api, 8).await;

    let mut first = open_sse(service.addr, PATH, &[]).await;
    let early = lines(&mut first, 4).await;
    let mut late = open_sse(service.addr, PATH, &[]).await;
    // Alone, the late one would get the last 100 lines (all of them so far), then the
    // live ones: the same sequence as the first follower's.
    let seen_late = lines(&mut late, 8).await;
    let mut seen_first = early;
    seen_first.extend(lines(&mut first, 4).await);
    assert_eq!(seen_late, seen_first);
    assert_eq!(api.count(&follow), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_reaches_every_follower() {
    let api = FakeApiserver::start().await;
    let (first, second) = retry_scenario(&api, &recorded_json("23_pods_list_job_retry_two_pods"));
    // The Job is read slowly, so that the three followers join before the run is over.
    let job = recorded_json("13_job_get_retry_failed_then_succeeded");
    api.get(
        &job_path("test-job-retry"),
        vec![Answer::json(200, &job).after(Duration::from_millis(300))],
    );
    let service = start_service(&api, 8).await;
    let path = "/api/k8s/jobs/test-job-retry/logs/stream";
    let mut followers = Vec::new();
    for _ in 0..3 {
        followers.push(open_sse(service.addr, path, &[]).await);
    }
    for events in &mut followers {
        let all = rest(events).await;
        let pods: Vec<String> = all
            .iter()
            .filter(|e| e.event == "pod")
            .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["pod"].to_string())
            .collect();
        assert_eq!(
            pods,
            ["\"test-job-retry-pv8j6\"", "\"test-job-retry-wdgs5\""]
        );
        let logs = all.iter().filter(|e| e.event == "log").count();
        assert_eq!(logs, first.len() + second.len());
        assert_eq!(all.last().unwrap().event, "status");
    }
    assert_eq!(api.count(&follow_tail("test-job-retry-pv8j6", 100)), 1);
    assert_eq!(api.count(&follow_plain("test-job-retry-wdgs5")), 1);
}
