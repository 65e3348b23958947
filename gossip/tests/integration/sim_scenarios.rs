//! The simulator's scenarios beyond iroh-gossip's: mass failure, a node away and back, spammers.

use std::time::Duration;

use netaio_gossip::sim::{NetworkConfig, away, churn, spam};

#[test]
fn half_the_nodes_killed_later_messages_reach_every_survivor_within_two_shuffle_periods() {
    let config = NetworkConfig::default();
    let shuffle = config.get_proto().get_shuffle_interval();
    let r = churn(
        &config,
        0,
        100,
        0.5,
        Duration::from_secs(1),
        shuffle,
        shuffle * 2,
    );
    println!("{r:?}");
    assert_eq!(r.survivors, 50);
    assert_eq!(r.published, 60);
    assert!(r.complete_ratio() >= 0.99, "{r:?}");
    assert_eq!(r.isolated_at_end, 0);
}

#[test]
fn a_node_away_for_10_rounds_catches_up_within_one_anti_entropy_period() {
    let config = NetworkConfig::default();
    let sync = config.get_proto().get_sync_interval();
    let r = away(&config, 0, 100, 10, sync);
    println!("{r:?}");
    assert_eq!(r.missed_while_away, 10);
    assert!(r.caught_up_after.is_some_and(|d| d <= sync), "{r:?}");
    assert_eq!(r.fetched, 10, "caught up by anti-entropy");
    assert_eq!(r.missed_after_return, 0.0);
    assert_eq!(r.missed_while_away_by_others, 0.0);
}

#[test]
fn spam_without_valid_proof_goes_no_further_than_the_first_hop() {
    let r = spam(&NetworkConfig::default(), 0, 100, 0.05, 10);
    println!("{r:?}");
    assert_eq!(r.spammers, 5);
    assert_eq!(r.spam_published, 50);
    assert_eq!(r.spam_delivered, 0);
    assert_eq!(r.spam_forwarded_by_honest, 0);
    assert_eq!(r.honest_missed, 0.0);
    assert!(r.bans > 0);
}
