use netaio::{Message, service};

struct Svc {
    count: u32,
}

#[service]
impl Svc {
    #[on(REQUEST_URI, uri = "count")]
    async fn count(&mut self) -> Message {
        self.count += 1;
        Message::ok("count", self.count.to_string())
    }
}

fn main() {}
