//! Both facades linked into one binary, sharing one server: the same names and the
//! same errors, and a job submitted by one is read by the other.

use jobwire_core::Error;
use jobwire_server::{spawn_blocking_server, ServerConfig};
use serde_json::{json, Value};

#[test]
fn async_and_blocking_in_one_program() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let blocking = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();

    // The blocking facade submits; no runtime exists yet.
    let mut submitted = blocking
        .submit("sleep", &json!({"duration_seconds": 0.2}))
        .unwrap();
    let id = submitted.id().to_owned();

    // The async facade, in a runtime of its own, awaits the same job.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, token) = (server.url(), server.token().to_owned());
    let from_async: Value = runtime
        .block_on(async move {
            let client = jobwire::Client::builder()
                .base_url(url)
                .token(token)
                .build()?;
            let mut job = client.get_job(&id).await?;
            let out: Value = job.result().await?;
            // The same error type, matched the same way.
            match client.service("missing").await {
                Err(Error::NotFound { .. }) => {}
                other => panic!("expected NotFound, got {other:?}"),
            }
            Ok::<_, Error>(out)
        })
        .unwrap();
    let from_blocking: Value = submitted.result().unwrap();
    assert_eq!(from_async, json!({"slept": 0.2}));
    assert_eq!(from_async, from_blocking);
    assert!(matches!(
        blocking.service("missing"),
        Err(Error::NotFound { .. })
    ));
    drop(runtime);
    server.shutdown();
}
