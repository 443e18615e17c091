//! One integration test binary that drives the real `fortnight` executable.
//!
//! Each area has its own module; `support` holds the `TestProject` builder (a temporary
//! project folder with config, articles and list) and the in-process SMTP server.

mod support;

mod articles;
mod bounces;
mod digest;
mod fuzz;
mod guarantees;
mod hostile;
mod layers;
mod message;
mod safety;
mod send;
mod serve;
mod subscribers;
mod surface;
