use std::cell::Cell;

use netaio::{Message, service};

struct Svc {
    count: Cell<u32>,
}

#[service]
impl Svc {
    #[on(REQUEST_URI, uri = "count")]
    async fn count(&self) -> Message {
        self.count.set(self.count.get() + 1);
        Message::ok("count", self.count.get().to_string())
    }
}

fn main() {}
