//! Starting the integration: a refused config, and no actix System to start
//! its actors in, are errors to handle, never a crash.

use std::time::Duration;

use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::integration::{StartError, VibezenIntegration, WorkflowConfig};

use crate::support::*;

/// The field `new` refuses `config` for.
#[track_caller]
fn refused_field(config: WorkflowConfig) -> String {
    match VibezenIntegration::new(config) {
        Err(StartError::InvalidConfig(err)) => err.field().to_owned(),
        other => panic!("expected a refused config, got {other:?}"),
    }
}

#[test]
fn a_refused_workflow_config_is_an_error() {
    let bad_floor = WorkflowConfig {
        min_health_score: f64::NAN,
        ..Default::default()
    };
    assert_eq!(refused_field(bad_floor), "min_health_score");
    let bad_timeout = WorkflowConfig {
        handler_timeout: Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(refused_field(bad_timeout), "handler_timeout");
    let bad_default = WorkflowConfig {
        default_config: CircuitBreakerConfig {
            timeout: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(refused_field(bad_default), "timeout");
}

#[track_caller]
fn assert_no_system(result: Result<VibezenIntegration, StartError>) {
    let err = result.expect_err("no System to start actors in");
    assert_eq!(err, StartError::NoSystem);
    let message = err.to_string();
    assert!(
        message.contains("create it inside an actix System")
            && message.contains("#[actix::main]")
            && message.contains("System::new().block_on"),
        "{message}"
    );
}

#[test]
fn new_on_a_thread_without_a_system_is_an_error() {
    let result = std::thread::spawn(|| VibezenIntegration::new(WorkflowConfig::default()))
        .join()
        .expect("new does not panic outside a System");
    assert_no_system(result);
}

/// Before the check, actix panicked starting the manager and again while
/// unwinding, which aborted the whole test binary: this test passing at all
/// is the regression check.
#[test]
fn new_outside_a_system_leaves_the_process_running() {
    assert_no_system(VibezenIntegration::new(WorkflowConfig::default()));
    // A config error still comes first: it is what the caller must fix.
    let bad_floor = WorkflowConfig {
        min_health_score: 2.0,
        ..Default::default()
    };
    assert_eq!(refused_field(bad_floor), "min_health_score");

    // The thread goes on to run a System, where the same call works...
    actix::System::new().block_on(within(async {
        let vibezen = VibezenIntegration::new(WorkflowConfig::default()).unwrap();
        assert!(vibezen.should_continue_workflow().await);
    }));
    // ...and once that System has finished, this thread has none to start
    // actors in again.
    assert_no_system(VibezenIntegration::new(WorkflowConfig::default()));
}

#[test]
fn a_tokio_runtime_without_an_actix_system_is_refused() {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(within(async {
            assert_no_system(VibezenIntegration::new(WorkflowConfig::default()));
        }));
    })
    .join()
    .expect("new does not panic in a bare tokio runtime");
}
