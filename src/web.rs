//! Errors as HTTP responses, for actix-web services (cargo feature
//! `actix-web`).
//!
//! [`CallError`] and [`ManagerError`] implement
//! [`actix_web::ResponseError`], so a handler takes them out with `?` and the
//! client gets a status that says what happened, a `Retry-After` when the
//! circuit knows when it will let calls through again, and a short JSON body:
//!
//! ```json
//! {"error": "rejected", "circuit": "search", "message": "circuit `search` is OPEN; calls are rejected for another 59.8 s", "retry_after_secs": 60}
//! ```
//!
//! `error` is one of the kinds below, `circuit` the circuit's name as
//! messages show it (control characters escaped, at most 64 characters) or
//! `null` when the error does not carry it, `message` the error's `Display`,
//! and `retry_after_secs` is there for rejections only (`null` when no retry
//! time is known). The upstream error's `Display` is part of the message of
//! a failed call; its `Debug` never appears. If the upstream's `Display`
//! holds what a client must not see, map the error before `?`.
//!
//! | error | status | `error` | `circuit` | why |
//! | --- | --- | --- | --- | --- |
//! | [`CallError`] that [`is_rejected`](CallError::is_rejected) (OPEN, HALF_OPEN with every trial slot taken, or FORCED_OPEN by an operator) | 503 | `rejected` | the circuit | The service cannot answer for now because a dependency is down, which is what 503 means. `Retry-After` is the time until a trial may go through, in whole seconds rounded up (rounded down, it would send the client back while the circuit is still OPEN); absent when the circuit cannot say, as when a trial slot may free up at any moment or an operator forced it open. |
//! | [`CallError::Timeout`] | 504 | `timeout` | `null` | The upstream did not answer within `call_timeout`: a gateway timeout. |
//! | [`CallError::Failed`] | 502 | `upstream_failed` | `null` | The upstream answered, with an error: a bad gateway. |
//! | [`CallError::Panicked`] | 500 | `panicked` | `null` | Not 502: the protected future is the service's own code, so a panic in it is a bug of the service (an `unwrap` on the upstream's reply, say), not an answer of the upstream. 502 would point whoever reads the logs at the upstream's owners, and invite retries of what is likely to fail the same way again. |
//! | [`CallError::Unavailable`] | 503 | `circuit_unavailable` | `null` | The circuit's actor stopped; a manager recreates it, so a retry soon can succeed. |
//! | [`CallError::InvalidName`] | 500 | `invalid_name` | `null` | Not 400: the circuit's name is written in the service's code, so a refused name is a bug of the service, not of the request. No circuit exists, so none is named; the message quotes the name. |
//! | [`ManagerError::UnknownCircuit`], [`CallError::UnknownCircuit`] | 500 | `unknown_circuit` | the name asked for | A name at a call site that matches no circuit is a typo in the service (the message suggests the nearest name). A service that takes the name from the request (an admin endpoint, say) should answer 404 itself before `?`. |
//! | [`ManagerError::InvalidConfig`] | 500 | `invalid_name` for a refused name, else `invalid_config` | `null` | Configs and names are the service's own; as for [`CallError::InvalidName`]. |
//! | [`ManagerError::CircuitUnavailable`] | 503 | `circuit_unavailable` | the circuit | It stopped while the request was on its way and is being recreated: try again. |
//! | [`ManagerError::ManagerUnavailable`] | 503 | `manager_unavailable` | `null` | The manager's System is shutting down: what a draining server answers, so a load balancer sends the client elsewhere. |
//!
//! Only a rejection names its circuit among the [`CallError`]s: the others
//! do not carry the name, and the handler that made the call knows it.
//!
//! ```
//! use actix::{Actor, Addr};
//! use actix_web::http::{StatusCode, header};
//! use actix_web::{App, HttpResponse, test, web};
//! use vibezen_recovery::prelude::*;
//!
//! async fn search(breaker: web::Data<Addr<CircuitBreaker>>) -> actix_web::Result<HttpResponse> {
//!     let hits = breaker
//!         .call(async { Err::<String, _>("upstream answered 503".to_string()) })
//!         .await?;
//!     Ok(HttpResponse::Ok().body(hits))
//! }
//!
//! # #[actix::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CircuitBreakerConfig { failure_threshold: 1, ..Default::default() };
//! let breaker = CircuitBreaker::new("search", config)?.start();
//! let app = test::init_service(
//!     App::new()
//!         .app_data(web::Data::new(breaker))
//!         .route("/search", web::get().to(search)),
//! )
//! .await;
//! let search = || test::TestRequest::get().uri("/search").to_request();
//!
//! // The call failed: 502, and the circuit opened.
//! let failed = test::call_service(&app, search()).await;
//! assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
//! let body: serde_json::Value = test::read_body_json(failed).await;
//! assert_eq!(body["error"], "upstream_failed");
//! assert_eq!(body["message"], "protected call failed: upstream answered 503");
//!
//! // Open: 503, and come back when the 60 s OPEN timeout is over.
//! let refused = test::call_service(&app, search()).await;
//! assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(refused.headers().get(header::RETRY_AFTER).unwrap(), "60");
//! let body: serde_json::Value = test::read_body_json(refused).await;
//! assert_eq!(body["error"], "rejected");
//! assert_eq!(body["circuit"], "search");
//! assert_eq!(body["retry_after_secs"], 60);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::circuit::{CallError, CircuitBreakerOpenError};
use crate::config::ConfigError;
use crate::manager::ManagerError;
use crate::name::shown_name;

