use netaio::{Message, on};

#[on(REQUEST_URI, uri = "echo")]
fn echo(msg: Message) -> Message {
    msg
}

fn main() {
    // The function is still emitted (and callable) despite the error.
    let _ = echo(Message::ok("", ""));
}
