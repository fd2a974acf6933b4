//! Logging on stderr, shaped for who reads it: colour and timestamps for a person at a
//! terminal; plain lines (level and message) for the journal and for files and pipes, which
//! stamp the time themselves and show escape codes as garbage.

use std::io::IsTerminal;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub ansi: bool,
    /// A timestamp before each line.
    pub time: bool,
}

/// The style for a stderr that is (or is not) a terminal, with `JOURNAL_STREAM` set (or not):
/// systemd sets it for a unit whose stderr is the journal, which then stamps every line.
pub fn style(stderr_is_terminal: bool, journal_stream: bool) -> Style {
    let person = stderr_is_terminal && !journal_stream;
    Style {
        ansi: person,
        time: person,
    }
}

/// Install the subscriber: `filter` (NETCONVERGE_LOG overrides it) on stderr, in the style
/// this process's stderr calls for.
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NETCONVERGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let style = style(
        std::io::stderr().is_terminal(),
        std::env::var_os("JOURNAL_STREAM").is_some(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(style.ansi);
    if style.time {
        builder.init();
    } else {
        builder.without_time().init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_terminal_outside_the_journal_gets_colour_and_time() {
        let person = Style {
            ansi: true,
            time: true,
        };
        let plain = Style {
            ansi: false,
            time: false,
        };
        assert_eq!(style(true, false), person);
        assert_eq!(style(true, true), plain);
        assert_eq!(style(false, false), plain);
        assert_eq!(style(false, true), plain);
    }
}
