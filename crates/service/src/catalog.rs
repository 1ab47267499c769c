//! Sources (where data comes from) and models (named queries over a source): add with the
//! checks that need the warehouse (tables found, the server reachable, the SQL planned and its
//! primary key present), list, show, preview. The warehouse work itself is the runner's
//! (`wharf_runner::models`), which runs share.

use crate::{Caller, Role, Service, ServiceError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use wharf_domain::{ColumnInfo, Name, PostgresSource, SourceConfig};
use wharf_runner::Preview;
use wharf_store::ModelRecord;

/// A source as `source list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub name: String,
    /// `local` or `postgres`.
    pub kind: &'static str,
    /// The folder, or the PostgreSQL server with the password masked.
    #[schema(value_type = Object)]
    pub config: SourceConfig,
}

/// A local source just added, with the tables found in its folder.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LocalSourceAdded {
    pub name: String,
    /// Always `local`.
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub tables: Vec<TableView>,
}

/// A table of a local source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TableView {
    pub name: String,
    pub format: &'static str,
    #[schema(value_type = String)]
    pub path: PathBuf,
}

/// A PostgreSQL source just added, with the version of the server wharf reached.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PostgresSourceAdded {
    pub name: String,
    /// Always `postgres`.
    pub kind: &'static str,
    #[schema(value_type = Object)]
    pub config: SourceConfig,
    pub server_version: String,
}

/// A model as every interface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelView {
    pub name: String,
    pub source: String,
    pub sql: String,
    pub primary_key: String,
    #[schema(value_type = Vec<Object>)]
    pub columns: Vec<ColumnInfo>,
    pub created_at: String,
}

impl From<&ModelRecord> for ModelView {
    fn from(m: &ModelRecord) -> Self {
        Self {
            name: m.name.clone(),
            source: m.source.name.clone(),
            sql: m.sql.clone(),
            primary_key: m.primary_key.clone(),
            columns: m.columns.clone(),
            created_at: m.created_at.clone(),
        }
    }
}

/// What a new model is.
#[derive(Debug, Clone)]
pub struct NewModelInput<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub sql: &'a str,
    pub primary_key: &'a str,
}

impl Service {
    /// Refuses a local source outside the operator's folders: a shared server must not become
    /// a way to read its own disk. `path` is already canonical (no `..`, no symbolic link).
    fn require_allowed_folder(&self, path: &Path) -> Result<(), ServiceError> {
        let Some(roots) = &self.settings.local_source_roots else {
            return Ok(());
        };
        let allowed = roots
            .iter()
            .filter_map(|root| std::fs::canonicalize(root).ok())
            .any(|root| path.starts_with(root));
        if allowed {
            return Ok(());
        }
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        Err(ServiceError {
            field: Some("path".into()),
            ..ServiceError::new(
                crate::ErrorKind::Forbidden,
                "source.outside_roots",
                format!(
                    "path {:?} is outside the folders local sources may use on this server ({}); the operator sets them with WHARF_LOCAL_SOURCE_ROOTS",
                    path.display().to_string(),
                    roots.join(", ")
                ),
            )
        })
    }