/// The `error` field of a response, with the status that goes with it: the
/// table of the module docs, in one place.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Rejected,
    Timeout,
    UpstreamFailed,
    Panicked,
    CircuitUnavailable,
    InvalidName,
    UnknownCircuit,
    InvalidConfig,
    ManagerUnavailable,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rejected => "rejected",
            Kind::Timeout => "timeout",
            Kind::UpstreamFailed => "upstream_failed",
            Kind::Panicked => "panicked",
            Kind::CircuitUnavailable => "circuit_unavailable",
            Kind::InvalidName => "invalid_name",
            Kind::UnknownCircuit => "unknown_circuit",
            Kind::InvalidConfig => "invalid_config",
            Kind::ManagerUnavailable => "manager_unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Kind::Rejected | Kind::CircuitUnavailable | Kind::ManagerUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Kind::Panicked | Kind::InvalidName | Kind::UnknownCircuit | Kind::InvalidConfig => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// What a response says about its error besides the message.
struct Reply {
    kind: Kind,
    circuit: Option<String>,
    /// `Some` for a rejection only: the whole seconds until a trial may go
    /// through, if the circuit knows.
    retry_after_secs: Option<Option<u64>>,
}

impl Reply {
    fn new(kind: Kind, circuit: Option<&str>) -> Self {
        Reply {
            kind,
            circuit: circuit.map(shown_name),
            retry_after_secs: None,
        }
    }

    fn rejection(refused: &CircuitBreakerOpenError) -> Self {
        Reply {
            retry_after_secs: Some(refused.retry_after().map(whole_secs_rounded_up)),
            ..Reply::new(Kind::Rejected, Some(refused.circuit()))
        }
    }

    fn of_call<E>(err: &CallError<E>) -> Self {
        // Every kind of rejection is answered alike, whichever variant holds it.
        if let Some(refused) = err.rejection() {
            return Reply::rejection(refused);
        }
        let kind = match err {
            CallError::Timeout(_) => Kind::Timeout,
            CallError::Failed(_) => Kind::UpstreamFailed,
            CallError::Panicked(_) => Kind::Panicked,
            CallError::Unavailable(_) => Kind::CircuitUnavailable,
            CallError::InvalidName(_) => Kind::InvalidName,
            CallError::UnknownCircuit(unknown) => {
                return Reply::new(Kind::UnknownCircuit, Some(unknown.name()));
            }
            // Answered above; named so that a new variant is a decision.
            CallError::Open(_) => Kind::Rejected,
        };
        Reply::new(kind, None)
    }

    fn of_manager(err: &ManagerError) -> Self {
        match err {
            ManagerError::UnknownCircuit(unknown) => {
                Reply::new(Kind::UnknownCircuit, Some(unknown.name()))
            }
            ManagerError::InvalidConfig(ConfigError::InvalidName { .. }) => {
                Reply::new(Kind::InvalidName, None)
            }
            ManagerError::InvalidConfig(_) => Reply::new(Kind::InvalidConfig, None),
            ManagerError::CircuitUnavailable(name) => {
                Reply::new(Kind::CircuitUnavailable, Some(name))
            }
            ManagerError::ManagerUnavailable => Reply::new(Kind::ManagerUnavailable, None),
        }
    }

    fn into_response(self, message: &dyn fmt::Display) -> HttpResponse {
        let mut response = HttpResponse::build(self.kind.status());
        if let Some(Some(secs)) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.json(Body {
            error: self.kind.name(),
            circuit: self.circuit,
            message: message.to_string(),
            retry_after_secs: self.retry_after_secs,
        })
    }
}

#[derive(Serialize)]
struct Body {
    error: &'static str,
    circuit: Option<String>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<Option<u64>>,
}

/// Rounded up, so that a client that waits as long as it is told does not
/// come back while the circuit is still OPEN.
fn whole_secs_rounded_up(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The status, `Retry-After` and JSON body of the [module docs](self).
///
/// ```
/// use actix_web::ResponseError;
/// use actix_web::http::StatusCode;
/// use vibezen_recovery::circuit::CallError;
///
/// let failed = CallError::Failed("upstream answered 500".to_string());
/// assert_eq!(failed.status_code(), StatusCode::BAD_GATEWAY);
/// ```
impl<E: fmt::Debug + fmt::Display> ResponseError for CallError<E> {
    fn status_code(&self) -> StatusCode {
        Reply::of_call(self).kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        Reply::of_call(self).into_response(self)
    }
}

/// The status and JSON body of the [module docs](self).
///
/// ```
/// use actix_web::ResponseError;
/// use actix_web::http::StatusCode;
/// use vibezen_recovery::manager::ManagerError;
///
/// let stopping = ManagerError::ManagerUnavailable;
/// assert_eq!(stopping.status_code(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
impl ResponseError for ManagerError {
    fn status_code(&self) -> StatusCode {
        Reply::of_manager(self).kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        Reply::of_manager(self).into_response(self)
    }
}
