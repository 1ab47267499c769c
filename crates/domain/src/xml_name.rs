//! XML element names: checking the ones users choose and making valid ones from column names.

/// XML 1.0's NameStartChar, without `:` (namespaces would need declarations).
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0's NameChar, without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// A valid, namespace-free XML element name that does not start with the reserved `xml`.
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start)
        && chars.all(is_name_char)
        && !name.to_ascii_lowercase().starts_with("xml")
}

/// Makes an element name from a column name: characters a name cannot hold become `_`, a name
/// that cannot start as it does (a digit, `-`, `.`, the reserved `xml`, nothing) gets a leading
/// `_`. `order id` -> `order_id`, `2fa` -> `_2fa`.
pub fn to_xml_name(column: &str) -> String {
    let mut out: String = column
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    if !out.chars().next().is_some_and(is_name_start) || out.to_ascii_lowercase().starts_with("xml")
    {
        out.insert(0, '_');
    }
    out
}

/// Element names for a row's columns: [`to_xml_name`] each, then `_2`, `_3`... added to names
/// that would repeat (`a b` and `a_b` both become `a_b`), so every column keeps its own element.
pub fn xml_names<'a>(columns: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    crate::name::make_unique(columns.into_iter().map(to_xml_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid_and_unique() {
        assert_eq!(to_xml_name("order id"), "order_id");
        assert_eq!(to_xml_name("2fa"), "_2fa");
        assert_eq!(to_xml_name("xmlns"), "_xmlns");
        assert_eq!(to_xml_name(""), "_");
        assert_eq!(to_xml_name("a:b<c>"), "a_b_c_");
        assert_eq!(to_xml_name("città"), "città");
        assert_eq!(xml_names(["a b", "a_b", "a?b"]), ["a_b", "a_b_2", "a_b_3"]);
        for n in xml_names(["1", "-", ".x", "x y", "\u{0}", "🌍"]) {
            assert!(is_xml_name(&n), "{n:?}");
        }
        assert!(is_xml_name("row"));
        assert!(!is_xml_name("xml-row"));
        assert!(!is_xml_name("a:b"));
    }
}
