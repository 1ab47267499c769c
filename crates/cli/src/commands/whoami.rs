//! `wharf whoami`

use super::Context;
use crate::error::CliError;
use crate::output;
use wharf_delivery::Identity;

pub async fn run(context: &Context) -> Result<(), CliError> {
    let identity = Identity::from_environment().await;
    let caller = identity.caller().await?;
    if context.json {
        output::json(&caller);
    } else {
        outln!("{}", caller.arn);
        outln!("account {}", caller.account);
        outln!(
            "\nRole destinations must trust {} (see `wharf destination policy NAME`).",
            wharf_domain::policy::trust_principal(&caller.arn)
        );
    }
    Ok(())
}
