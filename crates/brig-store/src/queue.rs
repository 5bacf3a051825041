//! The compatibility APIs' persisted queue: an execution row may carry the compatibility
//! request it was made from (sealed, like its code: it holds the source and stdin), and a
//! `from_queue` row waits, `queued`, until a node's worker claims it.
//!
//! Claims are the database's business, so several nodes sharing MariaDB or PostgreSQL never
//! run one row twice: `SELECT ... FOR UPDATE SKIP LOCKED` then `UPDATE` in one transaction (the
//! pattern of Que, GoodJob and Oban); on SQLite, which has one writer, a conditional `UPDATE
//! ... WHERE status = 'queued'` is the claim. A claimed row is `running` on the claiming node,
//! so `recover_node` fails it if that node dies, while rows still queued survive restarts.

use crate::Store;
use crate::backend::{Backend, on_pool};
use crate::error::{StoreError, db};
use crate::text::Text;

/// A queued row a worker has claimed: it is now `running` on the claiming node.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRun {
    /// The execution's id.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The compatibility request it was made from (decrypted).
    pub request: serde_json::Value,
}

fn request_context(id: &str) -> String {
    format!("execution.request/{id}")
}

/// The oldest queued row, leaving out the tenants in `{skip}` (`AND tenant_id NOT IN (..)`).
const NEXT_QUEUED: &str = "SELECT id FROM executions WHERE status = 'queued' AND from_queue = ? \
     {skip} ORDER BY created_at_ms, id LIMIT 1";

/// [`NEXT_QUEUED`] for `skip.len()` tenants to leave out.
fn next_queued(skip: usize) -> String {
    let filter = if skip == 0 {
        String::new()
    } else {
        format!("AND tenant_id NOT IN ({})", vec!["?"; skip].join(", "))
    };
    NEXT_QUEUED.replace("{skip}", &filter)
}

const CLAIM: &str = "UPDATE executions SET status = 'running', node_id = ?, started_at_ms = ? \
     WHERE id = ? AND status = 'queued'";

