//! The actix-web example, over real HTTP: a front service with two workers
//! calls a flaky upstream through awc. Through an outage of 503s and hangs
//! and the recovery, the callers are always answered (by the fallback while
//! the circuit is open), little reaches the upstream, readiness stays 503
//! from the moment the circuit opens until it closes, and the handlers fire
//! once each. Real time: about five seconds.

#[allow(dead_code)]
#[path = "../examples/actix_web_service.rs"]
mod service;

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use service::{Upstream, run_outage, start_front};
use vibezen_recovery::manager::AllStats;
use vibezen_recovery::state::CircuitState;

#[actix::test]
async fn the_service_rides_out_an_outage_over_real_http() {
    common::within(async {
        let upstream = Upstream::default();
        let (upstream_server, upstream_addr) = upstream.start().unwrap();
        let front = start_front(upstream_addr).await.unwrap();

        let phase = Duration::from_millis(1_200);
        let figures = run_outage(&upstream, &front, phase).await.unwrap();
        println!("{figures:#?}");

        let stats = front.vibezen.manager().send(AllStats).await.unwrap();
        assert_eq!(stats[0].state, CircuitState::Closed, "recovered");
        // Every caller was answered, by the upstream or by the fallback.
        assert_eq!(figures.errors, 0, "{figures:?}");
        assert!(figures.fallbacks > 0, "{figures:?}");
        // What reached the upstream while it was down: the failures that
        // opened the circuit (the callers in flight then included) and the
        // trials of each probe, never the callers' traffic.
        let probes = stats[0]
            .state_changes
            .iter()
            .filter(|change| change.to == CircuitState::HalfOpen)
            .count() as u64;
        let trial_slots = u64::from(stats[0].config.success_threshold);
        let bound = u64::from(stats[0].config.failure_threshold) + 8 + probes * trial_slots;
        assert!(
            figures.upstream_calls_during_outage <= bound,
            "{} upstream calls during the outage, more than {bound}: {figures:?}",
            figures.upstream_calls_during_outage
        );
        assert!(
            figures.requests_during_outage > 10 * figures.upstream_calls_during_outage,
            "the circuit shed the load: {figures:?}"
        );
        // Readiness: 503 whenever the report it came from had the circuit
        // down, probes (HALF_OPEN) included.
        assert!(figures.readiness_checks_while_down > 10, "{figures:?}");
        assert!(figures.readiness_checks_while_probing > 0, "{figures:?}");
        assert_eq!(figures.ready_while_down, 0, "{figures:?}");
        assert!(figures.detected_after > Duration::ZERO, "{figures:?}");
        assert!(figures.recovered_after > Duration::ZERO, "{figures:?}");
        // Once per outage and per recovery.
        assert_eq!(
            (figures.degradations, figures.recoveries),
            (1, 1),
            "{figures:?}"
        );

        front.handle.stop(true).await;
        upstream_server.stop(false).await;
    })
    .await;
}
