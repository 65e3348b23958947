use netaio::{Message, on};

struct Svc;

impl Svc {
    #[on(REQUEST_URI, uri = "echo")]
    async fn echo(&self, msg: Message) -> Message {
        msg
    }
}

fn main() {}
