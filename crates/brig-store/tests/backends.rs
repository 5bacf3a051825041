//! The store's whole API, run on SQLite, MariaDB and PostgreSQL alike (see `common` for how
//! each test gets its own database and when a missing server is a skip or a failure).

mod common;

use brig_store::{
    AuditEvent, AuditFilter, Cipher, ExecutionDone, ExecutionRecord, SessionRecord, StoreError,
    StoredResponse, sha256_hex,
};
use common::{Kind, TestDb, dump_all_columns, hex};
use serde_json::json;

on_every_backend!(
    tenants,
    api_keys,
    sessions,
    execution_lifecycle,
    stats,
    recovery,
    idempotency,
    audit,
    encryption_at_rest,
    key_rotation,
    compat_queue,
    nodes,
);

fn execution(id: &str, tenant_id: &str, node_id: &str, code: &str) -> ExecutionRecord {
    ExecutionRecord {
        id: id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        session_id: None,
        node_id: node_id.to_owned(),
        language: "python".into(),
        code: code.to_owned(),
        code_sha256: sha256_hex(code.as_bytes()),
        status: "queued".into(),
        created_at_ms: 1_000,
        started_at_ms: None,
        finished_at_ms: None,
        wall_ms: None,
        cpu_ms: None,
        memory_peak_bytes: None,
        result: None,
    }
}

fn session(id: &str, tenant_id: &str, node_id: &str, created_at_ms: i64) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        node_id: node_id.to_owned(),
        template: "python".into(),
        status: "active".into(),
        end_reason: None,
        metadata: json!({"owner": "alice", "n": 1}),
        ttl_s: 3600,
        idle_timeout_s: 300,
        created_at_ms,
        ended_at_ms: None,
    }
}

fn done(status: &str, wall_ms: i64, finished_at_ms: i64) -> ExecutionDone {
    ExecutionDone {
        status: status.into(),
        result: json!({"status": status, "stdout": "hi\n", "stderr": "", "wall_ms": wall_ms}),
        wall_ms,
        cpu_ms: wall_ms / 2,
        memory_peak_bytes: 1 << 20,
        finished_at_ms,
    }
}

async fn tenants(db: TestDb) {
    let s = &db.store;
    s.ping().await.unwrap();
    assert!(s.list_tenants().await.unwrap().is_empty());
    let acme = s.create_tenant("acme", "pro").await.unwrap();
    assert_eq!(acme.id.len(), 32);
    assert!(!acme.anonymous_compat);
    let other = s.create_tenant("Acme", "free").await.unwrap();
    assert_ne!(
        acme.id, other.id,
        "names are case-sensitive on every engine"
    );

    match s.create_tenant("acme", "free").await {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains("acme"), "{msg}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.get_tenant(&acme.id).await.unwrap().as_ref(), Some(&acme));
    assert_eq!(
        s.tenant_by_name("acme").await.unwrap().as_ref(),
        Some(&acme)
    );
    assert_eq!(s.tenant_by_name("nobody").await.unwrap(), None);
    assert_eq!(s.get_tenant("nope").await.unwrap(), None);
    let names: Vec<String> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"acme".to_string()) && names.contains(&"Acme".to_string()));

    assert!(s.set_tenant_anonymous(&acme.id, true).await.unwrap());
    // Setting the value it already has still finds the tenant (MySQL reports 0 changed rows).
    assert!(s.set_tenant_anonymous(&acme.id, true).await.unwrap());
    assert!(
        s.get_tenant(&acme.id)
            .await
            .unwrap()
            .unwrap()
            .anonymous_compat
    );
    assert!(
        !s.get_tenant(&other.id)
            .await
            .unwrap()
            .unwrap()
            .anonymous_compat
    );
    assert!(s.set_tenant_anonymous(&acme.id, false).await.unwrap());
    assert!(
        !s.get_tenant(&acme.id)
            .await
            .unwrap()
            .unwrap()
            .anonymous_compat
    );
    assert!(!s.set_tenant_anonymous("nope", true).await.unwrap());
}

