//! Host facts: what a desired state relies on that only the target host can confirm (users,
//! groups, existing interfaces, installed programs). `validate` is host-independent, so the
//! sections hand these to the caller instead of failing.

use super::diagnostics::Diagnostic;

/// A fact the desired state relies on that only the target host can confirm. `validate` is
/// host-independent, so these are handed to the caller instead of being errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCheck {
    /// A tap owner given by name must be a user on the host.
    User {
        /// The user name.
        name: String,
        /// Where it is written; the message says what is needed.
        at: Diagnostic,
    },
    /// A tap group given by name must be a group on the host.
    Group {
        /// The group name.
        name: String,
        /// Where it is written; the message says what is needed.
        at: Diagnostic,
    },
    /// An `external` link is never created, so it must already exist.
    ExternalLink {
        /// The interface name.
        name: String,
        /// Where it is declared; the message says what is needed.
        at: Diagnostic,
    },
    /// A program netconverge runs to apply part of the state (`nft` for the nftables
    /// tables) must be installed.
    Program {
        /// The program's name, looked up in `$PATH` and the sbin directories.
        name: String,
        /// The Debian package that provides it.
        package: String,
        /// The section that needs it; the message says what to install.
        at: Diagnostic,
    },
}

impl HostCheck {
    /// The position and the sentence to show when the check fails.
    pub fn at(&self) -> &Diagnostic {
        match self {
            HostCheck::User { at, .. }
            | HostCheck::Group { at, .. }
            | HostCheck::ExternalLink { at, .. }
            | HostCheck::Program { at, .. } => at,
        }
    }
}
