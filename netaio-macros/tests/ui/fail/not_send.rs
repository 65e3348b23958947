use std::rc::Rc;

use netaio::{Message, on};

async fn yield_now() {}

#[on(REQUEST_URI, uri = "echo")]
async fn echo(msg: Message) -> Message {
    let local = Rc::new(1);
    yield_now().await;
    Message::ok(msg.uri().clone(), local.to_string())
}

fn main() {}
