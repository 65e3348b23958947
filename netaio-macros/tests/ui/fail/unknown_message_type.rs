use netaio::on;

#[on(REQUEST_UIR, uri = "echo")]
async fn echo() {}

#[on(7u8)]
async fn number() {}

fn main() {}