    /// Adds a local source: a folder whose files are tables, found now.
    pub async fn add_local_source(
        &self,
        caller: &Caller,
        name: &str,
        path: &Path,
    ) -> Result<LocalSourceAdded, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "create", "source", &object, async {
            caller.require(Role::Editor)?;
            let name = Name::parse("name", name)?;
            let path = std::fs::canonicalize(path).map_err(|e| {
                ServiceError::bad_input(
                    "path",
                    format!(
                        "folder {:?} cannot be read: {e}",
                        path.display().to_string()
                    ),
                )
            })?;
            self.require_allowed_folder(&path)?;
            let (record, tables) = wharf_runner::models::add_local_source(
                &self.store,
                &caller.workspace,
                &name,
                &path,
                &self.settings.runner(),
            )
            .await?;
            Ok(LocalSourceAdded {
                name: record.name,
                kind: "local",
                path,
                tables: tables
                    .iter()
                    .map(|t| TableView {
                        name: t.name.clone(),
                        format: t.format,
                        path: t.path.clone(),
                    })
                    .collect(),
            })
        })
        .await
    }

    /// Adds a PostgreSQL source once wharf has connected to it.
    pub async fn add_postgres_source(
        &self,
        caller: &Caller,
        name: &str,
        source: PostgresSource,
    ) -> Result<PostgresSourceAdded, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "create", "source", &object, async {
            caller.require(Role::Editor)?;
            let name = Name::parse("name", name)?;
            let (record, server_version) = wharf_runner::models::add_postgres_source(
                &self.store,
                &caller.workspace,
                &name,
                source,
                &self.settings.runner(),
            )
            .await?;
            Ok(PostgresSourceAdded {
                name: record.name,
                kind: "postgres",
                config: record.config,
                server_version,
            })
        })
        .await
    }

    /// Adds a PostgreSQL source from its URL (which may hold a password: it is sealed, and
    /// shown only masked) and an `sslmode` that wins over the URL's own.
    pub async fn add_postgres_source_url(
        &self,
        caller: &Caller,
        name: &str,
        url: &str,
        sslmode: Option<&str>,
    ) -> Result<PostgresSourceAdded, ServiceError> {
        let parsed = sslmode
            .map(wharf_domain::SslMode::parse)
            .transpose()
            .and_then(|sslmode| PostgresSource::parse(url, sslmode, None));
        match parsed {
            Ok(source) => self.add_postgres_source(caller, name, source).await,
            // Refused before it reaches the log of changes: record the attempt too.
            Err(e) => {
                let object = name.to_string();
                self.audited(caller, "create", "source", &object, async {
                    caller.require(Role::Editor)?;
                    Err(e.into())
                })
                .await
            }
        }
    }

    pub async fn sources(&self, caller: &Caller) -> Result<Vec<SourceView>, ServiceError> {
        let sources = self.store.list_sources(&caller.workspace).await?;
        Ok(sources
            .into_iter()
            .map(|s| SourceView {
                name: s.name,
                kind: s.config.kind(),
                config: s.config,
            })
            .collect())
    }

    pub async fn source(&self, caller: &Caller, name: &str) -> Result<SourceView, ServiceError> {
        let s = self.store.source(&caller.workspace, name).await?;
        Ok(SourceView {
            name: s.name,
            kind: s.config.kind(),
            config: s.config,
        })
    }

    /// Removes a source no model reads.
    pub async fn remove_source(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        let object = name.to_string();
        self.audited(caller, "remove", "source", &object, async {
            caller.require(Role::Editor)?;
            Ok(self.store.remove_source(&caller.workspace, name).await?)
        })
        .await
    }

    /// Removes a model no segment or sync uses.
    pub async fn remove_model(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        let object = name.to_string();
        self.audited(caller, "remove", "model", &object, async {
            caller.require(Role::Editor)?;
            Ok(self.store.remove_model(&caller.workspace, name).await?)
        })
        .await
    }

    /// Adds a model once its SQL plans on its source and returns its primary key column.
    pub async fn add_model(
        &self,
        caller: &Caller,
        input: NewModelInput<'_>,
    ) -> Result<ModelView, ServiceError> {
        let object = input.name.to_string();
        self.audited(caller, "create", "model", &object, async {
            caller.require(Role::Editor)?;
            let name = Name::parse("name", input.name)?;
            let record = wharf_runner::models::add_model(
                &self.store,
                &caller.workspace,
                &name,
                input.source,
                input.sql,
                input.primary_key,
                &self.settings.runner(),
            )
            .await
            .map_err(|e| {
                let mut e = ServiceError::from(e);
                if e.field.is_none() {
                    e.field = match e.code.as_str() {
                        "model.primary_key" => Some("primary_key".into()),
                        "query.sql" | "model.not_a_query" | "model.too_deep"
                        | "query.too_complex" => Some("sql".into()),
                        "source.not_found" => Some("source".into()),
                        _ => None,
                    };
                }
                e
            })?;
            Ok(ModelView::from(&record))
        })
        .await
    }

    pub async fn models(&self, caller: &Caller) -> Result<Vec<ModelView>, ServiceError> {
        let models = self.store.list_models(&caller.workspace).await?;
        Ok(models.iter().map(ModelView::from).collect())
    }

    pub async fn model(&self, caller: &Caller, name: &str) -> Result<ModelView, ServiceError> {
        Ok(ModelView::from(
            &self.store.model(&caller.workspace, name).await?,
        ))
    }

    /// The model's columns and its first `limit` rows.
    pub async fn preview_model(
        &self,
        caller: &Caller,
        name: &str,
        limit: usize,
    ) -> Result<Preview, ServiceError> {
        Ok(wharf_runner::models::preview_model(
            &self.store,
            &caller.workspace,
            name,
            limit,
            &self.settings.runner(),
        )
        .await?)
    }

    /// The columns and first `limit` rows of `sql` on `source`, checked as a model's SQL is:
    /// the model editor's preview, before the model is saved. It runs the SQL, so it takes
    /// the role that writes models.
    pub async fn preview_sql(
        &self,
        caller: &Caller,
        source: &str,
        sql: &str,
        limit: usize,
    ) -> Result<Preview, ServiceError> {
        caller.require(Role::Editor)?;
        wharf_runner::models::preview_sql(
            &self.store,
            &caller.workspace,
            source,
            sql,
            limit,
            &self.settings.runner(),
        )
        .await
        .map_err(|e| {
            let mut e = ServiceError::from(e);
            if e.field.is_none() {
                e.field = match e.code.as_str() {
                    "source.not_found" => Some("source".into()),
                    _ => Some("sql".into()),
                };
            }
            e
        })
    }
}
