//! How the CLI fails: bad input (exit 2) or an operation that ran and failed (exit 1).

use std::fmt;

#[derive(Debug)]
pub enum CliError {
    /// The user's input is wrong: exit code 2.
    BadInput(String),
    /// The operation ran and failed: exit code 1.
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::BadInput(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        CliError::BadInput(message.into())
    }

    pub fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::BadInput(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<wharf_domain::InvalidValue> for CliError {
    fn from(e: wharf_domain::InvalidValue) -> Self {
        // Name the flag the user typed, not the API field.
        let flag = format!("--{}", e.field.replace('_', "-"));
        CliError::BadInput(format!("{flag}: {e}"))
    }
}

impl From<wharf_store::StoreError> for CliError {
    fn from(e: wharf_store::StoreError) -> Self {
        use wharf_store::StoreError as E;
        match e {
            E::NotFound { .. } | E::AlreadyExists { .. } | E::NotApplicable(_) => {
                CliError::BadInput(e.to_string())
            }
            other => CliError::Failed(other.to_string()),
        }
    }
}

impl From<wharf_delivery::DeliveryError> for CliError {
    fn from(e: wharf_delivery::DeliveryError) -> Self {
        use wharf_delivery::DeliveryError as E;
        match e {
            E::EndpointRefused { .. } => CliError::BadInput(e.to_string()),
            other => CliError::Failed(other.to_string()),
        }
    }
}

impl From<wharf_runner::RunnerError> for CliError {
    fn from(e: wharf_runner::RunnerError) -> Self {
        use wharf_runner::RunnerError as E;
        match e {
            E::Store(e) => e.into(),
            E::Delivery(e) => e.into(),
            E::Engine(ref inner) => match inner {
                wharf_runner::EngineError::Query(_)
                | wharf_runner::EngineError::TooLarge(_)
                | wharf_runner::EngineError::Postgres { .. } => CliError::Failed(e.to_string()),
                _ => CliError::BadInput(e.to_string()),
            },
            E::Invalid(m) => CliError::BadInput(m),
            E::Busy { .. } => CliError::Failed(e.to_string()),
        }
    }
}

impl From<wharf_service::ServiceError> for CliError {
    /// The service's message, with the CLI's own hints: the flag at fault, how to list or
    /// remove objects, the flag that names wharf's identity.
    fn from(e: wharf_service::ServiceError) -> Self {
        use wharf_service::ErrorKind;
        let mut message = e.message.clone();
        match (e.kind, &e.object) {
            (ErrorKind::NotFound, Some((kind, _))) => {
                message.push_str(&format!(
                    " (list them with `{}`)",
                    wharf_store::list_command(kind)
                ));
            }
            (ErrorKind::Conflict, Some((kind, name))) if e.code.ends_with(".exists") => match *kind
            {
                "destination" | "segment" => message.push_str(&format!(
                    ": choose another name, or remove it first with `wharf {kind} rm {name}`"
                )),
                _ => message.push_str(": choose another name"),
            },
            _ => {}
        }
        if e.code == "identity.unknown" {
            message.push_str("; give it with --principal-arn ARN if wharf runs elsewhere");
        }
        if let (Some(field), "invalid") = (&e.field, e.code.as_str()) {
            message = format!("--{}: {message}", field.replace('_', "-"));
        }
        match e.kind {
            ErrorKind::BadInput
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::Unauthorized
            | ErrorKind::Forbidden => CliError::BadInput(message),
            ErrorKind::Failed | ErrorKind::Throttled | ErrorKind::Internal => {
                CliError::Failed(message)
            }
        }
    }
}
