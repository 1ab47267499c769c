//! `string_enum!`: a closed set of values that users type as text (`--format csv`).

/// Defines an enum whose variants parse from and print as fixed strings, with an error that lists
/// the choices. Serde uses the same strings, so the store keeps what users typed.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses case-insensitively, with `-` and `_` interchangeable.
            pub fn parse(value: &str) -> Result<Self, InvalidValue> {
                let wanted = value.to_ascii_lowercase().replace('_', "-");
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().to_ascii_lowercase().replace('_', "-") == wanted)
                    .ok_or_else(|| {
                        let choices: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        InvalidValue::new(
                            $field,
                            value,
                            format!(concat!($what, " is one of: {}"), choices.join(", ")),
                        )
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;
