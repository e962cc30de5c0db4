//! `limit N`: keeps the first N records or rows.

use std::fmt;

use crate::parse::Parser;
use crate::{QueryError, Settings};

/// `limit N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Rows to keep.
    pub n: usize,
}

impl Limit {
    pub(crate) fn parse(p: &mut Parser<'_>, settings: &Settings) -> Result<Limit, QueryError> {
        let (n, at) = p.count("limit")?;
        if n > settings.max_limit {
            return Err(QueryError::Syntax {
                message: format!(
                    "limit {n} is above the maximum {} (setting query.max_limit); use export for more",
                    settings.max_limit
                ),
                position: at,
            });
        }
        Ok(Limit { n })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "limit {}", self.n)
    }
}

#[cfg(test)]
mod tests {
    use crate::pipes::tests::{error, round_trip};

    #[test]
    fn syntax() {
        round_trip("* | limit 10");
        round_trip("* | limit 0");
        assert_eq!(error("* | limit x").1, 10);
        assert_eq!(error("* | limit").1, 9);
        let (m, p) = error("* | limit 99999999");
        assert_eq!(p, 10);
        assert!(m.contains("above the maximum"), "{m}");
        assert!(error("* | limit 99999999999999999999999")
            .0
            .contains("too large"));
    }
}
