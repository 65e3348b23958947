//! A call made with inner plugins to a route whose inner auth check fails gets the server's
//! AUTH_ERROR (sent without plugins) as `RequestError::Auth`, not a refusal of that reply.

use netaio::plugin::{Plugins, SendOptions};
use netaio::router::Route;
use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};

use crate::common::Token;

#[tokio::test]
async fn failed_inner_check_is_an_auth_error_for_the_caller() {
    let router = Router::new().route(
        Route::on((MessageType::REQUEST_URI, "secret"), || async {
            Message::respond("secret", "ok")
        })
        .with_inner(Plugins::new().auth(Token(b"right"))),
    );
    let server = TcpServer::bind(([127, 0, 0, 1], 0), router).await.unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    let conn = TcpClient::new().connect(addr).await.unwrap();
    let msg = || Message::new(MessageType::REQUEST_URI, "secret", "");

    let wrong = SendOptions::new().inner(Plugins::new().auth(Token(b"wrong")));
    let e = conn.call_with(msg(), &wrong).await.unwrap_err();
    let RequestError::Auth(reply) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(reply.message_type, MessageType::AUTH_ERROR);

    let right = SendOptions::new().inner(Plugins::new().auth(Token(b"right")));
    let r = conn.call_with(msg(), &right).await.unwrap();
    assert_eq!(r.content().as_ref(), b"ok");

    conn.close().await;
    handle.shutdown();
    task.await.unwrap();
}
