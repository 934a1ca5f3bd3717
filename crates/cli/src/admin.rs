//! Operator tasks: `boxoffice migrate` and `boxoffice admin create-user`.

use std::str::FromStr;

use anyhow::Context;
use boxoffice_domain::Role;
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use crate::config::{redact_url, CreateUserArgs, DatabaseArgs};
use crate::{build_services, connect_store};

/// One applied migration, as sqlx records it.
struct AppliedMigration {
    version: i64,
    description: String,
}

/// Runs the pending migrations and says which ones ran.
pub async fn migrate(database: &DatabaseArgs) -> anyhow::Result<()> {
    let before = applied_migrations(database).await.unwrap_or_default();
    let store = connect_store(database).await?;
    store.close().await;
    let after = applied_migrations(database)
        .await
        .context("cannot read the migration history")?;
    let shown_url = redact_url(&database.database_url);
    let new: Vec<&AppliedMigration> = after
        .iter()
        .filter(|migration| !before.iter().any(|old| old.version == migration.version))
        .collect();
    if new.is_empty() {
        println!(
            "{shown_url}: already up to date (migrations applied: {})",
            after.len()
        );
    } else {
        for migration in &new {
            println!(
                "{shown_url}: applied migration {:04} {}",
                migration.version, migration.description
            );
        }
        println!(
            "{shown_url}: up to date (migrations applied: {})",
            after.len()
        );
    }
    Ok(())
}

/// The migrations recorded in the database; empty for a new database.
async fn applied_migrations(database: &DatabaseArgs) -> anyhow::Result<Vec<AppliedMigration>> {
    sqlx::any::install_default_drivers();
    let (_, url) = boxoffice_store::parse_database_url(&database.database_url)?;
    let mut connection = AnyConnectOptions::from_str(&url)?.connect().await?;
    let rows = sqlx::query(
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut connection)
    .await;
    let _ = connection.close().await;
    let migrations = rows?
        .iter()
        .map(|row| {
            Ok(AppliedMigration {
                version: row.try_get("version")?,
                description: row.try_get("description")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(migrations)
}

/// Creates a user with a role. An existing e-mail is an error: its account
/// (role and password) is left as it is.
pub async fn create_user(args: &CreateUserArgs) -> anyhow::Result<()> {
    let role = Role::from(args.role);
    let name = args.name.clone().unwrap_or_else(|| {
        args.email
            .split('@')
            .next()
            .unwrap_or(&args.email)
            .to_string()
    });
    let store = connect_store(&args.services.database).await?;
    let services = build_services(store.clone(), &args.services, None, Default::default()).await?;
    let created = services
        .auth
        .create_user_with_role(&args.email, args.password.expose(), &name, role)
        .await
        .map_err(|error| {
            crate::explain(&format!("cannot create the user {}", args.email), &error)
        })?;
    store.close().await;
    if !created {
        anyhow::bail!(
            "a user with the e-mail {} exists already; nothing was changed",
            args.email
        );
    }
    println!(
        "created {} user {}",
        role.as_str(),
        args.email.trim().to_lowercase()
    );
    Ok(())
}
