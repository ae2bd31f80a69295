//! `--case` (exact ids) and `--section` (spec sections) on top of `--only`/`--skip`.

use crate::cases::{self, Selection};

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
pub fn by_case_and_section(sel: &Selection, id: &str) -> bool {
    if !sel.cases.is_empty() && !sel.cases.iter().any(|c| c.trim().eq_ignore_ascii_case(id)) {
        return false;
    }
    if sel.sections.is_empty() {
        return true;
    }
    cases::catalogue()
        .iter()
        .find(|c| c.id.eq_ignore_ascii_case(id))
        .is_some_and(|c| sel.sections.iter().any(|p| section_matches(c.section, p)))
}

/// `--case` values that name no case of the catalogue.
pub fn unknown_cases(sel: &Selection) -> Vec<String> {
    let cat = cases::catalogue();
    sel.cases
        .iter()
        .filter(|c| !cat.iter().any(|i| i.id.eq_ignore_ascii_case(c.trim())))
        .cloned()
        .collect()
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
        assert!(sel.selects("EXP-001") && sel.selects("EXP-040"));
        assert!(!sel.selects("EXP-002") && !sel.selects("EXP-0"));
        let sel = Selection {
            sections: vec!["§5".into()],
            skip: vec!["EXP-041".into()],
            ..Selection::default()
        };
        assert!(sel.selects("EXP-040") && sel.selects("EXP-043"));
        assert!(!sel.selects("EXP-041") && !sel.selects("EXP-001"));
        let sel = Selection {
            only: vec!["EXP".into()],
            sections: vec!["5.1".into()],
            ..Selection::default()
        };
        assert!(sel.selects("EXP-040") && !sel.selects("EXP-044"));
        assert!(unknown_cases(&Selection {
            cases: vec!["EXP-001".into(), "NOPE-1".into()],
            ..Selection::default()
        })
        .contains(&"NOPE-1".to_string()));
    }
}
