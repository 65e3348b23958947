use netaio::{Message, on};

#[on(REQUEST_URI, uri = "echo")]
async fn echo(msg: &Message) -> Message {
    msg.clone()
}

fn main() {}
