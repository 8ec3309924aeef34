//! The integration test binary: the real server on port 0, real upstreams,
//! real HTTP clients, and the real `stratus` binary for CLI behaviour.

mod access;
mod cli;
mod databases;
mod destinations;
mod dev;
mod fidelity;
mod fleet;
mod function_urls;
mod functions;
mod hardening;
mod hostile;
mod invoke_api;
mod mapping;
mod monitor;
mod portal;
mod proxy;
mod s3_events;
mod schedules;
mod shutdown;
mod sites;
mod streaming;
mod support;
mod templates;
mod tls;
mod traffic;
mod versions;
mod websocket;
