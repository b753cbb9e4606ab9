//! The dashboard over real sockets: served at `/ui` with its files and a strict
//! Content-Security-Policy when asked for, absent otherwise, and it needs no token (the
//! page asks for one and uses the public API with it).

mod common;

use common::Client;
use jobwire_server::{spawn, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_its_policy_when_asked_for() {
    let server = spawn(ServerConfig::new().ui(true)).await.unwrap();
    // No token: the page itself is public, everything it shows comes from /v1 with one.
    let anonymous = Client::new(server.addr(), "");
    for path in ["/ui", "/ui/"] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let policy = page.header("content-security-policy").unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"));
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        let html = String::from_utf8_lossy(&page.body);
        assert!(html.contains("/ui/app.js"), "the page loads its module");
        assert!(!html.contains("<script>"), "no inline script");
    }
    let script = anonymous.get("/ui/app.js").await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let missing = anonymous.get("/ui/secrets.txt").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.problem().code, "not_found");
    server.shutdown().await;

    // Off by default for servers spawned in-process.
    let server = spawn(ServerConfig::new()).await.unwrap();
    let off = Client::new(server.addr(), "").get("/ui").await;
    assert_eq!(off.status, 404);
    server.shutdown().await;
}
