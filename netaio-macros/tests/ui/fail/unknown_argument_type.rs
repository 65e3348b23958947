use netaio::{Message, on};

struct Config;

#[on(REQUEST_URI, uri = "echo")]
async fn echo(msg: Message, config: Config, port: u16) -> Message {
    let _ = (config, port);
    msg
}

fn main() {}
