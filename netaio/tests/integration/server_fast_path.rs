//! The server's per-frame paths: handlers that complete on their first poll (handled without a
//! per-frame future), handlers that wait (finished later, in order), echoed bodies (their
//! checksum reused from the request) and the reply's reused auth vector (no stale fields).
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};

#[tokio::test]
async fn ready_and_waiting_handlers_answer_in_order_with_valid_frames() {
    let router = Router::new()
        .on(
            (MessageType::REQUEST_URI, "echo"),
            |m: Message| async move { Message::respond(m.uri().clone(), m.content().clone()) },
        )
        .on(
            (MessageType::REQUEST_URI, "slow"),
            |m: Message| async move {
                // Pending on its first poll: finished by the connection task when woken.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                Message::respond("slow", m.content().clone())
            },
        )
        .on(
            (MessageType::REQUEST_URI, "tagged"),
            |_: Message| async move {
                let mut reply = Message::respond("tagged", "t");
                reply.auth.insert("x-extra", &b"1"[..]);
                reply
            },
        )
        .on(
            (MessageType::REQUEST_URI, "upper"),
            |m: Message| async move {
                // Same uri slice, new content: the body is not the request's.
                Message::respond(m.uri().clone(), m.content().to_ascii_uppercase())
            },
        );
    let server = TcpServer::bind(([127, 0, 0, 1], 0), router).await.unwrap();
    let addr = server.local_addr();
    let h = server.handle();
    let task = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();

    // Pipelined on one connection: a client decoding a reply checks its checksum, so a wrong
    // reused checksum fails the request.
    let uris = [
        "echo", "slow", "tagged", "echo", "upper", "slow", "echo", "tagged", "upper",
    ];
    let calls = uris
        .iter()
        .enumerate()
        .map(|(i, uri)| conn.request(*uri, format!("body {i}")));
    let replies = futures_join_all(calls).await;
    for (i, (uri, reply)) in uris.iter().zip(replies).enumerate() {
        let reply = reply.unwrap_or_else(|e| panic!("{uri} #{i}: {e}"));
        assert_eq!(reply.message_type, MessageType::RESPOND_URI);
        let expected = match *uri {
            "tagged" => "t".to_string(),
            "upper" => format!("BODY {i}"),
            _ => format!("body {i}"),
        };
        assert_eq!(reply.content().as_ref(), expected.as_bytes(), "{uri} #{i}");
        // A field of an earlier reply never leaks into a later one through the reused vector.
        assert_eq!(
            reply.auth.get("x-extra").is_some(),
            *uri == "tagged",
            "{uri} #{i}: {:?}",
            reply.auth
        );
    }
    h.shutdown();
    task.await.unwrap();
}

/// Await every future concurrently; the outputs in the order of the futures (`join_all`
/// without the futures crate).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
