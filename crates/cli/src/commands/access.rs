//! `wharf workspace ...`, `wharf token ...`, `wharf user ...` and `wharf audit`.

use super::Context;
use crate::args::{TokenCommand, UserCommand, WorkspaceCommand};
use crate::error::CliError;
use crate::output;

pub async fn workspace(context: &Context, command: WorkspaceCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        WorkspaceCommand::Add { name } => {
            let view = service.create_workspace(&caller, &name).await?;
            if context.json {
                output::json(&view);
            } else {
                outln!("added workspace {}", view.name);
            }
        }
        WorkspaceCommand::List => {
            let views = service.workspaces(&caller).await?;
            if context.json {
                output::json(&views);
            } else {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|w| vec![w.name.clone(), w.created_at.clone()])
                    .collect();
                output::table(&["NAME", "CREATED"], &rows);
            }
        }
    }
    Ok(())
}

pub async fn token(context: &Context, command: TokenCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in,
        } => {
            let view = service
                .create_token(&caller, &name, &role, expires_in.as_deref())
                .await?;
            if context.json {
                output::json(&view);
            } else {
                outln!("{}", view.token);
                errln!(
                    "token {} ({} of workspace {}, {}): shown once, keep it secret; send it as `Authorization: Bearer TOKEN`",
                    view.name,
                    view.role,
                    view.workspace,
                    match &view.expires_at {
                        Some(at) => format!("expires {at}"),
                        None => "no expiry".to_string(),
                    }
                );
            }
        }
        TokenCommand::List => {
            let views = service.tokens(&caller).await?;
            if context.json {
                output::json(&views);
            } else {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.role.clone(),
                            t.created_at.clone(),
                            t.expires_at.clone().unwrap_or_else(|| "never".into()),
                            match &t.revoked_at {
                                Some(at) => format!("revoked {at}"),
                                None => "active".into(),
                            },
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ROLE", "CREATED", "EXPIRES", "STATUS"], &rows);
            }
        }
        TokenCommand::Revoke { name } => {
            let view = service.revoke_token(&caller, &name).await?;
            if context.json {
                output::json(&view);
            } else {
                outln!(
                    "revoked token {} of workspace {}",
                    view.name,
                    view.workspace
                );
            }
        }
    }
    Ok(())
}

pub async fn audit(context: &Context, limit: u32) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    let entries = service.audit(&caller, limit).await?;
    if context.json {
        output::json(&entries);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.at.clone(),
                e.actor.clone(),
                e.action.clone(),
                format!("{} {}", e.object_kind, e.object_name),
                match &e.error_code {
                    Some(code) => format!("error {code}"),
                    None => "ok".into(),
                },
            ]
        })
        .collect();
    output::table(&["AT", "ACTOR", "ACTION", "OBJECT", "OUTCOME"], &rows);
    Ok(())
}

pub async fn user(context: &Context, command: UserCommand) -> Result<(), CliError> {
    let (service, caller) = context.service().await?;
    match command {
        UserCommand::Add {
            email,
            role,
            password_env,
            password_stdin,
        } => {
            let password = read_password(password_env.as_deref(), password_stdin)?;
            let view = service.add_user(&caller, &email, &role, &password).await?;
            if context.json {
                output::json(&view);
            } else {
                outln!(
                    "added user {} to workspace {} as {}",
                    view.email,
                    view.workspace,
                    view.role
                );
            }
        }
        UserCommand::List => {
            let views = service.users(&caller).await?;
            if context.json {
                output::json(&views);
            } else {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|u| vec![u.email.clone(), u.role.clone(), u.created_at.clone()])
                    .collect();
                output::table(&["EMAIL", "ROLE", "ADDED"], &rows);
            }
        }
        UserCommand::Rm { email } => {
            service.remove_user(&caller, &email).await?;
            if context.json {
                output::json(&serde_json::json!({ "removed": email }));
            } else {
                outln!("removed user {email} from workspace {}", caller.workspace);
            }
        }
    }
    Ok(())
}

/// A password from an environment variable or standard input: never an argument, which
/// other users of the machine can read in the process list.
fn read_password(env: Option<&str>, stdin: bool) -> Result<String, CliError> {
    match (env, stdin) {
        (Some(var), false) => std::env::var(var).map_err(|_| {
            CliError::bad(format!(
                "--password-env: environment variable {var} is not set (or not UTF-8): export the password in it first"
            ))
        }),
        (None, true) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                CliError::bad(format!("--password-stdin: cannot read standard input: {e}"))
            })?;
            Ok(text.trim_end_matches(['\r', '\n']).to_string())
        }
        _ => Err(CliError::bad(
            "give the password with --password-env VAR or --password-stdin (passwords are never taken as argument values)",
        )),
    }
}
