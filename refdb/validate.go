package refdb

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBatch is the largest batch a CAS accepts. It bounds the work of one
// transaction; TiKV's async commit applies up to 256 keys and etcd's default
// --max-txn-ops is 128 (the etcd backend checks its own, lower, limit).
const MaxBatch = 10000

// ValidateProject checks a project name: non-empty valid UTF-8, no control
// characters (NUL included), at most 4096 bytes. '/' is allowed. Nor may it
// hold an invisible character — a Unicode format character (category Cf:
// bidirectional overrides and isolates, zero-width characters, the
// byte-order mark, ...) or a line or paragraph separator — the characters
// the repositories' git.ValidateName refuses too.
func ValidateProject(project string) error {
	if project == "" {
		return fmt.Errorf("%w: empty project name", ErrInvalid)
	}
	if len(project) > 4096 {
		return fmt.Errorf("%w: project name longer than 4096 bytes", ErrInvalid)
	}
	if !utf8.ValidString(project) {
		return fmt.Errorf("%w: project name %q is not UTF-8", ErrInvalid, project)
	}
	for _, r := range project {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: project name %q has a control character", ErrInvalid, project)
		}
		if unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("%w: project name %q has the invisible character %U (a bidirectional control, zero-width or other format character)", ErrInvalid, project, r)
		}
	}
	return nil
}

// ValidateRef checks a ref name with git's check-ref-format rules, and that it
// is HEAD or starts with "refs/".
func ValidateRef(ref string) error {
	bad := func(why string) error { return fmt.Errorf("%w: ref %q %s", ErrInvalid, ref, why) }
	if ref == "HEAD" {
		return nil
	}
	if !strings.HasPrefix(ref, "refs/") {
		return bad("does not start with refs/")
	}
	if len(ref) > 4096 {
		return bad("is longer than 4096 bytes")
	}
	if !utf8.ValidString(ref) {
		return bad("is not UTF-8")
	}
	if strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock") {
		return bad("ends with '/', '.' or '.lock'")
	}
	if strings.Contains(ref, "..") || strings.Contains(ref, "//") || strings.Contains(ref, "@{") || ref == "@" {
		return bad("contains '..', '//' or '@{'")
	}
	for _, c := range strings.Split(ref, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return bad("has a component starting with '.' or ending with '.lock'")
		}
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return bad("contains a control character or one of ' ~^:?*[\\'")
		}
	}
	return nil
}

// ValidateSHA checks an object name: 40 lower-case hex characters.
func ValidateSHA(sha string) error {
	if len(sha) != 40 {
		return fmt.Errorf("%w: object name %q is not 40 hex characters", ErrInvalid, sha)
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: object name %q is not lower-case hex", ErrInvalid, sha)
		}
	}
	return nil
}

// ValidateBatch checks a whole CAS request; backends call it before any I/O.
func ValidateBatch(project string, b Batch) error {
	if err := ValidateProject(project); err != nil {
		return err
	}
	if b.Txn == "" || b.Site == "" {
		return fmt.Errorf("%w: batch without txn or site", ErrInvalid)
	}
	if len(b.Updates) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	if len(b.Updates) > MaxBatch {
		return fmt.Errorf("%w: batch of %d refs exceeds %d", ErrInvalid, len(b.Updates), MaxBatch)
	}
	seen := make(map[string]struct{}, len(b.Updates))
	for _, u := range b.Updates {
		if err := ValidateRef(u.Ref); err != nil {
			return err
		}
		if err := ValidateSHA(u.Old); err != nil {
			return fmt.Errorf("old value of %q: %w", u.Ref, err)
		}
		if err := ValidateSHA(u.New); err != nil {
			return fmt.Errorf("new value of %q: %w", u.Ref, err)
		}
		if _, dup := seen[u.Ref]; dup {
			return fmt.Errorf("%w: ref %q appears twice in the batch", ErrInvalid, u.Ref)
		}
		seen[u.Ref] = struct{}{}
	}
	return nil
}

// ValidateRead checks the arguments of Get.
func ValidateRead(project string, refs []string) error {
	if err := ValidateProject(project); err != nil {
		return err
	}
	for _, r := range refs {
		if err := ValidateRef(r); err != nil {
			return err
		}
	}
	return nil
}
