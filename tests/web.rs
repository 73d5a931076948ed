//! The `actix-web` feature: what a client of an actix-web service sees when
//! a handler takes a `CallError` or a `ManagerError` out with `?`. Real
//! circuits and managers behind a real `App`, on tokio's paused clock where
//! time matters; every body is compared whole, so a changed status, kind,
//! name or field fails here.

mod common;

use std::fmt;
use std::time::Duration;

use actix::prelude::*;
use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, test};
use serde_json::{Value, json};
use vibezen_recovery::circuit::{CircuitBreaker, CircuitBreakerExt, ForceOpen, Stop};
use vibezen_recovery::config::CircuitBreakerConfig;
use vibezen_recovery::manager::{
    CircuitBreakerManager, GetBreaker, GetCircuitHandle, GetRegistry, ManagerError, Registry,
    ResetCircuit,
};

use common::{advance, secs, settle, within};

/// An upstream error whose `Debug` holds what no client may see.
#[derive(Debug)]
struct Upstream {
    status: u16,
    #[expect(dead_code, reason = "only `Debug` shows it, which is the point")]
    api_key: &'static str,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream answered {}", self.status)
    }
}

const API_KEY: &str = "sk-do-not-show";

async fn fails(breaker: Data<Addr<CircuitBreaker>>) -> actix_web::Result<HttpResponse> {
    let upstream = Upstream {
        status: 500,
        api_key: API_KEY,
    };
    breaker.call(async { Err::<(), _>(upstream) }).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn hangs(breaker: Data<Addr<CircuitBreaker>>) -> actix_web::Result<HttpResponse> {
    breaker
        .call(async {
            tokio::time::sleep(secs(3600)).await;
            Ok::<_, String>(())
        })
        .await?;
    Ok(HttpResponse::Ok().finish())
}

async fn panics(breaker: Data<Addr<CircuitBreaker>>) -> actix_web::Result<HttpResponse> {
    breaker
        .call(async {
            if true {
                panic!("the upstream's reply had no body")
            }
            Ok::<_, String>(())
        })
        .await?;
    Ok(HttpResponse::Ok().finish())
}

fn circuit_routes(config: &mut web::ServiceConfig) {
    config
        .route("/fails", web::get().to(fails))
        .route("/hangs", web::get().to(hangs))
        .route("/panics", web::get().to(panics));
}

async fn call_by_name(
    registry: Data<Registry>,
    name: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    registry.call(&name, async { Ok::<_, String>(()) }).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn call_known_by_name(
    registry: Data<Registry>,
    name: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    let known = registry.known_only();
    known.call(&name, async { Ok::<_, String>(()) }).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn handle_by_name(
    registry: Data<Registry>,
    name: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    registry.handle(&name).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn reset(
    manager: Data<Addr<CircuitBreakerManager>>,
    name: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    manager
        .send(ResetCircuit(name.into_inner()))
        .await
        .map_err(|_| ManagerError::ManagerUnavailable)??;
    Ok(HttpResponse::Ok().finish())
}

async fn create_with_no_threshold(
    manager: Data<Addr<CircuitBreakerManager>>,
) -> actix_web::Result<HttpResponse> {
    let config = CircuitBreakerConfig {
        failure_threshold: 0,
        ..Default::default()
    };
    manager
        .send(GetCircuitHandle::with_config("search", config))
        .await
        .map_err(|_| ManagerError::ManagerUnavailable)??;
    Ok(HttpResponse::Ok().finish())
}

/// `CircuitUnavailable` comes of a circuit stopping between the manager's
/// lookup and its answer, a race no test can stage on purpose; the handler
/// returns it as the manager would.
async fn circuit_stopped_on_the_way() -> actix_web::Result<HttpResponse> {
    Err(ManagerError::CircuitUnavailable("search".into()).into())
}

fn manager_routes(config: &mut web::ServiceConfig) {
    config
        .route("/call/{name}", web::get().to(call_by_name))
        .route("/known/{name}", web::get().to(call_known_by_name))
        .route("/handle/{name}", web::get().to(handle_by_name))
        .route("/reset/{name}", web::get().to(reset))
        .route("/create", web::get().to(create_with_no_threshold))
        .route("/stopped", web::get().to(circuit_stopped_on_the_way));
}

fn start(config: CircuitBreakerConfig) -> Addr<CircuitBreaker> {
    CircuitBreaker::new("search", config)
        .expect("valid config")
        .start()
}

/// What a client of the service sees of one error response.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

/// `GET uri`, whose answer must be JSON.
async fn get<S, B>(app: &S, uri: &str) -> Answer
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await;
    let header_value = |name| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("an ASCII header").to_owned())
    };
    assert_eq!(
        header_value(header::CONTENT_TYPE).as_deref(),
        Some("application/json"),
        "GET {uri}"
    );
    let (status, retry_after) = (response.status(), header_value(header::RETRY_AFTER));
    Answer {
        status,
        retry_after,
        body: test::read_body_json(response).await,
    }
}

#[actix::test]
async fn an_open_circuit_answers_503_with_retry_after_in_whole_seconds_rounded_up() {
    tokio::time::pause();
    within(async {
        let breaker = start(CircuitBreakerConfig {
            failure_threshold: 1,
            timeout: secs(60),
            ..Default::default()
        });
        let app = test::init_service(
            App::new()
                .app_data(Data::new(breaker))
                .configure(circuit_routes),
        )
        .await;
        assert_eq!(get(&app, "/fails").await.status, StatusCode::BAD_GATEWAY);

        let refused = get(&app, "/fails").await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after.as_deref(), Some("60"));
        assert_eq!(
            refused.body,
            json!({
                "error": "rejected",
                "circuit": "search",
                "message": "circuit `search` is OPEN; calls are rejected for another 60.0 s",
                "retry_after_secs": 60,
            })
        );

        // 49.7 s to go: a client told 49 would come back to an OPEN circuit.
        advance(Duration::from_millis(10_300)).await;
        let refused = get(&app, "/fails").await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after.as_deref(), Some("50"));
        assert_eq!(
            refused.body,
            json!({
                "error": "rejected",
                "circuit": "search",
                "message": "circuit `search` is OPEN; calls are rejected for another 49.7 s",
                "retry_after_secs": 50,
            })
        );
    })
    .await;
}