/// `SELECT ... FOR UPDATE SKIP LOCKED` and the claim in one transaction (MySQL, PostgreSQL).
macro_rules! claim_locked {
    ($store:expr, $pool:expr, $node:expr, $at:expr, $skip:expr) => {
        async {
            let select = $store.sql(&format!(
                "{} FOR UPDATE SKIP LOCKED",
                next_queued($skip.len())
            ));
            let claim = $store.sql(CLAIM);
            let mut tx = $pool.begin().await?;
            let mut query = sqlx::query_as(&select).bind(true);
            for tenant in $skip {
                query = query.bind(tenant);
            }
            let row: Option<(Text,)> = query.fetch_optional(&mut *tx).await?;
            if let Some((Text(id),)) = &row {
                sqlx::query(&claim)
                    .bind($node)
                    .bind($at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row.map(|(Text(id),)| id))
        }
        .await
    };
}

impl Store {
    /// Attaches the compatibility request an execution was made from (sealed to its row);
    /// `from_queue` puts a `queued` row in the queue for a worker to claim.
    pub async fn set_compat_request(
        &self,
        id: &str,
        request: &serde_json::Value,
        from_queue: bool,
    ) -> Result<(), StoreError> {
        let sealed = self
            .cipher()
            .encrypt(request.to_string().as_bytes(), &request_context(id))?;
        let sql =
            self.sql("UPDATE executions SET compat_request_enc = ?, from_queue = ? WHERE id = ?");
        on_pool!(self, pool => {
            sqlx::query(&sql).bind(&sealed).bind(from_queue).bind(id).execute(pool).await
                .map(|r| r.rows_affected())
        })
        .map_err(db("attach compat request"))?;
        Ok(())
    }

    /// The compatibility request of one of the tenant's executions; `None` when there is no
    /// such execution or it was not made through a compatibility API.
    pub async fn compat_request(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let sql =
            self.sql("SELECT compat_request_enc FROM executions WHERE tenant_id = ? AND id = ?");
        let row: Option<(Option<Vec<u8>>,)> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(pool).await
        })
        .map_err(db("read compat request"))?;
        let Some((Some(sealed),)) = row else {
            return Ok(None);
        };
        self.open_request(id, &sealed).map(Some)
    }

    fn open_request(&self, id: &str, sealed: &[u8]) -> Result<serde_json::Value, StoreError> {
        let json = self.cipher().decrypt(sealed, &request_context(id))?;
        serde_json::from_slice(&json).map_err(|e| StoreError::corrupt("compat request", e))
    }

    /// Rows waiting in the queue, on every node.
    pub async fn count_queued(&self) -> Result<u64, StoreError> {
        let sql =
            self.sql("SELECT COUNT(*) FROM executions WHERE status = 'queued' AND from_queue = ?");
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(true).fetch_one(pool).await
        })
        .map_err(db("count queued executions"))?;
        Ok(n.unsigned_abs())
    }

    /// Claims the oldest queued row for node `node_id`, leaving out the tenants in `skip`
    /// (those at their concurrency cap): it becomes `running` there. `None` when there is none
    /// (or every row is being claimed by another node right now).
    pub async fn claim_queued(
        &self,
        node_id: &str,
        at_ms: i64,
        skip: &[String],
    ) -> Result<Option<QueuedRun>, StoreError> {
        let claimed: Option<String> = match &self.inner.backend {
            Backend::Sqlite(pool) => {
                // One writer: a conditional UPDATE is the claim; losing the race to another
                // connection of this process just means trying the next row.
                let select = self.sql(&next_queued(skip.len()));
                let claim = self.sql(CLAIM);
                let mut won = None;
                for _ in 0..8 {
                    let mut query = sqlx::query_as(&select).bind(true);
                    for tenant in skip {
                        query = query.bind(tenant);
                    }
                    let row: Option<(Text,)> = query
                        .fetch_optional(pool)
                        .await
                        .map_err(db("find a queued execution"))?;
                    let Some((Text(id),)) = row else { break };
                    let done = sqlx::query(&claim)
                        .bind(node_id)
                        .bind(at_ms)
                        .bind(&id)
                        .execute(pool)
                        .await
                        .map_err(db("claim a queued execution"))?;
                    if done.rows_affected() == 1 {
                        won = Some(id);
                        break;
                    }
                }
                won
            }
            Backend::MySql(pool) => claim_locked!(self, pool, node_id, at_ms, skip)
                .map_err(db("claim a queued execution"))?,
            Backend::Postgres(pool) => claim_locked!(self, pool, node_id, at_ms, skip)
                .map_err(db("claim a queued execution"))?,
        };
        let Some(id) = claimed else { return Ok(None) };
        let sql = self.sql("SELECT tenant_id, compat_request_enc FROM executions WHERE id = ?");
        let (Text(tenant_id), sealed): (Text, Option<Vec<u8>>) = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(&id).fetch_one(pool).await
        })
        .map_err(db("read a claimed execution"))?;
        let sealed = sealed.ok_or_else(|| {
            StoreError::corrupt("compat request", "a queued row without its request")
        })?;
        let request = self.open_request(&id, &sealed)?;
        Ok(Some(QueuedRun {
            id,
            tenant_id,
            request,
        }))
    }

    /// Puts a claimed row back in the queue (its node is shutting down before running it).
    pub async fn requeue(&self, id: &str) -> Result<(), StoreError> {
        let sql = self.sql(
            "UPDATE executions SET status = 'queued', started_at_ms = NULL \
             WHERE id = ? AND status = 'running' AND from_queue = ?",
        );
        on_pool!(self, pool => {
            sqlx::query(&sql).bind(id).bind(true).execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(db("requeue an execution"))?;
        Ok(())
    }

    /// Deletes one of the tenant's finished executions; false if there is none (unknown, or
    /// still queued or running).
    pub async fn delete_execution(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let sql = self.sql(
            "DELETE FROM executions WHERE tenant_id = ? AND id = ? \
             AND status NOT IN ('queued', 'running')",
        );
        let n = on_pool!(self, pool => {
            sqlx::query(&sql).bind(tenant_id).bind(id).execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(db("delete an execution"))?;
        Ok(n > 0)
    }
}
