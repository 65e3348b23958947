use netaio::{Message, service};

struct Svc;

#[service]
impl Svc {
    #[on(REQUEST_URI, uri = "sync")]
    fn sync(&self, msg: Message) -> Message {
        msg
    }

    #[on(uri = "no-type")]
    async fn no_type(&self) {}

    #[on(REQUEST_URI, uri = "bad-arg")]
    async fn bad_arg(&self, name: String) {
        let _ = name;
    }

    #[on(REQUEST_URI)]
    const LIMIT: u32 = 1;
}

fn main() {}
