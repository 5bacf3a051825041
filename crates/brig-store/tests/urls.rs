//! Database URLs: what is accepted, and what a person sees when one is wrong.

use brig_store::{Cipher, Store, StoreError};

#[tokio::test]
async fn unsupported_and_empty_urls_are_bad_urls() {
    for url in [
        "redis://localhost/0",
        "sqlite:",
        "sqlite://",
        "/var/lib/brig.db",
    ] {
        match Store::connect(url, Cipher::generate()).await {
            Err(StoreError::BadUrl(msg)) => assert!(msg.contains("sqlite:"), "{url}: {msg}"),
            other => panic!("{url}: expected BadUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn connect_errors_name_the_url_without_its_password() {
    // Port 1 on loopback: nothing listens. The pool retries until its acquire timeout, so
    // both engines are tried at once.
    let mysql = Store::connect(
        "mysql://root:hunter2@127.0.0.1:1/brig?password=hunter2",
        Cipher::generate(),
    );
    let postgres = Store::connect("postgresql://u:pw@127.0.0.1:1/db", Cipher::generate());
    let (mysql, postgres) = tokio::join!(mysql, postgres);
    let err = mysql.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(
        msg.starts_with("cannot connect to mysql://root@127.0.0.1:1/brig: "),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");

    let err = postgres.unwrap_err().to_string();
    assert!(
        err.starts_with("cannot connect to postgresql://u@127.0.0.1:1/db: "),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_file_is_created_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brig.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url, Cipher::generate()).await.unwrap();
    assert!(path.exists());
    store.create_tenant("acme", "pro").await.unwrap();
    store.close().await;
    // Migrations are idempotent and data persists.
    let again = Store::connect(&format!("sqlite:{}", path.display()), Cipher::generate())
        .await
        .unwrap();
    assert!(again.tenant_by_name("acme").await.unwrap().is_some());
    again.close().await;

    let missing = dir.path().join("no/such/dir/brig.db");
    let err = Store::connect(&format!("sqlite:{}", missing.display()), Cipher::generate())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no/such/dir/brig.db"), "{err}");
}
