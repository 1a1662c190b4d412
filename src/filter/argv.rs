//! Whether a transformation needs a shell: a command with no shell syntax in it is run
//! directly, its words as the argument vector, which saves starting `/bin/sh` for every
//! message (`make bench` measures how much).

/// Characters that mean something to `/bin/sh` beyond separating words: quoting, expansion,
/// redirection, pipes and lists, globbing, comments, assignments, subshells and groups.
const SHELL: &[char] = &[
    '\'', '"', '\\', '$', '`', '|', '&', ';', '<', '>', '(', ')', '{', '}', '*', '?', '[', ']',
    '#', '~', '=', '%', '!', '\n', '\r',
];

/// The words of `command` when `/bin/sh -c command` would run exactly them (no shell syntax,
/// at least one word); `None` when it needs the shell.
pub fn words(command: &str) -> Option<Vec<&str>> {
    if command.contains(SHELL) {
        return None;
    }
    let words: Vec<&str> = command
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn plain_commands_are_split_into_words() {
        assert_eq!(words("cat"), Some(vec!["cat"]));
        assert_eq!(
            words("  grep\t-v  Date: "),
            Some(vec!["grep", "-v", "Date:"])
        );
        assert_eq!(
            words("/usr/bin/stripmime"),
            Some(vec!["/usr/bin/stripmime"])
        );
        assert_eq!(words("sed -e s/a/b/g"), Some(vec!["sed", "-e", "s/a/b/g"]));
    }

    #[test]
    fn anything_the_shell_would_interpret_goes_to_the_shell() {
        for cmd in [
            "grep -v '^Date:'",
            "cat | tr a b",
            "cat > /tmp/x",
            "cat < /tmp/x",
            "a; b",
            "a && b",
            "a &",
            "echo $HOME",
            "echo `id`",
            "echo \"x\"",
            "ls *.eml",
            "ls ?",
            "ls [ab]",
            "cat # comment",
            "LANG=C sort",
            "ls ~",
            "(cat)",
            "{ cat; }",
            "a\\ b",
            "cat\nid",
            "",
            "   ",
        ] {
            assert_eq!(words(cmd), None, "{cmd:?}");
        }
    }
}
