//! Integrations: what answers a matched route. `mock` answers itself,
//! `http` forwards to an upstream, `function` calls a Lambda function with
//! an API Gateway proxy event.

pub(crate) mod function;
pub(crate) mod http;
pub(crate) mod mapping;
pub(crate) mod mock;