#[actix::test]
async fn a_rejection_with_no_retry_time_answers_503_without_retry_after() {
    tokio::time::pause();
    within(async {
        let breaker = start(CircuitBreakerConfig {
            failure_threshold: 1,
            timeout: secs(60),
            half_open_max_calls: Some(1),
            ..Default::default()
        });
        let app = test::init_service(
            App::new()
                .app_data(Data::new(breaker.clone()))
                .configure(circuit_routes),
        )
        .await;
        get(&app, "/fails").await;
        advance(secs(60)).await;
        // HALF_OPEN: a trial that does not end takes the only slot.
        actix::spawn(async move {
            breaker
                .call(std::future::pending::<Result<(), String>>())
                .await
        });
        settle().await;

        let refused = get(&app, "/fails").await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after, None);
        assert_eq!(
            refused.body,
            json!({
                "error": "rejected",
                "circuit": "search",
                "message": "circuit `search` is HALF_OPEN and every trial slot is taken; retry shortly",
                "retry_after_secs": null,
            })
        );
    })
    .await;
}

/// Issue 9: a circuit an operator forced open is a 503 with no
/// `Retry-After` (only the operator knows when it is released), and a
/// message that says who to ask.
#[actix::test]
async fn a_forced_open_circuit_answers_503_without_retry_after() {
    tokio::time::pause();
    within(async {
        let breaker = start(CircuitBreakerConfig::default());
        breaker.send(ForceOpen).await.unwrap();
        let app = test::init_service(
            App::new()
                .app_data(Data::new(breaker))
                .configure(circuit_routes),
        )
        .await;
        let refused = get(&app, "/fails").await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after, None);
        assert_eq!(
            refused.body,
            json!({
                "error": "rejected",
                "circuit": "search",
                "message": "circuit `search` was forced open by an operator; calls are rejected until it is released",
                "retry_after_secs": null,
            })
        );
    })
    .await;
}

#[actix::test]
async fn a_failed_call_answers_502_without_the_upstream_errors_debug() {
    within(async {
        let app = test::init_service(
            App::new()
                .app_data(Data::new(start(CircuitBreakerConfig::default())))
                .configure(circuit_routes),
        )
        .await;
        let failed = get(&app, "/fails").await;
        assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
        assert_eq!(failed.retry_after, None);
        assert_eq!(
            failed.body,
            json!({
                "error": "upstream_failed",
                "circuit": null,
                "message": "protected call failed: upstream answered 500",
            })
        );
        assert!(!failed.body.to_string().contains(API_KEY));
    })
    .await;
}

