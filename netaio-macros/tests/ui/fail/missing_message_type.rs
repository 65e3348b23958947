use netaio::{on, once};

#[on(uri = "echo")]
async fn echo() {}

#[once]
async fn ready() {}

fn main() {}
