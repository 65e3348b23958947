//! A multicast join the OS refuses names the group, the interface and its index, the OS error
//! and what to check (it used to read `cannot bind 0.0.0.0:0: No such device`, then `cannot join
//! the multicast group: No such device`). Shown in a network namespace the test creates
//! (`unshare -n`: only `lo`, down, so no multicast route): the test re-runs itself there. Needs
//! root and util-linux's `unshare`, as the other namespace tests need root and iproute2.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use netaio::error::MulticastError;
use netaio::udp::{MulticastConfig, UdpNode};
use netaio::{BindError, Router};

/// Set in the child that runs inside the new namespace.
const INSIDE: &str = "NETAIO_TEST_IN_EMPTY_NETNS";

async fn join(bind: IpAddr, group: IpAddr) -> Result<UdpNode, BindError> {
    UdpNode::builder()
        .address((bind, 0))
        .router(Router::new())
        .multicast(MulticastConfig::default().group(group).port(0))
        .bind()
        .await
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn inside_the_namespace() {
    let v4 = IpAddr::V4(MulticastConfig::DEFAULT_GROUP_V4);
    let e = join(Ipv4Addr::UNSPECIFIED.into(), v4).await.unwrap_err();
    let text = e.to_string();
    let BindError::Multicast(MulticastError::Join {
        group,
        index,
        ref interface,
        ref source,
        ..
    }) = e
    else {
        panic!("expected MulticastError::Join, got {e:?}");
    };
    assert_eq!(group, v4);
    assert_eq!(index, 0, "{text}");
    assert_eq!(interface, "the default interface");
    assert_eq!(source.raw_os_error(), Some(19), "ENODEV: {text}");
    for part in [
        "cannot join multicast group 239.255.110.97 on the default interface (index 0)",
        "No such device",
        "no multicast route",
        "ip route add 224.0.0.0/4 dev IFACE",
        "MulticastConfig::interface",
    ] {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }
    assert!(!text.contains("cannot bind"), "{text}");

    let v6 = IpAddr::V6(MulticastConfig::DEFAULT_GROUP_V6);
    let e = join(Ipv6Addr::UNSPECIFIED.into(), v6).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, BindError::Multicast(MulticastError::Join { .. })),
        "{e:?}"
    );
    for part in [
        "ff02::6e61:696f",
        "(index 0)",
        "no multicast route",
        "ip -6 route add",
    ] {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }

    // The hints are accurate: with the routes they name, the same joins succeed.
    ip(&["link", "set", "lo", "up"]);
    ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    join(Ipv4Addr::UNSPECIFIED.into(), v4).await.unwrap();
    assert!(join(Ipv6Addr::UNSPECIFIED.into(), v6).await.is_err());
    ip(&[
        "-6", "route", "add", "ff00::/8", "dev", "lo", "table", "local",
    ]);
    join(Ipv6Addr::UNSPECIFIED.into(), v6).await.unwrap();
}

#[test]
fn a_refused_join_names_the_group_the_interface_and_what_to_check() {
    if std::env::var_os(INSIDE).is_some() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(inside_the_namespace());
        return;
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .arg("--net")
        .arg(me)
        .args([
            "--exact",
            "multicast_join::a_refused_join_names_the_group_the_interface_and_what_to_check",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE, "1")
        .output()
        .expect("cannot run `unshare` (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "in a new netns:\n{stdout}\n{stderr}");
    // The child ran this test (not zero tests).
    assert!(stdout.contains("1 passed"), "{stdout}");
}
