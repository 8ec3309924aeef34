//! The phases a request goes through, each in its own module. The order
//! is in one place, `Gateway::handle`; the phases to come (API key,
//! authorizer, cache) have their slots marked there.

pub(crate) mod api_key;
pub(crate) mod authorize;
pub(crate) mod cache;
pub(crate) mod cors;
pub(crate) mod gateway_responses;
pub(crate) mod limits;
pub(crate) mod normalize;
pub(crate) mod policy;
pub(crate) mod served;
pub(crate) mod throttle;
pub(crate) mod validate;
