//! From the words a user typed to a tantivy query, built programmatically:
//! user text never reaches a query parser, so no syntax of it can leak.
//!
//! Every word must match (in any field); within a word, any of these does:
//! - the word exactly, scored by BM25 and the field's weight;
//! - the word within a few edits (typo tolerance, see [`edits_for`]),
//!   a constant score times the field's weight;
//! - for the last word while it is still being typed, a word that starts
//!   with it (type-ahead), within fewer edits ([`prefix_edits_for`]), in
//!   the fields that take prefixes ([`WeightedField::prefix`]).
//!
//! An exact match also matches its fuzzy and prefix forms, so it always
//! scores above a typo.

use std::sync::Arc;

use tantivy::query::{
    AutomatonWeight, BooleanQuery, BoostQuery, DfaWrapper, EnableScoring, FuzzyTermQuery, Occur,
    Query, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Score, Term};

/// Words of one query at most: each costs one Levenshtein automaton (two for
/// the last word) walked over every text field's dictionary. A longer query
/// is refused (400), not cut, so that nobody gets silently partial matches.
pub const QUERY_WORDS_MAX: usize = 16;
/// Words shorter than this must match exactly: one edit on a four-letter
/// word matches too much ("cold" → "old", "gold", "bold", "colt", …).
pub const ONE_EDIT_LENGTH_MIN: usize = 5;
/// Words at least this long may have two edits ("cloudplay" → "coldplay");
/// two edits on a six-letter word are a different word as often as a typo.
pub const TWO_EDITS_LENGTH_MIN: usize = 8;
/// A word being typed matches longer words that start with it; from this
/// length on, that start may itself have one edit ("colsp" → "coldplay").
pub const PREFIX_ONE_EDIT_LENGTH_MIN: usize = 5;

/// What a fuzzy match scores (times the field's weight), whatever the
/// word's frequency: below a typical exact match's BM25, which it adds to.
const FUZZY_SCORE: Score = 0.5;
/// What a prefix match scores (times the field's weight).
const PREFIX_SCORE: Score = 0.5;

/// One word of a query and how loosely it may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWord {
    /// Lower-cased and folded to ASCII where possible, as the index's words.
    pub text: String,
    /// Edits (insert, delete, substitute, swap two neighbours) allowed.
    pub edits: u8,
    /// For the word being typed: edits allowed in its start.
    pub prefix_edits: Option<u8>,
}

/// Edits allowed in a word of `length` characters.
pub fn edits_for(length: usize) -> u8 {
    if length >= TWO_EDITS_LENGTH_MIN {
        2
    } else if length >= ONE_EDIT_LENGTH_MIN {
        1
    } else {
        0
    }
}

/// Edits allowed in the start of a word of `length` characters being typed.
pub fn prefix_edits_for(length: usize) -> u8 {
    u8::from(length >= PREFIX_ONE_EDIT_LENGTH_MIN)
}

/// The words of `text` as the index's analyzer splits and normalizes them.
pub fn words_of(analyzer: &TextAnalyzer, text: &str) -> Vec<String> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

/// Plans how each word may match. The last word is taken as still being
/// typed unless `text` ends with a separator (a space, a full stop, …).
pub fn plan(text: &str, words: Vec<String>) -> Vec<QueryWord> {
    let typing = text.chars().last().is_some_and(char::is_alphanumeric);
    let last = words.len().saturating_sub(1);
    words
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            let length = text.chars().count();
            QueryWord {
                edits: edits_for(length),
                prefix_edits: (typing && index == last).then(|| prefix_edits_for(length)),
                text,
            }
        })
        .collect()
}

/// A text field searched, with the weight of its matches.
#[derive(Debug, Clone, Copy)]
pub struct WeightedField {
    pub field: Field,
    pub weight: Score,
    /// Whether the word being typed matches this field as a prefix.
    pub prefix: bool,
}

