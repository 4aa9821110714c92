// Package glob is the one name matcher behind every per-project and per-ref rule
// of sitesync (replication.projects, shard.projects, refdb.ignore, notedb.refs).
//
// Syntax, over '/'-separated names such as "tango/core" or "refs/heads/main":
//
//   - "*" matches any run of characters within one path segment (never '/');
//   - "?" matches exactly one character (a rune, not a byte) other than '/';
//   - "**" must be a whole segment and matches any number of segments:
//     "**/x" and "a/**/x" also match zero segments ("x", "a/x"); a trailing
//     "a/**" matches everything below a but not a itself (as in .gitignore);
//     "**" alone matches every name.
//
// Every other character is literal. '[', ']', '{', '}' and '\' are reserved
// (no character classes, alternatives or escapes) and make Compile fail, as do
// "**" inside a segment ("a**"), empty segments, a leading or trailing '/',
// control characters and invalid UTF-8: a pattern that could never mean what
// its author wrote is an error, never a silent non-match.
//
// A Pattern compiles to a small NFA that is simulated, so Match is linear in
// len(name) × len(pattern) whatever the pattern (no backtracking blow-up).
// Witness uses the same automata to decide whether rules can overlap and to
// name a project that shows it; config uses it to check quorum sizes against
// placements precisely.
//
// A Pattern is immutable after Compile and safe for concurrent use.
package glob
