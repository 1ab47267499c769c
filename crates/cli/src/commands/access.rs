//! `wharf workspace ...`, `wharf token ...` and `wharf audit`.

use super::Context;
use crate::args::{TokenCommand, WorkspaceCommand};
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