/// Every word must match in one of `fields`.
pub fn text_query(
    fields: &[WeightedField],
    words: &[QueryWord],
) -> tantivy::Result<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(words.len());
    for word in words {
        clauses.push((Occur::Must, word_query(fields, word)?));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

fn word_query(fields: &[WeightedField], word: &QueryWord) -> tantivy::Result<Box<dyn Query>> {
    let Some(first) = fields.first() else {
        return Ok(Box::new(BooleanQuery::new(Vec::new())));
    };
    // The automaton depends on the word only: built once, shared by fields.
    let any_field_term = Term::from_field_text(first.field, &word.text);
    let fuzzy = match word.edits {
        0 => None,
        edits => Some(Arc::new(
            FuzzyTermQuery::new(any_field_term.clone(), edits, true).automaton()?,
        )),
    };
    let prefix = match word.prefix_edits {
        None => None,
        Some(edits) => Some(Arc::new(
            FuzzyTermQuery::new_prefix(any_field_term, edits, true).automaton()?,
        )),
    };
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for &WeightedField {
        field,
        weight,
        prefix: prefix_here,
    } in fields
    {
        let exact = TermQuery::new(
            Term::from_field_text(field, &word.text),
            IndexRecordOption::WithFreqs,
        );
        alternatives.push((Occur::Should, boosted(Box::new(exact), weight)));
        if let Some(automaton) = &fuzzy {
            let query = AutomatonQuery::boxed(field, automaton.clone());
            alternatives.push((Occur::Should, boosted(query, weight * FUZZY_SCORE)));
        }
        if let Some(automaton) = prefix.as_ref().filter(|_| prefix_here) {
            let query = AutomatonQuery::boxed(field, automaton.clone());
            alternatives.push((Occur::Should, boosted(query, weight * PREFIX_SCORE)));
        }
    }
    Ok(Box::new(BooleanQuery::new(alternatives)))
}

fn boosted(query: Box<dyn Query>, weight: Score) -> Box<dyn Query> {
    Box::new(BoostQuery::new(query, weight))
}

/// A filter: must match, adds nothing to the score.
pub fn filter_clause(query: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, boosted(query, 0.0))
}

/// Matches the terms of `field` an automaton accepts, with a constant score;
/// unlike `FuzzyTermQuery`, the automaton is shared rather than rebuilt per
/// field (building a two-edit automaton is the expensive part).
#[derive(Clone)]
struct AutomatonQuery {
    field: Field,
    automaton: Arc<DfaWrapper>,
}

impl AutomatonQuery {
    fn boxed(field: Field, automaton: Arc<DfaWrapper>) -> Box<dyn Query> {
        Box::new(AutomatonQuery { field, automaton })
    }
}

impl std::fmt::Debug for AutomatonQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutomatonQuery")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl Query for AutomatonQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<DfaWrapper>::new(
            self.field,
            self.automaton.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn edits_grow_with_the_length_of_the_word() {
        assert_eq!(edits_for(0), 0);
        assert_eq!(
            edits_for(ONE_EDIT_LENGTH_MIN - 1),
            0,
            "'cold' must match exactly"
        );
        assert_eq!(edits_for(ONE_EDIT_LENGTH_MIN), 1);
        assert_eq!(edits_for(TWO_EDITS_LENGTH_MIN - 1), 1);
        assert_eq!(edits_for(TWO_EDITS_LENGTH_MIN), 2);
        assert_eq!(edits_for(40), 2, "never more than two (tantivy's limit)");
        // One edit each: a missing letter, two letters swapped.
        assert_eq!(edits_for("coldpay".len()), 1);
        assert_eq!(edits_for("moonlihgt".len()), 2);
    }

    #[test]
    fn a_prefix_gets_an_edit_only_once_it_is_long_enough() {
        assert_eq!(prefix_edits_for(1), 0);
        assert_eq!(prefix_edits_for(PREFIX_ONE_EDIT_LENGTH_MIN - 1), 0);
        assert_eq!(prefix_edits_for(PREFIX_ONE_EDIT_LENGTH_MIN), 1);
        assert_eq!(prefix_edits_for(30), 1);
    }

    #[test]
    fn only_the_last_word_being_typed_is_a_prefix() {
        let planned = plan("thunder bra", words(&["thunder", "bra"]));
        assert_eq!(
            planned,
            vec![
                QueryWord {
                    text: "thunder".into(),
                    edits: 1,
                    prefix_edits: None
                },
                QueryWord {
                    text: "bra".into(),
                    edits: 0,
                    prefix_edits: Some(0)
                },
            ]
        );
    }

    #[test]
    fn a_trailing_separator_ends_the_last_word() {
        for text in ["coldplay ", "coldplay.", "coldplay\u{3000}", "coldplay 🎸"] {
            let planned = plan(text, words(&["coldplay"]));
            assert_eq!(planned[0].prefix_edits, None, "{text:?}");
            assert_eq!(planned[0].edits, 2, "{text:?}");
        }
        let planned = plan("coldplay", words(&["coldplay"]));
        assert_eq!(planned[0].prefix_edits, Some(1));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Five characters, ten bytes in UTF-8.
        let planned = plan("жжжжж", words(&["жжжжж"]));
        assert_eq!(planned[0].edits, 1);
        assert_eq!(planned[0].prefix_edits, Some(1));
        let planned = plan("жжж", words(&["жжж"]));
        assert_eq!(planned[0].edits, 0, "three characters, six bytes");
    }

    #[test]
    fn no_words_plan_nothing() {
        assert!(plan("", Vec::new()).is_empty());
        assert!(plan("!!! ???", Vec::new()).is_empty());
    }
}