#[actix::test]
async fn a_call_cut_off_at_its_deadline_answers_504() {
    tokio::time::pause();
    within(async {
        let breaker = start(CircuitBreakerConfig {
            call_timeout: Some(secs(2)),
            ..Default::default()
        });
        let app = test::init_service(
            App::new()
                .app_data(Data::new(breaker))
                .configure(circuit_routes),
        )
        .await;
        let late = get(&app, "/hangs").await;
        assert_eq!(late.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(late.retry_after, None);
        assert_eq!(
            late.body,
            json!({
                "error": "timeout",
                "circuit": null,
                "message": "protected call cut off at its deadline, after 2.000 s; \
                            the service is slow or hung, or `call_timeout` is too short",
            })
        );
    })
    .await;
}

#[actix::test]
async fn a_panicked_call_answers_500_as_the_services_own_bug() {
    within(async {
        let app = test::init_service(
            App::new()
                .app_data(Data::new(start(CircuitBreakerConfig::default())))
                .configure(circuit_routes),
        )
        .await;
        let panicked = get(&app, "/panics").await;
        assert_eq!(panicked.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            panicked.body,
            json!({
                "error": "panicked",
                "circuit": null,
                "message": "protected call panicked: the upstream's reply had no body",
            })
        );
    })
    .await;
}

#[actix::test]
async fn a_stopped_circuit_answers_503_without_retry_after() {
    within(async {
        let breaker = start(CircuitBreakerConfig::default());
        breaker.send(Stop).await.expect("the circuit takes Stop");
        let app = test::init_service(
            App::new()
                .app_data(Data::new(breaker))
                .configure(circuit_routes),
        )
        .await;
        let gone = get(&app, "/fails").await;
        assert_eq!(gone.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(gone.retry_after, None);
        assert_eq!(
            gone.body,
            json!({
                "error": "circuit_unavailable",
                "circuit": null,
                "message": "circuit breaker actor unavailable: it has stopped, or its arbiter \
                            shut down; a manager recreates the circuits it owns, so call again \
                            through the manager",
            })
        );
    })
    .await;
}

async fn manager_app(
    manager: Addr<CircuitBreakerManager>,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    let registry = manager
        .send(GetRegistry)
        .await
        .expect("the manager is running");
    test::init_service(
        App::new()
            .app_data(Data::new(manager))
            .app_data(Data::new(registry))
            .configure(manager_routes),
    )
    .await
}

#[actix::test]
async fn an_invalid_name_at_a_call_site_answers_500() {
    within(async {
        let app = manager_app(CircuitBreakerManager::default().start()).await;
        let expected = json!({
            "error": "invalid_name",
            "circuit": null,
            "message": "invalid circuit name \"line\\nbreak\": must not contain control \
                        characters; no circuit was created and the call did not run",
        });
        // A `CallError::InvalidName`, from a call by name...
        let call = get(&app, "/call/line%0Abreak").await;
        assert_eq!(
            (call.status, &call.body),
            (StatusCode::INTERNAL_SERVER_ERROR, &expected)
        );
        // ...and the `ManagerError` behind it, from a lookup by name.
        let lookup = get(&app, "/handle/line%0Abreak").await;
        assert_eq!(lookup.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            lookup.body,
            json!({
                "error": "invalid_name",
                "circuit": null,
                "message": "invalid circuit name \"line\\nbreak\": must not contain control \
                            characters",
            })
        );
    })
    .await;
}

#[actix::test]
async fn an_unknown_circuit_answers_500_naming_what_was_asked_for() {
    within(async {
        let manager = CircuitBreakerManager::default().start();
        manager
            .send(GetBreaker::new("search"))
            .await
            .unwrap()
            .unwrap();
        let app = manager_app(manager).await;
        // From the manager, and from a call site that only calls set-up names.
        for uri in ["/reset/serch", "/known/serch"] {
            let unknown = get(&app, uri).await;
            assert_eq!(unknown.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
            let message = "no circuit named \"serch\" (did you mean \"search\"?): set it up \
                           first (a circuits file, presets or GetBreaker), or check the spelling";
            let message = if uri.starts_with("/known") {
                format!("{message}; the call did not run")
            } else {
                message.to_owned()
            };
            assert_eq!(
                unknown.body,
                json!({
                    "error": "unknown_circuit",
                    "circuit": "serch",
                    "message": message,
                }),
                "{uri}"
            );
        }
    })
    .await;
}

#[actix::test]
async fn an_invalid_config_answers_500() {
    within(async {
        let app = manager_app(CircuitBreakerManager::default().start()).await;
        let refused = get(&app, "/create").await;
        assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            refused.body,
            json!({
                "error": "invalid_config",
                "circuit": null,
                "message": "invalid circuit breaker config: `failure_threshold` must be at least 1 (got 0)",
            })
        );
    })
    .await;
}

#[actix::test]
async fn a_circuit_stopped_on_the_way_answers_503_naming_it() {
    within(async {
        let app = manager_app(CircuitBreakerManager::default().start()).await;
        let gone = get(&app, "/stopped").await;
        assert_eq!(gone.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(gone.retry_after, None);
        assert_eq!(
            gone.body,
            json!({
                "error": "circuit_unavailable",
                "circuit": "search",
                "message": "circuit \"search\" stopped before it could answer; the manager \
                            recreates it, try again",
            })
        );
    })
    .await;
}

#[actix::test]
async fn a_stopped_manager_answers_503() {
    within(async {
        // On an arbiter of its own, so that the test can stop it.
        let arbiter = Arbiter::new();
        let manager = CircuitBreakerManager::start_in_arbiter(&arbiter.handle(), |_| {
            CircuitBreakerManager::default()
        });
        let app = manager_app(manager).await;
        arbiter.stop();
        arbiter.join().expect("the manager's arbiter stops");

        let stopping = get(&app, "/handle/search").await;
        assert_eq!(stopping.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(stopping.retry_after, None);
        assert_eq!(
            stopping.body,
            json!({
                "error": "manager_unavailable",
                "circuit": null,
                "message": "the circuit breaker manager has stopped; its System is shutting down",
            })
        );
    })
    .await;
}
