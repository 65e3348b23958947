use netaio::{Message, on};

#[on(REQUEST_URI, uri = "count")]
async fn count(msg: Message) -> usize {
    msg.content().len()
}

#[on(REQUEST_URI, uri = "parse")]
async fn parse(msg: Message) -> Result<Message, Vec<u8>> {
    Err(msg.content().to_vec())
}

fn main() {}
