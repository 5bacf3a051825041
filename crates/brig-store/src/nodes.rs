//! The nodes sharing one database: each `brig serve` writes its id, the URL it answers on and a
//! heartbeat; a node that gets a request for a session another node holds looks that node up
//! here and forwards the request (sessions live in one node's memory; the database is the
//! directory).

use crate::Store;
use crate::backend::{Backend, on_pool};
use crate::error::{StoreError, db};
use crate::records::NodeRecord;
use crate::text::Text;

#[derive(sqlx::FromRow)]
struct NodeRow {
    id: Text,
    url: Text,
    last_seen_ms: i64,
}

impl Store {
    /// Records that node `id` answers at `url`, alive at `at_ms` (insert or update).
    pub async fn heartbeat_node(&self, id: &str, url: &str, at_ms: i64) -> Result<(), StoreError> {
        let upsert = match &self.inner.backend {
            Backend::MySql(_) => {
                "INSERT INTO nodes (id, url, last_seen_ms) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE url = VALUES(url), last_seen_ms = VALUES(last_seen_ms)"
            }
            Backend::Sqlite(_) | Backend::Postgres(_) => {
                "INSERT INTO nodes (id, url, last_seen_ms) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, \
                 last_seen_ms = excluded.last_seen_ms"
            }
        };
        let sql = self.sql(upsert);
        on_pool!(self, pool => sqlx::query(&sql).bind(id).bind(url).bind(at_ms).execute(pool).await.map(|_| ()))
            .map_err(db("record a node's heartbeat"))?;
        Ok(())
    }

    /// Node `id`, if it ever said where it answers.
    pub async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let sql = self.sql("SELECT id, url, last_seen_ms FROM nodes WHERE id = ?");
        let row: Option<NodeRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
                .map_err(db("read a node"))?;
        Ok(row.map(|r| NodeRecord {
            id: r.id.into(),
            url: r.url.into(),
            last_seen_ms: r.last_seen_ms,
        }))
    }

    /// Every node, by id.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let sql = "SELECT id, url, last_seen_ms FROM nodes ORDER BY id";
        let rows: Vec<NodeRow> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)
            .map_err(db("list nodes"))?;
        Ok(rows
            .into_iter()
            .map(|r| NodeRecord {
                id: r.id.into(),
                url: r.url.into(),
                last_seen_ms: r.last_seen_ms,
            })
            .collect())
    }
}
