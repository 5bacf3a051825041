//! Tenants and their API keys.
//!
//! A key's secret (`brig_` + 40 URL-safe characters, 240 random bits) is shown once and never
//! stored: the table keeps its SHA-256 and a display prefix. A fast unsalted hash is enough for
//! secrets this random (no dictionary to try), and it lets `authenticate` find the key by an
//! indexed equality lookup.

use crate::backend::on_pool;
use crate::error::{StoreError, db, is_unique_violation};
use crate::records::{ApiKey, Tenant};
use crate::text::Text;
use crate::{Store, new_id, now_ms, sha256_hex};
use base64::Engine as _;

const TENANT_COLUMNS: &str = "id, name, plan, anonymous_compat, created_at_ms";
const KEY_COLUMNS: &str =
    "id, tenant_id, prefix, admin, created_at_ms, revoked_at_ms, last_used_at_ms";
/// Characters of the secret kept as its display prefix (`brig_` and 7 more).
const PREFIX_LEN: usize = 12;
/// `last_used_at_ms` is rewritten at most this often per key, so authenticating is a read.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: Text,
    name: Text,
    plan: Text,
    anonymous_compat: bool,
    created_at_ms: i64,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Tenant {
        Tenant {
            id: row.id.into(),
            name: row.name.into(),
            plan: row.plan.into(),
            anonymous_compat: row.anonymous_compat,
            created_at_ms: row.created_at_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Text,
    tenant_id: Text,
    prefix: Text,
    admin: bool,
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
}

impl From<KeyRow> for ApiKey {
    fn from(row: KeyRow) -> ApiKey {
        ApiKey {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            prefix: row.prefix.into(),
            admin: row.admin,
            created_at_ms: row.created_at_ms,
            revoked_at_ms: row.revoked_at_ms,
            last_used_at_ms: row.last_used_at_ms,
        }
    }
}

/// A key joined with its tenant, as `authenticate` reads it.
#[derive(sqlx::FromRow)]
struct KeyAndTenant {
    #[sqlx(flatten)]
    key: KeyRow,
    t_name: Text,
    t_plan: Text,
    t_anonymous_compat: bool,
    t_created_at_ms: i64,
}

impl Store {
    /// Creates a tenant. A name already taken is a [`StoreError::Conflict`].
    pub async fn create_tenant(&self, name: &str, plan: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: new_id(),
            name: name.to_owned(),
            plan: plan.to_owned(),
            anonymous_compat: false,
            created_at_ms: now_ms(),
        };
        let sql = self.sql(&format!(
            "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        ));
        let inserted = on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(&tenant.id)
                .bind(&tenant.name)
                .bind(&tenant.plan)
                .bind(tenant.anonymous_compat)
                .bind(tenant.created_at_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match inserted {
            Ok(_) => Ok(tenant),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "a tenant named `{name}` already exists"
            ))),
            Err(e) => Err(db("insert tenant")(e)),
        }
    }

    /// Every tenant, oldest first.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at_ms, id");
        let rows: Vec<TenantRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)
                .map_err(db("list tenants"))?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }

    /// The tenant with this id.
    pub async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"
        ));
        let row: Option<TenantRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
                .map_err(db("read tenant"))?;
        Ok(row.map(Tenant::from))
    }

    /// The tenant with this name.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE name = ?"
        ));
        let row: Option<TenantRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(name).fetch_optional(pool).await)
                .map_err(db("read tenant by name"))?;
        Ok(row.map(Tenant::from))
    }

    /// Sets whether the compatibility routes are served anonymously as this tenant. False if
    /// there is no such tenant.
    pub async fn set_tenant_anonymous(
        &self,
        id: &str,
        anonymous: bool,
    ) -> Result<bool, StoreError> {
        let sql = self.sql("UPDATE tenants SET anonymous_compat = ? WHERE id = ?");
        let done = on_pool!(self, pool => {
            sqlx::query(&sql).bind(anonymous).bind(id).execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(db("update tenant"))?;
        if done > 0 {
            return Ok(true);
        }
        // MySQL counts changed rows, not matched ones: setting the same value reports 0.
        Ok(self.get_tenant(id).await?.is_some())
    }

    /// Creates a key for `tenant_id` and returns it with its secret, which is not stored and
    /// cannot be shown again.
    pub async fn create_key(
        &self,
        tenant_id: &str,
        admin: bool,
    ) -> Result<(ApiKey, String), StoreError> {
        let mut random = [0u8; 30];
        crate::crypto::fill_random(&mut random);
        let secret = format!(
            "brig_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
        );
        let key = self.insert_key(tenant_id, admin, &secret).await?;
        Ok((key, secret))
    }

    /// The key whose secret is `secret` (for `BRIG_ADMIN_KEY`): inserted for `tenant_id` if
    /// its hash is not stored yet, else returned as stored (possibly revoked, possibly of
    /// another tenant: the caller decides what that means).
    pub async fn ensure_key(
        &self,
        tenant_id: &str,
        admin: bool,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        if let Some(key) = self.key_by_hash(&sha256_hex(secret.as_bytes())).await? {
            return Ok(key);
        }
        match self.insert_key(tenant_id, admin, secret).await {
            Err(StoreError::Conflict(_)) => {
                // Another node inserted it between our read and our write.
                let hash = sha256_hex(secret.as_bytes());
                self.key_by_hash(&hash).await?.ok_or_else(|| {
                    StoreError::Conflict("the key was inserted and removed concurrently".into())
                })
            }
            other => other,
        }
    }

    /// The key and tenant a secret belongs to; `None` if it is unknown or revoked. Records
    /// the use (at most once a minute per key, so this is usually a single read).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<(ApiKey, Tenant)>, StoreError> {
        let sql = self.sql(
            "SELECT k.id, k.tenant_id, k.prefix, k.admin, k.created_at_ms, k.revoked_at_ms, \
             k.last_used_at_ms, t.name AS t_name, t.plan AS t_plan, \
             t.anonymous_compat AS t_anonymous_compat, t.created_at_ms AS t_created_at_ms \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.key_hash = ? AND k.revoked_at_ms IS NULL",
        );
        let hash = sha256_hex(secret.as_bytes());
        let row: Option<KeyAndTenant> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(&hash).fetch_optional(pool).await
        })
        .map_err(db("authenticate key"))?;
        let Some(row) = row else { return Ok(None) };
        let mut key = ApiKey::from(row.key);
        let now = now_ms();
        if key
            .last_used_at_ms
            .is_none_or(|t| now - t >= LAST_USED_GRANULARITY_MS)
        {
            let sql = self.sql("UPDATE api_keys SET last_used_at_ms = ? WHERE id = ?");
            on_pool!(self, pool => sqlx::query(&sql).bind(now).bind(&key.id).execute(pool).await.map(|r| r.rows_affected()))
                .map_err(db("record key use"))?;
            key.last_used_at_ms = Some(now);
        }
        let tenant = Tenant {
            id: key.tenant_id.clone(),
            name: row.t_name.into(),
            plan: row.t_plan.into(),
            anonymous_compat: row.t_anonymous_compat,
            created_at_ms: row.t_created_at_ms,
        };
        Ok(Some((key, tenant)))
    }

    /// Keys, oldest first: one tenant's, or every tenant's.
    pub async fn list_keys(&self, tenant_id: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let filter = if tenant_id.is_some() {
            "WHERE tenant_id = ?"
        } else {
            ""
        };
        let sql = self.sql(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys {filter} ORDER BY created_at_ms, id"
        ));
        let rows: Vec<KeyRow> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            if let Some(tenant_id) = tenant_id {
                query = query.bind(tenant_id);
            }
            query.fetch_all(pool).await
        })
        .map_err(db("list keys"))?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes a key. False if there is no such key or it was already revoked.
    pub async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let sql = self
            .sql("UPDATE api_keys SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL");
        let done = on_pool!(self, pool => {
            sqlx::query(&sql).bind(now_ms()).bind(id).execute(pool).await
                .map(|r| r.rows_affected())
        })
        .map_err(db("revoke key"))?;
        Ok(done > 0)
    }

    /// How many admin keys are not revoked.
    pub async fn count_admin_keys(&self) -> Result<u64, StoreError> {
        let sql =
            self.sql("SELECT COUNT(*) FROM api_keys WHERE admin = ? AND revoked_at_ms IS NULL");
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(true).fetch_one(pool).await
        })
        .map_err(db("count admin keys"))?;
        Ok(n.unsigned_abs())
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"
        ));
        let row: Option<KeyRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(hash).fetch_optional(pool).await)
                .map_err(db("read key"))?;
        Ok(row.map(ApiKey::from))
    }

    async fn insert_key(
        &self,
        tenant_id: &str,
        admin: bool,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            prefix: secret.chars().take(PREFIX_LEN).collect(),
            admin,
            created_at_ms: now_ms(),
            revoked_at_ms: None,
            last_used_at_ms: None,
        };
        let sql = self.sql(
            "INSERT INTO api_keys (id, tenant_id, key_hash, prefix, admin, created_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        let hash = sha256_hex(secret.as_bytes());
        let inserted = on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(&key.id)
                .bind(&key.tenant_id)
                .bind(&hash)
                .bind(&key.prefix)
                .bind(key.admin)
                .bind(key.created_at_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match inserted {
            Ok(_) => Ok(key),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
                "this API key secret is already stored".into(),
            )),
            Err(e) => Err(db("insert key")(e)),
        }
    }
}
