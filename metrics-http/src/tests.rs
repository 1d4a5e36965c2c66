use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::*;

const INDEX: &str = "test: Prometheus metrics at /metrics\n";

/// Scrapes that failed, as told to [`count_failed_scrapes`].
static FAILED_SCRAPES: AtomicUsize = AtomicUsize::new(0);

fn count_failed_scrapes(trouble: Trouble<'_>) {
    if let Trouble::Scrape(why) = trouble {
        assert_eq!(why, "no text today");
        FAILED_SCRAPES.fetch_add(1, Ordering::SeqCst);
    }
}

/// An endpoint whose scrapes answer `text`, on a free port, stopped by the sender.
async fn start(
    text: Result<&'static str, &'static str>,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let endpoint = Endpoint {
        index: INDEX,
        scrape: Box::new(move || {
            Box::pin(async move { text.map(str::to_string).map_err(str::to_string) })
        }),
        log: count_failed_scrapes,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, endpoint, async {
        let _ = stopped.await;
    }));
    (address, stop, server)
}

async fn ask(address: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn metrics_a_pointer_and_404_are_served_until_the_stop() {
    let (address, stop, server) = start(Ok("# HELP up Up.\n# EOF\n")).await;

    let metrics = ask(address, "GET", "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(
        metrics.contains(&format!("content-type: {CONTENT_TYPE_OPENMETRICS}\r\n")),
        "{metrics}"
    );
    assert!(
        metrics.ends_with("\r\n\r\n# HELP up Up.\n# EOF\n"),
        "{metrics}"
    );

    let index = ask(address, "GET", "/").await;
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert!(index.ends_with(INDEX), "{index}");

    for (method, path) in [("GET", "/nothing"), ("POST", "/metrics")] {
        let missing = ask(address, method, path).await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{method} {path}: {missing}"
        );
        assert!(missing.ends_with("not found: GET /metrics\n"), "{missing}");
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve did not stop")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

#[tokio::test]
async fn a_failed_scrape_is_a_500_and_told_to_the_log() {
    let (address, stop, server) = start(Err("no text today")).await;
    let before = FAILED_SCRAPES.load(Ordering::SeqCst);

    let failed = ask(address, "GET", "/metrics").await;
    assert!(
        failed.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{failed}"
    );
    assert!(
        failed.ends_with("the metrics could not be encoded\n"),
        "{failed}"
    );
    assert_eq!(FAILED_SCRAPES.load(Ordering::SeqCst), before + 1);

    stop.send(()).unwrap();
    server.await.unwrap();
}