async fn api_keys(db: TestDb) {
    let s = &db.store;
    let acme = s.create_tenant("acme", "pro").await.unwrap();
    let beta = s.create_tenant("beta", "free").await.unwrap();

    let (admin, secret) = s.create_key(&acme.id, true).await.unwrap();
    assert!(
        secret.starts_with("brig_") && secret.len() == 45,
        "{secret}"
    );
    assert!(
        secret[5..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert!(secret.starts_with(&admin.prefix) && admin.prefix.len() == 12);
    assert!(admin.admin && admin.revoked_at_ms.is_none() && admin.last_used_at_ms.is_none());
    let (user, user_secret) = s.create_key(&beta.id, false).await.unwrap();
    assert_ne!(secret, user_secret);

    // Only the hash is stored: the secret appears in no column of any table.
    let dump = dump_all_columns(&db).await;
    assert!(
        dump.contains(&hex(&sha256_hex(secret.as_bytes()))),
        "dump sees the hash"
    );
    assert!(!dump.contains(&hex(&secret)), "secret stored in clear");
    assert!(!dump.contains(&hex(&user_secret)), "secret stored in clear");

    let (key, tenant) = s.authenticate(&secret).await.unwrap().expect("valid key");
    assert_eq!(
        (key.id.as_str(), tenant.id.as_str()),
        (admin.id.as_str(), acme.id.as_str())
    );
    assert_eq!(tenant.name, "acme");
    let used = key.last_used_at_ms.expect("use recorded");
    let listed = s.list_keys(Some(&acme.id)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at_ms, Some(used));
    let (_, tenant) = s.authenticate(&user_secret).await.unwrap().unwrap();
    assert_eq!(tenant.id, beta.id);
    assert!(s.authenticate("brig_wrong").await.unwrap().is_none());
    assert!(s.authenticate("").await.unwrap().is_none());

    assert_eq!(s.list_keys(None).await.unwrap().len(), 2);
    assert_eq!(s.list_keys(Some(&beta.id)).await.unwrap()[0].id, user.id);
    assert_eq!(s.count_admin_keys().await.unwrap(), 1);

    // BRIG_ADMIN_KEY: inserted once, then found again.
    let fixed = "brig_fixed-admin-key-from-the-environment-0001";
    let ensured = s.ensure_key(&acme.id, true, fixed).await.unwrap();
    assert_eq!(ensured.prefix, "brig_fixed-a");
    assert_eq!(
        s.ensure_key(&acme.id, true, fixed).await.unwrap().id,
        ensured.id
    );
    assert_eq!(s.count_admin_keys().await.unwrap(), 2);
    assert!(s.authenticate(fixed).await.unwrap().is_some());

    assert!(s.revoke_key(&admin.id).await.unwrap());
    assert!(!s.revoke_key(&admin.id).await.unwrap(), "already revoked");
    assert!(!s.revoke_key("nope").await.unwrap());
    assert!(s.authenticate(&secret).await.unwrap().is_none());
    assert_eq!(s.count_admin_keys().await.unwrap(), 1);
    let revoked = s.list_keys(Some(&acme.id)).await.unwrap();
    assert!(
        revoked
            .iter()
            .any(|k| k.id == admin.id && k.revoked_at_ms.is_some())
    );
}

async fn sessions(db: TestDb) {
    let s = &db.store;
    let t = s.create_tenant("acme", "pro").await.unwrap();
    let u = s.create_tenant("beta", "pro").await.unwrap();
    s.insert_session(&session("s1", &t.id, "node-a", 100))
        .await
        .unwrap();
    s.insert_session(&session("s2", &t.id, "node-b", 200))
        .await
        .unwrap();
    s.insert_session(&session("s3", &u.id, "node-a", 300))
        .await
        .unwrap();

    let got = s.get_session(&t.id, "s1").await.unwrap().unwrap();
    assert_eq!(got, session("s1", &t.id, "node-a", 100));
    assert_eq!(got.metadata["owner"], "alice");
    assert!(
        s.get_session(&u.id, "s1").await.unwrap().is_none(),
        "other tenant's session"
    );

    let all: Vec<String> = s
        .list_sessions(&t.id, false)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(all, ["s2", "s1"], "newest first, own tenant only");

    s.end_session("s2", "deleted", 250).await.unwrap();
    let ended = s.get_session(&t.id, "s2").await.unwrap().unwrap();
    assert_eq!(ended.status, "ended");
    assert_eq!(ended.end_reason.as_deref(), Some("deleted"));
    assert_eq!(ended.ended_at_ms, Some(250));
    // Ending again keeps the first reason.
    s.end_session("s2", "ttl", 999).await.unwrap();
    let again = s.get_session(&t.id, "s2").await.unwrap().unwrap();
    assert_eq!(
        (again.end_reason.as_deref(), again.ended_at_ms),
        (Some("deleted"), Some(250))
    );

    let active: Vec<String> = s
        .list_sessions(&t.id, true)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(active, ["s1"]);
    assert_eq!(s.list_sessions(&t.id, false).await.unwrap().len(), 2);
}

async fn execution_lifecycle(db: TestDb) {
    let s = &db.store;
    let t = s.create_tenant("acme", "pro").await.unwrap();
    let u = s.create_tenant("beta", "pro").await.unwrap();
    s.insert_session(&session("s1", &t.id, "node-a", 100))
        .await
        .unwrap();
    let mut queued = execution("e1", &t.id, "node-a", "print('héllo ✓')\n");
    queued.session_id = Some("s1".into());
    s.insert_execution(&queued).await.unwrap();
    assert_eq!(
        s.get_execution(&t.id, "e1").await.unwrap().as_ref(),
        Some(&queued)
    );
    assert!(
        s.get_execution(&u.id, "e1").await.unwrap().is_none(),
        "other tenant"
    );
    assert!(s.get_execution(&t.id, "e2").await.unwrap().is_none());

    s.mark_running("e1", 1_500).await.unwrap();
    let running = s.get_execution(&t.id, "e1").await.unwrap().unwrap();
    assert_eq!(running.status, "running");
    assert_eq!(running.started_at_ms, Some(1_500));
    assert!(running.result.is_none());

    let fin = done("ok", 42, 2_000);
    s.finish_execution("e1", &fin).await.unwrap();
    let finished = s.get_execution(&t.id, "e1").await.unwrap().unwrap();
    assert_eq!(finished.status, "ok");
    assert_eq!(finished.result.as_ref(), Some(&fin.result));
    assert_eq!(finished.code, queued.code);
    assert_eq!(finished.code_sha256, sha256_hex(queued.code.as_bytes()));
    assert_eq!(finished.session_id.as_deref(), Some("s1"));
    assert_eq!(
        (
            finished.wall_ms,
            finished.cpu_ms,
            finished.memory_peak_bytes
        ),
        (Some(42), Some(21), Some(1 << 20))
    );
    assert_eq!(
        (finished.started_at_ms, finished.finished_at_ms),
        (Some(1_500), Some(2_000))
    );

    // mark_running only moves a queued execution.
    s.mark_running("e1", 9_999).await.unwrap();
    let still = s.get_execution(&t.id, "e1").await.unwrap().unwrap();
    assert_eq!(
        (still.status.as_str(), still.started_at_ms),
        ("ok", Some(1_500))
    );

    // An execution inserted already finished (a synchronous run) keeps its result.
    let mut sync = execution("e2", &t.id, "node-a", "1+1");
    sync.status = "runtime_error".into();
    sync.result = Some(json!({"status": "runtime_error", "stderr": "boom"}));
    s.insert_execution(&sync).await.unwrap();
    assert_eq!(
        s.get_execution(&t.id, "e2").await.unwrap().unwrap().result,
        sync.result
    );
}

async fn stats(db: TestDb) {
    let s = &db.store;
    let empty = s.execution_stats().await.unwrap();
    assert_eq!(
        (empty.total, empty.finished, empty.avg_wall_ms),
        (0, 0, 0.0)
    );
    assert!(empty.by_status.is_empty());

    let t = s.create_tenant("acme", "pro").await.unwrap();
    for (id, status, wall) in [("a", "ok", 10), ("b", "ok", 20), ("c", "timeout", 60)] {
        s.insert_execution(&execution(id, &t.id, "n", "x"))
            .await
            .unwrap();
        s.finish_execution(id, &done(status, wall, 5_000))
            .await
            .unwrap();
    }
    s.insert_execution(&execution("d", &t.id, "n", "x"))
        .await
        .unwrap();
    s.insert_execution(&execution("e", &t.id, "n", "x"))
        .await
        .unwrap();
    s.mark_running("e", 10).await.unwrap();

    let st = s.execution_stats().await.unwrap();
    assert_eq!(st.total, 5);
    assert_eq!(st.finished, 3);
    assert!((st.avg_wall_ms - 30.0).abs() < 1e-9, "{}", st.avg_wall_ms);
    let by: Vec<(&str, u64)> = st.by_status.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        by,
        [("ok", 2), ("queued", 1), ("running", 1), ("timeout", 1)]
    );
}

async fn recovery(db: TestDb) {
    let s = &db.store;
    let t = s.create_tenant("acme", "pro").await.unwrap();
    for (id, node) in [
        ("a-q", "node-a"),
        ("a-r", "node-a"),
        ("a-f", "node-a"),
        ("b-r", "node-b"),
    ] {
        s.insert_execution(&execution(id, &t.id, node, "x"))
            .await
            .unwrap();
    }
    s.mark_running("a-r", 10).await.unwrap();
    s.mark_running("b-r", 10).await.unwrap();
    s.finish_execution("a-f", &done("ok", 5, 20)).await.unwrap();
    s.insert_session(&session("sa", &t.id, "node-a", 1))
        .await
        .unwrap();
    s.insert_session(&session("sa-ended", &t.id, "node-a", 2))
        .await
        .unwrap();
    s.end_session("sa-ended", "deleted", 3).await.unwrap();
    s.insert_session(&session("sb", &t.id, "node-b", 4))
        .await
        .unwrap();

    let r = s.recover_node("node-a", 777).await.unwrap();
    assert_eq!((r.executions_failed, r.sessions_ended), (2, 1));

    for id in ["a-q", "a-r"] {
        let e = s.get_execution(&t.id, id).await.unwrap().unwrap();
        assert_eq!(e.status, "internal_error", "{id}");
        assert_eq!(e.finished_at_ms, Some(777));
        let result = e.result.expect("a result");
        assert_eq!(result["status"], "internal_error");
        assert_eq!(result["message"], "server restarted");
    }
    assert_eq!(
        s.get_execution(&t.id, "a-f").await.unwrap().unwrap().status,
        "ok"
    );
    let other = s.get_execution(&t.id, "b-r").await.unwrap().unwrap();
    assert_eq!((other.status.as_str(), other.result), ("running", None));

    let sa = s.get_session(&t.id, "sa").await.unwrap().unwrap();
    assert_eq!(sa.status, "ended");
    assert_eq!(sa.end_reason.as_deref(), Some("server restarted"));
    assert_eq!(sa.ended_at_ms, Some(777));
    let kept = s.get_session(&t.id, "sa-ended").await.unwrap().unwrap();
    assert_eq!(kept.end_reason.as_deref(), Some("deleted"));
    assert_eq!(
        s.get_session(&t.id, "sb").await.unwrap().unwrap().status,
        "active"
    );

    let again = s.recover_node("node-a", 888).await.unwrap();
    assert_eq!((again.executions_failed, again.sessions_ended), (0, 0));
}

async fn idempotency(db: TestDb) {
    let s = &db.store;
    let t = s.create_tenant("acme", "pro").await.unwrap();
    let u = s.create_tenant("beta", "pro").await.unwrap();
    assert!(s.idempotency_get(&t.id, "k1").await.unwrap().is_none());
    let first = StoredResponse {
        request_hash: sha256_hex(b"request one"),
        status: 201,
        body: b"{\"id\":\"e1\"}\x00\xff".to_vec(),
    };
    assert!(s.idempotency_put(&t.id, "k1", &first).await.unwrap());
    assert_eq!(
        s.idempotency_get(&t.id, "k1").await.unwrap(),
        Some(first.clone())
    );

    // The race: a second writer loses and the first response stays.
    let second = StoredResponse {
        request_hash: sha256_hex(b"request two"),
        status: 500,
        body: b"other".to_vec(),
    };
    assert!(!s.idempotency_put(&t.id, "k1", &second).await.unwrap());
    assert_eq!(
        s.idempotency_get(&t.id, "k1").await.unwrap(),
        Some(first.clone())
    );

    // Keys are per tenant, and any length works on every engine.
    assert!(s.idempotency_get(&u.id, "k1").await.unwrap().is_none());
    assert!(s.idempotency_put(&u.id, "k1", &second).await.unwrap());
    let long_key = "k".repeat(2000);
    assert!(s.idempotency_put(&t.id, &long_key, &second).await.unwrap());
    assert_eq!(
        s.idempotency_get(&t.id, &long_key).await.unwrap(),
        Some(second.clone())
    );

    // Concurrent puts of one key: exactly one wins.
    let puts = (0..4).map(|i| {
        let s = s.clone();
        let tenant = t.id.clone();
        let r = StoredResponse {
            request_hash: format!("h{i}"),
            status: 200,
            body: vec![i],
        };
        tokio::spawn(async move { s.idempotency_put(&tenant, "race", &r).await.unwrap() })
    });
    let mut wins = 0;
    for put in puts {
        wins += usize::from(put.await.unwrap());
    }
    assert_eq!(wins, 1);

    assert!(s.idempotency_purge(0).await.unwrap() == 0);
    assert_eq!(s.idempotency_purge(i64::MAX).await.unwrap(), 4);
    assert!(s.idempotency_get(&t.id, "k1").await.unwrap().is_none());
}

async fn audit(db: TestDb) {
    let s = &db.store;
    let event = |at_ms: i64, tenant: Option<&str>, action: &str| AuditEvent {
        at_ms,
        tenant_id: tenant.map(str::to_owned),
        action: action.to_owned(),
        ..AuditEvent::default()
    };
    let full = AuditEvent {
        id: Some(12345),
        at_ms: 300,
        tenant_id: Some("t1".into()),
        key_id: Some("k1".into()),
        action: "execute".into(),
        session_id: Some("s1".into()),
        execution_id: Some("e1".into()),
        language: Some("python".into()),
        code_sha256: Some(sha256_hex(b"print(1)")),
        status: Some("ok".into()),
        http_status: Some(200),
        wall_ms: Some(12),
        cpu_ms: Some(8),
        memory_peak_bytes: Some(4096),
        client_addr: Some("127.0.0.1:5555".into()),
        detail: json!({"tier": "namespace"}),
    };
    s.record_audit(&event(100, Some("t1"), "session.create"))
        .await
        .unwrap();
    s.record_audit(&event(200, Some("t2"), "tenant.create"))
        .await
        .unwrap();
    s.record_audit(&full).await.unwrap();
    s.record_audit(&event(300, None, "key.revoke"))
        .await
        .unwrap();
    s.record_audit(&event(400, Some("t1"), "session.delete"))
        .await
        .unwrap();

    let all = s.list_audit(&AuditFilter::default()).await.unwrap();
    let order: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    // Newest first; same time: the later insert first.
    assert_eq!(
        order,
        [
            "session.delete",
            "key.revoke",
            "execute",
            "tenant.create",
            "session.create"
        ]
    );
    let stored = &all[2];
    assert_ne!(stored.id, Some(12345), "the database assigns ids");
    assert!(stored.id.unwrap() < all[1].id.unwrap());
    assert_eq!(
        AuditEvent {
            id: full.id,
            ..stored.clone()
        },
        full
    );
    assert_eq!(all[0].detail, serde_json::Value::Null);

    let filter = |tenant: Option<&str>, since, until, limit| AuditFilter {
        tenant_id: tenant.map(str::to_owned),
        since_ms: since,
        until_ms: until,
        limit,
    };
    let actions =
        |events: Vec<AuditEvent>| -> Vec<String> { events.into_iter().map(|e| e.action).collect() };
    let t1 = s
        .list_audit(&filter(Some("t1"), None, None, None))
        .await
        .unwrap();
    assert_eq!(actions(t1), ["session.delete", "execute", "session.create"]);
    let window = s
        .list_audit(&filter(None, Some(200), Some(400), None))
        .await
        .unwrap();
    assert_eq!(actions(window), ["key.revoke", "execute", "tenant.create"]);
    let both = s
        .list_audit(&filter(Some("t1"), Some(300), None, Some(1)))
        .await
        .unwrap();
    assert_eq!(actions(both), ["session.delete"]);
    assert_eq!(
        s.list_audit(&filter(None, None, None, Some(2)))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        s.list_audit(&filter(Some("nobody"), None, None, None))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn encryption_at_rest(db: TestDb) {
    const CODE_MARKER: &str = "SECRET_CODE_MARKER";
    const OUTPUT_MARKER: &str = "SECRET_OUTPUT_MARKER";
    const BODY_MARKER: &str = "SECRET_BODY_MARKER";
    let s = &db.store;
    let t = s.create_tenant("visible-tenant-name", "pro").await.unwrap();
    let code = format!("print(\"{CODE_MARKER}\")");
    s.insert_execution(&execution("e1", &t.id, "n", &code))
        .await
        .unwrap();
    let result = json!({"status": "ok", "stdout": format!("{OUTPUT_MARKER}\n"), "stderr": ""});
    let fin = ExecutionDone {
        result: result.clone(),
        ..done("ok", 5, 10)
    };
    s.finish_execution("e1", &fin).await.unwrap();
    let body = format!("{{\"stdout\":\"{OUTPUT_MARKER} {BODY_MARKER}\"}}");
    let response = StoredResponse {
        request_hash: "h".into(),
        status: 200,
        body: body.into_bytes(),
    };
    assert!(s.idempotency_put(&t.id, "idem", &response).await.unwrap());

    // Decrypted through the API.
    let got = s.get_execution(&t.id, "e1").await.unwrap().unwrap();
    assert_eq!(got.code, code);
    assert_eq!(got.result, Some(result));
    assert_eq!(got.code_sha256, sha256_hex(code.as_bytes()));
    assert_eq!(
        s.idempotency_get(&t.id, "idem").await.unwrap(),
        Some(response)
    );

    // Every column of every table.
    let dump = dump_all_columns(&db).await;
    assert!(
        dump.contains(&hex("visible-tenant-name")),
        "the dump sees clear columns"
    );
    assert!(
        dump.contains(&hex(&got.code_sha256)),
        "code_sha256 is in clear"
    );
    for marker in [CODE_MARKER, OUTPUT_MARKER, BODY_MARKER] {
        assert!(
            !dump.contains(&hex(marker)),
            "{marker} is in the database in clear"
        );
    }

    // SQLite: the raw bytes of the database files, after closing flushes the WAL.
    if db.kind == Kind::Sqlite {
        s.close().await;
        let path = db.sqlite_path.clone().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        for suffix in ["-wal", "-shm", "-journal"] {
            let side = path.with_file_name(format!("brig.db{suffix}"));
            if let Ok(more) = std::fs::read(side) {
                bytes.extend(more);
            }
        }
        let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(
            contains("visible-tenant-name"),
            "the file holds the clear columns"
        );
        for marker in [CODE_MARKER, OUTPUT_MARKER, BODY_MARKER] {
            assert!(!contains(marker), "{marker} is in the SQLite file in clear");
        }
    }
}

async fn key_rotation(db: TestDb) {
    let k1 = [1u8; 32];
    let k2 = [2u8; 32];
    let old = db.reopen(Cipher::new("k1", k1)).await;
    let t = old.create_tenant("acme", "pro").await.unwrap();
    old.insert_execution(&execution("e1", &t.id, "n", "print('under k1')"))
        .await
        .unwrap();
    let response = StoredResponse {
        request_hash: "h".into(),
        status: 200,
        body: b"body under k1".to_vec(),
    };
    assert!(old.idempotency_put(&t.id, "idem", &response).await.unwrap());
    old.close().await;

    // Rotated: k2 seals, k1 still opens.
    let rotated = db
        .reopen(Cipher::new("k2", k2).with_old_key("k1", k1))
        .await;
    let e1 = rotated.get_execution(&t.id, "e1").await.unwrap().unwrap();
    assert_eq!(e1.code, "print('under k1')");
    assert_eq!(
        rotated.idempotency_get(&t.id, "idem").await.unwrap(),
        Some(response)
    );
    rotated
        .finish_execution("e1", &done("ok", 1, 2))
        .await
        .unwrap();
    rotated
        .insert_execution(&execution("e2", &t.id, "n", "print('under k2')"))
        .await
        .unwrap();
    rotated.close().await;

    // Without k1: values sealed under k2 open, those under k1 fail naming k1.
    let only_k2 = db.reopen(Cipher::new("k2", k2)).await;
    let e2 = only_k2.get_execution(&t.id, "e2").await.unwrap().unwrap();
    assert_eq!(e2.code, "print('under k2')");
    for err in [
        only_k2.get_execution(&t.id, "e1").await.unwrap_err(),
        only_k2.idempotency_get(&t.id, "idem").await.unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Crypto(_)), "{err:?}");
        assert!(
            msg.contains("`k1`") && msg.contains("not configured"),
            "{msg}"
        );
    }
    only_k2.close().await;

    // Right id, wrong bytes: an authentication failure, also naming the key.
    let wrong = db.reopen(Cipher::new("k2", [9; 32])).await;
    let msg = wrong
        .get_execution(&t.id, "e2")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`k2`") && msg.contains("does not authenticate"),
        "{msg}"
    );
    wrong.close().await;
}

