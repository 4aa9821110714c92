// Package txn names write transactions: ids that are unique across sites
// and restarts and safe as file names (they name quarantine directories and
// journal entries). Pure functions; safe for concurrent use.
package txn

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// maxLen bounds an id from the network.
const maxLen = 128

var enc = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// New returns a fresh id for a transaction begun at site: the site name, the
// time (so ids sort roughly by age in listings) and 80 random bits.
func New(site string, now time.Time) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	s := strings.Map(func(r rune) rune {
		if Valid(r) {
			return r
		}
		return '_'
	}, site)
	if len(s) > 32 {
		s = s[:32]
	}
	return fmt.Sprintf("%s-%x-%s", s, now.UnixMilli(), enc.EncodeToString(b[:]))
}

// Check refuses an id that is empty, too long, or has a character outside
// [A-Za-z0-9_-].
func Check(id string) error {
	if id == "" || len(id) > maxLen {
		return fmt.Errorf("invalid transaction id %q", id)
	}
	for _, c := range id {
		if !Valid(c) {
			return fmt.Errorf("invalid transaction id %q", id)
		}
	}
	return nil
}

// Valid reports whether c may appear in an id.
func Valid(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
