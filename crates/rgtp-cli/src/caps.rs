//! Serving-side rate caps, as `rgtp expose` and `rgtp send` take them (spec §8.3.3).
//!
//! The total cap paces everything the command sends (a token bucket around the
//! exposers). The cap each puller is served at is stated in the Manifest to pullers
//! that understand the extension, which then ask for no more: the lowest of the
//! total, the per-connection and, for `send`, the per-file cap. A puller that does
//! not know the extension (upstream v1) is held to the total cap only.

use clap::Args;

/// `--max-rate` and `--max-rate-per-connection` of a serving command.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeCaps {
    /// Cap everything this command sends at RATE: 20MB/s, 2.5MiB/s, 160Mbit/s, or bytes
    /// per second. Pullers are told the cap and ask for no more.
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate: Option<u64>,
    /// Serve each puller at most RATE (told to it in the Manifest; pullers of other
    /// implementations that ignore the extension are held to --max-rate only).
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate_per_connection: Option<u64>,
}

impl ServeCaps {
    /// The cap a puller of an exposure is told: the lowest of the total, the
    /// per-connection cap and `more` (a per-file cap), if any is set.
    pub fn advertised(&self, more: Option<u64>) -> Option<u64> {
        self.lib().advertised(more)
    }

    /// The library's caps.
    pub fn lib(&self) -> rgtp::files::ServeCaps {
        rgtp::files::ServeCaps {
            max_rate: self.max_rate,
            max_rate_per_connection: self.max_rate_per_connection,
        }
    }

    /// A line for the banner, or nothing when uncapped.
    pub fn describe(&self, per_file: Option<u64>) -> Option<String> {
        let rate = |r: u64| format!("{}/s", indicatif::HumanBytes(r));
        let parts: Vec<String> = [
            self.max_rate.map(|r| format!("total {}", rate(r))),
            per_file.map(|r| format!("per file {}", rate(r))),
            self.max_rate_per_connection
                .map(|r| format!("per connection {}", rate(r))),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| format!("rate caps: {}", parts.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // How the caps combine is the library's (`rgtp::files`, tested there); here,
    // that each flag lands in its own field, and the banner.
    #[test]
    fn each_serving_flag_is_its_own_cap() {
        let none = ServeCaps::default();
        assert_eq!(none.lib(), rgtp::files::ServeCaps::default());
        assert_eq!(none.describe(None), None);
        let c = ServeCaps {
            max_rate: Some(10_485_760),
            max_rate_per_connection: Some(2_097_152),
        };
        assert_eq!(
            c.lib(),
            rgtp::files::ServeCaps {
                max_rate: Some(10_485_760),
                max_rate_per_connection: Some(2_097_152),
            }
        );
        assert_eq!(c.advertised(Some(500_000)), Some(500_000));
        let line = c.describe(Some(1_000)).expect("capped");
        assert!(
            line.contains("total 10.00 MiB/s")
                && line.contains("per file 1000 B/s")
                && line.contains("per connection 2.00 MiB/s"),
            "{line}"
        );
    }
}

/// `--max-rate`, `--max-rate-per-file` and `--max-rate-per-connection` of a pulling
/// command: the puller asks for no more than its cap, so any exposer keeps to it.
#[derive(Args, Debug, Clone, Default)]
pub struct PullCaps {
    /// Cap the whole transfer at RATE: 20MB/s, 2.5MiB/s, 160Mbit/s, or bytes per second
    /// (shared evenly by the files fetched at once).
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate: Option<u64>,
    /// Cap each file at RATE.
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate_per_file: Option<u64>,
    /// Cap each socket at RATE (one per file fetched at once).
    #[arg(long, value_name = "RATE", value_parser = redgiant_base::parse_rate)]
    pub max_rate_per_connection: Option<u64>,
}

impl PullCaps {
    /// The cap of one file's puller when `at_once` files are fetched at once, each
    /// over its own socket. An exposer's lower cap still applies (spec §8.3.3).
    pub fn per_pull(&self, at_once: usize) -> Option<u64> {
        self.lib().per_pull(at_once)
    }

    /// The library's caps.
    pub fn lib(&self) -> rgtp::files::PullCaps {
        rgtp::files::PullCaps {
            max_rate: self.max_rate,
            max_rate_per_file: self.max_rate_per_file,
            max_rate_per_connection: self.max_rate_per_connection,
        }
    }
}

#[cfg(test)]
mod pull_tests {
    use super::*;

    #[test]
    fn each_pulling_flag_is_its_own_cap() {
        let c = PullCaps {
            max_rate: Some(8_000_000),
            max_rate_per_file: Some(3_000_000),
            max_rate_per_connection: Some(1_000),
        };
        assert_eq!(
            c.lib(),
            rgtp::files::PullCaps {
                max_rate: Some(8_000_000),
                max_rate_per_file: Some(3_000_000),
                max_rate_per_connection: Some(1_000),
            }
        );
        assert_eq!(c.per_pull(2), Some(1_000));
    }
}
