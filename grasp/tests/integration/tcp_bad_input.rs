//! What an objective's TCP port does with bad input, over real sockets on loopback: an unknown
//! message type is answered with M_INVALID (its session id echoed), an M_INVALID is never
//! answered, undecodable bytes are not answered, and a request whose session id is active is
//! discarded (the listener never sees it).

use std::time::Duration;

use netaio_grasp::{Asa, Grasp, Message, RegisterOptions, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api_loopback::{ex3, pair};

/// Nodes A and B, A's ASA listening for EX3, and its port, found by B's discovery.
async fn ex3_port() -> ([Grasp; 2], Asa, std::net::SocketAddr) {
    let (a, b) = pair().await;
    let briggs = a.register_asa("Briggs").unwrap();
    briggs
        .register_obj(&ex3(), RegisterOptions::default())
        .await
        .unwrap();
    let listening = briggs.clone();
    // Registers as listener at its first poll; the request it may take is not used.
    let first = tokio::spawn(async move { listening.listen_negotiate(&ex3()).await.map(|_| ()) });
    let gray = b.register_asa("Gray").unwrap();
    let mut found = Vec::new();
    for _ in 0..20 {
        found = gray
            .discover(&ex3(), Duration::from_millis(500))
            .await
            .unwrap();
        if !found.is_empty() {
            break;
        }
    }
    first.abort();
    let addr = found.first().and_then(|l| l.socket_addr()).unwrap();
    ([a, b], briggs, addr)
}

/// Everything the peer sends until it closes (within 10 s).
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the peer closes")
        .unwrap();
    got
}

#[tokio::test]
async fn unknown_types_get_m_invalid_but_m_invalid_and_garbage_get_nothing() {
    let (_a, _briggs, addr) = ex3_port().await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&Value::Array(vec![42.into(), 77.into()]).to_cbor().unwrap())
        .await
        .unwrap();
    let got = read_to_end(&mut s).await;
    assert!(
        matches!(
            Message::decode(&got, 2048),
            Ok(Message::Invalid { session_id: 77, .. })
        ),
        "{got:02x?}"
    );

    let mut s = TcpStream::connect(addr).await.unwrap();
    let invalid = Message::Invalid {
        session_id: 5,
        content: Some("x".into()),
    };
    s.write_all(&invalid.encode().unwrap()).await.unwrap();
    assert!(read_to_end(&mut s).await.is_empty(), "M_INVALID answered");

    // A malformed M_INVALID (two diagnostics) is not answered either.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let bad_invalid = Value::Array(vec![99.into(), 5.into(), 1.into(), 2.into()]);
    s.write_all(&bad_invalid.to_cbor().unwrap()).await.unwrap();
    assert!(read_to_end(&mut s).await.is_empty());

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xff, 0xff, 0x00]).await.unwrap();
    assert!(read_to_end(&mut s).await.is_empty());
}

#[tokio::test]
async fn a_request_whose_session_id_is_active_is_discarded() {
    let (_a, briggs, addr) = ex3_port().await;
    let request = |sid: u32, amount: i64| {
        Message::ReqNeg {
            session_id: sid,
            objective: ex3().value(vec![Value::from("NZD"), Value::from(amount)]),
        }
        .encode()
        .unwrap()
    };
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(&request(1000, 1)).await.unwrap();
    let (session, req) = briggs.listen_negotiate(&ex3()).await.unwrap();
    assert_eq!(session.session_id(), 1000);
    assert_eq!(req.value.unwrap().as_array().unwrap()[1], Value::from(1));
    // Session 1000 is active: the same id again is discarded, another id goes through.
    let mut dup = TcpStream::connect(addr).await.unwrap();
    dup.write_all(&request(1000, 2)).await.unwrap();
    let mut other = TcpStream::connect(addr).await.unwrap();
    other.write_all(&request(1001, 3)).await.unwrap();
    let (next, req) = briggs.listen_negotiate(&ex3()).await.unwrap();
    assert_eq!(next.session_id(), 1001);
    assert_eq!(req.value.unwrap().as_array().unwrap()[1], Value::from(3));
    drop((session, next));
}
