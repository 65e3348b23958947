use netaio::{Message, service};

struct Svc;

#[service]
impl Svc {
    #[on(REQUEST_URI, uri = "echo")]
    async fn echo(self, msg: Message) -> Message {
        msg
    }
}

fn main() {
    // The impl block is still emitted.
    let _ = Svc.echo(Message::ok("", ""));
}
