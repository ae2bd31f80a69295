//! Which cases run: `--only`/`--skip` (id prefixes), `--case` (exact ids) and
//! `--section` (spec sections).

/// `--only` / `--skip`: ids or id prefixes (`EXP-01`, `PUL`); `--case`: exact ids;
/// `--section`: spec sections (`5`, `§5.1`). All given filters must agree.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Run only cases matching one of these (all when empty).
    pub only: Vec<String>,
    /// Never run cases matching one of these.
    pub skip: Vec<String>,
    /// Run only the cases with exactly one of these ids (all when empty).
    pub cases: Vec<String>,
    /// Run only the cases under one of these sections (all when empty).
    pub sections: Vec<String>,
}

fn matches(id: &str, pattern: &str) -> bool {
    let p = pattern.trim();
    !p.is_empty() && id.to_ascii_uppercase().starts_with(&p.to_ascii_uppercase())
}

impl Selection {
    /// True if case `id`, which checks spec `section`, is selected.
    pub fn selects(&self, id: &str, section: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| matches(id, p)))
            && !self.skip.iter().any(|p| matches(id, p))
            && by_case_and_section(self, id, section)
    }
}

/// The part of a section reference that is compared: `§5.1` and `5.1.` give `5.1`.
fn section_key(s: &str) -> &str {
    s.trim()
        .trim_start_matches('§')
        .trim()
        .trim_end_matches('.')
}

/// True when `section` (one catalogue entry's, perhaps a list such as `§3, §5`) lies
/// under `pattern`: `5` takes `§5`, `§5.1` and `§5.1.2` but not `§50`; `§5.1` takes
/// `§5.1` and `§5.1.2` but not `§5.10`.
pub fn section_matches(section: &str, pattern: &str) -> bool {
    let p = section_key(pattern);
    if p.is_empty() {
        return false;
    }
    section
        .split(',')
        .map(section_key)
        .any(|s| s == p || s.strip_prefix(p).is_some_and(|rest| rest.starts_with('.')))
}

/// The `--case` and `--section` half of [`Selection::selects`].
fn by_case_and_section(sel: &Selection, id: &str, section: &str) -> bool {
    if !sel.cases.is_empty() && !sel.cases.iter().any(|c| c.trim().eq_ignore_ascii_case(id)) {
        return false;
    }
    sel.sections.is_empty() || sel.sections.iter().any(|p| section_matches(section, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_match_whole_components() {
        assert!(section_matches("§5.1", "5"));
        assert!(section_matches("§5.1", "§5.1"));
        assert!(section_matches("§5", "§5"));
        assert!(section_matches("§3, §5", "5"));
        assert!(!section_matches("§5.10", "5.1"));
        assert!(!section_matches("§50.1", "5"));
        assert!(!section_matches("§5.1", ""));
    }

    #[test]
    fn case_and_section_compose_with_only_and_skip() {
        let sel = Selection {
            cases: vec!["exp-001".into(), "EXP-040".into()],
            ..Selection::default()
        };
        assert!(sel.selects("EXP-001", "§3.1") && sel.selects("EXP-040", "§5.1"));
        assert!(!sel.selects("EXP-002", "§3.1") && !sel.selects("EXP-0", "§3.1"));
        let sel = Selection {
            sections: vec!["§5".into()],
            skip: vec!["EXP-041".into()],
            ..Selection::default()
        };
        assert!(sel.selects("EXP-040", "§5.1") && sel.selects("EXP-043", "§5.3"));
        assert!(!sel.selects("EXP-041", "§5.1") && !sel.selects("EXP-001", "§3.1"));
        let sel = Selection {
            only: vec!["EXP".into()],
            sections: vec!["5.1".into()],
            ..Selection::default()
        };
        assert!(sel.selects("EXP-040", "§5.1") && !sel.selects("EXP-044", "§9.2"));
        assert!(!sel.selects("PUL-001", "§5.1"));
    }
}
