use netaio::on;

#[on("echo")]
async fn echo() {}

fn main() {}
