//! The built-in variable names AbuseFilter knows, its deprecated aliases and disabled names.

/// Variables AbuseFilter (1.39 core, plus later core additions) sets for actions.
pub const BUILTIN: &[&str] = &[
    "timestamp",
    "accountname",
    "action",
    "added_lines",
    "edit_delta",
    "edit_diff",
    "new_size",
    "old_size",
    "new_content_model",
    "old_content_model",
    "removed_lines",
    "summary",
    "page_id",
    "page_namespace",
    "page_title",
    "page_prefixedtitle",
    "page_age",
    "moved_from_id",
    "moved_from_namespace",
    "moved_from_title",
    "moved_from_prefixedtitle",
    "moved_from_age",
    "moved_to_id",
    "moved_to_namespace",
    "moved_to_title",
    "moved_to_prefixedtitle",
    "moved_to_age",
    "user_editcount",
    "user_age",
    "user_name",
    "user_groups",
    "user_rights",
    "user_blocked",
    "user_emailconfirm",
    "old_wikitext",
    "new_wikitext",
    "added_links",
    "removed_links",
    "all_links",
    "new_pst",
    "edit_diff_pst",
    "added_lines_pst",
    "new_text",
    "new_html",
    "page_restrictions_edit",
    "page_restrictions_move",
    "page_restrictions_create",
    "page_restrictions_upload",
    "page_recent_contributors",
    "page_first_contributor",
    "moved_from_restrictions_edit",
    "moved_from_restrictions_move",
    "moved_from_restrictions_create",
    "moved_from_restrictions_upload",
    "moved_from_recent_contributors",
    "moved_from_first_contributor",
    "moved_to_restrictions_edit",
    "moved_to_restrictions_move",
    "moved_to_restrictions_create",
    "moved_to_restrictions_upload",
    "moved_to_recent_contributors",
    "moved_to_first_contributor",
    "old_links",
    "file_sha1",
    "file_size",
    "file_mime",
    "file_mediatype",
    "file_width",
    "file_height",
    "file_bits_per_channel",
    "wiki_name",
    "wiki_language",
    // Added to AbuseFilter core after 1.39 (temporary accounts, last-edit age).
    "user_type",
    "user_unnamed_ip",
    "page_last_edit_age",
    "moved_from_last_edit_age",
    "moved_to_last_edit_age",
];

/// Old names and the variables they now mean.
pub const DEPRECATED: &[(&str, &str)] = &[
    ("article_text", "page_title"),
    ("article_prefixedtext", "page_prefixedtitle"),
    ("article_namespace", "page_namespace"),
    ("article_articleid", "page_id"),
    ("article_restrictions_edit", "page_restrictions_edit"),
    ("article_restrictions_move", "page_restrictions_move"),
    ("article_restrictions_create", "page_restrictions_create"),
    ("article_restrictions_upload", "page_restrictions_upload"),
    ("article_recent_contributors", "page_recent_contributors"),
    ("article_first_contributor", "page_first_contributor"),
    ("moved_from_text", "moved_from_title"),
    ("moved_from_prefixedtext", "moved_from_prefixedtitle"),
    ("moved_from_articleid", "moved_from_id"),
    ("moved_to_text", "moved_to_title"),
    ("moved_to_prefixedtext", "moved_to_prefixedtitle"),
    ("moved_to_articleid", "moved_to_id"),
];

/// Names no longer in use: a filter that reads one is refused.
pub const DISABLED: &[&str] = &["old_text", "old_html", "minor_edit"];

/// The place of `name` (canonical) in [`BUILTIN`].
pub fn builtin_index(name: &str) -> Option<usize> {
    BUILTIN.iter().position(|b| *b == name)
}

/// The current name for a (lower-case) variable name: deprecated aliases map to their
/// replacement, every other name to itself.
pub fn canonical(name: &str) -> &str {
    DEPRECATED
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// The set of variable names a checker accepts: the built-ins plus any the operator adds
/// (variables that other extensions, such as CentralAuth's `global_user_groups`, provide).
#[derive(Debug, Clone, Default)]
pub struct KnownVariables {
    extra: Vec<String>,
}

impl KnownVariables {
    /// The built-ins plus `extra` (lower-cased).
    pub fn with_extra<I: IntoIterator<Item = S>, S: AsRef<str>>(extra: I) -> Self {
        KnownVariables {
            extra: extra.into_iter().map(|s| s.as_ref().to_ascii_lowercase()).collect(),
        }
    }

    /// Whether `name` (lower-case, canonical) is a variable in use.
    pub fn in_use(&self, name: &str) -> bool {
        BUILTIN.contains(&name) || self.extra.iter().any(|e| e == name)
    }

    /// Whether `name` names any variable, in use, deprecated or disabled.
    pub fn exists(&self, name: &str) -> bool {
        self.in_use(name) || is_disabled(name) || is_deprecated(name)
    }
}

/// Whether the name is a disabled variable.
pub fn is_disabled(name: &str) -> bool {
    DISABLED.contains(&name)
}

/// Whether the name is a deprecated alias.
pub fn is_deprecated(name: &str) -> bool {
    DEPRECATED.iter().any(|(old, _)| *old == name)
}
