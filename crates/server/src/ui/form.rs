//! A form as pages show it again after an error: what was typed (never a secret), the error
//! next to the field the service named, and the error at the top.

use super::session::Fields;
use std::collections::BTreeMap;
use wharf_service::{ErrorKind, ServiceError};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct FormState {
    pub values: BTreeMap<String, String>,
    pub errors: BTreeMap<String, String>,
    pub error: Option<String>,
}

impl FormState {
    /// The form with `values` filled in.
    pub fn with(values: &[(&str, &str)]) -> Self {
        FormState {
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..FormState::default()
        }
    }

    /// The submitted form again, its `shown` fields as typed.
    pub fn typed(fields: &Fields, shown: &[&str]) -> Self {
        FormState {
            values: shown
                .iter()
                .map(|k| (k.to_string(), fields.text(k).to_string()))
                .collect(),
            ..FormState::default()
        }
    }

    /// The submitted form again, its `shown` fields as typed, with `error` at its field. The
    /// service names fields as the API does (`auth.role_arn`); a form's inputs carry the last
    /// part of that name.
    pub fn failed(fields: &Fields, shown: &[&str], error: &ServiceError) -> Self {
        let values = Self::typed(fields, shown).values;
        let mut errors = BTreeMap::new();
        if let Some(field) = &error.field {
            let field = field.rsplit('.').next().unwrap_or(field);
            let field = match field {
                "session_duration_seconds" => "session_duration",
                other => other,
            };
            errors.insert(field.to_string(), error.message.clone());
        }
        FormState {
            values,
            errors,
            error: Some(error.message.clone()),
        }
    }
}

/// Errors a form shows next to its fields (the rest get their own page).
pub(crate) fn is_form_error(e: &ServiceError) -> bool {
    matches!(
        e.kind,
        ErrorKind::BadInput | ErrorKind::Conflict | ErrorKind::Failed
    )
}
