//! A check that every command named in a message (`wharf runs show ID`, `wharf destination
//! policy NAME`) exists in the real command line: a hint that names a command which does not
//! exist (`wharf run list`) sends people nowhere.

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under the workspace's `crates/*/src` folders.
    fn sources() -> Vec<PathBuf> {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        let mut stack = vec![crates];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() && name != "tests" && name != "target" {
                    stack.push(path);
                } else if name.ends_with(".rs") && name != "command_names.rs" {
                    files.push(path);
                }
            }
        }
        files
    }

    /// The commands quoted in backticks in `text`: `wharf ...` up to the closing backtick.
    fn quoted_commands(text: &str) -> Vec<String> {
        text.match_indices("`wharf ")
            .filter_map(|(at, _)| {
                let rest = &text[at + 1..];
                rest.find('`').map(|end| rest[..end].to_string())
            })
            .collect()
    }

    /// Checks one command line against clap's tree: each plain word is a subcommand while the
    /// command has subcommands and no positional arguments.
    fn check(line: &str) -> Result<(), String> {
        let mut command = crate::args::Cli::command();
        for word in line.split_whitespace().skip(1) {
            let plain = word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !word.starts_with('-');
            if !plain {
                break;
            }
            let takes_positionals = command.get_positionals().next().is_some();
            match command.find_subcommand(word) {
                Some(sub) => command = sub.clone(),
                None if command.has_subcommands() && !takes_positionals => {
                    return Err(format!(
                        "`{line}`: `{}` has no subcommand {word:?}",
                        command.get_name()
                    ));
                }
                None => break,
            }
        }
        Ok(())
    }

    #[test]
    fn every_command_named_in_a_message_exists() {
        let mut checked = 0;
        let mut wrong = Vec::new();
        for file in sources() {
            let text = std::fs::read_to_string(&file).expect("read");
            for line in quoted_commands(&text) {
                // `{kind}` is filled with the store's object kinds (the store only names
                // removal for kinds that have it).
                let lines: Vec<String> = if line.contains("{kind} rm") {
                    ["destination", "segment"]
                        .iter()
                        .map(|k| line.replace("{kind}", k))
                        .collect()
                } else if line.contains("{kind}") {
                    ["destination", "source", "model", "segment", "sync"]
                        .iter()
                        .map(|k| line.replace("{kind}", k))
                        .collect()
                } else {
                    vec![line]
                };
                for line in lines {
                    checked += 1;
                    if let Err(e) = check(&line) {
                        wrong.push(format!("{}: {e}", file.display()));
                    }
                }
            }
        }
        for kind in [
            "run",
            "destination",
            "source",
            "model",
            "segment",
            "sync",
            "workspace",
            "token",
        ] {
            checked += 1;
            if let Err(e) = check(&wharf_store::list_command(kind)) {
                wrong.push(e);
            }
        }
        assert!(checked > 20, "found only {checked} commands in messages");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_check_catches_a_command_that_does_not_exist() {
        assert!(check("wharf run list").is_err());
        assert!(check("wharf destination frobnicate x").is_err());
        assert!(check("wharf runs show RUN_ID").is_ok());
        assert!(check("wharf sync run demo-csv").is_ok());
    }
}
