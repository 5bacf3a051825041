//! A real `brig serve` on an ephemeral port, for the HTTP tests: on SQLite in a temp dir, or
//! on a fresh database of the local MariaDB or PostgreSQL (created and dropped per server).

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::common::{skip, strict};

/// The admin key every test server starts with.
pub const ADMIN_KEY: &str = "brig_test_admin_key_0123456789abcdef";

/// Which database a server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite in the data dir.
    Sqlite,
    /// The local MariaDB.
    MySql,
    /// The local PostgreSQL.
    Postgres,
}

fn mysql_base() -> String {
    std::env::var("BRIG_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

fn postgres_base() -> String {
    std::env::var("BRIG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs SQL through the database's own client; false if the server is not there.
fn admin_sql(db: Db, sql: &str) -> bool {
    let out = match db {
        Db::Sqlite => return true,
        Db::MySql => Command::new("mysql")
            .args(["-uroot", "-h127.0.0.1", "-P3306", "-e", sql])
            .output(),
        Db::Postgres => Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output(),
    };
    match out {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!("{db:?}: {}", String::from_utf8_lossy(&out.stderr));
            false
        }
        Err(e) => {
            eprintln!("{db:?}: {e}");
            false
        }
    }
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: tempfile::TempDir,
    pub db: Db,
    pub database_url: Option<String>,
    db_name: Option<String>,
    pub http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = &self.db_name {
            admin_sql(self.db, &format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}

/// Settings of a test server beyond the defaults.
#[derive(Default, Clone)]
pub struct Options {
    /// Extra TOML for the config file.
    pub toml: String,
    /// Extra environment of the server process.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on `db`; None (after a loud skip) if that database is not reachable.
    pub fn start(db: Db, options: Options) -> Option<Server> {
        let data = tempfile::tempdir().unwrap();
        let (database_url, db_name) = match db {
            Db::Sqlite => (None, None),
            Db::MySql | Db::Postgres => {
                let name = format!("brig_srv_{}", &uuid_hex()[..12]);
                if !admin_sql(db, &format!("CREATE DATABASE {name}")) {
                    skip(&format!("{db:?} is not reachable"));
                    return None;
                }
                let base = if db == Db::MySql {
                    mysql_base()
                } else {
                    postgres_base()
                };
                (Some(format!("{base}/{name}")), Some(name))
            }
        };
        let mut server = Self::spawn_on(data, db, database_url, db_name, &options);
        server.wait_ready();
        Some(server)
    }

    fn spawn_on(
        data: tempfile::TempDir,
        db: Db,
        database_url: Option<String>,
        db_name: Option<String>,
        options: &Options,
    ) -> Server {
        let config = data.path().join("brig.toml");
        if !config.exists() {
            std::fs::write(
                &config,
                format!("pool_target_size = 1\npool_min_size = 0\n{}", options.toml),
            )
            .unwrap();
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_brig"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .env("BRIG_ADMIN_KEY", ADMIN_KEY)
            .env("BRIG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command.envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(url) = &database_url {
            command.arg("--database").arg(url);
        }
        let child = command.spawn().expect("spawn brig serve");
        Server {
            child,
            url: String::new(),
            data,
            db,
            database_url,
            db_name,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    fn wait_ready(&mut self) {
        let stdout = self.child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            if let Some(addr) = line.strip_prefix("listening on ") {
                self.url = addr.trim().to_string();
                break;
            }
        }
        assert!(!self.url.is_empty(), "brig serve exited before listening");
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
    }

    /// A second node on this server's database (and encryption key): its own data dir and
    /// node id. The database stays this server's to drop.
    pub fn second_node(&self) -> Server {
        let key = std::fs::read_to_string(self.data.path().join("data/encryption.key")).unwrap();
        let url = self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data.path().join("data/brig.db").display()
            )
        });
        let options = Options {
            env: vec![("BRIG_ENCRYPTION_KEY".into(), key.trim().to_string())],
            ..Options::default()
        };
        let mut node = Self::spawn_on(
            tempfile::tempdir().unwrap(),
            self.db,
            Some(url),
            None,
            &options,
        );
        node.wait_ready();
        node
    }

    /// Kills the server with SIGKILL and starts a new one on the same data and database.
    pub fn kill_and_restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.restart()
    }

    /// Sends SIGTERM and waits for the server to exit (a graceful shutdown); its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM {}", self.child.id());
        self.child.wait().expect("wait for brig serve")
    }

    /// Starts a new server on the same data and database, once this one has exited (after
    /// [`Server::terminate`]; [`Server::kill_and_restart`] kills it first).
    pub fn restart(mut self) -> Server {
        assert!(
            self.child.try_wait().expect("try_wait").is_some(),
            "restart: the server is still running"
        );
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        let db_name = self.db_name.take();
        let url = self.database_url.clone();
        let mut next = Self::spawn_on(data, self.db, url, db_name, &Options::default());
        next.wait_ready();
        next
    }

    /// A request with `key`.
    pub fn req(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    /// JSON request → (status, body as JSON or `null`).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.req(method, path, key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a tenant on `plan` and returns (tenant id, key).
    pub async fn tenant(&self, name: &str, plan: &str) -> (String, String) {
        let (status, tenant) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/tenants",
                ADMIN_KEY,
                Some(json!({"name": name, "plan": plan})),
            )
            .await;
        assert_eq!(status, 201, "{tenant}");
        let id = tenant["id"].as_str().unwrap().to_string();
        let (status, key) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/tenants/{id}/keys"),
                ADMIN_KEY,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        (id, key["key"].as_str().unwrap().to_string())
    }
}

fn uuid_hex() -> String {
    let mut bytes = [0u8; 16];
    let f = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    for (i, b) in f
        .iter()
        .filter(|b| b.is_ascii_hexdigit())
        .take(16)
        .enumerate()
    {
        bytes[i] = *b;
    }
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The databases to run the HTTP tests on: SQLite always; MariaDB and PostgreSQL when
/// `BRIG_TEST_ALL_DBS` or `CI` is set (CI has both servers).
pub fn databases() -> Vec<Db> {
    if strict() || std::env::var_os("BRIG_TEST_ALL_DBS").is_some() {
        vec![Db::Sqlite, Db::MySql, Db::Postgres]
    } else {
        eprintln!("SKIP: MariaDB and PostgreSQL runs (set BRIG_TEST_ALL_DBS=1 or CI)");
        vec![Db::Sqlite]
    }
}
