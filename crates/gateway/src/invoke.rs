//! The one way the gateway calls a function: HTTP routes, WebSocket routes
//! and (next) Lambda authorizers all go through [`call_function`], and its
//! failures are mapped to AWS answers in one place each
//! ([`CallError::into_gateway_error`] for HTTP; the WebSocket upgrade and
//! message handling read [`CallError::timed_out`]).
//!
//! [`Invoke`] is the seam: the runtime implements it with real processes;
//! tests implement it in memory, so routing, events and error mapping are
//! tested without a process.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use stratus_config::ApiKind;
use stratus_runtime::{ErrorKind, InvokeError, InvokeRequest, InvokeResponse};

use crate::error::GatewayError;

/// Something that runs functions.
pub trait Invoke: Send + Sync + 'static {
    /// One call. `wait`: `None` refuses at once when the function is at its
    /// concurrency (as Lambda throttles); `Some(d)` waits up to `d` for a
    /// free environment instead.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        req: InvokeRequest,
        wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<InvokeResponse, InvokeError>>;
}

impl Invoke for stratus_runtime::Runtime {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        req: InvokeRequest,
        wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<InvokeResponse, InvokeError>> {
        Box::pin(async move {
            match wait {
                None => stratus_runtime::Runtime::invoke(self, function, req).await,
                Some(d) => self.invoke_waiting(function, req, d).await,
            }
        })
    }
}

/// Why a call gave no answer to map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The function is at its concurrency (Lambda's 429).
    Throttled,
    /// The payload is over the synchronous limit.
    TooLarge,
    /// The integration timeout passed before the function answered.
    TimedOut,
    /// The function ran and failed (its own timeout included), or could not
    /// be started. `error_message` is the function's own `errorMessage`.
    Failed {
        timeout: bool,
        message: String,
        error_message: String,
    },
}

impl CallError {
    /// Did the call run out of time (the integration's, or the function's)?
    pub(crate) fn timed_out(&self) -> bool {
        matches!(
            self,
            CallError::TimedOut | CallError::Failed { timeout: true, .. }
        )
    }

    /// The answer an API route gives, as the Lambda developer guide says
    /// ("Handling Lambda errors with an API Gateway API"): a call Lambda
    /// refused is a 500, a function that failed a 502, and only the
    /// integration timeout a 504 (REST) / 503 (HTTP).
    pub(crate) fn into_gateway_error(self, kind: ApiKind) -> GatewayError {
        match self {
            CallError::Throttled => GatewayError::FunctionThrottled,
            CallError::TooLarge => GatewayError::PayloadTooLarge {
                limit: stratus_runtime::MAX_SYNC_PAYLOAD as u64,
            },
            CallError::TimedOut => GatewayError::Timeout(kind),
            CallError::Failed { message, .. } => GatewayError::BadGateway(message),
        }
    }
}

/// Calls `function` with `payload`, bounded by `limit` (the integration
/// timeout, which covers any `wait` for an environment too); `None` when
/// the caller already bounds the whole call.
pub(crate) async fn call_function(
    invoker: &dyn Invoke,
    function: &str,
    payload: Bytes,
    limit: Option<Duration>,
    wait: Option<Duration>,
) -> Result<Bytes, CallError> {
    let req = InvokeRequest {
        payload,
        ..Default::default()
    };
    let call = invoker.invoke(function, req, wait);
    let answered = match limit {
        Some(limit) => tokio::time::timeout(limit, call).await,
        None => Ok(call.await),
    };
    let out = match answered {
        Err(_) => return Err(CallError::TimedOut),
        Ok(Err(InvokeError::TooManyRequests)) => return Err(CallError::Throttled),
        Ok(Err(InvokeError::PayloadTooLarge)) => return Err(CallError::TooLarge),
        Ok(Err(e)) => {
            return Err(CallError::Failed {
                timeout: false,
                message: e.to_string(),
                error_message: String::new(),
            })
        }
        Ok(Ok(out)) => out,
    };
    out.result.map_err(|e| {
        let error_message = e.message();
        CallError::Failed {
            timeout: e.kind == ErrorKind::Timeout,
            message: format!(
                "function {function:?} failed: {}: {error_message}",
                e.error_type
            ),
            error_message,
        }
    })
}
