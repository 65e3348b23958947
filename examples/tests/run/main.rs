//! Tests that run the example programs (and, in `python_interop`, the Python reference library),
//! one module per topic, built as one test binary (`cargo test -p netaio-examples --test run`).
mod common;
mod examples_run;
mod gossip_node_run;
mod plugin_examples_run;
mod python_interop;
mod python_udp_peers;
mod relay_node_run;
mod service_run;
mod slow_peers_python;
mod udp_examples_run;
