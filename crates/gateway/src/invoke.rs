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
use stratus_runtime::{
    ErrorKind, FunctionError, InvokeError, InvokeRequest, InvokeResponse, Streamed,
};

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

    /// One call whose answer may be streamed (refused at once at the
    /// function's concurrency). Implementations that cannot stream answer
    /// whole.
    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        req: InvokeRequest,
    ) -> BoxFuture<'a, Result<Streamed, InvokeError>> {
        Box::pin(async move { self.invoke(function, req, None).await.map(Streamed::Whole) })
    }
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

    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        req: InvokeRequest,
    ) -> BoxFuture<'a, Result<Streamed, InvokeError>> {
        Box::pin(stratus_runtime::Runtime::invoke_stream(self, function, req))
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
    match answered {
        Err(_) => Err(CallError::TimedOut),
        Ok(Err(e)) => Err(CallError::from_invoke(e)),
        Ok(Ok(out)) => out
            .result
            .map_err(|e| CallError::from_function(function, &e)),
    }
}

impl CallError {
    /// A call that could not run.
    pub(crate) fn from_invoke(e: InvokeError) -> CallError {
        match e {
            InvokeError::TooManyRequests => CallError::Throttled,
            InvokeError::PayloadTooLarge => CallError::TooLarge,
            e => CallError::Failed {
                timeout: false,
                message: e.to_string(),
                error_message: String::new(),
            },
        }
    }

    /// A call that ran and failed.
    pub(crate) fn from_function(function: &str, e: &FunctionError) -> CallError {
        let error_message = e.message();
        CallError::Failed {
            timeout: e.kind == ErrorKind::Timeout,
            message: format!(
                "function {function:?} failed: {}: {error_message}",
                e.error_type
            ),
            error_message,
        }
    }
}
