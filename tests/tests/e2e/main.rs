//! End-to-end tests over loopback sockets, one module per topic, built as one test binary
//! (`cargo test -p netaio-tests --test e2e [module::]`). The multi-host tests in network namespaces
//! are the separate `netns` target (needs root; run by `.ci/run` in its own step).
mod asymmetric_discovery;
mod client_subscribe;
mod compat_tcp;
mod compat_udp;
mod fuzz_replay;
mod not_netaio;
mod peer_watch;
mod pipeline_order;
mod reach;
mod relay_departure;
mod relay_keys;
mod relay_moves;
mod relay_udp;
mod relay_udp_proof;
mod slow_peers_concurrent;
mod slow_peers_tcp;
mod slow_peers_udp;
mod tcp_admission;
mod tcp_bad_input;
mod tcp_broadcast_plugins;
mod tcp_client;
mod tcp_fairness;
mod tcp_handler_panic;
mod tcp_hashcash_tapehash;
mod tcp_memory;
mod tcp_peers;
mod tcp_pipelining;
mod tcp_pubsub;
mod tcp_relay;
mod tcp_replay_quota;
mod tcp_request_response;
mod tcp_routing;
mod tcp_server_call;
mod tcp_shutdown;
mod tcp_timeouts;
mod tcp_wakeups;
mod udp_discovery;
mod udp_discovery_abuse;
mod udp_macros;
mod udp_node;
mod udp_return_routability;
#[cfg(unix)]
mod unix_socket;