async fn compat_queue(db: TestDb) {
    let s = &db.store;
    let t = s.create_tenant("acme", "pro").await.unwrap();
    let other = s.create_tenant("other", "pro").await.unwrap();
    for id in ["q1", "q2", "wait"] {
        s.insert_execution(&execution(id, &t.id, "node-a", "print(1)"))
            .await
            .unwrap();
    }
    let request = json!({"judge0": {"source_code": "cHJpbnQoMSk=", "stdin": "c2VjcmV0"}});
    s.set_compat_request("q1", &request, true).await.unwrap();
    s.set_compat_request("q2", &request, true).await.unwrap();
    s.set_compat_request("wait", &request, false).await.unwrap();
    assert_eq!(s.count_queued().await.unwrap(), 2);
    assert_eq!(
        s.compat_request(&t.id, "q1").await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(s.compat_request(&other.id, "q1").await.unwrap(), None);
    // Sealed at rest: the stdin's base64 is not in the database.
    let dump = dump_all_columns(&db).await;
    assert!(!dump.contains(&hex("c2VjcmV0")), "request stored in clear");

    // A restart keeps the persisted queue and fails what waited in memory.
    let r = s.recover_node("node-a", 50).await.unwrap();
    assert_eq!(r.executions_failed, 1);
    assert_eq!(
        s.get_execution(&t.id, "wait")
            .await
            .unwrap()
            .unwrap()
            .status,
        "internal_error"
    );

    // Claims: oldest first, each row once.
    let busy = [t.id.clone()];
    assert!(s.claim_queued("node-b", 60, &busy).await.unwrap().is_none());
    let first = s.claim_queued("node-b", 60, &[]).await.unwrap().unwrap();
    let second = s.claim_queued("node-b", 61, &[]).await.unwrap().unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(first.tenant_id, t.id);
    assert_eq!(first.request, request);
    assert!(s.claim_queued("node-b", 62, &[]).await.unwrap().is_none());
    let running = s.get_execution(&t.id, &first.id).await.unwrap().unwrap();
    assert_eq!(
        (running.status.as_str(), running.node_id.as_str()),
        ("running", "node-b")
    );
    // Back in the queue, and claimed again.
    s.requeue(&first.id).await.unwrap();
    assert_eq!(s.count_queued().await.unwrap(), 1);
    let again = s.claim_queued("node-b", 63, &[]).await.unwrap().unwrap();
    assert_eq!(again.id, first.id);
    // A claimed row that its node leaves running fails on that node's recovery.
    let r = s.recover_node("node-b", 70).await.unwrap();
    assert_eq!(r.executions_failed, 2);

    // Only finished rows are deleted, and only the tenant's own.
    s.insert_execution(&execution("live", &t.id, "node-a", "x"))
        .await
        .unwrap();
    assert!(!s.delete_execution(&t.id, "live").await.unwrap());
    assert!(!s.delete_execution(&other.id, "q1").await.unwrap());
    assert!(s.delete_execution(&t.id, "q1").await.unwrap());
    assert!(s.get_execution(&t.id, "q1").await.unwrap().is_none());
}

async fn nodes(db: TestDb) {
    let s = &db.store;
    assert!(s.get_node("a").await.unwrap().is_none());
    s.heartbeat_node("a", "http://10.0.0.1:7070", 10)
        .await
        .unwrap();
    s.heartbeat_node("b", "http://10.0.0.2:7070", 11)
        .await
        .unwrap();
    // A heartbeat updates the row in place (a restarted node may move).
    s.heartbeat_node("a", "http://10.0.0.9:7070", 20)
        .await
        .unwrap();
    let a = s.get_node("a").await.unwrap().unwrap();
    assert_eq!(
        (a.url.as_str(), a.last_seen_ms),
        ("http://10.0.0.9:7070", 20)
    );
    let all: Vec<String> = s
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(all, ["a", "b"]);
}
