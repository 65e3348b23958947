//! The relay scenario of BENCHMARKS.md (issue 14) split by role for callgrind: each node on a
//! thread of its own with a current-thread runtime, so that `valgrind --tool=callgrind
//! --separate-threads=yes` counts each role's instructions apart. `--mode relay`: thread 2 is
//! the relay, 3 the service behind it (reserved as `c`), 4 the caller (reserved as `a`);
//! `--mode direct`: thread 2 is the server, 4 the client (3 idles). Each run makes `count / 10`
//! warm-up calls, then `count`, one at a time: the instructions of 1,100 calls are the
//! difference of the runs with `--count 2000` and `--count 1000`.
//!
//! `relay-split --mode relay --size 64 --count 2000`

use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use netaio::peer::Peer;
use netaio::relay::{Rate, Relay, RelayConfig};
use netaio::{CallOptions, Message, MessageType, Router, TcpClient, TcpServer};

/// `relay-split` flags.
#[derive(Debug, Clone, clap::Parser)]
struct Args {
    /// Calls measured (after `count / 10` warm-up calls)
    #[arg(long, default_value_t = 2000)]
    count: u64,
    /// Payload bytes, request and reply alike
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// `relay` or `direct`
    #[arg(long, default_value = "relay")]
    mode: String,
}

type Res<T> = netaio_bench::Result<T>;

const QUEUE: usize = 64 << 20;

fn echo() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::respond("echo", m.content().clone()) },
    )
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Serve on a thread of its own, forever; its address on `addr`.
fn server(router: Router, addr: mpsc::Sender<std::net::SocketAddr>) {
    std::thread::spawn(move || {
        let run = async move {
            let server = TcpServer::builder()
                .address(([127, 0, 0, 1], 0))
                .router(router)
                .send_queue_bytes(QUEUE)
                .bind()
                .await?;
            addr.send(server.local_addr())?;
            server.serve().await;
            Res::Ok(())
        };
        if let Err(e) = runtime().and_then(|rt| rt.block_on(run)) {
            eprintln!("server: {e}");
        }
    });
}

fn main() -> Res<()> {
    let args = Args::parse();
    let (tx, rx) = mpsc::channel();
    let relayed = args.mode == "relay";
    let router = match relayed {
        true => {
            let config = RelayConfig::default()
                .envelope_rate_per_sender(Rate::per_second(u32::MAX.into()))
                .envelope_rate_per_ip(Rate::per_second(u32::MAX.into()))
                .byte_rate_per_sender(Rate::per_second(u64::MAX >> 8))
                .byte_rate_per_ip(Rate::per_second(u64::MAX >> 8))
                .queue_envelopes(4096)
                .queue_bytes(256 << 20);
            Router::new().merge(Relay::new(config).router())
        }
        false => echo(),
    };
    server(router, tx);
    let addr = rx.recv()?;
    // The service, behind the relay (thread 3).
    let (ready_tx, ready_rx) = mpsc::channel::<Res<()>>();
    std::thread::spawn(move || {
        let run = async move {
            if relayed {
                let service = TcpClient::builder()
                    .send_queue_bytes(QUEUE)
                    .router(echo())
                    .build();
                let c = service.connect(addr).await?;
                c.reserve("c").await?;
                let _ = ready_tx.send(Ok(()));
                // Kept (with its connection), and kept alive in both modes, so that the
                // caller is thread 4 in both.
                std::future::pending::<()>().await;
            }
            let _ = ready_tx.send(Ok(()));
            std::future::pending::<()>().await;
            Res::Ok(())
        };
        if let Err(e) = runtime().and_then(|rt| rt.block_on(run)) {
            eprintln!("service: {e}");
        }
    });
    ready_rx.recv()??;
    // The caller (thread 4).
    let caller = std::thread::spawn(move || {
        runtime()?.block_on(async move {
            let conn = TcpClient::builder()
                .send_queue_bytes(QUEUE)
                .build()
                .connect(addr)
                .await?;
            if relayed {
                conn.reserve("a").await?;
            }
            let opts = CallOptions::new().timeout(Duration::from_secs(30));
            let peer = Peer::new("c");
            let payload = bytes::Bytes::from(vec![0x5a; args.size]);
            for _ in 0..args.count + args.count / 10 {
                let m = Message::new(MessageType::REQUEST_URI, "echo", payload.clone());
                let reply = match relayed {
                    true => conn.start_call_via_relay(&peer, m, &opts).await?,
                    false => conn.start_call(m, &opts).await?,
                };
                if reply.content().len() != args.size {
                    return Err("short reply".into());
                }
            }
            Res::Ok(())
        })
    });
    caller.join().map_err(|_| "caller panicked")??;
    std::process::exit(0)
}
