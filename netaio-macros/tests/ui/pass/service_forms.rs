//! `#[service]`: methods with `&self`, `self: Arc<Self>` or no receiver, `#[on]` and `#[once]`
//! (also as `#[netaio::on]`), two routes on one method, other items left alone, a generic
//! service, and mounting on a router, a server builder and a client builder.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use netaio::router::{PeerAddr, Service, State};
use netaio::{Message, MessageType, Router, TcpClient, TcpServer, service};

#[derive(Default)]
struct Counter {
    hits: AtomicU32,
}

#[service]
impl Counter {
    /// Docs and other attributes stay on the method.
    #[on(REQUEST_URI, uri = "hit")]
    #[on(UPDATE_URI, uri = "hit")]
    #[inline]
    async fn hit(&self, _peer: PeerAddr) -> Message {
        let n = self.hits.fetch_add(1, Ordering::Relaxed) + 1;
        Message::respond("hit", n.to_string())
    }

    #[netaio::on(REQUEST_URI, uri = "shared")]
    async fn shared(self: Arc<Self>, State(me): State<Arc<Counter>>) -> Message {
        assert!(Arc::ptr_eq(&self, &me));
        Message::respond("shared", "")
    }

    #[once(OK, uri = "ready")]
    async fn ready(msg: Message) {
        let _ = msg;
    }

    #[netaio::once(DELETE_URI)]
    async fn reset(&self) -> Result<Message, String> {
        self.hits.store(0, Ordering::Relaxed);
        Ok(Message::ok("", "reset"))
    }

    const LIMIT: u32 = 10;

    fn hits(&self) -> u32 {
        self.hits.load(Ordering::Relaxed).min(Self::LIMIT)
    }
}

struct Named<T> {
    name: T,
}

#[service]
impl<T> Named<T>
where
    T: AsRef<str> + Send + Sync + 'static,
{
    #[on(REQUEST_URI, uri = "name")]
    async fn name(&self) -> Message {
        Message::respond("name", self.name.as_ref().to_owned())
    }
}

fn main() {
    let counter = Arc::new(Counter::default());
    let routes = Arc::clone(&counter).routes();
    assert_eq!(routes.len(), 5);
    assert_eq!(routes.iter().filter(|r| r.is_once()).count(), 2);
    assert!(
        routes
            .iter()
            .any(|r| r.key() == &(MessageType::UPDATE_URI, "hit").into())
    );
    assert_eq!(counter.hits(), 0);

    let router = Router::new().mount(counter).mount(Named { name: "n" });
    assert_eq!(router.len(), 6);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The methods stay callable.
        let c = Counter::default();
        let reply = c
            .hit(PeerAddr(([127, 0, 0, 1], 1).into()))
            .await;
        assert_eq!(reply.content().as_ref(), b"1");

        let server = TcpServer::builder()
            .address(([127, 0, 0, 1], 0))
            .mount(Counter::default())
            .bind()
            .await
            .unwrap();
        drop(server);
        let _client = TcpClient::builder().mount(Named { name: String::from("c") }).build();
    });
}
